// gg::safetensors' reader: a strict parser for the header's JSON, checks of every size and offset
// against the file, then one read per tensor straight into its storage, converting other stored
// dtypes.
#include "byte_source.hpp"
#include "safetensors_format.hpp"

#include <nn/io/safetensors.hpp>

#include <limits>
#include <set>
#include <span>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace gg::safetensors {

namespace detail {
namespace {

using gg::detail::ByteSource;

// ---------------------------------------------------------------------------------------------------
// Reading: the header's JSON
//
// A small strict parser, written for this schema, instead of Boost.PropertyTree's JSON parser, which
// cannot express the checks the format needs: PropertyTree keeps every scalar as a string, so
// `[2]` and `["2"]`, `true` and `"true"`, `[]`, `{}` and `""` come out identical and wrong-typed
// fields would pass; and its parser recurses once per nesting level without a limit, so a header of
// ten million '[' (well under the 100 MB limit) overflows the stack — measured: a segfault, which the
// fuzzer would find at once. This parser nests at most max_depth levels (only inside fields it
// skips), checks every type, and allocates only for what it keeps.

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

class HeaderParser {
public:
  HeaderParser(std::string_view json, std::string_view file) : s_(json), file_(file) {}

  Header parse() {
    Header h;
    skip_ws();
    if (peek() != '{') fail("the header must be a JSON object");
    ++i_;
    std::set<std::string> names;
    bool has_metadata = false;
    skip_ws();
    if (peek() == '}') {
      ++i_;
    } else {
      for (;;) {
        skip_ws();
        std::string key = parse_string("a tensor name");
        expect(':');
        if (key == "__metadata__") {
          if (has_metadata) fail("the header has two \"__metadata__\" entries");
          has_metadata = true;
          parse_metadata(h.metadata);
        } else {
          if (!names.insert(key).second) fail(fmt::format("two tensors are named '{}'", key));
          h.entries.push_back(parse_entry(std::move(key)));
        }
        if (!more('}', [] { return std::string("after a header entry"); })) break;
      }
    }
    skip_ws();
    if (i_ != s_.size()) fail("unexpected data after the header's JSON object");
    return h;
  }

private:
  static constexpr int max_depth = 64;
  static constexpr std::size_t max_parsed_rank = 64;

  /// After a member or element: true when a ',' says another follows, false after `close`; any other
  /// character fails with "expected ',' or 'close' <where()>".
  template <class Where> bool more(char close, Where&& where) {
    skip_ws();
    if (peek() == ',') {
      ++i_;
      skip_ws();
      return true;
    }
    if (peek() == close) {
      ++i_;
      return false;
    }
    const std::string w = where();
    fail(fmt::format("expected ',' or '{}'{}{}", close, w.empty() ? "" : " ", w));
  }

  [[noreturn]] void fail(std::string_view what) const {
    format_error(file_, fmt::format("invalid header: {} (at byte {} of the header)", what, i_));
  }

  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  bool at_end() const { return i_ >= s_.size(); }

  void skip_ws() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r')) ++i_;
  }

  void expect(char c) {
    skip_ws();
    if (at_end() || s_[i_] != c) fail(fmt::format("expected '{}'", c));
    ++i_;
  }

  unsigned parse_hex4() {
    if (s_.size() - i_ < 4) fail("truncated \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<unsigned>(c - 'A' + 10);
      else
        fail("invalid \\u escape");
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  /// A JSON string; `what` names the expected value in the error when something else is there.
  std::string parse_string(std::string_view what) {
    skip_ws();
    if (peek() != '"') fail(fmt::format("expected {} (a JSON string)", what));
    ++i_;
    std::string out;
    for (;;) {
      if (at_end()) fail("unterminated string");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (at_end()) fail("unterminated string");
      switch (s_[i_++]) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      case 'u': {
        unsigned cp = parse_hex4();
        if (cp >= 0xDC00 && cp <= 0xDFFF) fail("unpaired surrogate in a \\u escape");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (s_.size() - i_ < 2 || s_[i_] != '\\' || s_[i_ + 1] != 'u')
            fail("unpaired surrogate in a \\u escape");
          i_ += 2;
          const unsigned lo = parse_hex4();
          if (lo < 0xDC00 || lo > 0xDFFF) fail("unpaired surrogate in a \\u escape");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        append_utf8(out, cp);
        break;
      }
      default: fail("invalid escape in a string");
      }
    }
  }

  static bool is_digit(char c) { return c >= '0' && c <= '9'; }

  /// Scans one JSON number at i_ (which must start with '-' or a digit) by JSON's grammar; returns
  /// whether it is an integer (no fraction, no exponent).
  bool scan_number() {
    if (peek() == '-') ++i_;
    if (!is_digit(peek())) fail("invalid JSON number");
    const bool leading_zero = peek() == '0';
    const std::size_t first = i_;
    while (is_digit(peek())) ++i_;
    if (leading_zero && i_ - first > 1) fail("invalid JSON number (leading zero)");
    bool integral = true;
    if (peek() == '.') {
      integral = false;
      ++i_;
      if (!is_digit(peek())) fail("invalid JSON number");
      while (is_digit(peek())) ++i_;
    }
    if (peek() == 'e' || peek() == 'E') {
      integral = false;
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      if (!is_digit(peek())) fail("invalid JSON number");
      while (is_digit(peek())) ++i_;
    }
    return integral;
  }

  /// A JSON number that must be a non-negative integer below 2^64; `what` names it in errors.
  std::uint64_t parse_uint(std::string_view what) {
    skip_ws();
    const std::size_t start = i_;
    if (peek() != '-' && !is_digit(peek())) fail(fmt::format("{} must be a non-negative integer", what));
    const bool integral = scan_number();
    const std::string_view text = s_.substr(start, i_ - start);
    if (text[0] == '-' && !(integral && text == "-0")) fail(fmt::format("{} is negative ({})", what, text));
    if (!integral) fail(fmt::format("{} must be an integer, not {}", what, text));
    std::uint64_t v = 0;
    for (const char c : text.substr(text[0] == '-' ? 1 : 0)) {
      const auto d = static_cast<std::uint64_t>(c - '0');
      if (v > (std::numeric_limits<std::uint64_t>::max() - d) / 10)
        fail(fmt::format("{} is too large ({})", what, text));
      v = v * 10 + d;
    }
    return v;
  }

  /// Skips any JSON value (a field this reader does not use), nesting at most max_depth levels.
  void skip_value(int depth) {
    if (depth > max_depth) fail(fmt::format("values nested deeper than {} levels", max_depth));
    skip_ws();
    const char c = peek();
    if (c == '"') {
      parse_string("a value");
    } else if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++i_;
      skip_ws();
      if (peek() == close) {
        ++i_;
        return;
      }
      for (;;) {
        if (c == '{') {
          parse_string("an object key");
          expect(':');
        }
        skip_value(depth + 1);
        if (!more(close, [] { return std::string(); })) return;
      }
    } else if (c == '-' || is_digit(c)) {
      scan_number();
    } else if (!skip_literal("true") && !skip_literal("false") && !skip_literal("null")) {
      fail("invalid JSON value");
    }
  }

