// The IDX reader (plain or gzip through zlib's inflate, from a file or from memory) and the
// MNIST / Fashion-MNIST loaders. Sizes claimed by a header are checked against the bytes actually
// present before any allocation that depends on them.
#include <nn/data/idx.hpp>

#include <autodiff/kernel.hpp>

#include "../io/byte_source.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <type_traits>

#include <unistd.h>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <zlib.h>

namespace gg::data {

namespace detail {
namespace {

[[noreturn]] void fail(std::string_view source, std::string_view what) {
  throw FormatError(fmt::format("{}: {}", source, what));
}

std::size_t element_size(IdxType t) {
  switch (t) {
  case IdxType::u8:
  case IdxType::i8: return 1;
  case IdxType::i16: return 2;
  case IdxType::i32:
  case IdxType::f32: return 4;
  case IdxType::f64: return 8;
  }
  return 0;
}

bool valid_type(std::uint8_t code) {
  return code == 0x08 || code == 0x09 || code == 0x0B || code == 0x0C || code == 0x0D || code == 0x0E;
}

using gg::detail::ByteSource;

/// The machine's physical memory in bytes (what data may take before it is refused).
std::uint64_t physical_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page)
                               : std::uint64_t{1} << 62; // unknown: no limit
}

/// The data bytes of an input: passed through when plain, inflated when it starts with 1f 8b.
/// read() returns fewer bytes than asked only at the end of the data.
class Decoder {
public:
  Decoder(ByteSource& in, std::string_view name) : in_(in), name_(name), buf_(1 << 16) {
    fill();
    gzip_ = end_ - pos_ >= 2 && buf_[pos_] == 0x1f && buf_[pos_ + 1] == 0x8b;
    if (gzip_) {
      if (inflateInit2(&zs_, 16 + MAX_WBITS) != Z_OK) throw std::bad_alloc();
      zs_open_ = true;
    }
  }
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
  ~Decoder() {
    if (zs_open_) inflateEnd(&zs_);
  }

  bool gzip() const { return gzip_; }
  /// Bytes of data left after `consumed` ones, when the input is plain and of known size.
  std::optional<std::uint64_t> plain_remaining(std::uint64_t consumed) const {
    if (gzip_ || !in_.size() || *in_.size() < consumed) return std::nullopt;
    return *in_.size() - consumed;
  }

  std::size_t read(unsigned char* dst, std::size_t n) {
    if (!gzip_) {
      std::size_t k = std::min(n, end_ - pos_);
      std::memcpy(dst, buf_.data() + pos_, k);
      pos_ += k;
      if (k < n) k += in_.read(dst + k, n - k);
      return k;
    }
    std::size_t got = 0;
    while (got < n && !finished_) {
      if (pos_ == end_ && !fill()) {
        if (!stream_ended_) truncated_ = true;
        finished_ = true;
        break;
      }
      if (stream_ended_) {
        // Another gzip member may follow (as `cat a.gz b.gz`); anything else is an error.
        if (!(end_ - pos_ >= 2 && buf_[pos_] == 0x1f && buf_[pos_ + 1] == 0x8b)) {
          if (end_ - pos_ < 2 && fill_more()) continue;
          fail(name_, "unexpected bytes after the end of the gzip stream");
        }
        inflateReset(&zs_);
        stream_ended_ = false;
      }
      zs_.next_in = buf_.data() + pos_;
      zs_.avail_in = static_cast<uInt>(end_ - pos_);
      zs_.next_out = dst + got;
      zs_.avail_out = static_cast<uInt>(std::min<std::size_t>(n - got, std::numeric_limits<uInt>::max()));
      const uInt before = zs_.avail_out;
      const std::size_t before_pos = pos_;
      const int ret = inflate(&zs_, Z_NO_FLUSH);
      got += before - zs_.avail_out;
      pos_ = end_ - zs_.avail_in;
      if (ret == Z_STREAM_END) {
        stream_ended_ = true;
      } else if (ret == Z_MEM_ERROR) {
        throw std::bad_alloc();
      } else if (ret == Z_BUF_ERROR && pos_ == before_pos && zs_.avail_out == before && pos_ < end_) {
        fail(name_, "corrupt gzip data (inflate made no progress)");
      } else if (ret != Z_OK && ret != Z_BUF_ERROR) {
        fail(name_, fmt::format("corrupt gzip data ({})", zs_.msg ? zs_.msg : "inflate failed"));
      }
    }
    return got;
  }

