// The gradgraph program: everything happens in gg::cli::run (cli/cli.hpp).
#include <cli/cli.hpp>

#include <iostream>

int main(int argc, char** argv) {
  return gg::cli::run(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
}
