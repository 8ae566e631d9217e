// Matrix products: plain loops for tiny ones, BLIS or oneDNN for the shapes where they were measured
// faster, OpenBLAS or Eigen for the rest (docs/gemm.md), 2-d, batched and broadcast; the Linear layer's
// product with its bias; and the number of kernel threads, which these libraries share.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

// GCC 12 reports false (maybe-)uninitialized warnings inside Eigen's AVX-512 packet code (the
// intrinsics' deliberately undefined registers); they surface after inlining, so the whole file needs it.
#if !defined(__clang__) // clang has no -Wmaybe-uninitialized (and warns about the unknown name)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <Eigen/Core>
#include <fmt/format.h>
#ifdef GG_HAVE_OPENBLAS
#include <cblas.h>
#include <sys/mman.h>
#include <thread>
#endif

#include "gemm.hpp"
#include "loops.hpp"

namespace gg::kernel {
namespace detail {

std::atomic<int> g_num_threads{1};

namespace {
template <class T> using RowMatrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T> using MutMap = Eigen::Map<RowMatrix<T>>;

void ensure_eigen_threads() {
  static const bool once = [] {
    Eigen::setNbThreads(g_num_threads.load());
    return true;
  }();
  (void)once;
}

/// Products with n*k*m up to this are computed by plain loops: a GEMM library's blocking, packing
/// and dispatch cost more than the arithmetic for a 2-3-2 MLP's layers.
constexpr Index k_small_gemm = 4096;

/// Products with n*k*m up to this take gemm_small's dot-product form: for a 2-3-2 MLP's layers the
/// vectorised row loop's set-up costs more than the arithmetic.
constexpr Index k_tiny_gemm = 64;

/// gemm_small's form for products of at most k_tiny_gemm multiply-adds: each element of c a dot
/// product, summed in the order of p onto 0 or onto c (accumulate). A function of its own, so that a
/// 2-3-2 MLP's products (6 multiply-adds) do not pay the larger form's register saves and set-up.
template <class T>
void gemm_tiny(const T* a, bool ta, Index lda, const T* b, bool tb, Index ldb, T* c, Index n, Index k,
               Index m, bool accumulate) {
  const Index ai = ta ? 1 : lda, ap = ta ? lda : 1, bp = tb ? 1 : ldb, bj = tb ? ldb : 1;
  for (Index i = 0; i < n; ++i, a += ai)
    for (Index j = 0; j < m; ++j, ++c) {
      const T *x = a, *y = b + j * bj;
      T s = accumulate ? *c : T(0);
      for (Index p = 0; p < k; ++p, x += ap, y += bp) s += *x * *y;
      *c = s;
    }
}

/// c[n,m] = op(a) op(b) by plain loops, op transposing when the flag is set; lda and ldb are the
/// stored row lengths of a and b. Each element of c adds its products in the order of p, onto 0 or
/// onto c (accumulate), in both forms.
template <class T>
void gemm_small(const T* a, bool ta, Index lda, const T* b, bool tb, Index ldb, T* c, Index n, Index k,
                Index m, bool accumulate = false) {
  if (n * k * m <= k_tiny_gemm) return gemm_tiny(a, ta, lda, b, tb, ldb, c, n, k, m, accumulate);
  if (!accumulate) std::fill(c, c + n * m, T(0));
  for (Index i = 0; i < n; ++i)
    for (Index p = 0; p < k; ++p) {
      const T aip = ta ? a[p * lda + i] : a[i * lda + p];
      T* ci = c + i * m;
      if (tb)
        for (Index j = 0; j < m; ++j) ci[j] += aip * b[j * ldb + p];
      else
        for (Index j = 0; j < m; ++j) ci[j] += aip * b[p * ldb + j];
    }
}

/// Which library computes the large products, and why (see blas_fits_cpu).
struct GemmChoice {
  bool blas = false;
  std::string description;
};

#ifdef GG_HAVE_OPENBLAS
/// OpenBLAS picks its kernels at run time from the CPU, and can get it wrong: Debian's 0.3.21 took
/// some AVX-512 Xeons for a "Prescott" (SSE3) and ran ~5x slower, silently. Its kernels are used
/// only when they are of the widest vector family this CPU has; Eigen, compiled for this CPU, does
/// the products otherwise, and gemm_library() says so.
bool blas_fits_cpu(const std::string& core) {
  static constexpr std::array<std::string_view, 3> avx512_cores{"SkylakeX", "Cooperlake", "SapphireRapids"};
  static constexpr std::array<std::string_view, 2> avx2_cores{"Haswell", "Zen"};
  const auto in = [&](const auto& list) { return std::find(list.begin(), list.end(), core) != list.end(); };
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("avx512f")) return in(avx512_cores);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
    return in(avx2_cores) || in(avx512_cores);
#endif
  return true;
}

/// OpenBLAS's work buffer, one per thread that runs its kernels (this build: 128 MiB, mapped on first
/// use). When the address space cannot take one (ulimit -v), OpenBLAS retries the mapping forever at
/// 100% CPU instead of failing, so whether `threads` of them fit is tried here first, by reserving
/// the space (nothing is touched) and giving it back.
constexpr std::size_t k_blas_buffer = (std::size_t{128} << 20) + (std::size_t{1} << 20);
bool blas_buffers_fit(int threads) {
  const std::size_t bytes = k_blas_buffer * static_cast<std::size_t>(threads);
  void* p = ::mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return false;
  ::munmap(p, bytes);
  return true;
}

// OpenBLAS's run-time kernel choice (DYNAMIC_ARCH builds, as Debian's): gotoblas_dynamic_init picks the
// kernels, reading OPENBLAS_CORETYPE first, and does nothing while a choice stands; _quit drops it.
// Weak: a build of OpenBLAS for one CPU has neither, and then its choice stays.
extern "C" void gotoblas_dynamic_init(void) __attribute__((weak));
extern "C" void gotoblas_dynamic_quit(void) __attribute__((weak));

/// The OpenBLAS kernels of this CPU's widest vectors, by its features: "SkylakeX" (AVX-512 F, CD, BW,
/// DQ and VL, what OpenBLAS's own check asks of them), "Haswell" (AVX2 and FMA), else none.
const char* widest_blas_core() {
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return nullptr;
}

/// When OpenBLAS took this CPU for an older one (0.3.21 takes Xeons newer than itself, such as family 6
/// model 207, for a "Prescott": SSE3, 39 GFLOP/s on a 1024^3 sgemm where its SkylakeX kernels run 204),
/// and nobody chose its kernels with OPENBLAS_CORETYPE, makes it choose again with that variable set
/// to the kernels of this CPU's widest vectors, as a user would; the variable is taken back after.
/// Runs once, before gradgraph's first OpenBLAS call (gemm_choice). Returns OpenBLAS's first choice
/// when it chose again, else "".
std::string rechoose_blas_core() {
  const char* widest = widest_blas_core();
  const std::string first = openblas_get_corename();
  if (!widest || blas_fits_cpu(first) || std::getenv("OPENBLAS_CORETYPE") || !gotoblas_dynamic_init ||
      !gotoblas_dynamic_quit)
    return "";
  ::setenv("OPENBLAS_CORETYPE", widest, 1);
  gotoblas_dynamic_quit();
  gotoblas_dynamic_init();
  ::unsetenv("OPENBLAS_CORETYPE");
  return first;
}

GemmChoice choose_gemm() {
  if (!blas_buffers_fit(1))
    return {false, "Eigen (OpenBLAS's 128 MiB buffer does not fit in the address-space limit)"};
  const std::string first = rechoose_blas_core(), core = openblas_get_corename();
  if (blas_fits_cpu(core))
    return {true, first.empty() ? fmt::format("OpenBLAS ({} kernels)", core)
                                : fmt::format("OpenBLAS ({} kernels; it had chosen its {} ones, narrower "
                                              "than this CPU's vectors)",
                                              core, first)};
  return {false, fmt::format("Eigen (OpenBLAS chose its {} kernels{}, narrower than this CPU's vectors)",
                             core, std::getenv("OPENBLAS_CORETYPE") ? " as OPENBLAS_CORETYPE asks" : "")};
}
#else
GemmChoice choose_gemm() {
  return {false, "Eigen (built without OpenBLAS)"};
}
#endif

const GemmChoice& gemm_choice() {
  static const GemmChoice c = choose_gemm();
  return c;
}
std::atomic<bool> g_blas_allowed{true};
} // namespace

std::atomic<int> g_blas_threads{1};

#ifdef GG_HAVE_OPENBLAS
int blas_threads_for(int n) {
  int t = std::clamp(n, 1, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  while (t > 1 && !blas_buffers_fit(t)) --t;
  return t;
}
#endif

bool blas_threads_in_use() {
  return gemm_choice().blas && g_blas_allowed.load(std::memory_order_relaxed) &&
         g_num_threads.load(std::memory_order_relaxed) > 1;
}

void set_blas_threads([[maybe_unused]] int threads) {
#ifdef GG_HAVE_OPENBLAS
  openblas_set_num_threads(threads);
#endif
}

bool cpu_has_avx512() {
#if defined(__x86_64__) || defined(__i386__)
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
#else
  return false;
#endif
}

namespace {
/// Who computes a product (see pick_gemm); split: gemm_split, a library on each thread's rows.
enum class GemmLib : std::uint8_t { loops, blis, dnnl, openblas, eigen, split };

/// A dimension this short (a 10-class layer's outputs) makes a product "narrow": OpenBLAS's kernels
/// run at a third to a half of their speed there, BLIS's at 1.3-2.6x OpenBLAS's (docs/gemm.md).
constexpr Index k_narrow = 16;

/// Whether oneDNN's sgemm takes float products with a large k or b too: on a CPU with AVX-512 (its
/// AVX-512 kernels; a Zen 4 measured) it was 1.09-1.25x OpenBLAS on every such shape with b of up to
/// 2^20 elements, k up to 2048 (a GPT step's weight gradients); on AVX2 (Zen 3) 0.55-0.92x
/// (docs/gemm.md, "By shape").
bool dnnl_takes_large_k() {
  return cpu_has_avx512();
}

/// Whether OpenBLAS's small-matrix kernels (its AVX-512 families, 0.3.21) take a row-major product:
/// OpenBLAS computes c = op(a) op(b) as the column-major c^T = op(b)^T op(a)^T, and takes at most 10^6
/// multiply-adds there, not transposing both and, transposing only b, c of at most 1200 elements and
/// k of at least 32. On a Zen 4 they ran the 784-128-10 MLP's narrow products at 85-104 GFLOP/s
/// (float32) where BLIS ran 54-80 and oneDNN 36-96, and declined products fell to 40-50 (docs/gemm.md).
bool blas_small_kernels(Index n, Index k, Index m, bool ta, bool tb) {
  if (!gemm_choice().blas || !cpu_has_avx512() || n * k * m > 1000000 || (ta && tb)) return false;
  return !tb || (n * m <= 1200 && k >= 32);
}

/// pick_gemm's rule for a product on one thread, the measured by-shape choices: BLIS, oneDNN, or
/// OpenBLAS (also meaning Eigen when OpenBLAS is not used) where neither was measured faster.
template <class T> GemmLib pick_one_thread(Index n, Index k, Index m, bool ta, bool tb) {
  const bool blis = !blis_kernels().empty();
  if (std::min({n, k, m}) <= k_narrow && blas_small_kernels(n, k, m, ta, tb)) return GemmLib::openblas;
  if (blis && std::min(n, m) <= k_narrow) return GemmLib::blis;
  if (std::is_same_v<T, float> && !dnnl_kernels().empty() &&
      ((k <= 1024 && k * m <= (Index{1} << 18)) || (dnnl_takes_large_k() && k * m <= (Index{1} << 20))))
    return GemmLib::dnnl;
  if (blis && k <= k_narrow) return GemmLib::blis;
  return GemmLib::openblas;
}

/// gemm_serial's library for a product: plain loops for tiny ones, else the one-thread rule, with
/// oneDNN (float) or BLIS where that rule would leave the product to OpenBLAS.
template <class T> GemmLib serial_lib(Index n, Index k, Index m) {
  if (n * k * m <= k_small_gemm) return GemmLib::loops;
  const GemmLib lib = pick_one_thread<T>(n, k, m, false, false);
  if (std::is_same_v<T, float> && lib != GemmLib::blis && !dnnl_kernels().empty()) return GemmLib::dnnl;
  return blis_kernels().empty() ? GemmLib::loops : GemmLib::blis;
}

/// Rows of c each part of a split product takes at least (gemm_split).
constexpr Index k_split_rows = 32;
/// Products below this many multiply-adds (~25 us on one thread) are not split: a helper thread takes
/// tens of microseconds to wake.
constexpr Index k_split_min = Index{1} << 20;

/// Whether float products with a large b operand (k·m up to 2^20) are split by rows too, each part by
/// oneDNN: on a CPU with AVX-512 (dnnl_takes_large_k), where its 1-thread sgemm ran the
/// 1024-1024-1024-10 MLP's forward and input-gradient products (k = m = 1024) at 1.09-1.11x
/// OpenBLAS's. Then no product of that step wakes OpenBLAS's threads, whose spin between calls held
/// the core the SGD update's second half wanted (docs/performance.md, "The 1024-wide MLP on 2
/// threads"). Float64 products stay with OpenBLAS's threads: BLIS's parts there ran 1.3x slower.
template <class T> bool split_large_b() {
  return std::is_same_v<T, float> && dnnl_takes_large_k() && !dnnl_kernels().empty();
}

/// Whether a product on more than one kernel thread is split by rows across them (gemm_split)
/// instead of handed whole to OpenBLAS's threads: when gemm_serial has a library, outside another
/// parallel job, for products of at least k_split_min multiply-adds whose b operand has at most 2^18
/// elements (where oneDNN was measured faster than OpenBLAS on one thread, docs/gemm.md), or 2^20
/// where split_large_b says, and with at least two blocks of k_split_rows rows; float64 products, whose
/// parts BLIS computes, only where BLIS's kernels are of the CPU's full width (blis_kernels_widest: on
/// an Intel host BLIS took for a Haswell, the 1024-wide float64 MLP's step ran 24.0 ms, against
/// PyTorch's 20.1 with OpenBLAS's threads).
/// OpenBLAS's workers spin between its calls, taking the core the elementwise kernels' second thread
/// wants (docs/performance.md, "The 2-thread GPT step").
template <class T> bool split_rows(Index n, Index k, Index m) {
  const Index max_b = split_large_b<T>() ? Index{1} << 20 : Index{1} << 18;
  return n >= 2 * k_split_rows && n * k * m >= k_split_min && k * m <= max_b && gemm_serial_available<T>() &&
         (std::is_same_v<T, float> || blis_kernels_widest()) && !gg::detail::in_parallel_job();
}

/// The library for one product, by dtype, shape and threads, as measured on one thread (docs/gemm.md,
/// "By shape"): tiny products by plain loops; on one kernel thread, a narrow product that OpenBLAS's
/// small-matrix kernels take by them (AVX-512), other narrow outputs (n or m) by BLIS; float products
/// whose b operand has at most 2^18 elements with k <= 1024 by oneDNN (1.04-2.6x OpenBLAS there,
/// slower on larger b); other products with a short k by BLIS; OpenBLAS (or Eigen) otherwise. On more
/// threads, split by rows across them where split_rows says; below k_split_min multiply-adds the
/// one-thread rule on the calling thread; else OpenBLAS's (or Eigen's) threads.
/// use_blas(false) leaves them all to Eigen.
template <class T> GemmLib pick_gemm(Index n, Index k, Index m, bool ta, bool tb) {
  if (n * k * m <= k_small_gemm) return GemmLib::loops;
  if (!g_blas_allowed.load(std::memory_order_relaxed)) return GemmLib::eigen;
  if (g_num_threads.load(std::memory_order_relaxed) == 1) {
    const GemmLib lib = pick_one_thread<T>(n, k, m, ta, tb);
    if (lib != GemmLib::openblas) return lib;
  } else if (split_rows<T>(n, k, m)) {
    return GemmLib::split;
  } else if (n * k * m < k_split_min || (split_large_b<T>() && std::min(n, m) <= k_narrow)) {
    // Too small to split: the one-thread rule on the calling thread, so that OpenBLAS's threads do
    // not wake (and then spin in sched_yield) for it: the 784-128-10 step's [256,128]x[128,10]^T.
    // Likewise a narrow one too short to split where the wide ones are split (split_large_b): the
    // 1024-wide MLP's last weight gradient, [10,256]x[256,1024], 2.6 M multiply-adds.
    const GemmLib lib = pick_one_thread<T>(n, k, m, ta, tb);
    if (lib != GemmLib::openblas) return lib;
  }
  return gemm_choice().blas ? GemmLib::openblas : GemmLib::eigen;
}

/// The libraries gemm_any and gemm_serial have run in this process (bits by GemmLib), for gemm_libraries_ran.
std::atomic<unsigned> g_gemm_ran{0};
void ran(GemmLib lib) {
  const unsigned bit = 1u << static_cast<unsigned>(lib);
  if (!(g_gemm_ran.load(std::memory_order_relaxed) & bit))
    g_gemm_ran.fetch_or(bit, std::memory_order_relaxed);
}

/// The rows of c (whole blocks of k_split_rows) the first of `parts` parts of a split product takes.
struct SplitRows {
  Index n, blocks, parts;
  SplitRows(Index rows, int threads)
      : n(rows), blocks(rows / k_split_rows), parts(std::min<Index>(blocks, threads)) {}
  Index first(Index p) const { return p == parts ? n : p * blocks / parts * k_split_rows; }
};

/// gemm_any's product with c's rows split into one part per kernel thread, each by gemm_serial on its
/// thread (the caller takes a part: one that a busy helper has not started runs on the caller too).
template <class T>
void gemm_split(const T* a, bool ta, Index lda, const T* b, bool tb, Index ldb, T* c, Index n, Index k,
                Index m, bool accumulate) {
  ran(GemmLib::split);
  const SplitRows split(n, g_num_threads.load(std::memory_order_relaxed));
  parallel_range(
      split.parts,
      [&](Index lo, Index hi) {
        const Index r0 = split.first(lo), r1 = split.first(hi);
        gemm_serial(ta ? a + r0 : a + r0 * lda, ta, lda, b, tb, ldb, c + r0 * m, r1 - r0, k, m, accumulate);
      },
      k_parallel_min);
}
} // namespace

template <class T>
void gemm_any(const T* a, bool ta, Index lda, const T* b, bool tb, Index ldb, T* c, Index n, Index k, Index m,
              bool accumulate) {
  if (n * k * m <= k_tiny_gemm) { // plain loops, as pick_gemm chooses, without its set-up
    ran(GemmLib::loops);
    return gemm_tiny(a, ta, lda, b, tb, ldb, c, n, k, m, accumulate);
  }
  const GemmLib lib = pick_gemm<T>(n, k, m, ta, tb);
  if (lib == GemmLib::split) return gemm_split(a, ta, lda, b, tb, ldb, c, n, k, m, accumulate);
  if (lib == GemmLib::loops) {
    ran(lib);
    return gemm_small(a, ta, lda, b, tb, ldb, c, n, k, m, accumulate);
  }
#ifdef GG_HAVE_BLIS
  if (lib == GemmLib::blis) {
    ran(lib);
    return blis_gemm(a, ta, lda, b, tb, ldb, c, n, k, m, accumulate);
  }
#endif
#ifdef GG_HAVE_DNNL
  if constexpr (std::is_same_v<T, float>)
    if (lib == GemmLib::dnnl && dnnl_gemm(a, ta, lda, b, tb, ldb, c, n, k, m, accumulate)) {
      ran(lib);
      return;
    }
#endif
#ifdef GG_HAVE_OPENBLAS
  if (gemm_choice().blas && lib != GemmLib::eigen) {
    ran(GemmLib::openblas);
    const T beta = accumulate ? T(1) : T(0);
    const auto op = [](bool t) { return t ? CblasTrans : CblasNoTrans; };
    const auto bi = [](Index v) { return static_cast<blasint>(v); };
    if constexpr (std::is_same_v<T, float>)
      cblas_sgemm(CblasRowMajor, op(ta), op(tb), bi(n), bi(m), bi(k), 1.0f, a, bi(lda), b, bi(ldb), beta, c,
                  bi(m));
    else
      cblas_dgemm(CblasRowMajor, op(ta), op(tb), bi(n), bi(m), bi(k), 1.0, a, bi(lda), b, bi(ldb), beta, c,
                  bi(m));
    return;
  }
#endif
  ran(GemmLib::eigen);
  ensure_eigen_threads();
  using Stride = Eigen::OuterStride<>;
  const Eigen::Map<const RowMatrix<T>, 0, Stride> A(a, ta ? k : n, ta ? n : k, Stride(lda)),
      B(b, tb ? m : k, tb ? k : m, Stride(ldb));
  MutMap<T> C(c, n, m);
  if (!accumulate) C.setZero();
  if (!ta && !tb)
    C.noalias() += A * B;
  else if (ta && !tb)
    C.noalias() += A.transpose() * B;
  else if (!ta && tb)
    C.noalias() += A * B.transpose();
  else
    C.noalias() += A.transpose() * B.transpose();
}

template void gemm_any<float>(const float*, bool, Index, const float*, bool, Index, float*, Index, Index,
                              Index, bool);
template void gemm_any<double>(const double*, bool, Index, const double*, bool, Index, double*, Index, Index,
                               Index, bool);

template <class T> bool gemm_serial_available() {
  if (!g_blas_allowed.load(std::memory_order_relaxed)) return false;
  return !blis_kernels().empty() || (std::is_same_v<T, float> && !dnnl_kernels().empty());
}
template bool gemm_serial_available<float>();
template bool gemm_serial_available<double>();

template <class T>
void gemm_serial(const T* a, bool ta, Index lda, const T* b, bool tb, Index ldb, T* c, Index n, Index k,
                 Index m, bool accumulate) {
  [[maybe_unused]] const GemmLib lib = serial_lib<T>(n, k, m);
#ifdef GG_HAVE_DNNL
  if constexpr (std::is_same_v<T, float>)
    if (lib == GemmLib::dnnl && dnnl_gemm(a, ta, lda, b, tb, ldb, c, n, k, m, accumulate)) {
      ran(GemmLib::dnnl);
      return;
    }
#endif
#ifdef GG_HAVE_BLIS
  if (lib != GemmLib::loops && !blis_kernels().empty()) {
    ran(GemmLib::blis);
    return blis_gemm(a, ta, lda, b, tb, ldb, c, n, k, m, accumulate);
  }
#endif
  ran(GemmLib::loops); // tiny products (and, not reached when gemm_serial_available, no library)
  gemm_small(a, ta, lda, b, tb, ldb, c, n, k, m, accumulate);
}
template void gemm_serial<float>(const float*, bool, Index, const float*, bool, Index, float*, Index, Index,
                                 Index, bool);
template void gemm_serial<double>(const double*, bool, Index, const double*, bool, Index, double*, Index,
                                  Index, Index, bool);

namespace {
/// c[n,m] = a[n,k] b[k,m], all row-major and contiguous.
template <class T> void gemm_rows(const T* a, const T* b, T* c, Index n, Index k, Index m) {
  gemm_any(a, false, k, b, false, m, c, n, k, m);
}

Shape drop_last_two(const Shape& s) {
  std::vector<Index> dims(s.begin(), s.end() - 2);
  return Shape(dims);
}
} // namespace
} // namespace detail

using detail::Index;

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::require_defined(a, "matmul");
  detail::require_defined(b, "matmul");
  if (a.rank() == 0 || b.rank() == 0)
    throw ShapeError(fmt::format("matmul: shapes {} and {} do not fit (0-d operands are not matrices)",
                                 a.shape().str(), b.shape().str()));
  const bool a_vec = a.rank() == 1, b_vec = b.rank() == 1;
  const Shape sa = a_vec ? Shape{1, a.shape()[0]} : a.shape();
  const Shape sb = b_vec ? Shape{b.shape()[0], 1} : b.shape();
  const Index n = sa[sa.rank() - 2], k = sa[sa.rank() - 1], kb = sb[sb.rank() - 2], m = sb[sb.rank() - 1];
  if (k != kb)
    throw ShapeError(fmt::format("matmul: shapes {} and {} do not fit (inner dimensions {} and {})",
                                 a.shape().str(), b.shape().str(), k, kb));
  const Shape batch_a = detail::drop_last_two(sa), batch_b = detail::drop_last_two(sb);
  Shape batch;
  try {
    batch = broadcast_shapes(batch_a, batch_b, "matmul");
  } catch (const ShapeError&) {
    throw ShapeError(fmt::format("matmul: shapes {} and {} cannot be broadcast (batch dimensions {} and {})",
                                 a.shape().str(), b.shape().str(), batch_a.str(), batch_b.str()));
  }
  std::vector<Index> out_dims = batch.to_vector();
  if (!a_vec) out_dims.push_back(n);
  if (!b_vec) out_dims.push_back(m);