  /// Whether the gzip stream ended without its trailer (the CRC of its data was never checked).
  bool truncated_stream() const { return truncated_; }

private:
  /// Refills an empty buffer; false at the end of the input.
  bool fill() {
    pos_ = 0;
    end_ = in_.read(buf_.data(), buf_.size());
    return end_ > 0;
  }
  /// Appends more input after the unread bytes; false at the end of the input.
  bool fill_more() {
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
    const std::size_t k = in_.read(buf_.data() + end_, buf_.size() - end_);
    end_ += k;
    return k > 0;
  }

  ByteSource& in_;
  std::string_view name_;
  std::vector<unsigned char> buf_;
  std::size_t pos_ = 0, end_ = 0;
  bool gzip_ = false;
  z_stream zs_{};
  bool zs_open_ = false;
  bool stream_ended_ = false;
  bool finished_ = false;
  bool truncated_ = false;
};

std::uint32_t big_endian_u32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

std::string dims_text(const std::vector<std::int64_t>& dims) {
  return fmt::format("[{}]", fmt::join(dims, ", "));
}

/// Reads and checks the magic number and the dimensions; returns the header and its byte count.
IdxHeader read_header(Decoder& dec, std::string_view name, std::uint64_t& data_bytes) {
  unsigned char magic[4];
  const std::size_t got = dec.read(magic, 4);
  if (got == 0) fail(name, "empty file: expected an IDX header");
  if (got < 4) fail(name, fmt::format("truncated: an IDX header needs 4 bytes, found {}", got));
  if (magic[0] != 0 || magic[1] != 0)
    fail(name,
         fmt::format("not an IDX file: it starts with bytes 0x{:02x} 0x{:02x}, an IDX file with 0x00 0x00",
                     magic[0], magic[1]));
  if (!valid_type(magic[2]))
    fail(name, fmt::format("byte 2: unknown IDX element type code 0x{:02x} (known: 0x08 unsigned byte, 0x09 "
                           "signed byte, 0x0b int16, 0x0c int32, 0x0d float32, 0x0e float64)",
                           magic[2]));
  IdxHeader h;
  h.type = static_cast<IdxType>(magic[2]);
  const int rank = magic[3];
  if (rank == 0) fail(name, "byte 3: the IDX header declares 0 dimensions");
  if (rank > Shape::max_rank)
    fail(name, fmt::format("byte 3: the IDX header declares {} dimensions, at most {} are supported", rank,
                           Shape::max_rank));
  unsigned char dims[4 * Shape::max_rank];
  const auto dim_bytes = static_cast<std::size_t>(4 * rank);
  const std::size_t got_dims = dec.read(dims, dim_bytes);
  if (got_dims < dim_bytes)
    fail(name, fmt::format("truncated: the header declares {} dimensions ({} bytes), found {} bytes", rank,
                           dim_bytes, got_dims));
  // Each dimension is below 2^32; the element count must fit in 63 bits, and so must the bytes.
  std::uint64_t count = 1;
  bool overflow = false;
  for (int i = 0; i < rank; ++i) {
    const std::uint32_t dim = big_endian_u32(dims + 4 * i);
    h.dims.push_back(dim);
    if (!overflow && __builtin_mul_overflow(count, std::uint64_t{dim}, &count)) overflow = true;
  }
  const std::uint64_t limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (overflow || count > limit / element_size(h.type))
    fail(name, fmt::format("the IDX header's dimensions {} of {} describe more bytes than any file holds",
                           dims_text(h.dims), idx_type_name(h.type)));
  data_bytes = count * element_size(h.type);
  return h;
}

template <class T> T decode(const unsigned char* p, IdxType type) {
  switch (type) {
  case IdxType::u8: return static_cast<T>(p[0]);
  case IdxType::i8: return static_cast<T>(static_cast<std::int8_t>(p[0]));
  case IdxType::i16: return static_cast<T>(static_cast<std::int16_t>((p[0] << 8) | p[1]));
  case IdxType::i32: return static_cast<T>(static_cast<std::int32_t>(big_endian_u32(p)));
  case IdxType::f32: return static_cast<T>(std::bit_cast<float>(big_endian_u32(p)));
  case IdxType::f64: {
    const std::uint64_t bits = (std::uint64_t{big_endian_u32(p)} << 32) | big_endian_u32(p + 4);
    return static_cast<T>(std::bit_cast<double>(bits));
  }
  }
  return T{};
}

/// Refuses data whose bytes and tensor would not fit in the machine's memory. Called once more than
/// the first chunk of data has arrived (a header claiming more than the file holds is, more exactly,
/// a truncated file): a gzip file can inflate to a thousand times its size, and the OOM killer would
/// otherwise end the process halfway through.
void check_fits_in_memory(const IdxHeader& h, std::uint64_t bytes, DType dtype, std::string_view name) {
  const std::uint64_t count = bytes / element_size(h.type);
  const double need =
      static_cast<double>(bytes) + static_cast<double>(count) * static_cast<double>(dtype_size(dtype));
  const auto memory = static_cast<double>(physical_memory());
  if (need > memory)
    throw ValueError(fmt::format("{}: the header's dimensions {} of {} need {:.3g} GB in memory as {}, more "
                                 "than this machine's {:.3g} GB",
                                 name, dims_text(h.dims), idx_type_name(h.type), need / 1e9,
                                 dtype_name(dtype), memory / 1e9));
}

/// Throws the FormatError for element i (flat) of a float IDX file, whose stored value is v.
[[noreturn]] void not_finite(const IdxHeader& h, std::size_t i, double v, DType dtype,
                             std::string_view name) {
  std::vector<std::int64_t> index(h.dims.size());
  for (std::size_t k = h.dims.size(), rest = i; k-- > 0;) {
    const auto dim = static_cast<std::size_t>(h.dims[k]);
    index[k] = static_cast<std::int64_t>(rest % dim);
    rest /= dim;
  }
  const std::string where =
      fmt::format("element {} (index {} of dimensions {})", i, dims_text(index), dims_text(h.dims));
  if (std::isfinite(v)) fail(name, fmt::format("{}: {} is out of the {} range", where, v, dtype_name(dtype)));
  fail(name, fmt::format("{}: {} is not a finite number (NaN and infinity are refused)", where, v));
}

/// Reads header and data; the data buffer grows only as bytes actually arrive.
Tensor read_all(ByteSource& in, std::string_view name, DType dtype, IdxHeader* header_out) {
  Decoder dec(in, name);
  std::uint64_t bytes = 0;
  IdxHeader h = read_header(dec, name, bytes);
  const std::uint64_t header_bytes = 4 + 4 * h.dims.size();
  if (const auto remaining = dec.plain_remaining(header_bytes)) {
    if (*remaining < bytes)
      fail(name, fmt::format("truncated: expected {} bytes of data, found {} (dimensions {} of {})", bytes,
                             *remaining, dims_text(h.dims), idx_type_name(h.type)));
    if (*remaining > bytes)
      fail(name, fmt::format("{} bytes of data, but the header's dimensions {} of {} need {}", *remaining,
                             dims_text(h.dims), idx_type_name(h.type), bytes));
  }
  std::vector<unsigned char> data;
  constexpr std::uint64_t first_chunk = 1 << 20;
  while (data.size() < bytes) {
    const std::size_t old = data.size();
    if (old == first_chunk) check_fits_in_memory(h, bytes, dtype, name);
    const auto next =
        static_cast<std::size_t>(std::min(bytes, std::max<std::uint64_t>(2 * old, first_chunk)));
    data.resize(next);
    const std::size_t got = dec.read(data.data() + old, next - old);
    if (got < next - old)
      fail(name, fmt::format("truncated: expected {} bytes of data, found {}", bytes, old + got));
  }
  unsigned char extra = 0;
  if (dec.read(&extra, 1) > 0)
    fail(name, fmt::format("more data than the header's dimensions {} of {} need ({} bytes)",
                           dims_text(h.dims), idx_type_name(h.type), bytes));
  if (dec.truncated_stream()) fail(name, "truncated gzip stream: the data ends before the gzip trailer");

  std::vector<std::int64_t> shape = h.dims;
  Tensor out = Tensor::empty(Shape(shape), dtype);
  const std::size_t size = element_size(h.type);
  const auto n = static_cast<std::size_t>(bytes / size);
  auto convert = [&](auto* dst) {
    using T = std::remove_pointer_t<decltype(dst)>;
    if (h.type == IdxType::u8) // images: a plain loop that vectorises (decode's switch costs 10x)
      for (std::size_t i = 0; i < n; ++i) dst[i] = static_cast<T>(data[i]);
    else
      for (std::size_t i = 0; i < n; ++i) dst[i] = decode<T>(data.data() + i * size, h.type);
    // Float data holding NaN or infinity (or, read as float32, a float64 beyond its range) is
    // refused, as the CSV reader refuses it: it would only surface later as a NaN loss.
    if (h.type == IdxType::f32 || h.type == IdxType::f64)
      for (std::size_t i = 0; i < n; ++i)
        if (!std::isfinite(dst[i]))
          not_finite(h, i, decode<double>(data.data() + i * size, h.type), dtype, name);
  };
  if (dtype == f64)
    convert(out.data<double>());
  else
    convert(out.data<float>());
  if (header_out) *header_out = std::move(h);
  return out;
}

Tensor read_idx_file(const std::string& path, DType dtype, IdxHeader* header) {
  ByteSource in = ByteSource::file(path);
  return read_all(in, path, dtype, header);
}

/// The path with ".gz" when that file exists, else without (the error then names the .gz one).
std::string mnist_file(const std::string& dir, const std::string& stem) {
  const std::filesystem::path base = std::filesystem::path(dir) / stem;
  const std::string gz = base.string() + ".gz";
  std::error_code ec;
  if (!std::filesystem::exists(gz, ec) && std::filesystem::exists(base, ec)) return base.string();
  return gz;
}

} // namespace
} // namespace detail

