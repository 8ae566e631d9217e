// gg::Shape and gg::Tensor: dense, contiguous, row-major storage of float64 or float32 values of
// any rank (0-d scalars included). Copies share storage, like PyTorch tensors; clone() copies.
// Tensors know nothing of graphs or gradients: the differentiable value is gg::Var (var.hpp).
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <autodiff/error.hpp>

#include <fmt/format.h>
#include <iosfwd>

namespace gg {

enum class DType : std::uint8_t { f64, f32 };
inline constexpr DType f64 = DType::f64;
inline constexpr DType f32 = DType::f32;

/// "float64" or "float32".
std::string_view dtype_name(DType dtype);
/// Bytes per element.
std::size_t dtype_size(DType dtype);
/// The dtype of a binary op's result: float64 when either operand is float64 (PyTorch's promotion).
inline DType promote(DType a, DType b) {
  return a == f64 || b == f64 ? f64 : f32;
}

/// Dimensions of a tensor, stored inline (no heap allocation) up to max_rank dimensions.
class Shape {
public:
  static constexpr int max_rank = 8;

  Shape() = default;
  Shape(std::initializer_list<std::int64_t> dims);
  explicit Shape(const std::vector<std::int64_t>& dims);

  int rank() const { return rank_; }
  std::int64_t operator[](int i) const { return dims_[static_cast<std::size_t>(i)]; }
  std::int64_t& operator[](int i) { return dims_[static_cast<std::size_t>(i)]; }
  /// Product of the dimensions (1 for a 0-d shape). Inline: every kernel call asks for it.
  std::int64_t numel() const {
    std::int64_t n = 1;
    for (int i = 0; i < rank_; ++i)
      if (__builtin_mul_overflow(n, dims_[static_cast<std::size_t>(i)], &n)) [[unlikely]]
        throw_numel_overflow();
    return n;
  }
  const std::int64_t* begin() const { return dims_.data(); }
  const std::int64_t* end() const { return dims_.data() + rank_; }
  std::vector<std::int64_t> to_vector() const { return {begin(), end()}; }
  /// Appends a dimension (ValueError beyond max_rank).
  void push_back(std::int64_t d) {
    if (rank_ == max_rank) [[unlikely]]
      throw_rank_overflow();
    dims_[static_cast<std::size_t>(rank_++)] = d;
  }
  /// "[2, 3]"; "[]" for a 0-d shape.
  std::string str() const;
  bool operator==(const Shape& o) const;

private:
  [[noreturn]] void throw_numel_overflow() const;
  [[noreturn]] static void throw_rank_overflow();
  std::array<std::int64_t, max_rank> dims_{};
  int rank_ = 0;
};

namespace detail {
/// Reference-counted, 64-byte aligned element buffer shared by tensors.
struct Buffer;
struct BufferRef {
  Buffer* p = nullptr;
  BufferRef() = default;
  explicit BufferRef(std::size_t bytes);
  BufferRef(const BufferRef& o) noexcept;
  BufferRef(BufferRef&& o) noexcept : p(o.p) { o.p = nullptr; }
  BufferRef& operator=(BufferRef o) noexcept {
    std::swap(p, o.p);
    return *this;
  }
  ~BufferRef();
  /// The elements, after the buffer's 64-byte header.
  void* data() const { return p ? static_cast<void*>(reinterpret_cast<char*>(p) + 64) : nullptr; }
};
} // namespace detail

/// A seeded random source whose streams are identical on every machine and compiler
/// (xoshiro256** with our own uniform and Box-Muller normal: std:: distributions are not portable).
class Rng {
public:
  explicit Rng(std::uint64_t seed = 0);
  std::uint64_t next_u64();
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();
  /// Standard normal.
  double normal();
  /// Uniform integer in [0, n).
  std::uint64_t below(std::uint64_t n);

private:
  std::array<std::uint64_t, 4> s_{};
  double spare_ = 0;
  bool has_spare_ = false;
};

class Tensor {
public:
  /// An undefined tensor (no storage); defined() is false.
  Tensor() = default;
  /// Values in row-major order; their count must equal the shape's product.
  Tensor(std::vector<double> values, std::vector<std::int64_t> shape, DType dtype = f64);
  Tensor(const std::vector<double>& values, const Shape& shape, DType dtype = f64);
  /// Disambiguates Tensor({1, 2, 3, 4}, {2, 2}) between the two overloads above.
  Tensor(const std::vector<double>& values, std::initializer_list<std::int64_t> shape, DType dtype = f64);

  /// A 0-d tensor.
  static Tensor scalar(double value, DType dtype = f64);
  /// Uninitialised storage.
  static Tensor empty(const Shape& shape, DType dtype = f64);
  static Tensor zeros(const Shape& shape, DType dtype = f64);
  static Tensor ones(const Shape& shape, DType dtype = f64);
  static Tensor full(const Shape& shape, double value, DType dtype = f64);
  /// start, start+step, ... while < stop (> stop for a negative step), as a 1-d tensor.
  static Tensor arange(double start, double stop, double step = 1, DType dtype = f64);
  /// Standard normal values times std plus mean.
  static Tensor randn(const Shape& shape, Rng& rng, DType dtype = f64, double mean = 0, double std = 1);
  /// Uniform values in [lo, hi).
  static Tensor rand(const Shape& shape, Rng& rng, DType dtype = f64, double lo = 0, double hi = 1);