  const DType dtype = promote(a.dtype(), b.dtype());
  const Tensor pa = a.to(dtype), pb = b.to(dtype);
  Tensor out = Tensor::empty(Shape(out_dims), dtype);
  if (out.numel() == 0) return out;
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* A = pa.data<T>();
    const T* B = pb.data<T>();
    T* C = out.data<T>();
    const Index batches = batch.numel();
    if (batch_b.numel() == 1 && batch_a.numel() == batches) {
      // b is one matrix: fold a's batch into its rows for a single product.
      detail::gemm_rows(A, B, C, batches * n, k, m);
      return;
    }
    detail::Dims so = detail::contiguous_strides(batch), sa_b = detail::broadcast_strides(batch_a, batch),
                 sb_b = detail::broadcast_strides(batch_b, batch);
    for (int d = 0; d < batch.rank(); ++d) {
      so[detail::at(d)] *= n * m;
      sa_b[detail::at(d)] *= n * k;
      sb_b[detail::at(d)] *= k * m;
    }
    const auto w = detail::make_walk<3>(batch, {so, sa_b, sb_b});
    const Index len = w.inner_size(), io = w.inner_stride(0), ia = w.inner_stride(1), ib = w.inner_stride(2);
    detail::for_each_row(w, [&](const std::array<Index, 3>& off) {
      for (Index j = 0; j < len; ++j)
        detail::gemm_rows(A + off[1] + j * ia, B + off[2] + j * ib, C + off[0] + j * io, n, k, m);
    });
  });
  return out;
}

