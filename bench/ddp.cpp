// Data-parallel training with gg::distributed::DistributedDataParallel, run under mpirun (or as one
// process): the time of a step or an epoch, and the share of the gradient all-reduce time that the
// backward pass hides. bench/torch_ddp.py runs the same in PyTorch DDP (gloo).
//
//   mpirun -n 2 bench_ddp mlp_big [--threads 1] [--steps 40] [--comm-thread 0|1]
//       one step of the 1024-1024-1024-10 ReLU MLP, f32, SGD, global batch 64
//   mpirun -n 2 bench_ddp fashion [--threads 1] [--comm-thread 0|1]
//       one Fashion-MNIST epoch, 784-128-10 ReLU, Adam, global batch 128 (data loading not timed)
// --comm-thread 0 runs the all-reduces without DDP's communication thread (the hooks progress them).
// Prints "result side=gradgraph workload=... processes=N threads=T step_ms=... hidden_share=..." on rank 0:
// allreduce_ms is one step's buckets all-reduced alone (the same calls, no backward to overlap);
// exposed_ms what the all-reduces add to a step: the median step with DistributedDataParallel less the
// median step of the same model and shard trained without it (its twin, run alternately); hidden_share
// = 1 - exposed_ms / allreduce_ms; hideable_share, its bound, the share of the bytes in buckets before
// the last (whose gradients are final only when backward ends); wait_ms the median wait after backward.
// Medians over the steps: this machine's other jobs make means measure their scheduling.
#include <distributed/data_parallel.hpp>
#include <nn/nn.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "bench_util.hpp"

namespace {

using namespace gg;
namespace dist = gg::distributed;

struct Options {
  std::string workload;
  int threads = 1;
  long steps = 40;
  bool comm_thread = true;
};

Var cross_entropy(const Var& out, const Tensor& y) {
  return nn::cross_entropy(out, y);
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

/// Each step's time (from one backward's end to the next) and, with a ddp, its wait for the
/// all-reduces after backward (the growth of the statistics' wait).
struct StepLog : train::Callback {
  explicit StepLog(const dist::DistributedDataParallel* d = nullptr) : ddp(d) {}
  void start() {
    last_wait = ddp ? ddp->stats().wait_seconds : 0;
    last_time = bench::clock_type::now();
    waits.clear(), times.clear();
  }
  void on_after_backward(train::Trainer&, const train::Position&) override {
    times.push_back(bench::seconds_since(last_time));
    last_time = bench::clock_type::now();
    if (!ddp) return;
    waits.push_back(ddp->stats().wait_seconds - last_wait);
    last_wait = ddp->stats().wait_seconds;
  }
  const dist::DistributedDataParallel* ddp;
  double last_wait = 0;
  bench::clock_type::time_point last_time;
  std::vector<double> waits, times;
};

/// The time of one step's all-reduces alone (median of 20): the buckets started and waited for by
/// finish_gradients() with no backward pass to overlap (the same calls as in a step; it writes zeros).
double allreduce_seconds(dist::DistributedDataParallel& ddp) {
  std::vector<double> times;
  dist::barrier();
  for (int r = 0; r < 20; ++r) {
    const auto t0 = bench::clock_type::now();
    ddp.begin_step(1, ddp.world_size());
    ddp.finish_gradients();
    times.push_back(bench::seconds_since(t0));
  }
  return median(times);
}

/// Each bucket's bytes, in the order they are all-reduced.
std::vector<double> bucket_bytes(const dist::DistributedDataParallel& ddp) {
  std::vector<double> bytes;
  for (const auto& names : ddp.buckets()) {
    double b = 0;
    for (const auto& [name, p] : ddp.module().named_parameters())
      if (std::find(names.begin(), names.end(), name) != names.end())
        b += static_cast<double>(p.numel() * static_cast<std::int64_t>(dtype_size(p.dtype())));
    bytes.push_back(b);
  }
  return bytes;
}

/// Prints the result line; `before` is the statistics when the timing began.
void report(const Options& o, dist::DistributedDataParallel& ddp, const dist::DataParallelStats& before,
            const StepLog& log, const std::vector<double>& times, const std::vector<double>& twin_times,
            double step_seconds) {
  const dist::DataParallelStats s = ddp.stats();
  const double wait = median(log.waits);
  const double comm = dist::world_size() > 1 ? allreduce_seconds(ddp) : 0;
  const double exposed = std::max(0.0, median(times) - median(twin_times));
  const double hidden = comm > 0 ? std::clamp(1 - exposed / comm, 0.0, 1.0) : 0;
  const std::vector<double> bytes = bucket_bytes(ddp);
  double total = 0;
  for (const double b : bytes) total += b;
  // The share of the gradient bytes outside the last bucket: what backward can hide at most.
  const double hideable = total > 0 ? 1 - bytes.back() / total : 0;
  if (dist::rank() != 0) return;
  std::printf("result side=gradgraph workload=%s processes=%d threads=%d comm_thread=%d step_ms=%.4f "
              "allreduce_ms=%.4f exposed_ms=%.4f wait_ms=%.4f hidden_share=%.3f hideable_share=%.3f "
              "allreduce_bytes=%.0f buckets_in_backward=%lld/%lld\n",
              o.workload.c_str(), dist::world_size(), o.threads, s.threaded ? 1 : 0, step_seconds * 1e3,
              comm * 1e3, exposed * 1e3, wait * 1e3, hidden, hideable, total,
              static_cast<long long>(s.buckets_in_backward - before.buckets_in_backward),
              static_cast<long long>(s.buckets - before.buckets));
}

nn::Sequential big_mlp() {
  nn::manual_seed(1);
  return nn::Sequential(nn::Linear(1024, 1024, true, f32), nn::ReLU(), nn::Linear(1024, 1024, true, f32),
                        nn::ReLU(), nn::Linear(1024, 10, true, f32));
}

void mlp_big(const Options& o) {
  nn::Sequential model = big_mlp(), twin = big_mlp();
  dist::DistributedDataParallel ddp(model, {.communication_thread = o.comm_thread});
  const std::int64_t global = 64;
  const auto [first, last] = train::shard_rows(global, dist::rank(), dist::world_size());
  Rng rng(1);
  const Tensor x_all = Tensor::rand({global, 1024}, rng, f32);
  Tensor y_all = Tensor::zeros({global}, f64);
  for (std::int64_t i = 0; i < global; ++i) y_all.set_flat(i, static_cast<double>(rng.below(10)));
  const Tensor x = kernel::slice(x_all, 0, first, last), y = kernel::slice(y_all, 0, first, last);
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.01));
  train::Trainer trainer(model, opt, cross_entropy);
  StepLog log(&ddp);
  trainer.set_data_parallel(ddp).add_callback(log);
  optim::SGD twin_opt(twin.parameters(), optim::SGDOptions(0.01));
  train::Trainer twin_trainer(twin, twin_opt, cross_entropy); // its shard alone: no all-reduce
  for (int i = 0; i < 5; ++i) trainer.train_step(x, y), twin_trainer.train_step(x, y); // warm-up
  dist::barrier();
  const dist::DataParallelStats before = ddp.stats();
  log.start();
  std::vector<double> times, twin_times;
  for (long i = 0; i < o.steps; ++i) { // alternately, one step each
    auto t0 = bench::clock_type::now();
    trainer.train_step(x, y);
    times.push_back(bench::seconds_since(t0));
    t0 = bench::clock_type::now();
    twin_trainer.train_step(x, y);
    twin_times.push_back(bench::seconds_since(t0));
  }
  double total = 0;
  for (const double t : times) total += t;
  report(o, ddp, before, log, times, twin_times, total / static_cast<double>(o.steps));
}

