// gg::Shape, the shared aligned buffer behind tensors, the portable Rng (xoshiro256** seeded by
// splitmix64, Box-Muller normals) and gg::Tensor's members: construction, conversion, access and
// PyTorch-like printing.
#include <autodiff/tensor.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <new>
#include <numbers>
#include <type_traits>

#include <fmt/format.h>
#include <ostream>

namespace gg {

std::string_view dtype_name(DType dtype) {
  return dtype == f64 ? "float64" : "float32";
}

std::size_t dtype_size(DType dtype) {
  return dtype == f64 ? sizeof(double) : sizeof(float);
}

// ---------------------------------------------------------------------------------------------
// Shape

namespace detail {
namespace {
[[noreturn]] void throw_rank_too_large(std::size_t rank) {
  throw ValueError(fmt::format("Shape: rank {} exceeds the maximum rank {}", rank, Shape::max_rank));
}
[[noreturn]] void throw_too_many_elements(const Shape& shape) {
  throw ValueError(fmt::format("Shape {}: the number of elements overflows 64 bits", shape.str()));
}

template <class F> decltype(auto) dispatch(DType dtype, F&& f) {
  if (dtype == f64) return f(double{});
  return f(float{});
}
} // namespace
} // namespace detail

Shape::Shape(std::initializer_list<std::int64_t> dims) {
  if (dims.size() > static_cast<std::size_t>(max_rank)) detail::throw_rank_too_large(dims.size());
  for (std::int64_t d : dims) dims_[static_cast<std::size_t>(rank_++)] = d;
}

Shape::Shape(const std::vector<std::int64_t>& dims) {
  if (dims.size() > static_cast<std::size_t>(max_rank)) detail::throw_rank_too_large(dims.size());
  for (std::int64_t d : dims) dims_[static_cast<std::size_t>(rank_++)] = d;
}

void Shape::throw_rank_overflow() {
  detail::throw_rank_too_large(static_cast<std::size_t>(max_rank) + 1);
}

void Shape::throw_numel_overflow() const {
  detail::throw_too_many_elements(*this);
}

std::string Shape::str() const {
  return fmt::format("[{}]", fmt::join(begin(), end(), ", "));
}

// ---------------------------------------------------------------------------------------------
// Buffer: a 64-byte header holding the reference count, followed by the data, in one allocation.
// Freed buffers are kept in a per-thread cache by size class and reused: a training step allocates
// and frees the same sizes every time, and glibc's aligned allocation (memalign) was a quarter of a
// small MLP's step, while large buffers came as fresh pages to fault in (docs/performance.md).

namespace detail {

struct alignas(64) Buffer {
  std::atomic<std::size_t> refs{1};
  std::size_t size_class; ///< index into the cache, or k_uncached
};
static_assert(sizeof(Buffer) == 64);

namespace {
constexpr std::align_val_t buffer_alignment{64};
// Classes, header included: 128 bytes, then four per power of two (2^k times 1.25, 1.5, 1.75, 2),
// so at most a fifth of a buffer is unused, up to 256 MiB; larger buffers are not cached.
constexpr std::size_t k_min_log2 = 7, k_max_log2 = 28;
constexpr std::size_t k_classes = 1 + 4 * (k_max_log2 - k_min_log2);
constexpr std::size_t k_uncached = k_classes;
constexpr std::size_t k_max_per_class = 64;
constexpr std::size_t k_cache_budget = std::size_t{512} << 20; // bytes a thread keeps at most

std::size_t class_of(std::size_t total) {
  if (total <= (std::size_t{1} << k_min_log2)) return 0;
  if (total > (std::size_t{1} << k_max_log2)) return k_uncached;
  const auto k = static_cast<std::size_t>(std::bit_width(total - 1)) - 1; // 2^k < total <= 2^(k+1)
  const std::size_t quarter = std::size_t{1} << (k - 2);
  const std::size_t sub = (total - (std::size_t{1} << k) + quarter - 1) / quarter; // 1..4
  return 1 + (k - k_min_log2) * 4 + (sub - 1);
}

std::size_t class_bytes(std::size_t c) {
  if (c == 0) return std::size_t{1} << k_min_log2;
  const std::size_t k = k_min_log2 + (c - 1) / 4, sub = (c - 1) % 4 + 1;
  return (std::size_t{1} << k) + sub * (std::size_t{1} << (k - 2));
}

/// Small buffers come and go by the dozen in a step; large ones a few at a time.
std::size_t class_capacity(std::size_t c) {
  return class_bytes(c) <= (std::size_t{64} << 10) ? k_max_per_class : 16;
}

/// Freed buffers by size class. Trivially initialised and destroyed (a buffer freed during program
/// exit, after this thread's destructors ran, goes straight to the heap: `closed`).
struct BufferCache {
  void* slots[k_classes][k_max_per_class];
  std::size_t count[k_classes];
  std::size_t bytes; ///< held in slots
  bool active;       ///< the holder below is registered and will drain the cache at thread exit
  bool closed;
};
thread_local BufferCache t_buffers;

void release_memory(void* mem) {
  ::operator delete(mem, buffer_alignment);
}

struct BufferCacheHolder {
  bool registered = false;
  ~BufferCacheHolder() {
    for (std::size_t c = 0; c < k_classes; ++c)
      for (std::size_t i = 0; i < t_buffers.count[c]; ++i) release_memory(t_buffers.slots[c][i]);
    t_buffers = {};
    t_buffers.closed = true;
  }
};
thread_local BufferCacheHolder t_buffer_holder;
} // namespace

/// A buffer for `bytes` of elements, from the cache when it has one of its class. Inline in
/// Tensor::empty, its one caller (an out-of-line call there: ~10 instructions a tensor).
[[gnu::always_inline]] inline Buffer* new_buffer(std::size_t bytes) {
  const std::size_t c = class_of(sizeof(Buffer) + bytes);
  void* mem;
  BufferCache& cache = t_buffers;
  if (c != k_uncached && cache.count[c] > 0) {
    mem = cache.slots[c][--cache.count[c]];
    cache.bytes -= class_bytes(c);
  } else {
    mem = ::operator new(c == k_uncached ? sizeof(Buffer) + bytes : class_bytes(c), buffer_alignment);
  }
  Buffer* b = new (mem) Buffer;
  b->size_class = c;
  return b;
}

BufferRef::BufferRef(std::size_t bytes) : p(new_buffer(bytes)) {}

BufferRef::BufferRef(const BufferRef& o) noexcept : p(o.p) {
  if (p) p->refs.fetch_add(1, std::memory_order_relaxed);
}

void BufferRef::release() noexcept {
  // The last reference (a step's temporaries: the usual case) skips the atomic read-modify-write: with
  // no other reference left none can be taken meanwhile, and the acquire load orders the other owners'
  // earlier releases before the reuse, as the decrement's acquire did.
  if (p->refs.load(std::memory_order_acquire) == 1 || p->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) {
    const std::size_t c = p->size_class;
    p->~Buffer();
    BufferCache& cache = t_buffers;
    if (c != k_uncached && !cache.closed && cache.count[c] < class_capacity(c) &&
        cache.bytes + class_bytes(c) <= k_cache_budget) {
      if (!cache.active) [[unlikely]] {
        cache.active = true;
        t_buffer_holder.registered = true; // its destructor drains the cache at thread exit
      }
      cache.slots[c][cache.count[c]++] = p;
      cache.bytes += class_bytes(c);
      return;
    }
    release_memory(p);
  }
}

} // namespace detail

// ---------------------------------------------------------------------------------------------
// Rng

namespace {
std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

constexpr std::uint64_t rotl(std::uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}
} // namespace

Rng::Rng(std::uint64_t seed) {
  for (auto& word : s_) word = splitmix64(seed);
}

std::uint64_t Rng::next_u64() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

double Rng::uniform() {
  return static_cast<double>(next_u64() >> 11) * 0x1.0p-53;
}

double Rng::normal() {
  if (has_spare_) {
    has_spare_ = false;
    return spare_;
  }
  const double u1 = 1.0 - uniform(); // in (0, 1]: log is finite
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  spare_ = r * std::sin(theta);
  has_spare_ = true;
  return r * std::cos(theta);
}

std::uint64_t Rng::below(std::uint64_t n) {
  if (n == 0) throw ValueError("Rng::below: n must be positive");
  // Reject the lowest (2^64 mod n) values so every residue is equally likely.
  const std::uint64_t threshold = (0 - n) % n;
  for (;;) {
    const std::uint64_t r = next_u64();
    if (r >= threshold) return r % n;
  }
}

// ---------------------------------------------------------------------------------------------
// Tensor

namespace {
void check_dims(const Shape& shape, std::string_view op) {
  for (std::int64_t d : shape)
    if (d < 0) throw ValueError(fmt::format("{}: negative dimension in shape {}", op, shape.str()));
}

void require_defined(const Tensor& t, std::string_view op) {
  if (!t.defined()) throw UsageError(fmt::format("{}: the tensor is undefined", op));
}

template <class T> void fill_from(T* dst, const double* src, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<T>(src[i]);
}

template <class To, class From> void convert(To* dst, const From* src, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<To>(src[i]);
}

/// Copies n elements between buffers of possibly different dtypes (memmove when equal).
void copy_elements(void* dst, DType dst_type, const void* src, DType src_type, std::int64_t n) {
  if (n == 0) return; // an empty vector's data() may be null, which memmove must not get
  if (dst_type == src_type) {
    std::memmove(dst, src, static_cast<std::size_t>(n) * dtype_size(dst_type));
  } else if (dst_type == f64) {
    convert(static_cast<double*>(dst), static_cast<const float*>(src), n);
  } else {
    convert(static_cast<float*>(dst), static_cast<const double*>(src), n);
  }
}
} // namespace

Tensor::Tensor(std::vector<double> values, std::vector<std::int64_t> shape, DType dtype)
    : Tensor(values, Shape(shape), dtype) {}

Tensor::Tensor(const std::vector<double>& values, std::initializer_list<std::int64_t> shape, DType dtype)
    : Tensor(values, Shape(shape), dtype) {}

Tensor::Tensor(const std::vector<double>& values, const Shape& shape, DType dtype) {
  check_dims(shape, "Tensor");
  const std::int64_t n = shape.numel();
  if (static_cast<std::int64_t>(values.size()) != n)
    throw ValueError(
        fmt::format("Tensor: {} values given for shape {}, which holds {}", values.size(), shape.str(), n));
  *this = empty(shape, dtype);
  detail::dispatch(dtype, [&](auto tag) { fill_from(data<decltype(tag)>(), values.data(), n); });
}

Tensor Tensor::scalar(double value, DType dtype) {
  return full(Shape{}, value, dtype);
}

Tensor Tensor::empty(const Shape& shape, DType dtype) {
  // The dimensions checked and multiplied in one pass (the errors as check_dims, then numel, give them).
  std::int64_t n = 1;
  for (std::int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, d, &n)) [[unlikely]] {
      check_dims(shape, "Tensor::empty");
      n = shape.numel();
    }
  if (n > std::numeric_limits<std::int64_t>::max() / static_cast<std::int64_t>(dtype_size(dtype)))
    throw ValueError(fmt::format("Tensor::empty: shape {} needs more bytes than 64 bits count", shape.str()));
  detail::BufferRef buf;
  buf.p = detail::new_buffer(static_cast<std::size_t>(n) * dtype_size(dtype));
  return Tensor(std::move(buf), shape, dtype);
}

