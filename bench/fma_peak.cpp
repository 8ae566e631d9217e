// The machine's measured FMA peak: independent fused multiply-adds on vector registers (AVX-512 or
// AVX2+FMA, as compiled with -march=native), float32 and float64, on 1 thread and on every core.
// bench/run divides achieved GEMM-bound FLOP/s by these figures. Prints "result fma_peak ..." lines.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <thread>
#include <vector>

#include <immintrin.h>

#include "bench_util.hpp"

namespace {

#if defined(__AVX512F__)
using VF = __m512;
using VD = __m512d;
inline VF fma(VF a, VF b, VF c) {
  return _mm512_fmadd_ps(a, b, c);
}
inline VD fma(VD a, VD b, VD c) {
  return _mm512_fmadd_pd(a, b, c);
}
#elif defined(__FMA__)
using VF = __m256;
using VD = __m256d;
inline VF fma(VF a, VF b, VF c) {
  return _mm256_fmadd_ps(a, b, c);
}
inline VD fma(VD a, VD b, VD c) {
  return _mm256_fmadd_pd(a, b, c);
}
#else
#error "fma_peak needs FMA (build with -march=native on an x86-64 CPU that has it)"
#endif
constexpr int k_bytes = sizeof(VF);

/// A vector of T with every lane x.
template <class V, class T> V splat(T x) {
  T lanes[sizeof(V) / sizeof(T)];
  std::fill(std::begin(lanes), std::end(lanes), x);
  V v;
  std::memcpy(&v, lanes, sizeof(V));
  return v;
}
template <class T, class V> T first_lane(V v) {
  T x;
  std::memcpy(&x, &v, sizeof(T));
  return x;
}

constexpr int k_acc = 12; // independent chains: enough to cover FMA latency x pipes

/// Runs `iters` rounds of k_acc independent FMAs; returns a value so nothing is optimised away.
template <class V, class T> [[gnu::noinline]] double fma_loop(long iters) {
  V acc[k_acc];
  for (int i = 0; i < k_acc; ++i) acc[i] = splat<V>(static_cast<T>(0.001 * i));
  const V m = splat<V>(T(0.999999)), c = splat<V>(T(1e-7));
  for (long it = 0; it < iters; ++it)
    for (int i = 0; i < k_acc; ++i) acc[i] = fma(acc[i], m, c);
  double s = 0;
  for (int i = 0; i < k_acc; ++i) s += first_lane<T>(acc[i]);
  return s;
}

/// Best GFLOP/s of `threads` threads each running the loop at once, over 5 runs.
template <class V, class T> double peak(int threads) {
  const long iters = 20'000'000;
  const double flops = 2.0 * k_acc * (k_bytes / sizeof(T)) * static_cast<double>(iters) * threads;
  double best = 0;
  std::vector<double> sink(static_cast<std::size_t>(threads));
  for (int r = 0; r < 5; ++r) {
    const auto t0 = bench::clock_type::now();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] { sink[static_cast<std::size_t>(t)] = fma_loop<V, T>(iters); });
    for (auto& th : pool) th.join();
    best = std::max(best, flops / bench::seconds_since(t0) * 1e-9);
  }
  return sink[0] == 42.4242 ? 0 : best;
}

} // namespace

int main() {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int threads : {1, cores}) {
    const double f32 = peak<VF, float>(threads), f64 = peak<VD, double>(threads);
    std::printf("FMA peak, %d-byte vectors, %d thread(s): float32 %.1f GFLOP/s, float64 %.1f GFLOP/s\n",
                k_bytes, threads, f32, f64);
    std::printf("result fma_peak threads=%d f32_gflops=%.3f f64_gflops=%.3f\n", threads, f32, f64);
    if (cores == 1) break;
  }
  return 0;
}
