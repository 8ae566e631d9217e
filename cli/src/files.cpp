// Atomic file writing and Graphviz rendering (into a temporary file, renamed on success) for the
// CLI's subcommands.
#include "files.hpp"

#include <nn/io/atomic_file.hpp>

#include <autodiff/error.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <thread>
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
bool render(const std::string& in, const std::string& out, const std::string& format,
            std::chrono::milliseconds timeout) {
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
  // Polled every 20 ms until the deadline, then killed: a graph whose layout takes dot minutes (edge
  // labels on long edges make its crossing minimisation explode) is an error, not a hang.
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR)
      throw IOError(fmt::format("waiting for Graphviz's dot: {}", std::strerror(errno)));
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      throw IOError(fmt::format(
          "Graphviz's dot did not finish rendering '{}' in {:g} s and was stopped (a graph with many long "
          "labelled edges can take it hours); the DOT file is written: view it with a DOT viewer (xdot) or "
          "draw a smaller graph",
          in, std::chrono::duration<double>(timeout).count()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
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

void check_render_size(const std::string& format, std::size_t nodes) {
  if (format.empty() || nodes <= max_render_nodes) return;
  throw UsageError(fmt::format(
      "--render: the graph has {} nodes, and Graphviz's dot is given at most {} (its time grows faster than "
      "the graph: minutes, or a crash, for a few thousand tangled nodes); leave out --render to write the "
      "DOT file alone, or draw a smaller graph",
      nodes, max_render_nodes));
}

std::string save_graph(const std::string& command, const std::string& path, const std::string& dot_text,
                       const std::string& format, std::ostream& err, std::chrono::milliseconds timeout) {
  write_atomically(path, dot_text);
  std::string note = fmt::format("graph: wrote {}", path);
  if (format.empty())
    return note + fmt::format(" (draw it with: dot -Tsvg {} -o {})", path, rendered_name(path, "svg"));
  const std::string image = rendered_name(path, format);
  // Graphviz writes a temporary file next to the picture, renamed over it when dot succeeds: a
  // failure (a full disk, a crash) leaves the old picture, and no half of a new one. A picture that
  // is not a regular file (a link to /dev/null) is written through.
  AtomicFile picture(image);
  if (render(path, picture.writes_through() ? image : picture.temp_path(), format, timeout)) {
    picture.commit();
    return note + fmt::format(", rendered {}", image);
  }
  fmt::print(
      err,
      "gradgraph {}: Graphviz's dot is not on PATH, so {} was not made (install Graphviz, then run: dot -T{} "
      "{} -o {})\n",
      command, image, format, path, image);
  return note;
}

void check_paths(const PathList& outputs, const PathList& inputs,
                 const std::pair<std::string, std::string>& resumed) {
  namespace fs = std::filesystem;
  auto same = [](const std::string& a, const std::string& b) {
    std::error_code ec;
    const fs::file_status s = fs::status(a, ec);
    if (!ec && fs::exists(s) && !fs::is_regular_file(s)) return false;
    if (fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec) && !ec) return true;
    return fs::equivalent(a, b, ec) && !ec;
  };
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    for (std::size_t j = i + 1; j < outputs.size(); ++j)
      if (same(outputs[i].second, outputs[j].second))
        throw UsageError(fmt::format("{} and {} name the same file '{}': give each output its own path",
                                     outputs[i].first, outputs[j].first, outputs[i].second));
    for (const auto& [option, path] : inputs)
      if (same(outputs[i].second, path) && std::pair(outputs[i].first, option) != resumed)
        throw UsageError(fmt::format("{} '{}' is the file of {}: writing it would replace what the run reads",
                                     outputs[i].first, outputs[i].second, option));
  }
}

} // namespace gg::cli
