// The gradgraph program: everything happens in gg::cli::main (cli/cli.hpp).
#include <cli/cli.hpp>

int main(int argc, char** argv) {
  return gg::cli::main(argc, argv);
}
