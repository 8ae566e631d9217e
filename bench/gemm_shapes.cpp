// gemm_shapes: the measurement behind gradgraph's choice of GEMM library per product shape (see
// docs/gemm.md, "By shape"). Times OpenBLAS, BLIS and oneDNN on the row-major products the bench
// models run (784-128-10 at batch 64 and 256, 1024-1024-1024-10 at batch 256, a GPT block's
// [16*128, 128] products), each as gradgraph calls it (transposes, accumulation), float32 and float64.
//
// Each cell is the best of 7 rounds; in a round the libraries run one after the other (alternating,
// so a change of load hits all of them), each repeating the product for about 20 ms. One thread:
// process CPU time (other jobs on a shared host do not inflate it; no worker thread runs); two
// threads: wall-clock time. It also checks that the libraries agree with OpenBLAS (max relative
// difference of C).
//
// Not part of the CMake build. Build by hand from the repository root (Debian 12: apt-get install
// libopenblas-dev libblis-dev libdnnl-dev), one binary per BLIS threading flavour, OpenBLAS first on
// the link line (BLIS also exports cblas_* and the Fortran BLAS; the program calls BLIS's own bli_*):
//
//   for f in pthread openmp serial; do
//     g++ -std=c++20 -O2 -march=native -DNDEBUG -I/usr/include/x86_64-linux-gnu/openblas-pthread \
//         -I/usr/include/x86_64-linux-gnu/blis-$f bench/gemm_shapes.cpp -o /tmp/gemm_shapes_$f \
//         -lopenblas -L/usr/lib/x86_64-linux-gnu/blis-$f -Wl,-rpath,/usr/lib/x86_64-linux-gnu/blis-$f \
//         -lblis -ldnnl -fopenmp
//   done
//   /tmp/gemm_shapes_pthread [--threads 1|2]
#include <blis.h>
#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <string>
#include <thread>
#include <vector>

extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename();