  bool defined() const { return buf_.p != nullptr; }
  const Shape& shape() const { return shape_; }
  int rank() const { return shape_.rank(); }
  std::int64_t numel() const { return shape_.numel(); }
  DType dtype() const { return dtype_; }

  /// The single value of a one-element tensor (ValueError otherwise).
  double item() const;
  /// All values, as doubles, row-major.
  std::vector<double> to_vector() const;
  /// Element at flat (row-major) index i, as a double.
  double flat(std::int64_t i) const;
  void set_flat(std::int64_t i, double v);

  /// Typed access; T must match dtype() (ValueError otherwise).
  template <class T> T* data() {
    if (dtype_ != dtype_of<T>()) [[unlikely]]
      throw_dtype_mismatch(dtype_of<T>());
    return static_cast<T*>(raw());
  }
  template <class T> const T* data() const {
    if (dtype_ != dtype_of<T>()) [[unlikely]]
      throw_dtype_mismatch(dtype_of<T>());
    return static_cast<const T*>(raw());
  }
  void* raw() const { return buf_.data(); }

  /// A deep copy.
  Tensor clone() const;
  /// How many tensors share this one's storage (0 when undefined): 1 means no other tensor sees a
  /// change made in place.
  long use_count() const;
  /// A copy converted to dtype (shares storage when it already has that dtype).
  Tensor to(DType dtype) const { return dtype == dtype_ && defined() ? *this : converted(dtype); }
  /// Same storage, new shape with the same element count; one dimension may be -1.
  Tensor reshape(const std::vector<std::int64_t>& shape) const;
  Tensor reshape(const Shape& shape) const;
  /// Disambiguates x.reshape({-1, 2}) between the two overloads above.
  Tensor reshape(std::initializer_list<std::int64_t> shape) const;

  /// Copies other's values into this tensor's storage (same shape; dtypes may differ).
  void assign(const Tensor& other);
  /// In-place fill.
  void fill(double value);

  /// Readable multi-line text like PyTorch's: "tensor([[1, 2], [3, 4]], shape=[2, 2])".
  std::string str(int max_per_dim = 6) const;

private:
  template <class T> static constexpr DType dtype_of() {
    static_assert(std::is_same_v<T, double> || std::is_same_v<T, float>, "tensors hold double or float");
    return std::is_same_v<T, double> ? f64 : f32;
  }
  [[noreturn]] void throw_dtype_mismatch(DType wanted) const;
  Tensor converted(DType dtype) const;
  detail::BufferRef buf_;
  Shape shape_;
  DType dtype_ = f64;
};

/// Tensor kernels: plain numeric functions on tensors, without gradients. The graph's ops (ops.hpp)
/// are built from these. Binary kernels broadcast by NumPy rules and promote dtypes; an error names
/// the op (`op` argument) and both shapes.
namespace kernel {

enum class Unary : std::uint8_t { neg, exp, log, sqrt, abs, tanh, sigmoid, relu, sin, cos, sign, square };
enum class Binary : std::uint8_t { add, sub, mul, div, pow, maximum, minimum, gt, lt, ge, le, eq };

/// g times the derivative of f at x (out = f(x)), elementwise in one pass: the backward of unary().
Tensor unary_backward(Unary f, const Tensor& g, const Tensor& x, const Tensor& out);
/// The backward of softmax (log_space false) or log_softmax along axis, given its output `out`
/// and the gradient g: out * (g - sum(g * out)) or g - exp(out) * sum(g), fused per lane.
Tensor softmax_backward(const Tensor& g, const Tensor& out, int axis, bool log_space);
/// The shape both operands broadcast to (ShapeError naming op and both shapes otherwise).
Shape broadcast_shapes(const Shape& a, const Shape& b, std::string_view op);
Tensor unary(Unary f, const Tensor& x);
/// Comparisons give 1 or 0 in the promoted dtype.
Tensor binary(Binary f, const Tensor& a, const Tensor& b, std::string_view op = {});
/// f(x, s) or, when scalar_left, f(s, x); keeps x's dtype.
Tensor binary_scalar(Binary f, const Tensor& x, double s, bool scalar_left = false);
Tensor leaky_relu(const Tensor& x, double slope);
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
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, int axis, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, int axis, bool keepdim = false);
Tensor max(const Tensor& x);
Tensor max(const Tensor& x, int axis, bool keepdim = false);
Tensor min(const Tensor& x);
/// The backward of max along axis: g (the reduced shape, keepdim or not) shared equally among each
/// lane's tied maxima, zero elsewhere; `out` is the forward's result.
Tensor max_backward(const Tensor& x, const Tensor& out, const Tensor& g, int axis);
/// Index of the maximum along axis (first on ties), as float64 values.
Tensor argmax(const Tensor& x, int axis, bool keepdim = false);
/// log(sum(exp(x))) along axis, computed with the maximum subtracted: no overflow.
Tensor logsumexp(const Tensor& x, int axis, bool keepdim = false);
Tensor softmax(const Tensor& x, int axis);
Tensor log_softmax(const Tensor& x, int axis);

/// Matrix product of 2-d tensors [n,k]x[k,m], or batched: leading dimensions broadcast. A 1-d
/// operand is promoted as in NumPy (a row vector on the left, a column on the right) and the
/// added dimension removed from the result.
Tensor matmul(const Tensor& a, const Tensor& b);
/// a (optionally transposed) times b (optionally transposed), 2-d only: the building block of
/// matmul's backward, computed without materialising the transposes.
Tensor gemm(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b);
/// op(a[i]) op(b[i]) for every i of a batch, a and b [batch, rows, cols] or one of them 2-d (the
/// same matrix for every i); with sum_batch, their sum over i (2-d): batched products' gradients
/// without transposed copies.
Tensor gemm_batched(const Tensor& a, bool trans_a, const Tensor& b, bool trans_b, bool sum_batch = false);
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

/// im2col: [N, C, H, W] -> [N, C*kh*kw, Hout*Wout], row (c*kh + i)*kw + j holding x[n, c, oh*stride +
/// i - padding, ow*stride + j - padding] (pad_value outside the image), as torch.nn.functional.unfold.
Tensor unfold(const Tensor& x, std::int64_t kh, std::int64_t kw, std::int64_t stride, std::int64_t padding,
              double pad_value = 0);
/// col2im: sums the columns of unfold's layout back into an image of `image_shape` [N, C, H, W]:
/// the adjoint of unfold.
Tensor fold(const Tensor& cols, const Shape& image_shape, std::int64_t kh, std::int64_t kw,
            std::int64_t stride, std::int64_t padding);

/// 2-d convolution (cross-correlation) as torch.nn.functional.conv2d: x [N, C, H, W], weight
/// [out, C, kh, kw], bias [out] or undefined -> [N, out, Hout, Wout]. Images are unfolded a
/// cache-sized chunk at a time into one [C*kh*kw, images*Hout*Wout] column matrix, multiplied by the
/// weight in one GEMM per chunk.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, std::int64_t stride,
              std::int64_t padding);
