// gg::kernel: numeric functions on tensors, without graphs or gradients — elementwise maps with NumPy
// broadcasting, reductions, the softmax family, matrix products, layout and indexing copies, and the
// number of threads they use. The differentiable ops (ops.hpp) compute their values with these.
// Binary kernels broadcast and promote dtypes; an error names the op (`op` argument) and both shapes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <autodiff/tensor.hpp>

namespace gg::kernel {

/// Functions of one tensor for unary(): the ops' math, plus sign (0 and NaN kept) and square.
enum class Unary : std::uint8_t { neg, exp, log, sqrt, abs, tanh, sigmoid, relu, sin, cos, sign, square };
/// Arithmetic and comparisons for binary() and binary_scalar(); maximum and minimum propagate NaN.
enum class Binary : std::uint8_t { add, sub, mul, div, pow, maximum, minimum, gt, lt, ge, le, eq };
/// The shape both operands broadcast to (ShapeError naming op and both shapes otherwise).
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);
/// f of every element of x.
Tensor unary(Unary f, const Tensor& x);
/// f of a and b broadcast together; comparisons give 1 or 0 in the promoted dtype.
Tensor binary(Binary f, const Tensor& a, const Tensor& b, std::string_view op = {});
/// f(x, s) or, when scalar_left, f(s, x); keeps x's dtype.
Tensor binary_scalar(Binary f, const Tensor& x, double s, bool scalar_left = false);
/// x where x > 0, else slope * x.
Tensor leaky_relu(const Tensor& x, double slope);
/// min(max(x, lo), hi) (NaN stays NaN); ValueError if lo > hi.
Tensor clamp(const Tensor& x, double lo, double hi);
/// cond != 0 ? a : b, all three broadcast together.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

/// x repeated along broadcast dimensions to shape (ShapeError if x does not broadcast to it).
Tensor broadcast_to(const Tensor& x, const Shape& shape, std::string_view op = "broadcast_to");
/// Sums x over the dimensions that broadcasting added or stretched, giving shape: the adjoint of
/// broadcast_to.
Tensor sum_to(const Tensor& x, const Shape& shape);

/// Axis arguments accept negative values counted from the end; a bad axis is a ValueError.
int normalize_axis(int axis, int rank, std::string_view op);
/// Sum of all elements (0-d), accumulated in double.
Tensor sum(const Tensor& x);
/// Sums along axis, accumulated in double.
Tensor sum(const Tensor& x, int axis, bool keepdim = false);
/// Mean of all elements (0-d).
Tensor mean(const Tensor& x);
/// Means along axis.
Tensor mean(const Tensor& x, int axis, bool keepdim = false);
/// Largest element (0-d; a NaN wins); ValueError when empty.
Tensor max(const Tensor& x);
/// Largest elements along axis (a NaN wins).
Tensor max(const Tensor& x, int axis, bool keepdim = false);
/// Smallest element (0-d; a NaN wins); ValueError when empty.
Tensor min(const Tensor& x);
/// Index of the maximum along axis (first on ties), as float64 values.
Tensor argmax(const Tensor& x, int axis, bool keepdim = false);
/// log(sum(exp(x))) along axis, computed with the maximum subtracted: no overflow.
Tensor logsumexp(const Tensor& x, int axis, bool keepdim = false);
/// exp(x) / sum(exp(x)) along axis, the maximum subtracted first.
Tensor softmax(const Tensor& x, int axis);
/// x - logsumexp(x) along axis, computed stably.
Tensor log_softmax(const Tensor& x, int axis);

/// Matrix product of 2-d tensors [n,k]x[k,m], or batched: leading dimensions broadcast. A 1-d
/// operand is promoted as in NumPy (a row vector on the left, a column on the right) and the
/// added dimension removed from the result.
Tensor matmul(const Tensor& a, const Tensor& b);
/// a (optionally transposed) times b (optionally transposed), 2-d only: the building block of
/// matmul's backward, computed without materialising the transposes.
Tensor gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b);
/// x @ weight^T + bias for x [..., in], weight [out, in] and an optional bias [out] (undefined for
/// none): a Linear layer's forward as one GEMM with the transpose flag, the bias added in place.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());
/// Swaps two axes (a copy: storage is always contiguous).
Tensor transpose(const Tensor& x, int axis0 = -2, int axis1 = -1);
/// Elements start, start+step, ... < stop along axis (start/stop clamped like Python slices;
/// negative values count from the end; step >= 1).
Tensor slice(const Tensor& x, int axis, std::int64_t start, std::int64_t stop, std::int64_t step = 1);
/// A zero tensor of `shape` with g written at the slice's positions: the adjoint of slice.
Tensor slice_scatter(const Tensor& g, const Shape& shape, int axis, std::int64_t start, std::int64_t stop,
                     std::int64_t step = 1);
