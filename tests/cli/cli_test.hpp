// Helpers shared by the CLI tests: run `gradgraph args...` in-process and capture what it prints.
#pragma once

#include <cli/cli.hpp>

#include <sstream>
#include <string>
#include <vector>

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

} // namespace gg::cli::test
