// gg::train::DataParallel — how a Trainer runs as one of several processes that train one model on
// their shares of each batch (data parallelism). The interface only: nn/ never needs MPI;
// gg::distributed::DistributedDataParallel (distributed/) implements it over MPI.
#pragma once

#include <autodiff/tensor.hpp>

#include <cstdint>
#include <utility>
#include <vector>

namespace gg::train {

/// The processes of a data-parallel run as the trainer sees them. Every process calls each function
/// at the same point of the run (they are collective), so a process that stops calling them stops
/// the others: errors end every process (gg::distributed::abort_all).
class DataParallel {
public:
  virtual ~DataParallel() = default;
  /// This process's rank, 0 to world_size() - 1; rank 0 logs, prints and saves.
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  /// Before a step: this process holds `rows` of the batch's `global_rows` (0 rows: it runs no
  /// forward or backward pass but takes part in the step), so its share of the batch's mean
  /// gradient is its own mean gradient × rows / global_rows. (Rows, or whatever the loss is the mean
  /// over: TrainerOptions::loss_weight, e.g. a language model's targets.)
  virtual void begin_step(std::int64_t rows, std::int64_t global_rows) = 0;
  /// After the step's backward pass: every parameter's .grad() becomes the batch's gradient, the
  /// processes' shares summed, the same on every process.
  virtual void finish_gradients() = 0;
  /// Replaces each value by its sum over the processes (the same number of values on each).
  virtual void all_reduce_sum(std::vector<double>& values) = 0;
  /// Replaces each value by its maximum over the processes.
  virtual void all_reduce_max(std::vector<double>& values) = 0;
  /// The processes' row blocks of a tensor, concatenated in rank order (same dtype and trailing
  /// shape on every process; a process may have 0 rows).
  virtual Tensor all_gather_rows(const Tensor& rows) = 0;
};

/// Rows [rank·n/N, (rank+1)·n/N) of n: a process's share of n rows among N.
inline std::pair<std::int64_t, std::int64_t> shard_rows(std::int64_t n, int rank, int world_size) {
  return {n * rank / world_size, n * (rank + 1) / world_size};
}

} // namespace gg::train