/// The entries at the given indices along axis (negative indices count from the end).
Tensor index_select(const Tensor& x, int axis, const std::vector<std::int64_t>& index);
/// A zero tensor of `shape` with g's slices added at the indices along axis: the adjoint of
/// index_select (repeated indices accumulate).
Tensor index_add(const Tensor& g, const Shape& shape, int axis, const std::vector<std::int64_t>& index);
/// Joins tensors along an existing axis; all other dimensions must agree.
Tensor concat(const std::vector<Tensor>& xs, int axis);
/// Joins equally shaped tensors along a new axis.
Tensor stack(const std::vector<Tensor>& xs, int axis);

/// Sliding windows over the height and width of image batches [N, C, H, W], as PyTorch's conv and
/// pooling arguments: a kh x kw kernel, strides, zero padding, dilations (the kernel's taps dh, dw
/// apart). Hout = (H + 2 ph - dh (kh - 1) - 1) / sh + 1, rounded down, or with ceil_mode (pooling) up,
/// as long as the last window starts inside the image or its top/left padding (PyTorch's rule).
struct Windows {
  std::int64_t kh, kw, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
  bool ceil_mode = false;
};

/// im2col: [N, C, H, W] -> [N, C*kh*kw, Hout*Wout], row (c*kh + i)*kw + j holding x[n, c, oh*sh +
/// i*dh - ph, ow*sw + j*dw - pw] (pad_value outside the image), as torch.nn.functional.unfold.
Tensor unfold(const Tensor& x, const Windows& windows, double pad_value = 0);
/// unfold with square strides and padding.
inline Tensor unfold(const Tensor& x, std::int64_t kh, std::int64_t kw, std::int64_t stride,
                     std::int64_t padding, double pad_value = 0) {
  return unfold(x, Windows{kh, kw, stride, stride, padding, padding}, pad_value);
}
/// col2im: sums the columns of unfold's layout back into an image of `image_shape` [N, C, H, W]:
/// the adjoint of unfold.
Tensor fold(const Tensor& cols, const Shape& image_shape, const Windows& windows);
/// fold with square strides and padding.
inline Tensor fold(const Tensor& cols, const Shape& image_shape, std::int64_t kh, std::int64_t kw,
                   std::int64_t stride, std::int64_t padding) {
  return fold(cols, image_shape, Windows{kh, kw, stride, stride, padding, padding});
}

/// 2-d convolution (cross-correlation) as torch.nn.functional.conv2d: x [N, C, H, W], weight
/// [out, C / groups, kh, kw], bias [out] or undefined -> [N, out, Hout, Wout] (windows' kh, kw are
/// the weight's; no ceil_mode). Images are unfolded a cache-sized chunk at a time into one
/// [C*kh*kw, images*Hout*Wout] column matrix, multiplied by the weight in one GEMM per chunk and group.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Windows& windows,
              std::int64_t groups = 1);
/// conv2d with square strides and padding.
inline Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, std::int64_t stride,
                     std::int64_t padding) {
  return conv2d(x, weight, bias, Windows{0, 0, stride, stride, padding, padding});
}

/// The largest element of each window (padding reading as -inf) of every channel:
/// [N, C, H, W] -> [N, C, Hout, Wout], in one pass (no window columns).
Tensor max_pool2d(const Tensor& x, const Windows& windows);
/// max_pool2d over k x k windows with square strides and padding.
inline Tensor max_pool2d(const Tensor& x, std::int64_t k, std::int64_t stride, std::int64_t padding) {
  return max_pool2d(x, Windows{k, k, stride, stride, padding, padding});
}