Tensor Tensor::zeros(const Shape& shape, DType dtype) {
  Tensor t = empty(shape, dtype);
  std::memset(t.raw(), 0, static_cast<std::size_t>(t.numel()) * dtype_size(dtype));
  return t;
}

Tensor Tensor::ones(const Shape& shape, DType dtype) {
  return full(shape, 1.0, dtype);
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype) {
  Tensor t = empty(shape, dtype);
  t.fill(value);
  return t;
}

Tensor Tensor::arange(double start, double stop, double step, DType dtype) {
  if (step == 0 || !std::isfinite(step) || !std::isfinite(start) || !std::isfinite(stop))
    throw ValueError(fmt::format("arange: start {}, stop {} and step {} must be finite with step != 0", start,
                                 stop, step));
  const double count = std::ceil((stop - start) / step);
  if (!(count < 0x1p62)) // also NaN: (stop - start) overflowing to infinity
    throw ValueError(fmt::format("arange: start {}, stop {} and step {} give {} elements, too many", start,
                                 stop, step, count));
  const auto n = count > 0 ? static_cast<std::int64_t>(count) : std::int64_t{0};
  Tensor t = empty(Shape{n}, dtype);
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (std::int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return t;
}

Tensor Tensor::randn(const Shape& shape, Rng& rng, DType dtype, double mean, double std) {
  Tensor t = empty(shape, dtype);
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (std::int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<T>(rng.normal() * std + mean);
  });
  return t;
}

