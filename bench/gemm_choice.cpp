// gemm_choice: the measurement behind gradgraph's choice of GEMM library (see docs/gemm.md).
// Times C = A*B for square row-major n x n matrices, n = 256, 1024, 2048, float32 and float64, with
//   (a) Eigen 3.4: Map<Matrix<T, Dynamic, Dynamic, RowMajor>> operands, C.noalias() = A * B,
//       threads via Eigen::setNbThreads(t) (OpenMP), t = 1 and 2;
//   (b) OpenBLAS cblas_sgemm / cblas_dgemm (CblasRowMajor), threads via openblas_set_num_threads(t),
//       t = 1 and 2.
// Each cell is the best of 5 timed runs after one warm-up run, reported as GFLOP/s = 2n^3 / time.
// Before every cell the program sleeps 0.5 s: both libraries leave idle worker threads busy-waiting
// for a while after a call (OpenBLAS's pthread workers spin for ~2^28 cycles, about 0.1 s here, and
// are started when the library loads), and a short cell run inside that window sees one core taken
// (Eigen 2-thread n = 256 dropped to ~4 GFLOP/s that way). Each n/dtype also checks that the two
// libraries agree (max relative difference of C).
//
// Not part of the CMake build (it needs OpenBLAS, which gradgraph does not depend on). Build by hand
// from the repository root (Debian 12: apt-get install libopenblas-dev libeigen3-dev):
//
//   g++ -std=c++20 -O3 -march=native -fopenmp -DNDEBUG -I/usr/include/eigen3 \
//       -I/usr/include/x86_64-linux-gnu/openblas-pthread bench/gemm_choice.cpp \
//       -o /tmp/gemm_choice -lopenblas
//
// Run it as installed, and with the core type forced, e.g.
//   /tmp/gemm_choice
//   OPENBLAS_CORETYPE=SkylakeX /tmp/gemm_choice
// It prints the CPU, the core OpenBLAS chose (openblas_get_corename) and a markdown table.
#include <Eigen/Core>
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

// Declared by Debian's OpenBLAS cblas.h; repeated here so the program also builds against headers
// that lack them (identical redeclarations are harmless).
extern "C" void openblas_set_num_threads(int);
extern "C" char* openblas_get_corename();
extern "C" char* openblas_get_config();

namespace {

using clock_type = std::chrono::steady_clock;
template <class T> using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

constexpr int kWarmups = 1;
constexpr int kRuns = 5;

template <class F> double best_seconds(F&& f) {
  std::this_thread::sleep_for(std::chrono::milliseconds(500)); // let idle workers stop spinning
  for (int i = 0; i < kWarmups; ++i) f();
  double best = 1e300;
  for (int r = 0; r < kRuns; ++r) {
    const auto t0 = clock_type::now();
    f();
    best = std::min(best, std::chrono::duration<double>(clock_type::now() - t0).count());
  }
  return best;
}

template <class T> void eigen_gemm(const T* a, const T* b, T* c, int n) {
  const Eigen::Map<const RowMat<T>> A(a, n, n), B(b, n, n);
  Eigen::Map<RowMat<T>> C(c, n, n);
  C.noalias() = A * B;
}

void blas_gemm(const float* a, const float* b, float* c, int n) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
}
void blas_gemm(const double* a, const double* b, double* c, int n) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0, a, n, b, n, 0.0, c, n);
}

struct Problem {
  int n;
  bool f64;
};

constexpr Problem kProblems[] = {{256, false}, {1024, false}, {2048, false},
                                 {256, true},  {1024, true},  {2048, true}};
constexpr int kThreads[] = {1, 2};

struct Cell {
  double gflops[2][2]; // [library: 0 Eigen, 1 OpenBLAS][threads index]
  double max_rel_diff;
};

template <class T> Cell measure(int n) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<T> dist(T(-1), T(1));
  const std::size_t count = static_cast<std::size_t>(n) * static_cast<std::size_t>(n);
  std::vector<T> a(count), b(count), ce(count), cb(count);
  for (auto& x : a) x = dist(rng);
  for (auto& x : b) x = dist(rng);
  const double flops = 2.0 * n * static_cast<double>(n) * n;

  Cell cell{};
  for (int ti = 0; ti < 2; ++ti) {
    Eigen::setNbThreads(kThreads[ti]);
    cell.gflops[0][ti] = flops / best_seconds([&] { eigen_gemm(a.data(), b.data(), ce.data(), n); }) * 1e-9;
  }
  Eigen::setNbThreads(1);
  for (int ti = 0; ti < 2; ++ti) {
    openblas_set_num_threads(kThreads[ti]);
    cell.gflops[1][ti] = flops / best_seconds([&] { blas_gemm(a.data(), b.data(), cb.data(), n); }) * 1e-9;
  }
  double scale = 0, diff = 0;
  for (std::size_t i = 0; i < count; ++i) {
    scale = std::max(scale, std::abs(static_cast<double>(ce[i])));
    diff = std::max(diff, std::abs(static_cast<double>(ce[i]) - static_cast<double>(cb[i])));
  }
  cell.max_rel_diff = scale > 0 ? diff / scale : diff;
  return cell;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

} // namespace

int main() {
  const char* coretype = std::getenv("OPENBLAS_CORETYPE");
  std::printf("CPU: %s\n", cpu_model().c_str());
  std::printf("Eigen %d.%d.%d, SIMD: %s\n", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION,
              Eigen::SimdInstructionSetsInUse());
  std::printf("OpenBLAS config: %s\n", openblas_get_config());
  std::printf("OpenBLAS core: %s (OPENBLAS_CORETYPE=%s)\n", openblas_get_corename(), coretype ? coretype : "unset");
  std::printf("best of %d after %d warm-up, GFLOP/s = 2n^3/time\n\n", kRuns, kWarmups);

  std::printf("| dtype   |    n | Eigen 1t | Eigen 2t | OpenBLAS 1t | OpenBLAS 2t | max rel diff |\n");
  std::printf("|---------|-----:|---------:|---------:|------------:|------------:|-------------:|\n");
  for (const Problem& p : kProblems) {
    const Cell c = p.f64 ? measure<double>(p.n) : measure<float>(p.n);
    std::printf("| %-7s | %4d | %8.1f | %8.1f | %11.1f | %11.1f | %12.1e |\n", p.f64 ? "float64" : "float32", p.n,
                c.gflops[0][0], c.gflops[0][1], c.gflops[1][0], c.gflops[1][1], c.max_rel_diff);
    std::fflush(stdout);
  }
  return 0;
}
