// Convolution: im2col (unfold) and col2im (fold), and conv2d forward and backward as one matrix
// product per cache-sized chunk of images, the batch split across the kernel threads when OpenBLAS
// runs single-threaded products; float32 passes by oneDNN where it is faster (conv_dnnl.cpp).
#include <algorithm>
#include <array>
#include <atomic>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "conv_dnnl.hpp"
#include "gemm.hpp"
#include "loops.hpp"
#include "windows.hpp"

namespace gg::kernel {
namespace detail {

namespace {
/// The number of windows along one axis of length `in` (PyTorch's rule): -1 when the window does not
/// fit the padded length, -2 when a size overflows.
std::int64_t windows_along(std::int64_t in, std::int64_t k, std::int64_t s, std::int64_t p, std::int64_t d,
                           bool ceil_mode) {
  std::int64_t padded = 0, reach = 0;
  if (__builtin_mul_overflow(p, 2, &padded) || __builtin_add_overflow(padded, in, &padded) ||
      __builtin_mul_overflow(d, k - 1, &reach) || __builtin_add_overflow(reach, 1, &reach))
    return -2;
  if (padded < reach) return -1;
  std::int64_t out = (padded - reach) / s + 1;
  if (ceil_mode && (padded - reach) % s != 0) ++out;
  if (ceil_mode && (out - 1) * s >= in + p) --out; // the last window must start inside
  return out;
}
} // namespace

namespace {
/// Sizes along the call's axes: "(h, w)" for images, "w" for sequences; a kernel "hxw" or "w".
std::string along(const ConvCall& c, std::int64_t h, std::int64_t w) {
  return c.dims == 1 ? fmt::format("{}", w) : fmt::format("({}, {})", h, w);
}
std::string kernel_size(const ConvCall& c, std::int64_t h, std::int64_t w) {
  return c.dims == 1 ? fmt::format("{}", w) : fmt::format("{}x{}", h, w);
}
/// "an image of shape [...]" or "a sequence of shape [...]": the input as called.
std::string input_of(const ConvCall& c, const Shape& image) {
  return fmt::format("{} of shape {}", c.dims == 1 ? "a sequence" : "an image",
                     (c.x.rank() > 0 ? c.x : image).str());
}
} // namespace

ConvGeometry conv_geometry(const Shape& image, const Windows& win, const ConvCall& call) {
  const std::string_view op = call.op;
  if (image.rank() != 4)
    throw ShapeError(fmt::format("{}: expected an image batch [N, C, H, W], got shape {}", op, image.str()));
  if (win.kh < 1 || win.kw < 1 || win.sh < 1 || win.sw < 1 || win.ph < 0 || win.pw < 0 || win.dh < 1 ||
      win.dw < 1)
    throw ValueError(fmt::format("{}: kernel {}, stride {}, padding {}, dilation {}: kernel, stride and "
                                 "dilation must be >= 1, padding >= 0",
                                 op, kernel_size(call, win.kh, win.kw), along(call, win.sh, win.sw),
                                 along(call, win.ph, win.pw), along(call, win.dh, win.dw)));
  ConvGeometry g{image[0], image[1], image[2], image[3], win.kh, win.kw, win.sh,
                 win.sw,   win.ph,   win.pw,   win.dh,   win.dw, 0,      0};
  g.oh = windows_along(g.h, g.kh, g.sh, g.ph, g.dh, win.ceil_mode);
  g.ow = windows_along(g.w, g.kw, g.sw, g.pw, g.dw, win.ceil_mode);
  if (g.oh == -1 || g.ow == -1)
    throw ShapeError(fmt::format("{}: a window of {} (dilation {}) does not fit {} with padding {}", op,
                                 kernel_size(call, g.kh, g.kw), along(call, g.dh, g.dw),
                                 input_of(call, image), along(call, g.ph, g.pw)));
  // Every size the kernels derive (columns [N, C*kh*kw, oh*ow], windows) must fit in 64 bits: hostile
  // sizes are an error here, not an overflow later.
  std::int64_t columns = 0;
  if (g.oh < 0 || g.ow < 0 || __builtin_mul_overflow(g.n, g.c, &columns) ||
      __builtin_mul_overflow(columns, g.kh, &columns) || __builtin_mul_overflow(columns, g.kw, &columns) ||
      __builtin_mul_overflow(columns, g.oh, &columns) || __builtin_mul_overflow(columns, g.ow, &columns) ||
      columns > (std::int64_t{1} << 60))
    throw ValueError(fmt::format("{}: kernel {}, stride {}, padding {}, dilation {} on {}: the windows would "
                                 "hold more than 2^60 elements",
                                 op, kernel_size(call, g.kh, g.kw), along(call, g.sh, g.sw),
                                 along(call, g.ph, g.pw), along(call, g.dh, g.dw), input_of(call, image)));
  return g;
}

} // namespace detail

using detail::conv2d_geometry;
using detail::conv_geometry;
using detail::ConvGeometry;
using detail::Index;
using detail::inside_columns;
using detail::inside_rows;

namespace {
/// Where unfold's columns go: window row r = (c*kh + i)*kw + j of image n starts at
/// n * image_step + r * row_step. unfold's [N, C*kh*kw, L] has image_step C*kh*kw*L and row_step L;
/// conv2d's one [C*kh*kw, N*L] matrix for the whole batch has image_step L and row_step N*L.
struct ColumnLayout {
  std::int64_t image_step, row_step;
};

ColumnLayout per_image_layout(const ConvGeometry& g) {
  const std::int64_t l = g.oh * g.ow;
  return {g.c * g.kh * g.kw * l, l};
}
ColumnLayout batch_layout(const ConvGeometry& g) {
  const std::int64_t l = g.oh * g.ow;
  return {l, g.n * l};
}

/// The inside rows [y0, y1) and columns [x0, x1) of one kernel offset (i, j).
struct InsideRange {
  std::int64_t y0, y1, x0, x1;
};

/// For every image n, channel c and kernel offset (i, j), calls window(col, img, i, j, inside):
/// the L = oh*ow contiguous columns from col hold the (i, j) offset of every window of image plane
/// img (the element offset of x[n, c]), read from the image for inside's rows and columns. The
/// work is split across the kernel threads by (image, channel) plane: each plane's columns and
/// image are its own, so unfold's writes and fold's sums never collide. Planes go channel-major in
/// the batch layout, so a thread walks each row in order.
template <class F> void for_each_window(const ConvGeometry& g, ColumnLayout layout, F&& window) {
  const std::int64_t l = g.oh * g.ow;
  const bool channel_major = layout.image_step == l && g.n > 1;
  std::vector<InsideRange> inside; // once per call: the divisions are not per plane
  for (std::int64_t i = 0; i < g.kh; ++i)
    for (std::int64_t j = 0; j < g.kw; ++j) {
      const auto [y0, y1] = inside_rows(g, i);
      const auto [x0, x1] = inside_columns(g, j);
      inside.push_back({y0, y1, x0, x1});
    }
  const auto planes = [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t plane = lo; plane < hi; ++plane) {
      const std::int64_t n = channel_major ? plane % g.n : plane / g.c;
      const std::int64_t c = channel_major ? plane / g.n : plane % g.c;
      for (std::int64_t i = 0; i < g.kh; ++i)
        for (std::int64_t j = 0; j < g.kw; ++j)
          window(n * layout.image_step + ((c * g.kh + i) * g.kw + j) * layout.row_step,
                 (n * g.c + c) * g.h * g.w, i, j, inside[static_cast<std::size_t>(i * g.kw + j)]);
    }
  };
  if (g.threaded)
    detail::parallel_range(g.n * g.c, planes, detail::k_window_cost * g.kh * g.kw * l);
  else
    planes(0, g.n * g.c);
}

/// unfold's and fold's per-window bodies are inlined into for_each_window's loop: GCC had stopped
/// inlining fold's once its geometry was generalised (issue 13), +0.95% instructions on the CNN step.
#define GG_INLINE_WINDOW __attribute__((always_inline))

/// Stride 1 with the output as wide as the input ("same" padding, the usual Conv2d): the inside
/// part of a window offset's columns is the image plane shifted by one offset, so one contiguous
/// range [q0, q1) of the columns pairs with plane element q + shift.
struct ShiftedPlane {
  std::int64_t shift, q0, q1;
};
bool is_shifted_plane(const ConvGeometry& g) {
  return g.sh == 1 && g.sw == 1 && g.ow == g.w;
}
ShiftedPlane shifted_plane(const ConvGeometry& g, std::int64_t i, std::int64_t j, std::int64_t y0,
                           std::int64_t y1) {
  const std::int64_t shift = detail::window_origin(g, i, j);
  return {shift, std::max(y0 * g.w, -shift), std::max(y0 * g.w, std::min(y1 * g.w, g.h * g.w - shift))};
}

/// im2col of src (geometry g) into dst laid out as `layout` says.
template <class T> void unfold_into(const ConvGeometry& g, ColumnLayout layout, const T* src, T* dst, T pad) {
  const std::int64_t sh = g.sh, sw = g.sw, ow = g.ow, l = g.oh * g.ow;
  const bool shifted = is_shifted_plane(g);
  for_each_window(g, layout, [&](Index col, Index img, Index i, Index j, InsideRange r) GG_INLINE_WINDOW {
    T* o = dst + col;
    const T* in = src + img;
    const std::int64_t x0 = r.x0, x1 = r.x1, y0 = r.y0, y1 = r.y1;
    std::fill(o, o + y0 * ow, pad);
    std::fill(o + y1 * ow, o + l, pad);
    if (shifted) { // one contiguous copy, then the columns that wrapped around to the next row
      const ShiftedPlane sp = shifted_plane(g, i, j, y0, y1);
      std::fill(o + y0 * ow, o + sp.q0, pad);
      std::copy(in + sp.q0 + sp.shift, in + sp.q1 + sp.shift, o + sp.q0);
      std::fill(o + sp.q1, o + y1 * ow, pad);
      if (x0 > 0 || x1 < ow)
        for (std::int64_t y = y0; y < y1; ++y) {
          T* row = o + y * ow;
          for (std::int64_t x = 0; x < x0; ++x) row[x] = pad;
          for (std::int64_t x = x1; x < ow; ++x) row[x] = pad;
        }
      return;
    }
    const std::int64_t origin = detail::window_origin(g, i, j);
    for (std::int64_t y = y0; y < y1; ++y) {
      T* r = o + y * ow;
      const T* ir = in + origin + y * sh * g.w;
      for (std::int64_t x = 0; x < x0; ++x) r[x] = pad;
      if (sw == 1)
        for (std::int64_t x = x0; x < x1; ++x) r[x] = ir[x];
      else
        for (std::int64_t x = x0; x < x1; ++x) r[x] = ir[x * sw];
      for (std::int64_t x = x1; x < ow; ++x) r[x] = pad;
    }
  });
}

/// col2im: adds the columns of src (laid out as `layout` says) into the zeroed image dst. With
/// scratch set, src may be overwritten (conv2d's own column buffer), which lets "same" convolutions
/// add each window offset as one contiguous range.
template <class T>
void fold_into(const ConvGeometry& g, ColumnLayout layout, const T* src, T* dst, T* scratch = nullptr) {
  const std::int64_t sh = g.sh, sw = g.sw, ow = g.ow;
  const bool shifted = scratch && is_shifted_plane(g);
  for_each_window(g, layout, [&](Index col, Index img, Index i, Index j, InsideRange r) GG_INLINE_WINDOW {
    T* o = dst + img;
    const T* in = src + col;
    const std::int64_t x0 = r.x0, x1 = r.x1, y0 = r.y0, y1 = r.y1;
    if (shifted) { // the columns that would wrap around to the next row are zeroed first
      T* z = scratch + col;
      if (x0 > 0 || x1 < ow)
        for (std::int64_t y = y0; y < y1; ++y) {
          T* row = z + y * ow;
          for (std::int64_t x = 0; x < x0; ++x) row[x] = T(0);
          for (std::int64_t x = x1; x < ow; ++x) row[x] = T(0);
        }
      const ShiftedPlane sp = shifted_plane(g, i, j, y0, y1);
      T* op = o + sp.shift;
      for (std::int64_t q = sp.q0; q < sp.q1; ++q) op[q] += z[q];
      return;
    }
    const std::int64_t origin = detail::window_origin(g, i, j);
    for (std::int64_t y = y0; y < y1; ++y) {
      T* r = o + origin + y * sh * g.w;
      const T* ir = in + y * ow;
      if (sw == 1)
        for (std::int64_t x = x0; x < x1; ++x) r[x] += ir[x];
      else
        for (std::int64_t x = x0; x < x1; ++x) r[x * sw] += ir[x];
    }
  });
}
} // namespace

