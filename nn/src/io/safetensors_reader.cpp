// gg::safetensors' reader: the header's JSON read by nlohmann-json's parser and checked event by
// event, checks of every size and offset against the file, then one read per tensor straight into
// its storage, converting other stored dtypes.
#include "../data/text.hpp"
#include "byte_source.hpp"
#include "safetensors_format.hpp"

#include <nn/io/safetensors.hpp>

#include <iterator>
#include <limits>
#include <set>
#include <span>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

namespace gg::safetensors {

namespace detail {
namespace {

using gg::detail::ByteSource;

// ---------------------------------------------------------------------------------------------------
// Reading: the header's JSON
//
// nlohmann-json's parser, driven through its SAX interface: its events build only what the reader
// keeps (names, dtypes, shapes, offsets, metadata), every value's type is checked as it arrives,
// and nesting is bounded (max_depth), so a header of ten million '[' (well under the 100 MB limit)
// is an error after 64 of them, not a deep DOM. The parser is iterative; syntax errors come from it
// with the byte where it stopped.

struct Entry {
  std::string name;
  std::string dtype;
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0, end = 0;
};

struct Header {
  std::vector<Entry> entries;
  std::map<std::string, std::string> metadata;
};

/// An iterator over the header's bytes for the JSON parser that remembers the last byte read, so
/// an error found by the event handler can say where the parser was.
class TrackingIterator {
public:
  using iterator_category = std::input_iterator_tag;
  using value_type = char;
  using difference_type = std::ptrdiff_t;
  using pointer = const char*;
  using reference = const char&;

  TrackingIterator(const char* p, const char** last) : p_(p), last_(last) {}
  reference operator*() const {
    *last_ = p_;
    return *p_;
  }
  TrackingIterator& operator++() {
    ++p_;
    return *this;
  }
  TrackingIterator operator++(int) {
    TrackingIterator old = *this;
    ++p_;
    return old;
  }
  bool operator==(const TrackingIterator& other) const { return p_ == other.p_; }

private:
  const char* p_;
  const char** last_;
};

/// The SAX handler: checks the header's schema event by event and collects the Header.
class HeaderEvents {
public:
  using json = nlohmann::json;

  HeaderEvents(std::string_view json_text, std::string_view file)
      : begin_(json_text.data()), last_(json_text.data()), file_(file) {}

  Header parse(std::string_view json_text) {
    // The first value must be an object; said at once rather than as a parser's complaint.
    const std::size_t first = json_text.find_first_not_of(" \t\n\r");
    if (first == std::string_view::npos || json_text[first] != '{') {
      last_ = begin_ + std::min(first, json_text.size());
      fail("the header must be a JSON object");
    }
    const char* end = json_text.data() + json_text.size();
    json::sax_parse(TrackingIterator(begin_, &last_), TrackingIterator(end, &last_), this);
    return std::move(header_);
  }

  // The SAX interface.
  bool null() { return scalar(Value::null); }
  bool boolean(bool) { return scalar(Value::other); }
  bool number_integer(json::number_integer_t v) {
    return v < 0 ? number(fmt::format("{}", v), false) : unsigned_number(static_cast<std::uint64_t>(v));
  }
  bool number_unsigned(json::number_unsigned_t v) { return unsigned_number(v); }
  bool number_float(json::number_float_t, const std::string& text) {
    return number(text, text.find_first_of(".eE") == std::string::npos);
  }
  bool string(std::string& s) { return scalar(Value::string, &s); }
  bool binary(json::binary_t&) { return scalar(Value::other); }
  bool start_object(std::size_t) { return open(true); }
  bool end_object() { return close(); }
  bool start_array(std::size_t) { return open(false); }
  bool end_array() { return close(); }
  bool key(std::string& k);
  bool parse_error(std::size_t position, const std::string& last_token, const nlohmann::json::exception& e);

private:
  static constexpr std::size_t max_depth = 64;
  static constexpr std::size_t max_parsed_rank = 64;

  /// What an open object or array is.
  enum class Level : std::uint8_t { header, entry, metadata, shape, data_offsets, skipped };
  enum class Value : std::uint8_t { null, string, number, other };
  /// What the current key names: in the header a tensor or the metadata, in an entry a field.
  enum class Key : std::uint8_t { tensor, metadata, dtype, shape, data_offsets, other };

  [[noreturn]] void fail(std::string_view what) const {
    format_error(file_, fmt::format("invalid header: {} (at byte {} of the header)", what, last_ - begin_));
  }