Tensor gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b) {
  if (!a.defined() || !b.defined()) [[unlikely]] { // the checks out of line only when one fails
    detail::require_defined(a, "gemm");
    detail::require_defined(b, "gemm");
  }
  const auto describe = [](const Tensor& t, bool tr) {
    return t.shape().str() + (tr ? " (transposed)" : "");
  };
  if (a.rank() != 2 || b.rank() != 2)
    throw ShapeError(
        fmt::format("gemm: shapes {} and {} are not both 2-d", describe(a, trans_a), describe(b, trans_b)));
  const Index ar = a.shape()[0], ac = a.shape()[1], br = b.shape()[0], bc = b.shape()[1];
  const Index n = trans_a ? ac : ar, k = trans_a ? ar : ac, kb = trans_b ? bc : br, m = trans_b ? br : bc;
  if (k != kb)
    throw ShapeError(fmt::format("gemm: shapes {} and {} do not fit (inner dimensions {} and {})",
                                 describe(a, trans_a), describe(b, trans_b), k, kb));
  const DType dtype = promote(a.dtype(), b.dtype());
  // Operands of mixed dtypes: converted first (the usual case, one dtype, keeps no converted copies).
  if (a.dtype() != dtype || b.dtype() != dtype) [[unlikely]]
    return gemm(a.to(dtype), trans_a, b.to(dtype), trans_b);
  return [&] {   // one named result, built in place (no copy on return)
    Shape shape; // [n, m] by inline appends, not the out-of-line initializer-list constructor
    shape.push_back(n);
    shape.push_back(m);
    Tensor out = Tensor::empty(shape, dtype);
    if (n * m == 0) return out; // out's numel (empty checked the product for overflow)
    detail::dispatch(dtype, [&](auto tag) {
      using T = decltype(tag);
      detail::gemm_any(a.data<T>(), trans_a, ac, b.data<T>(), trans_b, bc, out.data<T>(), n, k, m);
    });
    return out;
  }();
}

