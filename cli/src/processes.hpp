// The processes of a command started by mpirun (train and lm train, data-parallel): rank and number,
// the checks that every rank was started alike, the gradient averaging, a test's injected fault, and
// one rank's error ending every rank with its message. Without MPI built in, one process.
#pragma once

#include <nn/nn.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace gg::cli {

/// The processes of this run: rank and number (0 and 1 unless started by mpirun with MPI built in).
struct Processes {
  int rank = 0, world = 1;
};
/// This process's rank and the number of processes.
Processes processes();

/// Refuses ranks started differently (another command line, other data): every rank says so, with
/// exit code 6 (a ValueError), naming `what` and the ranks that differ from rank 0.
void check_same_on_every_rank(const std::string& text, const char* what);

/// The command line as every rank must have it: the values of the options in `paths` left out (a
/// file may be elsewhere on another machine: its contents are compared instead).
std::string options_text(const std::vector<std::string>& args, const std::set<std::string>& paths);

/// UsageError unless the global batch splits evenly over the processes.
void check_batch_splits(std::int64_t batch_size, int world);

/// Started by mpirun: gradients of `model` averaged over the processes, rank 0's weights everywhere
/// (gg::distributed::DistributedDataParallel); else none.
std::unique_ptr<train::DataParallel> data_parallel(nn::Module& model);

/// Runs a command (`name` starts its messages) as one of mpirun's processes: MPI starts with the
/// first such command of the process and ends at its exit; with several processes, an error on one
/// ends every rank with its message and exit code (MPI_Finalize would wait for the others).
int run_on_every_rank(const char* name, const std::function<int()>& command);

/// --test-fault kill:N or oom:N (for tests): the last rank dies (SIGKILL, as a crashed machine) or
/// runs out of memory (std::bad_alloc, as a failed allocation) before step N + 1.
class InjectFault : public train::Callback {
public:
  InjectFault(const std::string& spec, bool last_rank);
  void on_batch_begin(train::Trainer&, const train::Position& p) override;

private:
  bool last_;
  std::string kind_;
  std::int64_t step_ = 0;
};

} // namespace gg::cli