  const std::string& tensor() const { return entry_.name; }
  bool in(Level level) const { return !levels_.empty() && levels_.back() == level; }

  /// A value that is not an object or array arrived; `s` is set for strings.
  bool scalar(Value v, std::string* s = nullptr);
  bool unsigned_number(std::uint64_t v);
  /// A number that is not a non-negative integer below 2^64 (text as written); integral says
  /// whether it has no fraction and no exponent.
  bool number(const std::string& text, bool integral);
  bool open(bool object);
  bool close();
  /// The message for a value of the wrong type where the current key's value goes.
  [[noreturn]] void wrong_value();

  const char* begin_;
  const char* last_;
  std::string_view file_;
  std::vector<Level> levels_;
  std::string key_; // the key whose value comes next, in the header, an entry or the metadata
  Key kind_ = Key::other;
  Entry entry_; // the entry being read
  bool has_dtype_ = false, has_shape_ = false, has_offsets_ = false, has_metadata_ = false;
  std::vector<std::uint64_t> numbers_; // the shape or data_offsets being read
  std::set<std::string> names_;
  Header header_;
};

bool HeaderEvents::key(std::string& k) {
  kind_ = Key::other;
  if (in(Level::header)) {
    kind_ = k == "__metadata__" ? Key::metadata : Key::tensor;
    if (kind_ == Key::metadata) {
      if (has_metadata_) fail("the header has two \"__metadata__\" entries");
      has_metadata_ = true;
    } else if (!names_.insert(k).second) {
      fail(fmt::format("two tensors are named '{}'", k));
    }
  } else if (in(Level::entry)) {
    auto once = [&](bool& seen, Key kind) {
      if (seen) fail(fmt::format("field \"{}\" of tensor '{}' appears twice", k, tensor()));
      seen = true;
      kind_ = kind;
    };
    if (k == "dtype") once(has_dtype_, Key::dtype);
    if (k == "shape") once(has_shape_, Key::shape);
    if (k == "data_offsets") once(has_offsets_, Key::data_offsets);
  } else if (in(Level::metadata)) {
    if (header_.metadata.count(k)) fail("duplicate key in \"__metadata__\"");
  }
  key_ = std::move(k);
  return true;
}

void HeaderEvents::wrong_value() {
  if (in(Level::header)) {
    if (kind_ == Key::metadata) fail("\"__metadata__\" must be an object mapping strings to strings");
    fail(fmt::format("the entry of tensor '{}' must be an object with dtype, shape and data_offsets", key_));
  }
  if (in(Level::entry))
    fail(fmt::format("field \"{}\" of tensor '{}' must be {}", key_, tensor(),
                     kind_ == Key::dtype ? "a string" : "an array"));
  if (in(Level::metadata)) fail(fmt::format("metadata value '{}' must be a string", key_));
  fail(fmt::format("an entry of \"{}\" of tensor '{}' must be a non-negative integer",
                   in(Level::shape) ? "shape" : "data_offsets", tensor()));
}

bool HeaderEvents::scalar(Value v, std::string* s) {
  if (in(Level::skipped)) return true;
  if (in(Level::header) && kind_ == Key::metadata && v == Value::null) return true; // as absent
  if (in(Level::entry) && kind_ == Key::other) return true;
  if (v != Value::string) wrong_value();
  if (in(Level::entry) && kind_ == Key::dtype) {
    entry_.dtype = std::move(*s);
    return true;
  }
  if (in(Level::metadata)) {
    header_.metadata.emplace(std::move(key_), std::move(*s));
    return true;
  }
  wrong_value();
}

bool HeaderEvents::unsigned_number(std::uint64_t v) {
  if (!in(Level::shape) && !in(Level::data_offsets)) return scalar(Value::number);
  const bool shape = in(Level::shape);
  const std::size_t max_len = shape ? max_parsed_rank : 3; // plan() enforces Shape::max_rank
  if (numbers_.size() == max_len)
    fail(fmt::format("field \"{}\" of tensor '{}' has more than {} entries", shape ? "shape" : "data_offsets",
                     tensor(), max_len));
  numbers_.push_back(v);
  return true;
}

bool HeaderEvents::number(const std::string& text, bool integral) {
  if (!in(Level::shape) && !in(Level::data_offsets)) return scalar(Value::number);
  const std::string what =
      fmt::format("an entry of \"{}\" of tensor '{}'", in(Level::shape) ? "shape" : "data_offsets", tensor());
  if (text.starts_with('-')) fail(fmt::format("{} is negative ({})", what, text));
  if (!integral) fail(fmt::format("{} must be an integer, not {}", what, text));
  fail(fmt::format("{} is too large ({})", what, text));
}

bool HeaderEvents::open(bool object) {
  if (levels_.size() == max_depth) fail(fmt::format("values nested deeper than {} levels", max_depth));
  Level next = Level::skipped;
  if (levels_.empty()) {
    next = Level::header; // parse() checked that it is an object
  } else if (in(Level::header)) {
    if (!object) wrong_value();
    if (kind_ == Key::metadata) {
      next = Level::metadata;
    } else {
      next = Level::entry;
      entry_ = Entry{key_, {}, {}, 0, 0};
      has_dtype_ = has_shape_ = has_offsets_ = false;
    }
  } else if (in(Level::entry)) {
    if (kind_ == Key::dtype || (kind_ != Key::other && object)) wrong_value();
    if (kind_ != Key::other) {
      next = kind_ == Key::shape ? Level::shape : Level::data_offsets;
      numbers_.clear();
    }
  } else if (!in(Level::skipped)) {
    wrong_value(); // an object or array inside the metadata, a shape or data_offsets
  }
  levels_.push_back(next);
  return true;
}

bool HeaderEvents::close() {
  const Level level = levels_.back();
  levels_.pop_back();
  if (level == Level::shape) {
    entry_.shape = std::move(numbers_);
  } else if (level == Level::data_offsets) {
    if (numbers_.size() != 2)
      fail(fmt::format("field \"data_offsets\" of tensor '{}' must hold two integers [begin, end], not {}",
                       tensor(), numbers_.size()));
    entry_.begin = numbers_[0];
    entry_.end = numbers_[1];
  } else if (level == Level::entry) {
    const std::array<std::pair<bool, std::string_view>, 3> fields{
        {{has_dtype_, "dtype"}, {has_shape_, "shape"}, {has_offsets_, "data_offsets"}}};
    for (const auto& [present, field] : fields)
      if (!present) fail(fmt::format("tensor '{}' has no field \"{}\"", tensor(), field));
    header_.entries.push_back(std::move(entry_));
  }
  return true;
}

bool HeaderEvents::parse_error(std::size_t position, const std::string& last_token,
                               const nlohmann::json::exception& e) {
  // e.what() is "[json.exception.parse_error.101] parse error at line 1, column 5: syntax error ...":
  // keep what follows the position, with the token it echoes quoted safely and cut short.
  std::string what = e.what();
  const std::size_t colon = what.find(": ");
  if (colon != std::string::npos) what.erase(0, colon + 2);
  const std::string echoed = "last read: '" + last_token + "'";
  if (const std::size_t at = what.find(echoed); at != std::string::npos)
    what.replace(at, echoed.size(), "last read: " + gg::data::detail::quote_text(last_token));
  last_ = begin_ + (position > 0 ? position - 1 : 0);
  fail(what);
}

// ---------------------------------------------------------------------------------------------------
// Reading: checks and conversion

struct Planned {
  const Entry* entry;
  const StoredTypeInfo* type;
  Shape shape;
};

/// Checks every entry's dtype, shape and offsets, and that the tensors tile the data buffer exactly.
std::vector<Planned> plan(const Header& h, std::uint64_t buffer_size, std::string_view file) {
  std::vector<Planned> out;
  out.reserve(h.entries.size());
  for (const Entry& e : h.entries) {
    const auto* type = std::find_if(stored_types.begin(), stored_types.end(),
                                    [&](const StoredTypeInfo& t) { return t.name == e.dtype; });
    if (type == stored_types.end()) {
      if (std::find(unsupported_types.begin(), unsupported_types.end(), e.dtype) != unsupported_types.end())
        format_error(file,
                     fmt::format("tensor '{}' has dtype {}, which gradgraph cannot load (it reads F64, F32, "
                                 "F16, BF16, I64, I32, I16, I8, U64, U32, U16, U8 and BOOL)",
                                 e.name, e.dtype));
      format_error(file, fmt::format("tensor '{}' has an unknown dtype \"{}\"", e.name, e.dtype));
    }
    if (e.shape.size() > static_cast<std::size_t>(Shape::max_rank))
      format_error(file, fmt::format("tensor '{}' has rank {}; gradgraph supports at most {}", e.name,
                                     e.shape.size(), Shape::max_rank));
    constexpr auto int64_max = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    std::uint64_t numel = 1;
    bool overflow = false;
    for (const std::uint64_t d : e.shape) {
      if (d > int64_max || (d != 0 && numel > int64_max / d))
        overflow = true;
      else
        numel *= d;
    }
    const std::string shape_text = fmt::format("[{}]", fmt::join(e.shape, ", "));
    if (overflow || numel > int64_max / type->size)
      format_error(file, fmt::format("tensor '{}': the size of shape {} overflows", e.name, shape_text));
    if (e.end < e.begin)
      format_error(file, fmt::format("tensor '{}': data_offsets [{}, {}] end before they begin", e.name,
                                     e.begin, e.end));
    const std::uint64_t bytes = numel * type->size;
    if (e.end - e.begin != bytes)
      format_error(file,
                   fmt::format("tensor '{}': data_offsets [{}, {}] span {} bytes, but dtype {} and shape {} "
                               "need {}",
                               e.name, e.begin, e.end, e.end - e.begin, e.dtype, shape_text, bytes));
    std::vector<std::int64_t> dims(e.shape.begin(), e.shape.end());
    out.push_back({&e, type, Shape(dims)});
  }

  std::stable_sort(out.begin(), out.end(), [](const Planned& a, const Planned& b) {
    return std::pair(a.entry->begin, a.entry->end) < std::pair(b.entry->begin, b.entry->end);
  });
  std::uint64_t covered = 0;
  const Entry* previous = nullptr;
  for (const Planned& p : out) {
    const Entry& e = *p.entry;
    if (e.begin > covered)
      format_error(file, fmt::format("bytes [{}, {}) of the data buffer belong to no tensor (a gap before "
                                     "tensor '{}'); the buffer must be covered exactly",
                                     covered, e.begin, e.name));
    if (e.begin < covered)
      format_error(file, fmt::format("tensor '{}' (data_offsets [{}, {}]) overlaps tensor '{}' (data_offsets "
                                     "[{}, {}])",
                                     e.name, e.begin, e.end, previous->name, previous->begin, previous->end));
    if (e.end > buffer_size)
      format_error(file,
                   fmt::format("the file is truncated: tensor '{}' (data_offsets [{}, {}]) ends past the "
                               "end of the data buffer, which holds {} bytes",
                               e.name, e.begin, e.end, buffer_size));
    covered = e.end;
    previous = &e;
  }
  if (covered != buffer_size)
    format_error(file,
                 fmt::format("the data buffer holds {} bytes but the tensors cover only {}; the {} bytes "
                             "after the last tensor belong to no tensor",
                             buffer_size, covered, buffer_size - covered));
  return out;
}

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1F;
  std::uint32_t mant = h & 0x3FF;
  std::uint32_t bits = 0;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000 | (mant << 13); // inf or nan
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant != 0) { // subnormal: normalise
    std::uint32_t e = 113;
    while (!(mant & 0x400)) mant <<= 1, --e;
    bits = sign | (e << 23) | ((mant & 0x3FF) << 13);
  } else {
    bits = sign;
  }
  return std::bit_cast<float>(bits);
}

/// The little-endian unsigned integer of N bytes at p.
template <std::size_t N> std::uint64_t load_le(const unsigned char* p) {
  std::uint64_t v = 0;
  for (std::size_t k = 0; k < N; ++k) v |= static_cast<std::uint64_t>(p[k]) << (8 * k);
  return v;
}

/// Converts n stored elements at src into dst (float for F16/BF16, double for the integer types).
void convert(StoredType type, const unsigned char* src, std::size_t n, void* dst) {
  auto* f = static_cast<float*>(dst);
  auto* d = static_cast<double*>(dst);
  switch (type) {
  case StoredType::f16:
    for (std::size_t k = 0; k < n; ++k)
      f[k] = half_to_float(static_cast<std::uint16_t>(load_le<2>(src + 2 * k)));
    break;
  case StoredType::bf16:
    for (std::size_t k = 0; k < n; ++k)
      f[k] = std::bit_cast<float>(static_cast<std::uint32_t>(load_le<2>(src + 2 * k)) << 16);
    break;
  case StoredType::i64:
    for (std::size_t k = 0; k < n; ++k)
      d[k] = static_cast<double>(static_cast<std::int64_t>(load_le<8>(src + 8 * k)));
    break;
  case StoredType::i32:
    for (std::size_t k = 0; k < n; ++k)
      d[k] = static_cast<std::int32_t>(static_cast<std::uint32_t>(load_le<4>(src + 4 * k)));
    break;
  case StoredType::i16:
    for (std::size_t k = 0; k < n; ++k)
      d[k] = static_cast<std::int16_t>(static_cast<std::uint16_t>(load_le<2>(src + 2 * k)));
    break;
  case StoredType::i8:
    for (std::size_t k = 0; k < n; ++k) d[k] = static_cast<std::int8_t>(src[k]);
    break;
  case StoredType::u64:
    for (std::size_t k = 0; k < n; ++k) d[k] = static_cast<double>(load_le<8>(src + 8 * k));
    break;
  case StoredType::u32:
    for (std::size_t k = 0; k < n; ++k) d[k] = static_cast<double>(load_le<4>(src + 4 * k));
    break;
  case StoredType::u16:
    for (std::size_t k = 0; k < n; ++k) d[k] = static_cast<double>(load_le<2>(src + 2 * k));
    break;
  case StoredType::u8:
    for (std::size_t k = 0; k < n; ++k) d[k] = src[k];
    break;
  case StoredType::boolean:
    for (std::size_t k = 0; k < n; ++k) d[k] = src[k] != 0 ? 1.0 : 0.0;
    break;
  case StoredType::f64:
  case StoredType::f32: break; // read directly, never converted
  }
}

/// Reads one checked tensor from the data buffer that starts at data_start in src.
Tensor read_tensor(const ByteSource& src, std::uint64_t data_start, const Planned& p) {
  const StoredType type = p.type->type;
  const DType dtype =
      type == StoredType::f32 || type == StoredType::f16 || type == StoredType::bf16 ? gg::f32 : gg::f64;
  Tensor t = Tensor::empty(p.shape, dtype);
  const auto n = static_cast<std::size_t>(t.numel());
  const std::uint64_t offset = data_start + p.entry->begin;
  if (type == StoredType::f64 || type == StoredType::f32) {
    src.read_at(offset, n * p.type->size, t.raw());
    if constexpr (big_endian_host) {
      if (dtype == gg::f64)
        for (auto& v : std::span(t.data<double>(), n)) v = byteswap_value(v);
      else
        for (auto& v : std::span(t.data<float>(), n)) v = byteswap_value(v);
    }
    return t;
  }
  // Other dtypes are converted in chunks, so the staging buffer stays small.
  constexpr std::size_t chunk = 1 << 16;
  std::vector<unsigned char> staging(std::min(n, chunk) * p.type->size);
  auto* out = static_cast<unsigned char*>(t.raw());
  for (std::size_t done = 0; done < n;) {
    const std::size_t m = std::min(chunk, n - done);
    src.read_at(offset + done * p.type->size, m * p.type->size, staging.data());
    convert(type, staging.data(), m, out + done * dtype_size(dtype));
    done += m;
  }
  return t;
}

File read_all(const ByteSource& src) {
  const std::string& file = src.name();
  const std::uint64_t size = *src.size(); // known: memory or a regular file (Access::random)
  if (size < 8)
    format_error(file, fmt::format("the file is {} bytes long, shorter than the 8-byte header length", size));
  std::array<unsigned char, 8> prefix{};
  src.read_at(0, 8, prefix.data());
  const std::uint64_t n = load_le<8>(prefix.data());
  if (n > max_header_bytes)
    format_error(file,
                 fmt::format("the header length {} exceeds the limit of {} bytes", n, max_header_bytes));
  if (n > size - 8)
    format_error(file, fmt::format("the header length {} is larger than the rest of the file ({} bytes): the "
                                   "file is truncated or not a safetensors file",
                                   n, size - 8));
  std::string json(static_cast<std::size_t>(n), '\0');
  src.read_at(8, json.size(), json.data());
  const Header header = HeaderEvents(json, file).parse(json);
  const std::vector<Planned> planned = plan(header, size - 8 - n, file);

  File out;
  out.path = file;
  out.metadata = header.metadata;
  out.tensors.reserve(planned.size());
  for (const Planned& p : planned) out.tensors.emplace_back(p.entry->name, read_tensor(src, 8 + n, p));
  return out;
}

} // namespace
} // namespace detail

File load(const std::string& path) {
  using gg::detail::ByteSource;
  return detail::read_all(ByteSource::file(path, ByteSource::Access::random, "safetensors file"));
}

File parse(std::string_view bytes, const std::string& source) {
  return detail::read_all(gg::detail::ByteSource::memory(bytes, source));
}

} // namespace gg::safetensors