/// x with the elements above the diagonal-th diagonal of each matrix (the last two dimensions) set to
/// 0, as torch.tril: kept where column - row <= diagonal.
Tensor tril(const Tensor& x, std::int64_t diagonal = 0);
/// x with the elements below the diagonal-th diagonal set to 0 (kept where column - row >= diagonal).
Tensor triu(const Tensor& x, std::int64_t diagonal = 0);
/// value where mask (0 or 1; broadcast with x) is 1, else x: torch.masked_fill; the result has the
/// broadcast shape. Other mask values are a ValueError naming op.
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value, std::string_view op = "masked_fill");
/// Running sums along axis (accumulated in double); reverse: from the end (the gradient of cumsum).
Tensor cumsum(const Tensor& x, int axis, bool reverse = false);

/// Sets the number of threads the kernels may use (matrix products; large elementwise loops).
/// 1 by default; small tensors never use more than one.
void set_num_threads(int n);
/// The number set by set_num_threads.
int num_threads();
/// The work (items × cost) below which parallel_for and the kernels' own loops stay on the calling
/// thread.
inline constexpr std::int64_t parallel_min_work = std::int64_t{1} << 20;
/// parallel_for's untyped form: call(ctx, lo, hi) in place of body(lo, hi).
void parallel_for(std::int64_t n, std::int64_t cost, void (*call)(void*, std::int64_t, std::int64_t),
                  void* ctx);
/// Calls body(lo, hi) on disjoint ranges covering [0, n): split across the kernel threads when the n
/// items of `cost` cheap element operations each (an add, a multiply-add) are as much work as the
/// kernels' own loops split (2^20), else once, body(0, n), on the calling thread. body must not throw.
/// For elementwise updates outside the kernels (the optimizers' loops over a parameter).
template <class F> void parallel_for(std::int64_t n, F&& body, std::int64_t cost = 1) {
  if (n * cost < parallel_min_work) { // inline: a small parameter's update pays no call (the 2-3-2 step)
    body(std::int64_t{0}, n);
    return;
  }
  using Body = std::remove_reference_t<F>;
  parallel_for(
      n, cost, [](void* ctx, std::int64_t lo, std::int64_t hi) { (*static_cast<Body*>(ctx))(lo, hi); },
      const_cast<void*>(static_cast<const void*>(&body)));
}

/// The library doing the large matrix products: "OpenBLAS (Zen kernels)", or "Eigen (...)" with
/// the reason (built without OpenBLAS; OpenBLAS chose kernels narrower than this CPU's vectors).
std::string gemm_library();
/// The library doing an op(a) [n, k] x op(b) [k, m] product (op transposing where trans_a, trans_b say)
/// with the current threads: "plain loops" for products too small for a GEMM library's blocking and
/// packing; on one thread "BLIS ...", "oneDNN ..." or OpenBLAS for the shapes where they were measured
/// faster (docs/gemm.md); on more, "oneDNN ..., the rows split across 2 threads" (or BLIS) for the
/// products split by rows across the kernel threads; gemm_library() otherwise.
std::string gemm_library(std::int64_t n, std::int64_t k, std::int64_t m, DType dtype = DType::f32,
                         bool trans_a = false, bool trans_b = false);
/// The libraries that have computed matrix products in this process so far ("plain loops", "BLIS ...",
/// "oneDNN ...", "OpenBLAS (... kernels)", "Eigen", in that order; "" before any), followed by " (products
/// split by rows across the kernel threads, each part on one)" when any was: what a workload ran.
std::string gemm_libraries_ran();
/// How conv2d and its gradients have run: oneDNN's implementations (float32, where oneDNN is built in
/// and used) and im2col's passes, each with the GEMM library its products ran with ("im2col + GEMM:
/// backward weights by BLIS ...") and how the batch was split across threads; before any ran, how
/// they would run with the current threads.
std::string conv2d_library();
/// Lets oneDNN do the float32 convolutions it measured faster on (the default, when built with it) or
/// makes im2col + GEMM do them all.
void use_dnnl(bool on);
/// The library computing elementwise exp, log, tanh, sigmoid, erf, GELU and softmax's exponentials:
/// "SLEEF 3.5 (u10: <= 1 ULP), AVX2: 8 floats; exp, log, tanh, erf: gradgraph's (<= 1 ULP)", on
/// AVX-512 builds followed by "; exp, sigmoid and the softmax family at AVX-512's 16 floats" (the
/// loops that run exp at the full width), or "glibc 2.36 libm (scalar)" without SLEEF.
std::string math_library();
/// Lets OpenBLAS, BLIS and oneDNN do the large products (the default, when they are usable) or makes
/// Eigen do them.
void use_blas(bool on);

} // namespace gg::kernel