/// conv2d's gradients for the output gradient g: {x's, the weight's, the bias's}, each computed
/// only when its `needs` flag is set (one GEMM each per chunk of images, the columns unfolded again).
std::array<Tensor, 3> conv2d_backward(const Tensor& g, const Tensor& x, const Tensor& weight,
                                      std::int64_t stride, std::int64_t padding, std::array<bool, 3> needs);

/// The largest element of each k x k window (stride, zero-based padding reading as -inf) of every
/// channel: [N, C, H, W] -> [N, C, Hout, Wout], in one pass (no window columns).
Tensor max_pool2d(const Tensor& x, std::int64_t k, std::int64_t stride, std::int64_t padding);
/// max_pool2d's gradient: g [N, C, Hout, Wout] to each window's maxima, ties sharing it equally.
Tensor max_pool2d_backward(const Tensor& x, const Tensor& out, const Tensor& g, std::int64_t k,
                           std::int64_t stride, std::int64_t padding);

/// Sets the number of threads the kernels may use (matrix products; large elementwise loops).
/// 1 by default; small tensors never use more than one.
void set_num_threads(int n);
int num_threads();

/// The library doing the large matrix products: "OpenBLAS (Zen kernels)", or "Eigen (...)" with
/// the reason (built without OpenBLAS; OpenBLAS chose kernels narrower than this CPU's vectors).
std::string gemm_library();
/// Lets OpenBLAS do the large products (the default, when it is usable) or makes Eigen do them.
void use_blas(bool on);

} // namespace kernel
/// The dtype of an elementwise op's result, as PyTorch decides it: a 0-d operand does not change
/// the dtype of a tensor with dimensions (a float32 tensor times a float64 scalar stays float32);
/// otherwise promote().
inline DType result_dtype(const Tensor& a, const Tensor& b) {
  if (a.rank() == 0 && b.rank() > 0) return b.dtype();
  if (b.rank() == 0 && a.rank() > 0) return a.dtype();
  return promote(a.dtype(), b.dtype());
}

/// Prints t.str().
std::ostream& operator<<(std::ostream& os, const Tensor& t);

} // namespace gg

/// `fmt::print("{}", tensor)` prints tensor.str().
template <> struct fmt::formatter<gg::Tensor> : fmt::formatter<std::string_view> {
  auto format(const gg::Tensor& t, fmt::format_context& ctx) const {
    return fmt::formatter<std::string_view>::format(t.str(), ctx);
  }
};