namespace {

struct Shape {
  const char* what;
  bool ta, tb;
  long n, k, m;
  bool accumulate;
};

// gradgraph's calls: linear forward x W^T += onto the bias (NT, accumulate); the weight's gradient
// g^T x (TN); the input's gradient g W (NN).
constexpr Shape kShapes[] = {
    {"784-128-10 b64 fwd1 x W1^T", false, true, 64, 784, 128, true},
    {"784-128-10 b64 dW1 g^T x", true, false, 128, 64, 784, false},
    {"784-128-10 b64 fwd2 h W2^T", false, true, 64, 128, 10, true},
    {"784-128-10 b64 dW2 g^T h", true, false, 10, 64, 128, false},
    {"784-128-10 b64 dh g W2", false, false, 64, 10, 128, false},
    {"784-128-10 b256 fwd1 x W1^T", false, true, 256, 784, 128, true},
    {"784-128-10 b256 dW1 g^T x", true, false, 128, 256, 784, false},
    {"784-128-10 b256 fwd2 h W2^T", false, true, 256, 128, 10, true},
    {"784-128-10 b256 dW2 g^T h", true, false, 10, 256, 128, false},
    {"784-128-10 b256 dh g W2", false, false, 256, 10, 128, false},
    {"1024-1024-1024-10 b256 fwd x W^T", false, true, 256, 1024, 1024, true},
    {"1024-1024-1024-10 b256 dW g^T x", true, false, 1024, 256, 1024, false},
    {"1024-1024-1024-10 b256 dx g W", false, false, 256, 1024, 1024, false},
    {"1024-1024-1024-10 b256 fwd3 h W3^T", false, true, 256, 1024, 10, true},
    {"1024-1024-1024-10 b256 dW3 g^T h", true, false, 10, 256, 1024, false},
    {"1024-1024-1024-10 b256 dh3 g W3", false, false, 256, 10, 1024, false},
    {"GPT qkv [2048,128] W^T[128,384]", false, true, 2048, 128, 384, true},
    {"GPT qkv dW g^T x", true, false, 384, 2048, 128, false},
    {"GPT qkv dx g W", false, false, 2048, 384, 128, false},
    {"GPT mlp up [2048,128] W^T[128,512]", false, true, 2048, 128, 512, true},
    {"GPT mlp down [2048,512] W^T[512,128]", false, true, 2048, 512, 128, true},
    {"GPT attention q k^T [128,32][32,128]", false, true, 128, 32, 128, false},
    {"GPT attention p v [128,128][128,32]", false, false, 128, 128, 32, false},
    // The parts of a product split by rows across 2 threads (gemm_any's split, each part on one).
    {"split part: 784-128-10 b64 fwd1", false, true, 32, 784, 128, true},
    {"split part: 784-128-10 b64 dW1", true, false, 64, 64, 784, false},
    {"split part: 784-128-10 b256 fwd1", false, true, 128, 784, 128, true},
    {"split part: 784-128-10 b256 dW1", true, false, 64, 256, 784, false},
    {"split part: 1024-1024-1024-10 b256 fwd", false, true, 128, 1024, 1024, true},
    {"split part: 1024-1024-1024-10 b256 dW", true, false, 512, 256, 1024, false},
    {"split part: 1024-1024-1024-10 b256 dx", false, false, 128, 1024, 1024, false},
    // The CNN's im2col products (conv 1->16 and 16->32, 5x5, on 28x28 and 14x14; a chunk of ~512 KB
    // of columns): forward W cols, weight gradient g cols^T, input gradient W^T g.
    {"CNN conv1 fwd W[16,25] cols[25,4704]", false, false, 16, 25, 4704, false},
    {"CNN conv1 dW g[16,4704] cols^T", false, true, 16, 4704, 25, false},
    {"CNN conv2 fwd W[32,400] cols[400,196]", false, false, 32, 400, 196, false},
    {"CNN conv2 dW g[32,196] cols^T", false, true, 32, 196, 400, false},
    {"CNN conv2 dx W^T g [400,32][32,196]", true, false, 400, 32, 196, false},
};

constexpr int kRounds = 7;
constexpr double kCellSeconds = 0.02;

double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
double wall_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <class T> struct Problem {
  const Shape& s;
  std::vector<T> a, b, c0, c;
  Problem(const Shape& sh) : s(sh) {
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<T> d(T(-1), T(1));
    a.resize(static_cast<std::size_t>(s.n * s.k));
    b.resize(static_cast<std::size_t>(s.k * s.m));
    c0.resize(static_cast<std::size_t>(s.n * s.m));
    for (auto& x : a) x = d(rng);
    for (auto& x : b) x = d(rng);
    for (auto& x : c0) x = d(rng);
    c = c0;
  }
  long lda() const { return s.ta ? s.n : s.k; }
  long ldb() const { return s.tb ? s.k : s.m; }
};

template <class T> void openblas(Problem<T>& p) {
  const Shape& s = p.s;
  const auto op = [](bool t) { return t ? CblasTrans : CblasNoTrans; };
  const T beta = s.accumulate ? T(1) : T(0);
  if constexpr (std::is_same_v<T, float>)
    cblas_sgemm(CblasRowMajor, op(s.ta), op(s.tb), int(s.n), int(s.m), int(s.k), 1.0f, p.a.data(),
                int(p.lda()), p.b.data(), int(p.ldb()), beta, p.c.data(), int(s.m));
  else
    cblas_dgemm(CblasRowMajor, op(s.ta), op(s.tb), int(s.n), int(s.m), int(s.k), 1.0, p.a.data(),
                int(p.lda()), p.b.data(), int(p.ldb()), beta, p.c.data(), int(s.m));
}

template <class T> void blis(Problem<T>& p) {
  const Shape& s = p.s;
  T one = 1, beta = s.accumulate ? T(1) : T(0);
  // Row-major op(a) as BLIS strides: a transposed operand is the stored matrix with its strides swapped.
  const inc_t rsa = s.ta ? 1 : p.lda(), csa = s.ta ? p.lda() : 1, rsb = s.tb ? 1 : p.ldb(),
              csb = s.tb ? p.ldb() : 1;
  if constexpr (std::is_same_v<T, float>)
    bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, s.n, s.m, s.k, &one, p.a.data(), rsa, csa, p.b.data(),
              rsb, csb, &beta, p.c.data(), s.m, 1);
  else
    bli_dgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, s.n, s.m, s.k, &one, p.a.data(), rsa, csa, p.b.data(),
              rsb, csb, &beta, p.c.data(), s.m, 1);
}