Tensor gemm_batched(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, bool sum_batch) {
  detail::require_defined(a, "gemm_batched");
  detail::require_defined(b, "gemm_batched");
  const auto describe = [](const Tensor& t, bool tr) {
    return t.shape().str() + (tr ? " (transposed)" : "");
  };
  const bool a3 = a.rank() == 3, b3 = b.rank() == 3;
  if (a.rank() < 2 || a.rank() > 3 || b.rank() < 2 || b.rank() > 3 ||
      (a3 && b3 && a.shape()[0] != b.shape()[0]))
    throw ShapeError(
        fmt::format("gemm_batched: shapes {} and {} are not [batch, rows, cols] with equal batches "
                    "(or one 2-d)",
                    describe(a, trans_a), describe(b, trans_b)));
  const Index ar = a.shape()[a.rank() - 2], ac = a.shape()[a.rank() - 1];
  const Index br = b.shape()[b.rank() - 2], bc = b.shape()[b.rank() - 1];
  const Index n = trans_a ? ac : ar, k = trans_a ? ar : ac, kb = trans_b ? bc : br, m = trans_b ? br : bc;
  if (k != kb)
    throw ShapeError(fmt::format("gemm_batched: shapes {} and {} do not fit (inner dimensions {} and {})",
                                 describe(a, trans_a), describe(b, trans_b), k, kb));
  const Index batch = a3 ? a.shape()[0] : b3 ? b.shape()[0] : 1;
  const DType dtype = promote(a.dtype(), b.dtype());
  const Tensor pa = a.to(dtype), pb = b.to(dtype);
  Tensor out = sum_batch ? Tensor::zeros(Shape{n, m}, dtype) : Tensor::empty(Shape{batch, n, m}, dtype);
  if (n * m == 0) return out;
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* A = pa.data<T>();
    const T* B = pb.data<T>();
    T* C = out.data<T>();
    for (Index i = 0; i < batch; ++i)
      detail::gemm_any(A + (a3 ? i * ar * ac : 0), trans_a, ac, B + (b3 ? i * br * bc : 0), trans_b, bc,
                       C + (sum_batch ? 0 : i * n * m), n, k, m, sum_batch && i > 0);
  });
  return out;
}