Tensor unfold(const Tensor& x, const Windows& windows, double pad_value) {
  detail::require_defined(x, "unfold");
  const ConvGeometry g = conv_geometry(x.shape(), windows, "unfold");
  Tensor out = Tensor::empty({g.n, g.c * g.kh * g.kw, g.oh * g.ow}, x.dtype());
  detail::dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    unfold_into(g, per_image_layout(g), x.data<T>(), out.data<T>(), static_cast<T>(pad_value));
  });
  return out;
}

Tensor fold(const Tensor& cols, const Shape& image_shape, const Windows& windows) {
  detail::require_defined(cols, "fold");
  const ConvGeometry g = conv_geometry(image_shape, windows, "fold");
  const Shape expected{g.n, g.c * g.kh * g.kw, g.oh * g.ow};
  if (!(cols.shape() == expected))
    throw ShapeError(fmt::format("fold: columns of shape {} do not fit image shape {} (expected {})",
                                 cols.shape().str(), image_shape.str(), expected.str()));
  Tensor out = Tensor::zeros(image_shape, cols.dtype());
  detail::dispatch(cols.dtype(), [&](auto tag) {
    using T = decltype(tag);
    fold_into(g, per_image_layout(g), cols.data<T>(), out.data<T>());
  });
  return out;
}