std::string_view idx_type_name(IdxType type) {
  switch (type) {
  case IdxType::u8: return "unsigned byte";
  case IdxType::i8: return "signed byte";
  case IdxType::i16: return "int16";
  case IdxType::i32: return "int32";
  case IdxType::f32: return "float32";
  case IdxType::f64: return "float64";
  }
  return "unknown";
}

Tensor read_idx(const std::string& path, DType dtype) {
  return detail::read_idx_file(path, dtype, nullptr);
}

IdxHeader read_idx_header(const std::string& path) {
  detail::ByteSource in = detail::ByteSource::file(path);
  detail::Decoder dec(in, path);
  std::uint64_t bytes = 0;
  return detail::read_header(dec, path, bytes);
}

Tensor parse_idx(std::span<const std::byte> bytes, std::string_view source_name, DType dtype) {
  detail::ByteSource in = detail::ByteSource::memory(
      std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()), std::string(source_name));
  return detail::read_all(in, source_name, dtype, nullptr);
}

Tensor scale_pixels(const Tensor& images) {
  return kernel::binary_scalar(kernel::Binary::div, images, 255.0);
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

namespace {
/// scale_pixels on images this code owns, without a second buffer of their size (188 MB for
/// Fashion-MNIST's training images in float32: as a freed temporary it filled the tensors' buffer cache
/// and pushed a training loop's buffers out; docs/performance.md, convolutions' third round).
void scale_pixels_in_place(Tensor& images) {
  const auto scale = [&](auto* p) {
    using T = std::remove_pointer_t<decltype(p)>;
    for (std::int64_t i = 0; i < images.numel(); ++i) p[i] = p[i] / static_cast<T>(255.0);
  };
  if (images.dtype() == f32)
    scale(images.data<float>());
  else if (images.dtype() == f64)
    scale(images.data<double>());
  else
    images = scale_pixels(images);
}
} // namespace

Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path, DType dtype) {
  // Labels first: they are small, and a wrong path fails fast.
  IdxHeader lh, ih;
  Tensor labels = detail::read_idx_file(labels_path, f64, &lh);
  const bool integral =
      lh.type == IdxType::u8 || lh.type == IdxType::i8 || lh.type == IdxType::i16 || lh.type == IdxType::i32;
  if (!integral || lh.dims.size() != 1)
    detail::fail(labels_path, fmt::format("expected class ids as a 1-d array of integers, found {} of {}",
                                          detail::dims_text(lh.dims), idx_type_name(lh.type)));
  if (labels.numel() == 0) detail::fail(labels_path, "no labels: the dataset is empty");
  const double* y = labels.data<double>();
  double top = -1;
  for (std::int64_t i = 0; i < labels.numel(); ++i) {
    if (y[i] < 0 || y[i] > 1e6)
      detail::fail(labels_path,
                   fmt::format("label {} of entry {} is not a class id (0 to 1000000)", y[i], i));
    top = std::max(top, y[i]);
  }
  Tensor images = detail::read_idx_file(images_path, dtype, &ih);
  if (ih.dims.empty())
    detail::fail(images_path, "expected one example per entry of the first dimension, found a 0-d array");
  if (ih.dims[0] != lh.dims[0])
    detail::fail(images_path,
                 fmt::format("{} images but {} labels in '{}'", ih.dims[0], lh.dims[0], labels_path));
  std::int64_t features = 1;
  for (std::size_t i = 1; i < ih.dims.size(); ++i) features *= ih.dims[i];
  Dataset ds;
  ds.x = images.reshape({ih.dims[0], features});
  if (ih.type == IdxType::u8) scale_pixels_in_place(ds.x);
  ds.y = labels;
  ds.num_classes = static_cast<std::int64_t>(top) + 1;
  return ds;
}

