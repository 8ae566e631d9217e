// A program whose last rank fails on purpose, for the tests that one rank's failure ends every rank
// with its message (tests/distributed/mpirun_check.cmake runs it under mpirun).
//   distributed_probe abort   the last rank reports an error (abort_all) while the others wait
//   distributed_probe kill    the last rank is killed (SIGKILL) in the middle of all_reduces
//   distributed_probe throw   the last rank throws; main's handler ends every rank with the message
#include <distributed/distributed.hpp>

#include <csignal>
#include <cstdio>
#include <exception>
#include <string_view>

namespace dist = gg::distributed;

int main(int argc, char** argv) {
  dist::Environment env(argc, argv);
  const std::string_view mode = argc > 1 ? argv[1] : "";
  const bool last = dist::rank() == dist::world_size() - 1;
  try {
    gg::Tensor t = gg::Tensor::zeros({1000});
    for (int step = 0; step < 1000000; ++step) {
      if (last && step == 20) {
        if (mode == "abort") dist::abort_all("injected failure at step 20", 6);
        if (mode == "kill") std::raise(SIGKILL);
        if (mode == "throw") throw gg::ValueError("a bad value at step 20");
      }
      dist::all_reduce(t);
    }
  } catch (const std::exception& e) {
    dist::abort_all(e.what(), 6);
  }
  return 0;
}