namespace detail {
ConvGeometry conv2d_geometry(const ConvCall& call, const Shape& xs, const Shape& ws, const Tensor& bias,
                             Windows windows, std::int64_t groups) {
  const std::string_view op = call.op;
  const Shape &shown_x = call.x.rank() > 0 ? call.x : xs, &shown_w = call.w.rank() > 0 ? call.w : ws;
  if (groups < 1) throw ValueError(fmt::format("{}: groups must be >= 1, got {}", op, groups));
  if (xs.rank() != 4 || ws.rank() != 4 || xs[1] != ws[1] * groups || ws[0] % groups != 0)
    throw ShapeError(fmt::format("{}: input of shape {} and weight of shape {} do not fit with groups = {} "
                                 "(expected an input {} and a weight {}, out divisible by groups)",
                                 op, shown_x.str(), shown_w.str(), groups,
                                 call.dims == 1 ? "[N, C, L]" : "[N, C, H, W]",
                                 call.dims == 1 ? "[out, C / groups, k]" : "[out, C / groups, kh, kw]"));
  if (bias.defined() && (bias.rank() != 1 || bias.shape()[0] != ws[0]))
    throw ShapeError(fmt::format("{}: bias of shape {} does not fit weight of shape {} (expected [{}])", op,
                                 bias.shape().str(), shown_w.str(), ws[0]));
  windows.kh = ws[2], windows.kw = ws[3], windows.ceil_mode = false;
  return conv_geometry(xs, windows, call);
}
} // namespace detail