Tensor Tensor::rand(const Shape& shape, Rng& rng, DType dtype, double lo, double hi) {
  Tensor t = empty(shape, dtype);
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = t.data<T>();
    for (std::int64_t i = 0, n = t.numel(); i < n; ++i) p[i] = static_cast<T>(lo + (hi - lo) * rng.uniform());
  });
  return t;
}

double Tensor::item() const {
  require_defined(*this, "item");
  if (numel() != 1)
    throw ValueError(fmt::format("item: the tensor has {} elements (shape {}); item() needs exactly one",
                                 numel(), shape_.str()));
  return flat(0);
}

std::vector<double> Tensor::to_vector() const {
  require_defined(*this, "to_vector");
  std::vector<double> out(static_cast<std::size_t>(numel()));
  copy_elements(out.data(), f64, raw(), dtype_, numel());
  return out;
}

double Tensor::flat(std::int64_t i) const {
  require_defined(*this, "flat");
  if (i < 0 || i >= numel())
    throw ValueError(fmt::format("flat: index {} is out of range for {} elements", i, numel()));
  return dtype_ == f64 ? static_cast<const double*>(raw())[i] : static_cast<const float*>(raw())[i];
}

void Tensor::set_flat(std::int64_t i, double v) {
  require_defined(*this, "set_flat");
  if (i < 0 || i >= numel())
    throw ValueError(fmt::format("set_flat: index {} is out of range for {} elements", i, numel()));
  if (dtype_ == f64)
    static_cast<double*>(raw())[i] = v;
  else
    static_cast<float*>(raw())[i] = static_cast<float>(v);
}

