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
#include <utility>
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
  /// Same rank and dimensions. Inline: the ops compare shapes on every call.
  bool operator==(const Shape& o) const {
    if (rank_ != o.rank_) return false;
    for (int i = 0; i < rank_; ++i)
      if (dims_[static_cast<std::size_t>(i)] != o.dims_[static_cast<std::size_t>(i)]) return false;
    return true;
  }

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
  // Moved-from and empty references (many of a small step's temporaries) pay no call.
  ~BufferRef() {
    if (p) release();
  }
  /// The elements, after the buffer's 64-byte header.
  void* data() const { return p ? static_cast<void*>(reinterpret_cast<char*>(p) + 64) : nullptr; }

private:
  /// Drops this reference to *p (not null), freeing it if it was the last; p is left dangling, so only
  /// the destructor calls it.
  void release() noexcept;
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
  /// empty()'s result, made in place (not a default tensor's zeroed header, then assigned).
  Tensor(detail::BufferRef&& buf, const Shape& shape, DType dtype) noexcept
      : buf_(std::move(buf)), shape_(shape), dtype_(dtype) {}
  detail::BufferRef buf_;
  Shape shape_;
  DType dtype_ = f64;
};

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