namespace {
/// How many images conv2d unfolds at a time: as many as keep the column block within a budget the
/// caches hold, so that the columns are written, multiplied and (backward) summed back while they
/// are still in cache, instead of a whole batch's columns (20 MB for the benchmark CNN's second
/// layer) going through memory. At least one image.
std::int64_t conv_chunk(const ConvGeometry& g, std::size_t element_size) {
  constexpr std::int64_t budget = 512 * 1024; // about an L2 cache; 256 KB - 2 MB measured alike
  const std::int64_t per_image = g.c * g.kh * g.kw * g.oh * g.ow * static_cast<std::int64_t>(element_size);
  return std::clamp<std::int64_t>(budget / std::max<std::int64_t>(per_image, 1), 1,
                                  std::max<std::int64_t>(g.n, 1));
}

/// g with only images [n0, n0 + count): the geometry of one chunk of a batch split into `parts`.
/// Its im2col, col2im and permutes split across the kernel threads only when nothing else does:
/// not when the batch is split across them (image_parts), nor when OpenBLAS runs the products on
/// several threads, whose workers spin between calls (a kernel thread next to them puts three
/// threads on two cores: measured 2-10% slower).
ConvGeometry images(ConvGeometry g, std::int64_t count, int parts) {
  g.n = count;
  g.threaded = parts == 1 && !detail::blas_threads_in_use();
  return g;
}

/// Into how many parts conv2d splits the batch: with several kernel threads and OpenBLAS, one part
/// per thread (each image chunk's products are too small to split well over OpenBLAS's threads:
/// the benchmark CNN's second layer multiplies 32x400 by 400x196), as long as there are at least
/// two chunks; otherwise one part, whose products OpenBLAS or Eigen may thread.
int image_parts(const ConvGeometry& g, std::int64_t chunk) {
  if (!detail::blas_threads_in_use()) return 1;
  const std::int64_t chunks = (g.n + chunk - 1) / chunk;
  return static_cast<int>(
      std::min<std::int64_t>(detail::g_num_threads.load(std::memory_order_relaxed), chunks));
}

/// OpenBLAS on one thread while it lives. OpenBLAS's thread count is global: when several threads
/// split batches at once, the first to enter sets it and the last to leave restores it.
class SingleThreadedBlas {
public:
  SingleThreadedBlas() {
    const std::lock_guard lock(mutex());
    if (inside()++ == 0) set(1);
  }
  ~SingleThreadedBlas() {
    const std::lock_guard lock(mutex());
    if (--inside() == 0) set(detail::g_blas_threads.load());
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static int& inside() {
    static int count = 0;
    return count;
  }
  static void set(int threads) { detail::set_blas_threads(threads); }
};

/// Runs body(part, first, last) for images [first, last) of each of `parts` parts of a batch of n,
/// the parts at once on the kernel threads, with single-threaded products (OpenBLAS's thread count
/// is 1 meanwhile). The body must not throw (its buffers are allocated before).
template <class F> void over_image_parts(std::int64_t n, int parts, F&& body) {
  if (parts <= 1) return body(0, std::int64_t{0}, n);
  const SingleThreadedBlas single;
  detail::parallel_range(
      parts,
      [&](std::int64_t lo, std::int64_t hi) {
        for (std::int64_t p = lo; p < hi; ++p) body(static_cast<int>(p), p * n / parts, (p + 1) * n / parts);
      },
      detail::k_parallel_min);
}
} // namespace

namespace {
/// How im2col's products ran, "OpenBLAS (Zen kernels)" or "BLIS 0.9.0 (zen3 kernels, 1 thread), the batch
/// split ...", with the passes (bits by ConvPass) that ran so: for conv2d_library.
struct Im2colRuns {
  std::mutex mutex;
  std::vector<std::pair<std::string, unsigned>> ways;
};
Im2colRuns& im2col_runs() {
  static Im2colRuns r;
  return r;
}

/// How conv2d's batch is split: ", the batch split across N threads with single-threaded products"
/// when it is, "" otherwise.
std::string split_text(int parts) {
  return parts > 1 ? fmt::format(", the batch split across {} threads with single-threaded products", parts)
                   : "";
}

/// Notes that im2col ran a pass whose products are [n, k] x [k, m] (a chunk's, of the group), the batch
/// in `parts` parts: the library pick_gemm chooses for that shape, as it chooses it for each product.
void ran_im2col(detail::ConvPass pass, std::int64_t n, std::int64_t k, std::int64_t m, DType dtype,
                int parts) {
  std::string way = gemm_library(n, k, m, dtype) + split_text(parts);
  const unsigned bit = 1u << static_cast<unsigned>(pass);
  Im2colRuns& r = im2col_runs();
  const std::lock_guard lock(r.mutex);
  const auto it = std::find_if(r.ways.begin(), r.ways.end(), [&](const auto& w) { return w.first == way; });
  if (it != r.ways.end())
    it->second |= bit;
  else
    r.ways.emplace_back(std::move(way), bit);
}

/// Into how many parts a oneDNN pass splits the batch: one per kernel thread, each part's call on its
/// own thread (conv_dnnl.hpp), when the convolution is large enough to be worth waking them.
int dnnl_parts(const ConvGeometry& g, std::int64_t outc, std::int64_t groups) {
  const int threads = detail::g_num_threads.load(std::memory_order_relaxed);
  const std::int64_t macs = g.n * outc * g.oh * g.ow * (g.c / groups) * g.kh * g.kw;
  if (threads <= 1 || g.n < 2 || macs < detail::k_parallel_min) return 1;
  return static_cast<int>(std::min<std::int64_t>(threads, g.n));
}

/// sum += part, float32 tensors of one shape.
void add_into(Tensor& sum, const Tensor& part) {
  float* s = sum.data<float>();
  const float* q = part.data<float>();
  for (std::int64_t i = 0; i < sum.numel(); ++i) s[i] += q[i];
}

/// Runs pass(part, the geometry of its images, its first image) for each of `parts` parts of the
/// batch, at once on the kernel threads: true when oneDNN ran every part.
template <class F> bool dnnl_over_parts(const ConvGeometry& g, int parts, F&& pass) {
  std::atomic<bool> ok{true};
  const auto body = [&](std::int64_t lo, std::int64_t hi) {
    for (std::int64_t p = lo; p < hi; ++p) {
      const std::int64_t first = p * g.n / parts;
      ConvGeometry part = g;
      part.n = (p + 1) * g.n / parts - first;
      if (!pass(static_cast<int>(p), part, first)) ok.store(false);
    }
  };
  if (parts == 1)
    body(0, 1);
  else
    detail::parallel_range(parts, body, detail::k_parallel_min);
  return ok.load();
}
} // namespace

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Windows& windows,
              std::int64_t groups) {
  detail::require_defined(x, "conv2d");
  detail::require_defined(weight, "conv2d");
  const ConvGeometry g = conv2d_geometry({"conv2d"}, x.shape(), weight.shape(), bias, windows, groups);
  DType dtype = promote(x.dtype(), weight.dtype());
  if (bias.defined()) dtype = promote(dtype, bias.dtype());
  const std::int64_t outc = weight.shape()[0], ckk = g.c * g.kh * g.kw, l = g.oh * g.ow,
                     plane = g.c * g.h * g.w, outg = outc / groups, cgkk = ckk / groups;
  const Tensor px = x.to(dtype), pw = weight.to(dtype), pb = bias.defined() ? bias.to(dtype) : Tensor();
  Tensor y = Tensor::empty({g.n, outc, g.oh, g.ow}, dtype);
  if (y.numel() == 0) return y;
  if (dtype == f32 && detail::dnnl_conv_takes(g, groups, detail::ConvPass::forward)) {
    const float *xp = px.data<float>(), *wp = pw.data<float>(),
                *bp = pb.defined() ? pb.data<float>() : nullptr;
    float* yp = y.data<float>();
    if (dnnl_over_parts(g, dnnl_parts(g, outc, groups),
                        [&](int, const ConvGeometry& part, std::int64_t first) {
                          return detail::dnnl_conv_forward(part, outc, groups, xp + first * plane, wp, bp,
                                                           yp + first * outc * l);
                        }))
      return y;
  }
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const std::int64_t chunk = conv_chunk(g, sizeof(T));
    const int parts = image_parts(g, chunk);
    ran_im2col(detail::ConvPass::forward, outg, cgkk, std::min(chunk, g.n) * l, dtype, parts);
    std::vector<Tensor> cols(parts), yt(parts);
    for (int p = 0; p < parts; ++p)
      cols[p] = Tensor::empty({ckk, chunk * l}, dtype), yt[p] = Tensor::empty({outc, chunk * l}, dtype);
    T* yp = y.data<T>();
    const T* bp = pb.defined() ? pb.data<T>() : nullptr;
    over_image_parts(g.n, parts, [&](int part, std::int64_t first, std::int64_t last) {
      T* cp = cols[part].data<T>();
      T* tp = yt[part].data<T>();
      for (std::int64_t n0 = first; n0 < last; n0 += chunk) {
        // The chunk's images as one [C*kh*kw, nb*L] column matrix, one GEMM per group (its rows of
        // the columns and of the output), then each image's rows moved into place with the bias added.
        const std::int64_t nb = std::min(chunk, last - n0), m = nb * l;
        const ConvGeometry gc = images(g, nb, parts);
        unfold_into(gc, batch_layout(gc), px.data<T>() + n0 * plane, cp, T(0));
        for (std::int64_t q = 0; q < groups; ++q)
          detail::gemm_any(pw.data<T>() + q * outg * cgkk, false, cgkk, cp + q * cgkk * m, false, m,
                           tp + q * outg * m, outg, cgkk, m);
        detail::parallel_range(
            nb,
            [&](std::int64_t lo, std::int64_t hi) {
              for (std::int64_t n = lo; n < hi; ++n)
                for (std::int64_t o = 0; o < outc; ++o) {
                  const T* src = tp + o * m + n * l;
                  T* dst = yp + ((n0 + n) * outc + o) * l;
                  const T b = bp ? bp[o] : T(0);
                  for (std::int64_t q = 0; q < l; ++q) dst[q] = src[q] + b;
                }
            },
            gc.threaded ? detail::k_window_cost * outc * l : 0);
      }
    });
  });
  return y;
}

