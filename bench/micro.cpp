// Google Benchmark micro-benchmarks of gradgraph's kernels and tape: matrix products, elementwise
// maps (1 and 2 threads), recording and sweeping scalar graphs, a Linear layer's step and the
// optimizers' update loops. Run: build-bench/bench/bench_micro [--benchmark_filter=REGEX].
#include <autodiff/autodiff.hpp>
#include <nn/nn.hpp>

#include <autodiff/src/thread_pool.hpp> // run_parallel, internal

#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <thread>

namespace {

using namespace gg;

/// Sets the kernel thread count for one benchmark and restores 1 after it.
struct Threads {
  explicit Threads(int n) { kernel::set_num_threads(n); }
  ~Threads() { kernel::set_num_threads(1); }
};

template <DType D> void BM_gemm(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const Threads threads(static_cast<int>(state.range(1)));
  Rng rng(1);
  const Tensor a = Tensor::randn({n, n}, rng, D), b = Tensor::randn({n, n}, rng, D);
  for (auto _ : state) benchmark::DoNotOptimize(kernel::gemm(a, false, b, false).raw());
  state.counters["GFLOP/s"] =
      benchmark::Counter(2.0 * static_cast<double>(n * n * n), benchmark::Counter::kIsIterationInvariantRate,
                         benchmark::Counter::kIs1000);
}
BENCHMARK(BM_gemm<f32>)->ArgsProduct({{64, 256, 1024}, {1, 2}})->UseRealTime();
BENCHMARK(BM_gemm<f64>)->ArgsProduct({{256, 1024}, {1, 2}})->UseRealTime();

template <kernel::Unary F> void BM_unary(benchmark::State& state) {
  const std::int64_t n = state.range(0);
  const Threads threads(static_cast<int>(state.range(1)));
  Rng rng(1);
  const Tensor x = Tensor::randn({n}, rng, f32);
  for (auto _ : state) benchmark::DoNotOptimize(kernel::unary(F, x).raw());
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_unary<kernel::Unary::relu>)
    ->ArgsProduct({{1 << 10, 1 << 16, 1 << 20, 1 << 22}, {1, 2}})
    ->UseRealTime();
BENCHMARK(BM_unary<kernel::Unary::exp>)->ArgsProduct({{1 << 10, 1 << 20}, {1, 2}})->UseRealTime();

/// The vector-math functions on 65,536 elements, 1 thread: forward (range(1) == 0), or forward and
/// backward through the graph with a ones seed (range(1) == 1), in CPU time (one thread: robust to
/// other jobs on the machine); bench/vecmath runs PyTorch's same.
template <DType D> void BM_math(benchmark::State& state, Var (*f)(const Var&)) {
  const std::int64_t n = 1 << 16;
  const bool backward = state.range(0) != 0;
  Rng rng(1);
  Tensor x = Tensor::randn({64, n / 64}, rng, D);
  if (f == static_cast<Var (*)(const Var&)>(&gg::log)) x = kernel::unary(kernel::Unary::abs, x);
  const Tensor seed = Tensor::ones(x.shape(), D);
  Var v(x, true);
  for (auto _ : state) {
    if (backward) {
      v.zero_grad();
      f(v).backward(seed);
    } else {
      const NoGrad off;
      benchmark::DoNotOptimize(f(v).value().raw());
    }
  }
  state.SetItemsProcessed(state.iterations() * n);
}
void BM_math_f32(benchmark::State& state, Var (*f)(const Var&)) {
  BM_math<f32>(state, f);
}
void BM_math_f64(benchmark::State& state, Var (*f)(const Var&)) {
  BM_math<f64>(state, f);
}
Var gelu_none(const Var& x) {
  return gg::gelu(x);
}
Var gelu_tanh(const Var& x) {
  return gg::gelu(x, "tanh");
}
Var softmax_last(const Var& x) {
  return gg::softmax(x, -1);
}
Var log_softmax_last(const Var& x) {
  return gg::log_softmax(x, -1);
}
#define GG_BM_MATH(name, fn)                                                                                 \
  BENCHMARK_CAPTURE(BM_math_f32, name, fn)->Arg(0)->Arg(1);                                                  \
  BENCHMARK_CAPTURE(BM_math_f64, name, fn)->Arg(0)->Arg(1);
GG_BM_MATH(exp, static_cast<Var (*)(const Var&)>(&gg::exp))
GG_BM_MATH(log, static_cast<Var (*)(const Var&)>(&gg::log))
GG_BM_MATH(tanh, static_cast<Var (*)(const Var&)>(&gg::tanh))
GG_BM_MATH(sigmoid, static_cast<Var (*)(const Var&)>(&gg::sigmoid))
GG_BM_MATH(erf, static_cast<Var (*)(const Var&)>(&gg::erf))
GG_BM_MATH(gelu, &gelu_none)
GG_BM_MATH(gelu_tanh, &gelu_tanh)
GG_BM_MATH(softmax, &softmax_last)
GG_BM_MATH(log_softmax, &log_softmax_last)
#undef GG_BM_MATH

/// cross_entropy of [rows, classes] logits against class ids, forward and backward: the loss of the
/// MLP benchmarks (mlp_mnist: 256 rows of 10), short rows of log_softmax and its backward.
void BM_cross_entropy(benchmark::State& state) {
  const std::int64_t rows = state.range(0), classes = state.range(1);
  Rng rng(1);
  Var x(Tensor::randn({rows, classes}, rng, f32), true);
  std::vector<double> ids(static_cast<std::size_t>(rows));
  for (std::size_t i = 0; i < ids.size(); ++i)
    ids[i] = static_cast<double>(i % static_cast<std::size_t>(classes));
  const Tensor target(ids, {rows});
  for (auto _ : state) {
    x.zero_grad();
    nn::cross_entropy(x, target).backward();
  }
  state.SetItemsProcessed(state.iterations() * rows * classes);
}
BENCHMARK(BM_cross_entropy)->Args({256, 10})->Args({64, 10})->Args({256, 1000});

void BM_add_broadcast(benchmark::State& state) {
  const std::int64_t rows = state.range(0);
  const Threads threads(static_cast<int>(state.range(1)));
  Rng rng(1);
  const Tensor x = Tensor::randn({rows, 1024}, rng, f32), b = Tensor::randn({1024}, rng, f32);
  for (auto _ : state) benchmark::DoNotOptimize(kernel::binary(kernel::Binary::add, x, b).raw());
  state.SetItemsProcessed(state.iterations() * rows * 1024);
}
BENCHMARK(BM_add_broadcast)->ArgsProduct({{1, 64, 1024}, {1, 2}})->UseRealTime();

/// Busy for `us` microseconds of wall time from `from`.
void busy_until(std::chrono::steady_clock::time_point from, std::int64_t us) {
  while (std::chrono::steady_clock::now() - from < std::chrono::microseconds(us)) {
  }
}

double process_cpu_us() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_nsec) * 1e-3;
}

