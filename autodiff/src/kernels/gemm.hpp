// The matrix-product building block the kernels share (internal): one row-major product through
// plain loops, BLIS, oneDNN, OpenBLAS or Eigen (chosen by shape: docs/gemm.md), and what the
// convolution needs to know of OpenBLAS's threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace gg::kernel::detail {

/// c[n,m] = op(a) op(b) (or c += ... with accumulate) for row-major a (row length lda) and b (ldb),
/// op transposing when its flag is set: plain loops for tiny products, OpenBLAS when it is in use,
/// Eigen otherwise. T is float or double.
template <class T>
void gemm_any(const T* a, bool ta, std::int64_t lda, const T* b, bool tb, std::int64_t ldb, T* c,
              std::int64_t n, std::int64_t k, std::int64_t m, bool accumulate = false);
extern template void gemm_any<float>(const float*, bool, std::int64_t, const float*, bool, std::int64_t,
                                     float*, std::int64_t, std::int64_t, std::int64_t, bool);
extern template void gemm_any<double>(const double*, bool, std::int64_t, const double*, bool, std::int64_t,
                                      double*, std::int64_t, std::int64_t, std::int64_t, bool);

/// Whether gemm_serial has a library for T products on the calling thread alone (BLIS, or oneDNN for
/// float; not when use_blas(false) left the products to Eigen). When not, a caller with many small
/// products runs them one after the other through gemm_any.
template <class T> bool gemm_serial_available();
/// gemm_any's product on the calling thread alone, for work split across the kernel threads by the
/// caller (an attention's many small products): plain loops for tiny products, oneDNN for float
/// (BLIS for narrow ones, as gemm_any on one thread), BLIS otherwise; never OpenBLAS's threads.
/// Only when gemm_serial_available<T>().
template <class T>
void gemm_serial(const T* a, bool ta, std::int64_t lda, const T* b, bool tb, std::int64_t ldb, T* c,
                 std::int64_t n, std::int64_t k, std::int64_t m, bool accumulate = false);

/// "BLIS 0.9.0 (zen3 kernels, 1 thread)" when BLIS is built in and its run-time kernels are a
/// vector-FMA family, empty otherwise.
const std::string& blis_kernels();
/// Whether BLIS's kernels run at this CPU's full vector width: not when BLIS 0.9.0 takes an Intel
/// AVX-512 CPU whose count of FMA units it cannot tell (family 6 model 207) for a Haswell, whose AVX2
/// kernels run at half its peak there.
bool blis_kernels_widest();
/// "oneDNN 2.6.3 (sgemm, 1 thread)" when oneDNN is built in, empty otherwise.
const std::string& dnnl_kernels();
#ifdef GG_HAVE_BLIS
/// gemm_any's product by BLIS on the calling thread (only when blis_kernels() is not empty).
template <class T>
void blis_gemm(const T* a, bool ta, std::int64_t lda, const T* b, bool tb, std::int64_t ldb, T* c,
               std::int64_t n, std::int64_t k, std::int64_t m, bool accumulate);
extern template void blis_gemm<float>(const float*, bool, std::int64_t, const float*, bool, std::int64_t,
                                      float*, std::int64_t, std::int64_t, std::int64_t, bool);
extern template void blis_gemm<double>(const double*, bool, std::int64_t, const double*, bool, std::int64_t,
                                       double*, std::int64_t, std::int64_t, std::int64_t, bool);
#endif
#ifdef GG_HAVE_DNNL
/// gemm_any's float product by oneDNN's sgemm on the calling thread; false if oneDNN refused it.
bool dnnl_gemm(const float* a, bool ta, std::int64_t lda, const float* b, bool tb, std::int64_t ldb, float* c,
               std::int64_t n, std::int64_t k, std::int64_t m, bool accumulate);
#endif

/// Whether OpenBLAS does the large products, on more than one thread.
bool blas_threads_in_use();
/// Sets OpenBLAS's (global) thread count; nothing without OpenBLAS.
void set_blas_threads(int threads);
/// The threads set_num_threads gave OpenBLAS (what SingleThreadedBlas restores).
extern std::atomic<int> g_blas_threads;
/// The threads OpenBLAS gets for a request of n: no more than the cores (more never speeds up its
/// products, and each costs a buffer), and no more than the address space has buffers for.
int blas_threads_for(int n);
/// Whether this CPU has AVX-512 (read once), where oneDNN runs its AVX-512 kernels and the by-shape
/// rules of products and convolutions differ (docs/gemm.md, docs/performance.md).
bool cpu_has_avx512();

} // namespace gg::kernel::detail
