// conv2d by oneDNN (internal): float32 forward, backward data and backward weights through oneDNN's
// primitives where bench/conv_choice measured them faster than im2col + GEMM, their primitives cached
// per shape, and the guard that keeps oneDNN on the calling thread. Without oneDNN (GG_DNNL off or
// absent) every function declines and im2col runs.
#pragma once

#include <cstdint>
#include <string>

#include "windows.hpp"

#ifdef GG_HAVE_DNNL
#include <omp.h>
#endif

namespace gg::kernel::detail {

#ifdef GG_HAVE_DNNL
/// oneDNN (its convolutions here, its sgemm in gemm_libs.cpp) runs on one OpenMP thread per call (OpenMP's
/// count is the calling thread's own): with several kernel threads, conv2d splits the batch across them and
/// calls oneDNN once per part, so no OpenMP team is ever started, whose idle workers would spin between calls
/// on the cores that the other kernels' threads need (libgomp's default wait policy). The calling thread's
/// OpenMP count is 1 while it lives, then what the program had set (a program's own OpenMP loops keep their
/// threads).
class OneOpenMpThread {
public:
  OneOpenMpThread() : before_(omp_get_max_threads()) {
    if (before_ != 1) omp_set_num_threads(1);
  }
  ~OneOpenMpThread() {
    if (before_ != 1) omp_set_num_threads(before_);
  }
  OneOpenMpThread(const OneOpenMpThread&) = delete;
  OneOpenMpThread& operator=(const OneOpenMpThread&) = delete;

private:
  int before_;
};
#endif

/// The three passes of a convolution.
enum class ConvPass : std::uint8_t { forward, backward_data, backward_weights };

/// Whether oneDNN takes this pass of a float32 convolution (then the functions below compute it, unless
/// oneDNN declines the shape). Each call runs on the calling thread alone: callers split the batch.
bool dnnl_conv_takes(const ConvGeometry& g, std::int64_t groups, ConvPass pass);
/// y = conv(x, w) + b (b may be null) for float32 x [N, C, H, W], w [out, C / groups, kh, kw] and y
/// [N, out, oh, ow] of geometry g: true when oneDNN computed it, false when im2col must.
bool dnnl_conv_forward(const ConvGeometry& g, std::int64_t outc, std::int64_t groups, const float* x,
                       const float* w, const float* b, float* y);
/// dx = the input's gradient for the output gradient dy: true when oneDNN computed it.
bool dnnl_conv_backward_data(const ConvGeometry& g, std::int64_t outc, std::int64_t groups, const float* dy,
                             const float* w, float* dx);
/// dw (and db unless null) for the output gradient dy: true when oneDNN computed them.
bool dnnl_conv_backward_weights(const ConvGeometry& g, std::int64_t outc, std::int64_t groups, const float* x,
                                const float* dy, float* dw, float* db);
/// "forward", "backward data" or "backward weights".
std::string conv_pass_name(ConvPass pass);
/// "oneDNN 2.6.3" when built with oneDNN and allowed to run (use_dnnl), "" otherwise.
std::string dnnl_version_text();
/// The oneDNN paths that have run so far ("oneDNN 2.6.3: jit:avx2 (forward, ...), ..."), or "" when none.
std::string dnnl_conv_paths();

} // namespace gg::kernel::detail
