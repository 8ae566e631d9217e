// Fuzz target: the command line, gg::cli::run in-process. The input is the arguments, one per
// line (the first is the command). An exit code 1 (a std exception that is not a gg::Error) or any
// crash is a finding. Runs in a fresh temporary directory holding d.csv (a small dataset) and
// m.safetensors (a model gradgraph train saved), which the dictionary names, both rewritten before
// each run; inputs with an argument holding '/' or ".." are skipped, so every file the CLI writes
// stays in that directory.
// Whole numbers above 16 are not tried (the input is skipped): each run must take milliseconds,
// and the limits on large numbers are tested in tests/cli/test_hardening.cpp. Nor is `serve`: once
// its arguments are good it waits for connections until stopped (its argument errors are tested in
// tests/web/test_page.cpp).
#include <cli/cli.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace {

std::filesystem::path g_dir;
const std::string g_csv = "x1,x2,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n0.5,0.5,2\n";
std::string g_model; // the bytes of m.safetensors

std::string read(const char* path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write(const char* path, const std::string& bytes) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec); // a run may have made a directory of that name
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

void remove_dir() {
  std::error_code ec;
  if (!g_dir.empty()) std::filesystem::remove_all(g_dir, ec);
}

/// Whether some run of digits in the argument's value (after its last '=') is a number above 16.
bool has_large_number(std::string_view arg) {
  const std::size_t eq = arg.rfind('=');
  if (eq != std::string_view::npos) arg.remove_prefix(eq + 1);
  std::uint64_t v = 0;
  bool in_digits = false;
  for (const char c : arg) {
    if (c >= '0' && c <= '9') {
      v = in_digits ? v * 10 + static_cast<std::uint64_t>(c - '0') : static_cast<std::uint64_t>(c - '0');
      in_digits = true;
      if (v > 16) return true;
    } else {
      in_digits = false;
    }
  }
  return false;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  char tmpl[] = "/tmp/gradgraph-fuzz-cli-XXXXXX";
  if (!::mkdtemp(tmpl)) std::abort();
  g_dir = tmpl;
  std::atexit(remove_dir);
  if (::chdir(tmpl) != 0) std::abort();
  ::setenv("PATH", "", 1); // --render finds no Graphviz: no processes are spawned
  write("d.csv", g_csv);
  std::ostringstream out, err;
  const int code = gg::cli::run({"train", "--data", "d.csv", "--layers", "2,3,3", "--epochs", "2", "--save",
                                 "m.safetensors", "--log", "l.jsonl"},
                                out, err);
  if (code != 0) std::abort();
  g_model = read("m.safetensors");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::string> args;
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  while (!rest.empty()) {
    const std::size_t nl = rest.find('\n');
    const std::string_view arg = rest.substr(0, nl);
    if (arg.find('/') != std::string_view::npos || arg.find("..") != std::string_view::npos ||
        has_large_number(arg))
      return 0;
    args.emplace_back(arg);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
  }
  if (!args.empty() && args[0] == "serve") return 0;
  write("d.csv", g_csv); // a previous run may have written over them
  write("m.safetensors", g_model);
  std::ostringstream out, err;
  const int code = gg::cli::run(args, out, err);
  if (code == gg::cli::internal_error) __builtin_trap(); // a std exception escaped the library
  return 0;
}