std::array<Tensor, 3> conv2d_backward(const Tensor& g, const Tensor& x, const Tensor& weight,
                                      const Windows& windows, std::int64_t groups,
                                      std::array<bool, 3> needs) {
  detail::require_defined(g, "conv2d_backward");
  const Shape ws = weight.shape();
  const ConvGeometry geo = conv2d_geometry({"conv2d"}, x.shape(), ws, Tensor(), windows, groups);
  const std::int64_t outc = ws[0], ckk = geo.c * geo.kh * geo.kw, l = geo.oh * geo.ow,
                     plane = geo.c * geo.h * geo.w, outg = outc / groups, cgkk = ckk / groups;
  const Shape ys{geo.n, outc, geo.oh, geo.ow};
  if (!(g.shape() == ys))
    throw ShapeError(fmt::format("conv2d_backward: gradient of shape {} does not fit the output shape {}",
                                 g.shape().str(), ys.str()));
  const DType dtype = promote(g.dtype(), promote(x.dtype(), weight.dtype()));
  const Tensor pg = g.to(dtype), pw = weight.to(dtype), px = needs[1] ? x.to(dtype) : Tensor();
  std::array<Tensor, 3> out;
  if (g.numel() > 0 && dtype == f32) { // oneDNN's passes where it takes them, writing every element
    const int parts = dnnl_parts(geo, outc, groups);
    const float* gp = pg.data<float>();
    if (needs[1] && detail::dnnl_conv_takes(geo, groups, detail::ConvPass::backward_weights)) {
      // Each part's weight (and bias) gradient, added in part order: deterministic for a thread count.
      std::vector<Tensor> dw(static_cast<std::size_t>(parts)), db(dw.size());
      for (std::size_t p = 0; p < dw.size(); ++p) {
        dw[p] = Tensor::empty(ws, dtype);
        if (needs[2]) db[p] = Tensor::empty({outc}, dtype);
      }
      const float* xp = px.data<float>();
      if (dnnl_over_parts(geo, parts, [&](int p, const ConvGeometry& part, std::int64_t first) {
            const auto i = static_cast<std::size_t>(p);
            return detail::dnnl_conv_backward_weights(part, outc, groups, xp + first * plane,
                                                      gp + first * outc * l, dw[i].data<float>(),
                                                      needs[2] ? db[i].data<float>() : nullptr);
          })) {
        for (std::size_t p = 1; p < dw.size(); ++p) {
          add_into(dw[0], dw[p]);
          if (needs[2]) add_into(db[0], db[p]);
        }
        out[1] = dw[0], out[2] = db[0];
      }
    }
    if (needs[0] && detail::dnnl_conv_takes(geo, groups, detail::ConvPass::backward_data)) {
      Tensor dx = Tensor::empty(x.shape(), dtype);
      float* dxp = dx.data<float>();
      const float* wp = pw.data<float>();
      if (dnnl_over_parts(geo, parts, [&](int, const ConvGeometry& part, std::int64_t first) {
            return detail::dnnl_conv_backward_data(part, outc, groups, gp + first * outc * l, wp,
                                                   dxp + first * plane);
          }))
        out[0] = dx;
    }
  }
  // What is left for im2col: the passes oneDNN did not take.
  const std::array<bool, 3> todo{needs[0] && !out[0].defined(), needs[1] && !out[1].defined(),
                                 needs[2] && !out[2].defined()};
  if (todo[0]) out[0] = Tensor::zeros(x.shape(), dtype);
  if (todo[1]) out[1] = Tensor::zeros(ws, dtype);
  if (todo[2]) out[2] = Tensor::zeros({outc}, dtype);
  if (g.numel() == 0 || !(todo[0] || todo[1] || todo[2])) return out;
  detail::dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    const T* gp = pg.data<T>();
    if (todo[2]) {
      T* bp = out[2].data<T>();
      for (std::int64_t o = 0; o < outc;
           ++o) { // each plane by partial sums (a serial sum was 4% of a CNN step)
        double s = 0;
        for (std::int64_t n = 0; n < geo.n; ++n) s += detail::sum_contiguous(gp + (n * outc + o) * l, l);
        bp[o] = static_cast<T>(s);
      }
    }
    if (!todo[0] && !todo[1]) return;
    const std::int64_t chunk = conv_chunk(geo, sizeof(T)), m = std::min(chunk, geo.n) * l;
    const int parts = image_parts(geo, chunk);
    if (todo[0]) ran_im2col(detail::ConvPass::backward_data, cgkk, outg, m, dtype, parts);
    if (todo[1]) ran_im2col(detail::ConvPass::backward_weights, outg, m, cgkk, dtype, parts);
    // Per part: column and g' buffers, and (after the first part, which writes the result) its own
    // weight gradient, added in part order at the end.
    std::vector<Tensor> cols(parts), gt(parts), dw(parts);
    for (int p = 0; p < parts; ++p) {
      cols[p] = Tensor::empty({ckk, chunk * l}, dtype), gt[p] = Tensor::empty({outc, chunk * l}, dtype);
      if (todo[1] && p > 0) dw[p] = Tensor::empty(ws, dtype);
    }
    over_image_parts(geo.n, parts, [&](int part, std::int64_t first, std::int64_t last) {
      T* cp = cols[part].data<T>();
      T* tp = gt[part].data<T>();
      T* wp = !todo[1] ? nullptr : part == 0 ? out[1].data<T>() : dw[part].data<T>();
      for (std::int64_t n0 = first; n0 < last; n0 += chunk) {
        const std::int64_t nb = std::min(chunk, last - n0), m = nb * l;
        const ConvGeometry gc = images(geo, nb, parts);
        // The chunk's g as one [out, nb*L] matrix, the layout of the forward GEMM's output.
        detail::parallel_range(
            nb,
            [&](std::int64_t lo, std::int64_t hi) {
              for (std::int64_t n = lo; n < hi; ++n)
                for (std::int64_t o = 0; o < outc; ++o)
                  std::copy_n(gp + ((n0 + n) * outc + o) * l, l, tp + o * m + n * l);
            },
            gc.threaded ? detail::k_window_cost * outc * l : 0);
        if (todo[1]) { // dW += g' cols^T per group, the columns unfolded again (in cache) rather than kept
          unfold_into(gc, batch_layout(gc), px.data<T>() + n0 * plane, cp, T(0));
          for (std::int64_t q = 0; q < groups; ++q)
            detail::gemm_any(tp + q * outg * m, false, m, cp + q * cgkk * m, true, m, wp + q * outg * cgkk,
                             outg, m, cgkk, n0 > first);
        }
        if (todo[0]) { // dx += fold(W^T g'), W^T g' per group
          for (std::int64_t q = 0; q < groups; ++q)
            detail::gemm_any(pw.data<T>() + q * outg * cgkk, true, cgkk, tp + q * outg * m, false, m,
                             cp + q * cgkk * m, cgkk, outg, m);
          fold_into(gc, batch_layout(gc), cp, out[0].data<T>() + n0 * plane, cp);
        }
      }
    });
    if (todo[1]) {
      T* w = out[1].data<T>();
      for (int p = 1; p < parts; ++p) {
        const T* d = dw[p].data<T>();
        for (std::int64_t i = 0; i < outc * cgkk; ++i) w[i] += d[i];
      }
    }
  });
  return out;
}

