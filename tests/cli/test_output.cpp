// Standard output that cannot be written is an error: every command flushes and checks it, so a
// full disk or /dev/full gives a message and exit code 4 instead of a cut JSON line and exit 0.
#include "cli_test.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>
#include <streambuf>
#include <string>

#include <sys/wait.h>
#include <unistd.h>

namespace {

/// A stream buffer that takes `capacity` bytes and then refuses every write, as a full disk does.
class FullAfter : public std::streambuf {
public:
  explicit FullAfter(std::size_t capacity) : capacity_(capacity) {}
  std::string written;

protected:
  int_type overflow(int_type c) override {
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    if (written.size() >= capacity_) return traits_type::eof();
    written += traits_type::to_char_type(c);
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    const auto room = static_cast<std::streamsize>(capacity_ - written.size());
    const std::streamsize taken = std::min(n, room);
    written.append(s, static_cast<std::size_t>(taken));
    return taken;
  }

private:
  std::size_t capacity_;
};

struct Outcome {
  int code;
  std::string written, err;
};

Outcome run_into(std::size_t capacity, const std::vector<std::string>& args) {
  FullAfter buffer(capacity);
  std::ostream out(&buffer);
  std::ostringstream err;
  const int code = gg::cli::run(args, out, err);
  return {code, buffer.written, err.str()};
}

using gg::cli::test::shell;
using gg::test::read_file;
} // namespace

TEST_CASE("output: a stream that fills up makes any command an I/O error, with a message") {
  // explain's JSON of a long program cut at 64 KiB, as a full disk cut it.
  std::string program = "f = x";
  for (int i = 0; i < 20'000; ++i) program += " + x";
  const std::string many_names = [] {
    std::string p;
    for (int i = 0; i < 5'000; ++i) p += "a" + std::to_string(i) + " = x * " + std::to_string(i) + "; ";
    return p + "f = a0";
  }();
  Outcome r = run_into(65'536, {"explain", "--json", many_names, "x=1"});
  CHECK(r.code == gg::cli::io_error);
  CHECK(r.written.size() == 65'536);
  CHECK(r.err == "gradgraph explain: cannot write to standard output: the write failed\n");

  r = run_into(100, {"explain", program, "x=1"});
  CHECK(r.code == gg::cli::io_error);
  CHECK(r.err == "gradgraph explain: cannot write to standard output: the write failed\n");
  r = run_into(10, {"summary", "--layers", "2,3,2"});
  CHECK(r.code == gg::cli::io_error);
  r = run_into(10, {"--help"});
  CHECK(r.code == gg::cli::io_error);
  CHECK(r.err == "gradgraph: cannot write to standard output: the write failed\n");

  // An error of the command itself keeps its exit code; the lost output is said too.
  r = run_into(0, {"explain", "f = x +", "x=1"});
  CHECK(r.code == gg::cli::format_error);
  // Enough room: nothing changes.
  r = run_into(1 << 20, {"explain", "--json", "f = x", "x=1"});
  CHECK(r.code == gg::cli::ok);
  CHECK(r.err.empty());
}

TEST_CASE("output: the real binary writing to /dev/full exits 4 and says why") {
  if (::access("/dev/full", W_OK) != 0) {
    WARN("/dev/full is not available: skipped");
    return;
  }
  const gg::test::TempDir dir("output");
  const std::string bin = std::string("'") + GG_CLI_BINARY + "' ", err = dir / "err.txt";
  const auto full = [&](const std::string& args) { return shell(bin + args + " >/dev/full 2>" + err); };
  CHECK(full("explain 'q = x + y; f = q * z' x=-2 y=5 z=-4") == gg::cli::io_error);
  CHECK(read_file(err) == "gradgraph explain: cannot write to standard output: No space left on device\n");
  CHECK(full("explain --json 'f = x' x=1") == gg::cli::io_error);
  CHECK(full("summary --layers 2,3,2") == gg::cli::io_error);
  CHECK(full("dot --layers 2,3,2 -o " + (dir / "g.dot")) == gg::cli::io_error);
  CHECK(full("--help") == gg::cli::io_error);
  CHECK(full("explain --help") == gg::cli::io_error);
  CHECK(read_file(err) == "gradgraph explain: cannot write to standard output: No space left on device\n");
  CHECK(shell(bin + "explain 'f = x' x=1 >/dev/null") == gg::cli::ok);
}
