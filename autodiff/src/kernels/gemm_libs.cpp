// BLIS and oneDNN as gemm_any's libraries for the product shapes where they beat OpenBLAS (chosen
// by measurement: docs/gemm.md, "By shape"): each on the calling thread only, with the check that
// its kernels fit this CPU. In a file of its own because blis.h declares a CBLAS of its own, which
// must not meet OpenBLAS's cblas.h.
#include <algorithm>
#include <array>
#include <string>
#include <string_view>

#include <fmt/format.h>
#ifdef GG_HAVE_BLIS
#include <blis.h>
#endif
#ifdef GG_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif

#include "conv_dnnl.hpp"
#include "gemm.hpp"

namespace gg::kernel::detail {

#ifdef GG_HAVE_BLIS
const std::string& blis_kernels() {
  // BLIS picks its kernels from CPUID at run time too; only the vector-FMA families are used (a
  // "generic" reference build or an unknown CPU leaves the products to OpenBLAS or Eigen).
  static const std::string name = [] {
    static constexpr std::array<std::string_view, 8> fit{"zen",     "zen2", "zen3", "zen4",
                                                         "haswell", "skx",  "knl",  "cortexa57"};
    const std::string arch = bli_arch_string(bli_arch_query_id());
    if (std::find(fit.begin(), fit.end(), arch) == fit.end()) return std::string();
    return fmt::format("BLIS {} ({} kernels, 1 thread)", bli_info_get_version_str(), arch);
  }();
  return name;
}

bool blis_kernels_widest() {
  static const bool widest = [] {
    const std::string arch = bli_arch_string(bli_arch_query_id());
    // Zen 4 runs AVX-512 in two 256-bit halves: BLIS's AVX2 Zen kernels reach its FMA peak as well.
    return !cpu_has_avx512() || arch == "skx" || arch == "knl" || arch.rfind("zen", 0) == 0;
  }();
  return widest;
}

template <class T>
void blis_gemm(const T* a, bool ta, std::int64_t lda, const T* b, bool tb, std::int64_t ldb, T* c,
               std::int64_t n, std::int64_t k, std::int64_t m, bool accumulate) {
  // One thread, set per call (not BLIS's global setting, which a program may use for its own calls).
  rntm_t rntm = BLIS_RNTM_INITIALIZER;
  bli_rntm_set_num_threads(1, &rntm);
  T one = 1, beta = accumulate ? T(1) : T(0);
  // A transposed row-major operand is the stored matrix read with its strides swapped.
  const inc_t rsa = ta ? 1 : lda, csa = ta ? lda : 1, rsb = tb ? 1 : ldb, csb = tb ? ldb : 1;
  T* pa = const_cast<T*>(a); // BLIS's typed API takes non-const pointers; it only reads a and b
  T* pb = const_cast<T*>(b);
  if constexpr (std::is_same_v<T, float>)
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, n, m, k, &one, pa, rsa, csa, pb, rsb, csb, &beta, c, m,
                 1, nullptr, &rntm);
  else
    bli_dgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, n, m, k, &one, pa, rsa, csa, pb, rsb, csb, &beta, c, m,
                 1, nullptr, &rntm);
}
template void blis_gemm<float>(const float*, bool, std::int64_t, const float*, bool, std::int64_t, float*,
                               std::int64_t, std::int64_t, std::int64_t, bool);
template void blis_gemm<double>(const double*, bool, std::int64_t, const double*, bool, std::int64_t, double*,
                                std::int64_t, std::int64_t, std::int64_t, bool);
#else
const std::string& blis_kernels() {
  static const std::string none;
  return none;
}
bool blis_kernels_widest() {
  return false;
}
#endif

#ifdef GG_HAVE_DNNL
const std::string& dnnl_kernels() {
  static const std::string name = [] {
    const dnnl_version_t* v = dnnl_version();
    return fmt::format("oneDNN {}.{}.{} (sgemm, 1 thread)", v->major, v->minor, v->patch);
  }();
  return name;
}

bool dnnl_gemm(const float* a, bool ta, std::int64_t lda, const float* b, bool tb, std::int64_t ldb, float* c,
               std::int64_t n, std::int64_t k, std::int64_t m, bool accumulate) {
  // oneDNN threads with OpenMP, as many threads as the calling thread's OpenMP setting says; its
  // products here run on this thread alone (libgomp's workers spin between calls, docs/performance.md),
  // and the caller's setting is given back.
  const OneOpenMpThread one;
  return dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', n, m, k, 1.0f, a, lda, b, ldb, accumulate ? 1.0f : 0.0f,
                    c, m) == dnnl_success;
}
#else
const std::string& dnnl_kernels() {
  static const std::string none;
  return none;
}
#endif

} // namespace gg::kernel::detail