Dataset load_mnist(const std::string& dir, bool train, DType dtype) {
  const std::string prefix = train ? "train" : "t10k";
  const std::string images_path = detail::mnist_file(dir, prefix + "-images-idx3-ubyte");
  const std::string labels_path = detail::mnist_file(dir, prefix + "-labels-idx1-ubyte");
  // The headers first, labels before images (small, and a wrong directory fails fast).
  const IdxHeader lh = read_idx_header(labels_path);
  if (lh.type != IdxType::u8 || lh.dims.size() != 1)
    detail::fail(labels_path, fmt::format("expected labels as 1-d unsigned bytes, found {} of {}",
                                          detail::dims_text(lh.dims), idx_type_name(lh.type)));
  const IdxHeader ih = read_idx_header(images_path);
  if (ih.type != IdxType::u8 || ih.dims.size() != 3)
    detail::fail(images_path,
                 fmt::format("expected images as 3-d unsigned bytes [n, rows, cols], found {} of {}",
                             detail::dims_text(ih.dims), idx_type_name(ih.type)));
  return load_idx_dataset(images_path, labels_path, dtype);
}

Dataset load_fashion_mnist(const std::string& dir, bool train, DType dtype) {
  Dataset ds;
  try {
    ds = load_mnist(dir, train, dtype);
  } catch (const IOError& e) {
    throw IOError(fmt::format("{} (Fashion-MNIST: Debian's dataset-fashion-mnist package installs it in {})",
                              e.what(), fashion_mnist_dir));
  }
  ds.class_names = fashion_mnist_classes();
  ds.num_classes = static_cast<std::int64_t>(ds.class_names.size());
  return ds;
}

} // namespace gg::data