/// The kernel pool's round trip: run_parallel of 2 parts, each busy for range(0) us, after a gap of
/// range(1) us in which the caller is busy (range(2) == 0, as between a step's kernels) or asleep
/// (range(2) == 1, an idle process). Wall time of the job alone; counters: the share of jobs where
/// the helper ran a part, and the process's CPU time per job and gap (a spinning helper's included).
void BM_pool_round_trip(benchmark::State& state) {
  const std::int64_t work = state.range(0), gap = state.range(1);
  const bool asleep = state.range(2) != 0;
  const Threads threads(2);
  struct Job {
    std::thread::id caller;
    std::int64_t work;
    std::atomic<int> helper_parts{0};
  } job{std::this_thread::get_id(), work};
  const auto call = [](void* ctx, std::int64_t lo, std::int64_t hi) {
    auto& j = *static_cast<Job*>(ctx);
    for (std::int64_t p = lo; p < hi; ++p) {
      busy_until(std::chrono::steady_clock::now(), j.work);
      if (std::this_thread::get_id() != j.caller) j.helper_parts.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::int64_t helped = 0, jobs = 0;
  const double cpu0 = process_cpu_us();
  for (auto _ : state) {
    if (asleep)
      std::this_thread::sleep_for(std::chrono::microseconds(gap));
    else
      busy_until(std::chrono::steady_clock::now(), gap);
    job.helper_parts.store(0, std::memory_order_relaxed);
    const auto t0 = std::chrono::steady_clock::now();
    if (!gg::detail::run_parallel(2, 2, call, &job)) call(&job, 0, 2);
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    helped += job.helper_parts.load(std::memory_order_relaxed) > 0;
    ++jobs;
  }
  state.counters["helped"] = static_cast<double>(helped) / static_cast<double>(jobs);
  state.counters["cpu_us"] = (process_cpu_us() - cpu0) / static_cast<double>(jobs);
}
BENCHMARK(BM_pool_round_trip)->ArgsProduct({{0, 50}, {0, 50, 200, 1000}, {0}})->UseManualTime();
BENCHMARK(BM_pool_round_trip)->ArgsProduct({{0, 50}, {5'000}, {1}})->Iterations(400)->UseManualTime();

/// Record x = x*b; x = x + a; x = tanh(x) for range(0) ops, then backward and free.
void BM_tape_scalar_chain(benchmark::State& state) {
  const int reps = static_cast<int>(state.range(0) / 3);
  const Var a = 0.5, b = 0.999;
  for (auto _ : state) {
    Var x = a;
    for (int i = 0; i < reps; ++i) x = tanh(x * b + a);
    x.backward();
  }
  state.SetItemsProcessed(state.iterations() * reps * 3);
}
BENCHMARK(BM_tape_scalar_chain)->Arg(300)->Arg(300'000);

/// One small tensor op recorded and freed: the per-op overhead of the tensor path.
void BM_tape_tensor_op(benchmark::State& state) {
  const Var x(Tensor::ones({1, 3}, f32));
  const Var w(Tensor::ones({1, 3}, f32));
  for (auto _ : state) benchmark::DoNotOptimize((x * w).node());
}
BENCHMARK(BM_tape_tensor_op);

/// Linear(in, out) forward + backward on a batch (range: batch, in, out).
void BM_linear_step(benchmark::State& state) {
  nn::Linear layer(state.range(1), state.range(2), true, f32);
  Rng rng(1);
  const Var x(Tensor::rand({state.range(0), state.range(1)}, rng, f32), false);
  for (auto _ : state) {
    layer.zero_grad();
    sum(layer(x)).backward();
  }
}
BENCHMARK(BM_linear_step)->Args({1, 2, 3})->Args({64, 784, 128})->Args({256, 1024, 1024})->UseRealTime();

template <class Opt> void BM_optimizer_step(benchmark::State& state) {
  const Threads threads(static_cast<int>(state.range(1)));
  Var p(Tensor::ones({state.range(0)}, f32));
  p.set_grad(Tensor::full({state.range(0)}, 0.5, f32));
  Opt opt({p}, 1e-3);
  for (auto _ : state) opt.step();
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
// Parameters of 100,000 elements (the 784-128-10 MLP's first layer) and 1,000,000, on 1 and 2 threads.
BENCHMARK(BM_optimizer_step<optim::SGD>)->ArgsProduct({{100'000, 1'000'000}, {1, 2}})->UseRealTime();
BENCHMARK(BM_optimizer_step<optim::Adam>)->ArgsProduct({{100'000, 1'000'000}, {1, 2}})->UseRealTime();

} // namespace

BENCHMARK_MAIN();