void Tensor::throw_dtype_mismatch(DType wanted) const {
  throw ValueError(fmt::format("data<{}>: the tensor's dtype is {}", dtype_name(wanted), dtype_name(dtype_)));
}

long Tensor::use_count() const {
  return buf_.p ? static_cast<long>(buf_.p->refs.load(std::memory_order_acquire)) : 0;
}

Tensor Tensor::clone() const {
  require_defined(*this, "clone");
  Tensor t = empty(shape_, dtype_);
  copy_elements(t.raw(), dtype_, raw(), dtype_, numel());
  return t;
}

Tensor Tensor::converted(DType dtype) const {
  require_defined(*this, "to");
  if (dtype == dtype_) return *this;
  Tensor t = empty(shape_, dtype);
  copy_elements(t.raw(), dtype, raw(), dtype_, numel());
  return t;
}

Tensor Tensor::reshape(const std::vector<std::int64_t>& shape) const {
  return reshape(Shape(shape));
}

Tensor Tensor::reshape(std::initializer_list<std::int64_t> shape) const {
  return reshape(Shape(shape));
}

Tensor Tensor::reshape(const Shape& shape) const {
  require_defined(*this, "reshape");
  Shape target = shape;
  int inferred = -1;
  std::int64_t known = 1;
  for (int i = 0; i < target.rank(); ++i) {
    if (target[i] == -1) {
      if (inferred >= 0) throw ValueError(fmt::format("reshape: more than one -1 in {}", shape.str()));
      inferred = i;
    } else if (target[i] < 0) {
      throw ValueError(fmt::format("reshape: negative dimension in {}", shape.str()));
    } else if (__builtin_mul_overflow(known, target[i], &known)) { // more elements than any tensor has
      known = -1;
      break;
    }
  }
  if (inferred >= 0 && known > 0 && numel() % known == 0) target[inferred] = numel() / known;
  if (known < 0 || (inferred >= 0 && target[inferred] == -1) || target.numel() != numel())
    throw ShapeError(
        fmt::format("reshape: cannot reshape {} ({} elements) to {}", shape_.str(), numel(), shape.str()));
  Tensor t = *this;
  t.shape_ = target;
  return t;
}