void onednn(Problem<float>& p) {
  const Shape& s = p.s;
  dnnl_sgemm(s.ta ? 'T' : 'N', s.tb ? 'T' : 'N', s.n, s.m, s.k, 1.0f, p.a.data(), p.lda(), p.b.data(),
             p.ldb(), s.accumulate ? 1.0f : 0.0f, p.c.data(), s.m);
}

template <class T> double max_rel_diff(const std::vector<T>& x, const std::vector<T>& y) {
  double scale = 0, diff = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    scale = std::max(scale, std::abs(double(x[i])));
    diff = std::max(diff, std::abs(double(x[i]) - double(y[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

template <class T> void row(const Shape& s, int threads) {
  Problem<T> p(s);
  using Fn = void (*)(Problem<T>&);
  std::vector<std::pair<const char*, Fn>> libs{{"OpenBLAS", openblas<T>}, {"BLIS", blis<T>}};
  if constexpr (std::is_same_v<T, float>) libs.push_back({"oneDNN", onednn});
  // Results agree: one call each from the same C.
  std::vector<std::vector<T>> out;
  for (auto& [name, f] : libs) {
    p.c = p.c0;
    f(p);
    out.push_back(p.c);
  }
  const double flops = 2.0 * double(s.n) * double(s.k) * double(s.m);
  std::vector<double> best(libs.size(), 1e300);
  std::vector<long> reps(libs.size(), 1);
  const auto now = threads == 1 ? cpu_now : wall_now;
  for (int r = 0; r < kRounds; ++r)
    for (std::size_t l = 0; l < libs.size(); ++l) {
      if (r == 0) { // calibrate the repetitions to ~kCellSeconds
        const double t0 = now();
        long n = 0;
        while (now() - t0 < kCellSeconds / 4) libs[l].second(p), ++n;
        reps[l] = std::max(1L, 4 * n);
      }
      const double t0 = now();
      for (long i = 0; i < reps[l]; ++i) libs[l].second(p);
      best[l] = std::min(best[l], (now() - t0) / double(reps[l]));
    }
  std::printf("| %s | %s%s%s | %ld×%ld×%ld | %s | %d |", s.what, s.ta ? "T" : "N", s.tb ? "T" : "N",
              s.accumulate ? "+" : "", s.n, s.k, s.m, std::is_same_v<T, float> ? "f32" : "f64", threads);
  std::size_t win = 0;
  for (std::size_t l = 0; l < libs.size(); ++l) {
    std::printf(" %.1f |", flops / best[l] * 1e-9);
    if (best[l] < best[win]) win = l;
  }
  if (libs.size() == 2) std::printf(" |");
  double diff = 0;
  for (std::size_t l = 1; l < libs.size(); ++l) diff = std::max(diff, max_rel_diff(out[0], out[l]));
  std::printf(" %s (%.2f×) | %.0e |\n", libs[win].first, best[0] / best[win], diff);
  std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
  std::vector<int> thread_counts{1, 2};
  if (argc == 3 && std::strcmp(argv[1], "--threads") == 0) thread_counts = {std::atoi(argv[2])};
  bli_init();
  std::printf("OpenBLAS core: %s; BLIS %s, arch %s, threading: %s; oneDNN %d.%d.%d\n",
              openblas_get_corename(), bli_info_get_version_str(), bli_arch_string(bli_arch_query_id()),
              bli_info_get_enable_openmp()     ? "openmp"
              : bli_info_get_enable_pthreads() ? "pthreads"
                                               : "serial",
              dnnl_version()->major, dnnl_version()->minor, dnnl_version()->patch);
  std::printf("best of %d alternating rounds; GFLOP/s = 2nkm/time (1 thread: process CPU time; 2: wall)\n\n",
              kRounds);
  std::printf("| product | op | n×k×m | dtype | threads | OpenBLAS | BLIS | oneDNN | fastest (vs OpenBLAS) | "
              "max rel diff |\n|---|---|---|---|---|---|---|---|---|---|\n");
  for (int t : thread_counts) {
    openblas_set_num_threads(t);
    bli_thread_set_num_threads(t);
    omp_set_num_threads(t);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    for (const Shape& s : kShapes) row<float>(s, t);
    for (const Shape& s : kShapes) row<double>(s, t);
  }
  return 0;
}
