// Helpers shared by the CLI tests: run `gradgraph args...` in-process and capture what it prints.
#pragma once

#include <cli/cli.hpp>

#include "../temp_dir.hpp"

#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

namespace gg::cli::test {

struct Result {
  int code;
  std::string out, err;
};

/// Runs one gradgraph invocation (args without the program name).
inline Result run(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const int code = gg::cli::run(args, out, err);
  return {code, out.str(), err.str()};
}

/// Runs a shell command: its exit status (128 + N when signal N ended it, as shells report).
inline int shell(const std::string& command) {
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/// s as one shell word: single-quoted.
inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (const char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// A fresh empty folder (gg::test::unique_temp_path's name, tag cli_<name>; the caller removes it).
inline std::filesystem::path temp_dir(const std::string& name) {
  const auto dir = gg::test::unique_temp_path("cli_" + name);
  std::filesystem::create_directories(dir);
  return dir;
}

} // namespace gg::cli::test
