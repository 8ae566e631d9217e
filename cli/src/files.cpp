// Atomic file writing and Graphviz rendering for the CLI's subcommands.
#include "files.hpp"

#include <nn/io/atomic_file.hpp>

#include <autodiff/error.hpp>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ostream.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace gg::cli {

/// "g.dot" -> "g.svg"; other names get the extension appended.
std::string rendered_name(const std::string& path, const std::string& format) {
  for (const char* ext : {".dot", ".gv"}) {
    const std::size_t n = std::strlen(ext);
    if (path.size() > n && path.compare(path.size() - n, n, ext) == 0 && path[path.size() - n - 1] != '/')
      return path.substr(0, path.size() - n) + "." + format;
  }
  return path + "." + format;
}

/// Runs `dot -Tformat in -o out` (an argument vector, no shell). Returns false when no `dot` is on
/// PATH; throws IOError when it runs and fails.
bool render(const std::string& in, const std::string& out, const std::string& format) {
  // A path starting with '-' would read as an option.
  const auto arg = [](const std::string& p) { return p.front() == '-' ? "./" + p : p; };
  std::vector<std::string> args{"dot", "-T" + format, arg(in), "-o", arg(out)};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int e = ::posix_spawnp(&pid, "dot", nullptr, nullptr, argv.data(), environ);
  if (e == ENOENT) return false;
  if (e != 0) throw IOError(fmt::format("cannot run Graphviz's dot: {}", std::strerror(e)));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) throw IOError(fmt::format("waiting for Graphviz's dot: {}", std::strerror(errno)));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw IOError(fmt::format("Graphviz's dot failed ({} {}) rendering '{}'",
                              WIFEXITED(status) ? "exit status" : "signal",
                              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), in));
  return true;
}

void check_rankdir(const std::string& rankdir) {
  if (rankdir != "LR" && rankdir != "TB")
    throw UsageError(fmt::format("--rankdir '{}': use LR (left to right) or TB (top to bottom)", rankdir));
}

std::string save_graph(const std::string& command, const std::string& path, const std::string& dot_text,
                       const std::string& format, std::ostream& err) {
  write_atomically(path, dot_text);
  std::string note = fmt::format("graph: wrote {}", path);
  if (format.empty())
    return note + fmt::format(" (draw it with: dot -Tsvg {} -o {})", path, rendered_name(path, "svg"));
  const std::string image = rendered_name(path, format);
  if (render(path, image, format)) return note + fmt::format(", rendered {}", image);
  fmt::print(
      err,
      "gradgraph {}: Graphviz's dot is not on PATH, so {} was not made (install Graphviz, then run: dot -T{} "
      "{} -o {})\n",
      command, image, format, path, image);
  return note;
}

} // namespace gg::cli
