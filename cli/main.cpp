// The gradgraph program: everything happens in gg::cli::main (cli/cli.hpp).
#include <cli/cli.hpp>

int main(int argc, char** argv) {
  gg::cli::end_blas_restart(); // the first thing: cli/src/blas_restart.cpp
  return gg::cli::main(argc, argv);
}