std::string gemm_library() {
  const detail::GemmChoice& c = detail::gemm_choice();
  if (!detail::g_blas_allowed.load()) return "Eigen (the GEMM libraries turned off by use_blas(false))";
  return c.description;
}

std::string gemm_library(std::int64_t n, std::int64_t k, std::int64_t m, DType dtype, bool trans_a,
                         bool trans_b) {
  const auto lib = dtype == DType::f32 ? detail::pick_gemm<float>(n, k, m, trans_a, trans_b)
                                       : detail::pick_gemm<double>(n, k, m, trans_a, trans_b);
  switch (lib) {
  case detail::GemmLib::loops: return "plain loops";
  case detail::GemmLib::blis: return detail::blis_kernels();
  case detail::GemmLib::dnnl: return detail::dnnl_kernels();
  case detail::GemmLib::split: { // named by its first part's library
    const detail::SplitRows split(n, num_threads());
    const auto part = dtype == DType::f32 ? detail::serial_lib<float>(split.first(1), k, m)
                                          : detail::serial_lib<double>(split.first(1), k, m);
    return fmt::format("{}, the rows split across {} threads",
                       part == detail::GemmLib::dnnl   ? detail::dnnl_kernels()
                       : part == detail::GemmLib::blis ? detail::blis_kernels()
                                                       : std::string("plain loops"),
                       split.parts);
  }
  default: return gemm_library();
  }
}

