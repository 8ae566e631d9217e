// Data-parallel training with gg::distributed::DistributedDataParallel, run under mpirun (or as one
// process): the time of a step or an epoch, and the share of the gradient all-reduce time that the
// backward pass hides. bench/torch_ddp.py runs the same in PyTorch DDP (gloo).
//
//   mpirun -n 2 bench_ddp mlp_big [--threads 1] [--steps 40]   1024-1024-1024-10 ReLU, f32, SGD, global batch
//   64 mpirun -n 2 bench_ddp fashion [--threads 1]                one Fashion-MNIST epoch, 784-128-10 ReLU,
//   Adam,
//                                                              global batch 128 (data loading not timed)
// Prints "result side=gradgraph workload=... processes=N threads=T step_ms=... hidden_share=..." on rank 0.
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
};

Var cross_entropy(const Var& out, const Tensor& y) {
  return nn::cross_entropy(out, y);
}

/// The all-reduce time of one step's buckets done alone (blocking, nothing to overlap with).
double allreduce_seconds(const dist::DistributedDataParallel& ddp, DType dtype) {
  std::vector<Tensor> buckets;
  for (const auto& names : ddp.buckets()) {
    std::int64_t n = 0;
    for (const auto& [name, p] : ddp.module().named_parameters())
      if (std::find(names.begin(), names.end(), name) != names.end()) n += p.numel();
    buckets.push_back(Tensor::zeros({n}, dtype));
  }
  const int reps = 20;
  dist::barrier();
  const auto t0 = bench::clock_type::now();
  for (int r = 0; r < reps; ++r)
    for (Tensor& b : buckets) dist::all_reduce(b);
  return bench::seconds_since(t0) / reps;
}

void report(const Options& o, const dist::DistributedDataParallel& ddp, double step_seconds, double comm) {
  const dist::DataParallelStats& s = ddp.stats();
  const double wait = s.steps > 0 ? s.wait_seconds / static_cast<double>(s.steps) : 0;
  const double hidden = dist::world_size() > 1 && comm > 0 ? std::clamp(1 - wait / comm, 0.0, 1.0) : 0;
  if (dist::rank() != 0) return;
  std::printf("result side=gradgraph workload=%s processes=%d threads=%d step_ms=%.4f allreduce_ms=%.4f "
              "wait_ms=%.4f hidden_share=%.3f buckets_in_backward=%lld/%lld\n",
              o.workload.c_str(), dist::world_size(), o.threads, step_seconds * 1e3, comm * 1e3, wait * 1e3,
              hidden, static_cast<long long>(s.buckets_in_backward), static_cast<long long>(s.buckets));
}

void mlp_big(const Options& o) {
  nn::manual_seed(1);
  nn::Sequential model(nn::Linear(1024, 1024, true, f32), nn::ReLU(), nn::Linear(1024, 1024, true, f32),
                       nn::ReLU(), nn::Linear(1024, 10, true, f32));
  dist::DistributedDataParallel ddp(model);
  const std::int64_t global = 64;
  const auto [first, last] = train::shard_rows(global, dist::rank(), dist::world_size());
  Rng rng(1);
  const Tensor x_all = Tensor::rand({global, 1024}, rng, f32);
  Tensor y_all = Tensor::zeros({global}, f64);
  for (std::int64_t i = 0; i < global; ++i) y_all.set_flat(i, static_cast<double>(rng.below(10)));
  const Tensor x = kernel::slice(x_all, 0, first, last), y = kernel::slice(y_all, 0, first, last);
  optim::SGD opt(model.parameters(), optim::SGDOptions(0.01));
  train::Trainer trainer(model, opt, cross_entropy);
  trainer.set_data_parallel(ddp);
  for (int i = 0; i < 5; ++i) trainer.train_step(x, y); // warm-up
  dist::barrier();
  const auto t0 = bench::clock_type::now();
  for (long i = 0; i < o.steps; ++i) trainer.train_step(x, y);
  const double step = bench::seconds_since(t0) / static_cast<double>(o.steps);
  report(o, ddp, step, allreduce_seconds(ddp, f32));
}

void fashion(const Options& o) {
  const data::Dataset train_set = data::load_fashion_mnist(std::string(data::fashion_mnist_dir), true, f32);
  nn::manual_seed(1);
  nn::Sequential model(nn::Linear(784, 128, true, f32), nn::ReLU(), nn::Linear(128, 10, true, f32));
  dist::DistributedDataParallel ddp(model);
  optim::Adam opt(model.parameters(), optim::AdamOptions(1e-3));
  train::Trainer trainer(model, opt, cross_entropy, {.epochs = 1, .evaluate_train = false});
  trainer.set_data_parallel(ddp);
  data::DataLoader loader(train_set.x, train_set.y,
                          {.batch_size = 128,
                           .shuffle = true,
                           .seed = 0,
                           .rank = dist::rank(),
                           .world_size = dist::world_size()});
  dist::barrier();
  const auto t0 = bench::clock_type::now();
  trainer.fit(loader);
  const double epoch = bench::seconds_since(t0);
  report(o, ddp, epoch, allreduce_seconds(ddp, f32));
}

} // namespace

int main(int argc, char** argv) {
  dist::Environment env(argc, argv);
  try {
    Options o;
    if (argc < 2) throw std::invalid_argument("usage: bench_ddp mlp_big|fashion [--threads N] [--steps N]");
    o.workload = argv[1];
    for (int i = 2; i + 1 < argc; i += 2) {
      const std::string k = argv[i], v = argv[i + 1];
      if (k == "--threads")
        o.threads = std::stoi(v);
      else if (k == "--steps")
        o.steps = std::stol(v);
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