  bool skip_literal(std::string_view word) {
    if (s_.substr(i_, word.size()) != word) return false;
    i_ += word.size();
    return true;
  }

  void parse_metadata(std::map<std::string, std::string>& out) {
    skip_ws();
    if (skip_literal("null")) return; // the official reader treats a null __metadata__ as absent
    if (peek() != '{') fail("\"__metadata__\" must be an object mapping strings to strings");
    ++i_;
    skip_ws();
    if (peek() == '}') {
      ++i_;
      return;
    }
    for (;;) {
      std::string key = parse_string("a metadata key");
      expect(':');
      skip_ws();
      if (peek() != '"') fail(fmt::format("metadata value '{}' must be a string", key));
      std::string value = parse_string("a metadata value");
      if (!out.emplace(std::move(key), std::move(value)).second) fail("duplicate key in \"__metadata__\"");
      if (!more('}', [] { return std::string("in \"__metadata__\""); })) return;
    }
  }

  /// A JSON array of non-negative integers, at most max_len long.
  std::vector<std::uint64_t> parse_uint_array(const std::string& tensor, std::string_view field,
                                              std::size_t max_len) {
    skip_ws();
    if (peek() != '[') fail(fmt::format("field \"{}\" of tensor '{}' must be an array", field, tensor));
    ++i_;
    std::vector<std::uint64_t> out;
    skip_ws();
    if (peek() == ']') {
      ++i_;
      return out;
    }
    const std::string what = fmt::format("an entry of \"{}\" of tensor '{}'", field, tensor);
    for (;;) {
      if (out.size() == max_len)
        fail(fmt::format("field \"{}\" of tensor '{}' has more than {} entries", field, tensor, max_len));
      out.push_back(parse_uint(what));
      if (!more(']', [&] { return fmt::format("in field \"{}\" of tensor '{}'", field, tensor); }))
        return out;
    }
  }

  Entry parse_entry(std::string name) {
    Entry e;
    e.name = std::move(name);
    skip_ws();
    if (peek() != '{')
      fail(fmt::format("the entry of tensor '{}' must be an object with dtype, shape and data_offsets",
                       e.name));
    ++i_;
    bool has_dtype = false, has_shape = false, has_offsets = false;
    auto once = [&](bool& flag, std::string_view field) {
      if (flag) fail(fmt::format("field \"{}\" of tensor '{}' appears twice", field, e.name));
      flag = true;
    };
    skip_ws();
    if (peek() == '}') {
      ++i_;
    } else {
      for (;;) {
        const std::string key = parse_string("a field name");
        expect(':');
        if (key == "dtype") {
          once(has_dtype, key);
          skip_ws();
          if (peek() != '"') fail(fmt::format("field \"dtype\" of tensor '{}' must be a string", e.name));
          e.dtype = parse_string("the dtype");
        } else if (key == "shape") {
          once(has_shape, key);
          e.shape = parse_uint_array(e.name, key, max_parsed_rank); // plan() enforces Shape::max_rank
        } else if (key == "data_offsets") {
          once(has_offsets, key);
          const std::vector<std::uint64_t> offsets = parse_uint_array(e.name, key, 3);
          if (offsets.size() != 2)
            fail(fmt::format(
                "field \"data_offsets\" of tensor '{}' must hold two integers [begin, end], not {}", e.name,
                offsets.size()));
          e.begin = offsets[0];
          e.end = offsets[1];
        } else {
          skip_value(1); // the official reader ignores unknown fields; so do we
        }
        if (!more('}', [&] { return fmt::format("in the entry of tensor '{}'", e.name); })) break;
      }
    }
    const std::array<std::pair<bool, std::string_view>, 3> fields{
        {{has_dtype, "dtype"}, {has_shape, "shape"}, {has_offsets, "data_offsets"}}};
    for (const auto& [present, field] : fields)
      if (!present) fail(fmt::format("tensor '{}' has no field \"{}\"", e.name, field));
    return e;
  }

  std::string_view s_;
  std::string_view file_;
  std::size_t i_ = 0;
};

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
  if (!valid_utf8(json)) format_error(file, "invalid header: it is not valid UTF-8");
  const Header header = HeaderParser(json, file).parse();
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