nn::Sequential fashion_mlp() {
  nn::manual_seed(1);
  return nn::Sequential(nn::Linear(784, 128, true, f32), nn::ReLU(), nn::Linear(128, 10, true, f32));
}

void fashion(const Options& o) {
  const data::Dataset train_set = data::load_fashion_mnist(std::string(data::fashion_mnist_dir), true, f32);
  nn::Sequential model = fashion_mlp(), twin = fashion_mlp();
  dist::DistributedDataParallel ddp(model, {.communication_thread = o.comm_thread});
  const train::TrainerOptions options{.epochs = 1, .evaluate_train = false};
  const data::DataLoaderOptions shard{
      .batch_size = 128, .shuffle = true, .seed = 0, .rank = dist::rank(), .world_size = dist::world_size()};
  optim::Adam opt(model.parameters(), optim::AdamOptions(1e-3));
  train::Trainer trainer(model, opt, cross_entropy, options);
  StepLog log(&ddp), twin_log;
  trainer.set_data_parallel(ddp).add_callback(log);
  data::DataLoader loader(train_set.x, train_set.y, shard);
  dist::barrier();
  const dist::DataParallelStats before = ddp.stats();
  log.start();
  const auto t0 = bench::clock_type::now();
  trainer.fit(loader);
  const double epoch = bench::seconds_since(t0);
  // The twin: the same epoch of this rank's shards without DistributedDataParallel (no all-reduce).
  optim::Adam twin_opt(twin.parameters(), optim::AdamOptions(1e-3));
  train::Trainer twin_trainer(twin, twin_opt, cross_entropy, options);
  twin_trainer.add_callback(twin_log);
  data::DataLoader twin_loader(train_set.x, train_set.y, shard);
  twin_log.start();
  twin_trainer.fit(twin_loader);
  report(o, ddp, before, log, log.times, twin_log.times, epoch);
}

} // namespace

int main(int argc, char** argv) {
  dist::Environment env(argc, argv);
  try {
    Options o;
    if (argc < 2)
      throw std::invalid_argument(
          "usage: bench_ddp mlp_big|fashion [--threads N] [--steps N] [--comm-thread 0|1]");
    o.workload = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
      const std::string k = argv[i], v = argv[i + 1];
      if (k == "--threads")
        o.threads = std::stoi(v);
      else if (k == "--steps")
        o.steps = std::stol(v);
      else if (k == "--comm-thread")
        o.comm_thread = v != "0";
      else
        throw std::invalid_argument("bench_ddp: unknown option " + k);
    }
    kernel::set_num_threads(o.threads);
    if (o.workload == "mlp_big")
      mlp_big(o);
    else if (o.workload == "fashion")
      fashion(o);
    else
      throw std::invalid_argument("bench_ddp: unknown workload " + o.workload);
  } catch (const std::exception& e) {
    dist::abort_all(e.what(), 1);
  }
  return 0;
}