void Tensor::assign(const Tensor& other) {
  require_defined(*this, "assign");
  require_defined(other, "assign");
  if (!(other.shape_ == shape_))
    throw ShapeError(fmt::format("assign: shapes {} and {} differ", shape_.str(), other.shape_.str()));
  copy_elements(raw(), dtype_, other.raw(), other.dtype_, numel());
}

void Tensor::fill(double value) {
  require_defined(*this, "fill");
  detail::dispatch(dtype_, [&](auto tag) {
    using T = decltype(tag);
    T* p = data<T>();
    const auto v = static_cast<T>(value);
    for (std::int64_t i = 0, n = numel(); i < n; ++i) p[i] = v;
  });
}

// ---------------------------------------------------------------------------------------------
// Printing

namespace {
struct Printer {
  const Tensor& t;
  int max_per_dim;
  std::vector<std::vector<std::int64_t>> shown; // per dim: indices to print, -1 for "..."
  std::vector<std::int64_t> strides;
  std::size_t width = 0;
  static constexpr std::size_t indent0 = 7; // strlen("tensor(")

  Printer(const Tensor& tensor, int max) : t(tensor), max_per_dim(max) {
    const int rank = t.rank();
    shown.resize(static_cast<std::size_t>(rank));
    strides.assign(static_cast<std::size_t>(rank), 1);
    for (int d = rank - 2; d >= 0; --d)
      strides[static_cast<std::size_t>(d)] = strides[static_cast<std::size_t>(d) + 1] * t.shape()[d + 1];
    for (int d = 0; d < rank; ++d) {
      const std::int64_t n = t.shape()[d];
      auto& idx = shown[static_cast<std::size_t>(d)];
      if (max_per_dim > 0 && n > max_per_dim) {
        const std::int64_t head = (max_per_dim + 1) / 2, tail = max_per_dim / 2;
        for (std::int64_t i = 0; i < head; ++i) idx.push_back(i);
        idx.push_back(-1);
        for (std::int64_t i = n - tail; i < n; ++i) idx.push_back(i);
      } else {
        for (std::int64_t i = 0; i < n; ++i) idx.push_back(i);
      }
    }
  }

  std::string number(std::int64_t i) const {
    if (t.dtype() == f64) return fmt::format("{:g}", t.flat(i));
    return fmt::format("{:g}", static_cast<float>(t.flat(i)));
  }

  void measure(int d, std::int64_t offset) {
    if (d == t.rank()) {
      width = std::max(width, number(offset).size());
      return;
    }
    for (std::int64_t i : shown[static_cast<std::size_t>(d)])
      if (i >= 0) measure(d + 1, offset + i * strides[static_cast<std::size_t>(d)]);
  }

  void emit(std::string& out, int d, std::int64_t offset) const {
    const int rank = t.rank();
    out += '[';
    std::string sep = ",";
    if (d == rank - 1) {
      sep += ' ';
    } else {
      sep.append(static_cast<std::size_t>(rank - d - 1), '\n');
      sep.append(indent0 + static_cast<std::size_t>(d) + 1, ' ');
    }
    bool first = true;
    for (std::int64_t i : shown[static_cast<std::size_t>(d)]) {
      if (!first) out += sep;
      first = false;
      if (i < 0) {
        out += "...";
      } else if (d == rank - 1) {
        const std::string s = number(offset + i);
        out.append(width - s.size(), ' ');
        out += s;
      } else {
        emit(out, d + 1, offset + i * strides[static_cast<std::size_t>(d)]);
      }
    }
    out += ']';
  }
};
} // namespace

std::string Tensor::str(int max_per_dim) const {
  if (!defined()) return "tensor(undefined)";
  std::string out = "tensor(";
  if (rank() == 0) {
    out += Printer(*this, max_per_dim).number(0);
  } else if (numel() == 0) {
    out += "[]";
  } else {
    Printer printer(*this, max_per_dim);
    printer.measure(0, 0);
    printer.emit(out, 0, 0);
  }
  if (rank() > 0) out += ", shape=" + shape_.str();
  if (dtype_ != f64) out += fmt::format(", dtype={}", dtype_name(dtype_));
  out += ')';
  return out;
}

} // namespace gg

namespace gg {
std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  return os << t.str();
}
} // namespace gg