std::string conv2d_library() {
  std::string ran; // "backward weights by BLIS ...; forward by ..."
  {
    Im2colRuns& r = im2col_runs();
    const std::lock_guard lock(r.mutex);
    for (const auto& [way, passes] : r.ways) {
      std::string names;
      for (auto p :
           {detail::ConvPass::forward, detail::ConvPass::backward_data, detail::ConvPass::backward_weights})
        if (passes & (1u << static_cast<unsigned>(p)))
          names += (names.empty() ? "" : ", ") + detail::conv_pass_name(p);
      ran += (ran.empty() ? "" : "; ") + names + " by " + way;
    }
  }
  // Before any ran: the libraries of the products as they would run now (others by shape on one thread).
  const std::string all = gemm_library();
  std::string libs = all;
  for (const std::string& lib : {gemm_library(16, 64, 64, f64), gemm_library(64, 64, 64, f32)})
    if (lib != all && libs.find(lib) == std::string::npos) libs += (libs == all ? "; by shape " : ", ") + lib;
  const std::string now =
      "im2col + GEMM (" + libs + ")" + split_text(detail::blas_threads_in_use() ? num_threads() : 1);
  const std::string dnnl = detail::dnnl_conv_paths();
  if (dnnl.empty() && ran.empty() && !detail::dnnl_version_text().empty())
    return detail::dnnl_version_text() + " for float32 passes where measured faster, " + now + " otherwise";
  if (ran.empty()) return dnnl.empty() ? now : dnnl + "; " + now + " otherwise (none ran)";
  return (dnnl.empty() ? "" : dnnl + "; ") + "im2col + GEMM: " + ran;
}
} // namespace gg::kernel