std::string gemm_libraries_ran() {
  const unsigned bits = detail::g_gemm_ran.load(std::memory_order_relaxed);
  std::string s;
  for (const auto lib : {detail::GemmLib::loops, detail::GemmLib::blis, detail::GemmLib::dnnl,
                         detail::GemmLib::openblas, detail::GemmLib::eigen}) {
    if (!(bits & (1u << static_cast<unsigned>(lib)))) continue;
    const std::string name = lib == detail::GemmLib::loops   ? "plain loops"
                             : lib == detail::GemmLib::blis  ? detail::blis_kernels()
                             : lib == detail::GemmLib::dnnl  ? detail::dnnl_kernels()
                             : lib == detail::GemmLib::eigen ? std::string("Eigen")
                                                             : detail::gemm_choice().description;
    s += (s.empty() ? "" : ", ") + name;
  }
  if (bits & (1u << static_cast<unsigned>(detail::GemmLib::split)))
    s += " (products split by rows across the kernel threads, each part on one)";
  return s;
}

void use_blas(bool on) {
  detail::g_blas_allowed.store(on);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (!x.defined() || !weight.defined()) [[unlikely]] { // the checks out of line only when one fails
    detail::require_defined(x, "linear");
    detail::require_defined(weight, "linear");
  }
  const Shape& xs = x.shape();
  const Shape& ws = weight.shape();
  if (ws.rank() != 2 || xs.rank() < 1 || xs[xs.rank() - 1] != ws[1])
    throw ShapeError(
        fmt::format("linear: input of shape {} and weight of shape {} do not fit (the weight must "
                    "be [out, in] with in the input's last dimension)",
                    xs.str(), ws.str()));
  if (bias.defined() && (bias.rank() != 1 || bias.shape()[0] != ws[0]))
    throw ShapeError(fmt::format("linear: bias of shape {} does not fit weight of shape {} (expected [{}])",
                                 bias.shape().str(), ws.str(), ws[0]));
  DType dtype = promote(x.dtype(), weight.dtype());
  if (bias.defined()) dtype = promote(dtype, bias.dtype());
  // Operands of mixed dtypes: converted first (the usual case, one dtype, keeps no converted copies).
  if (x.dtype() != dtype || weight.dtype() != dtype || (bias.defined() && bias.dtype() != dtype)) [[unlikely]]
    return linear(x.to(dtype), weight.to(dtype), bias.defined() ? bias.to(dtype) : bias);
  const Index in = ws[1], out = ws[0];
  Index rows = 1;
  for (int d = 0; d + 1 < xs.rank(); ++d) rows *= xs[d];
  Shape ys = xs;
  ys[xs.rank() - 1] = out;
  // As PyTorch's addmm: the output starts as the bias, rows repeated, and the GEMM adds x W^T to it
  // (no zeroing pass, no second pass for the bias).
  return [&] { // one named result, built in place (no copy on return)
    Tensor y = Tensor::empty(ys, dtype);
    if (rows * out == 0) return y; // y's numel (empty checked the product for overflow)
    detail::dispatch(dtype, [&](auto tag) {
      using T = decltype(tag);
      T* yp = y.data<T>();
      if (bias.defined()) {
        const T* bp = bias.data<T>();
        for (Index r = 0; r < rows; ++r, yp += out)
          if (out <= 8) // a 2-3-2 MLP's rows: a plain loop, not a call to memmove
            for (Index j = 0; j < out; ++j) yp[j] = bp[j];
          else
            std::copy_n(bp, out, yp);
        yp = y.data<T>();
      }
      detail::gemm_any(x.data<T>(), false, in, weight.data<T>(), true, in, yp, rows, in, out, bias.defined());
    });
    return y;
  }();
}

// ---------------------------------------------------------------------------------------------
// Threads

void set_num_threads(int n) {
  if (n < 1) throw ValueError(fmt::format("set_num_threads: n must be at least 1, got {}", n));
  detail::ensure_eigen_threads();
  detail::g_num_threads.store(n);
  Eigen::setNbThreads(n);
#ifdef GG_HAVE_OPENBLAS
  detail::g_blas_threads.store(detail::blas_threads_for(n));
  openblas_set_num_threads(detail::g_blas_threads.load());
#endif
}

int num_threads() {
  return detail::g_num_threads.load();
}

void parallel_for(std::int64_t n, std::int64_t cost, void (*call)(void*, std::int64_t, std::int64_t),
                  void* ctx) {
  detail::parallel_range(
      n, [&](Index lo, Index hi) { call(ctx, lo, hi); }, cost);
}
} // namespace gg::kernel
