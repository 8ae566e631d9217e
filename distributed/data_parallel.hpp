// gg::distributed::DistributedDataParallel — data-parallel training around any nn::Module, as
// PyTorch's DistributedDataParallel: rank 0's parameters and buffers copied to every rank at the
// start, and each step's gradients averaged over the ranks by all-reduces of buckets that start while
// the backward pass is still running (through the parameters' gradient hooks).
#pragma once

#include <distributed/distributed.hpp>
#include <nn/module.hpp>
#include <nn/train/data_parallel.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace gg::distributed {

/// Options of DistributedDataParallel.
struct DataParallelOptions {
  /// Gradient bytes per all-reduce bucket (PyTorch's bucket_cap_mb is 25 MiB; our models are smaller,
  /// and a smaller first bucket starts communicating sooner). A larger parameter has a bucket of its own.
  std::size_t bucket_bytes = std::size_t{4} << 20;
  /// Copy rank 0's buffers (BatchNorm's running statistics) to every rank before each step, as
  /// PyTorch's broadcast_buffers: the ranks' models stay identical.
  bool broadcast_buffers = true;
  /// Run the all-reduces on a thread of their own, which starts each bucket's as the hooks hand it over
  /// and keeps them moving while backward computes (Open MPI advances a collective only inside its
  /// calls), as PyTorch's DDP leaves them to gloo's threads. Needs MPI_THREAD_MULTIPLE (Open MPI and
  /// MPICH provide it); without it, or when false, the hooks start them and give them progress.
  bool communication_thread = true;
};

/// Statistics of the gradient averaging since construction (bench/ reports them).
struct DataParallelStats {
  std::int64_t steps = 0;               ///< gradient averagings done
  std::int64_t buckets = 0;             ///< buckets all-reduced
  std::int64_t buckets_in_backward = 0; ///< of which started by hooks while backward was running
  double wait_seconds = 0;              ///< time spent waiting for all-reduces to complete
  bool threaded = false;                ///< whether a communication thread runs them
};

/// Trains a module on several processes as one. Each rank holds the whole model and runs forward and
/// backward on its share of the batch; as backward finishes the gradients of a bucket of parameters
/// (buckets in reverse registration order: the last layers' gradients are final first), the bucket
/// is all-reduced (MPI_Iallreduce, run by a communication thread) while backward goes on with the
/// earlier layers. Buckets start strictly in order (bucket k after bucket k - 1), so every rank issues
/// the same collectives in the same order whatever the timing, and each bucket's sum is computed by
/// the same MPI algorithm on every step: results never depend on timing. When every parameter's
/// gradient has arrived, the averages are written into the parameters' .grad() before backward()
/// returns; a parameter that got no gradient on some rank (a branch not taken) counts as zero there,
/// once finish_gradients() runs.
///
///     gg::distributed::Environment env(argc, argv);
///     auto model = ...;
///     gg::distributed::DistributedDataParallel ddp(*model);   // every rank: rank 0's weights
///     loss(ddp(x_shard), y_shard).backward();                 // gradients averaged over the ranks
///     ddp.finish_gradients();                                 // (needed only if some were unused)
///     optimizer.step();
///
/// With gg::train::Trainer: trainer.set_data_parallel(ddp), and a DataLoader with this rank and world
/// size; the trainer then tells begin_step each rank's rows, so that a last batch not divisible by the
/// number of ranks is still averaged exactly. With one process, gradients are left as they are.
class DistributedDataParallel : public train::DataParallel {
public:
  /// Checks that every rank's module has the same parameter names, shapes and dtypes (check_same: a
  /// ValueError on every rank otherwise), copies rank 0's parameters and buffers to every rank and
  /// registers the gradient hooks. Collective: every rank constructs it at the same point.
  explicit DistributedDataParallel(nn::Module& module, DataParallelOptions options = {});
  /// Removes the hooks; waits for all-reduces in flight and frees its communicator (collective), unless
  /// an exception is unwinding: then it leaves both to the end of the run, which abort_all brings.
  ~DistributedDataParallel() override;
  DistributedDataParallel(const DistributedDataParallel&) = delete;
  DistributedDataParallel& operator=(const DistributedDataParallel&) = delete;

  /// The module applied to x (the wrapped module's call operator).
  Var operator()(const Var& x) { return (*module_)(x); }
  nn::Module& module() const { return *module_; }
  const DataParallelOptions& options() const { return options_; }
  /// The buckets in the order they are all-reduced: each its parameters' state-dict names.
  std::vector<std::vector<std::string>> buckets() const;
  const DataParallelStats& stats() const { return stats_; }

  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }
  /// This rank's gradient will count rows / global_rows of the batch's mean gradient (without a call,
  /// 1 / world_size: the mean of the ranks' gradients, as PyTorch). Broadcasts buffers if asked.
  void begin_step(std::int64_t rows, std::int64_t global_rows) override;
  /// Completes this step's averaging: starts the buckets not started yet (their parameters that got
  /// no gradient count as zero), waits for all, writes the averages into .grad(). Does nothing when
  /// backward() already did all that. Call it before the optimizer's step.
  void finish_gradients() override;
  void all_reduce_sum(std::vector<double>& values) override;
  void all_reduce_max(std::vector<double>& values) override;
  Tensor all_gather_rows(const Tensor& rows) override;

private:
  struct State; // the buckets, their MPI requests and the communicator (data_parallel.cpp)
  /// A parameter's gradient is final (its post-accumulate hook).
  void ready(std::size_t param, const Var& leaf);

  nn::Module* module_;
  DataParallelOptions options_;
  int rank_ = 0, world_size_ = 1;
  DataParallelStats stats_;
  std::unique_ptr<State> state_;
};

} // namespace gg::distributed
