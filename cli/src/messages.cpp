// printable() and number_hint(): a UTF-8 decoder that escapes what a terminal would misread, and
// the two spellings of numbers people copy from documents; parse_number: std::from_chars over the
// whole text (locale-independent), with messages that name what the option takes.
#include "messages.hpp"

#include <cli/cli.hpp>

#include <autodiff/error.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <new>
#include <type_traits>
#include <vector>

#include <fmt/format.h>

namespace gg::cli {

namespace {
/// " (use a dot for decimals: 0.5)" for a number spelled as documents spell it, or "".
std::string hint(const std::string& text) {
  const std::string h = number_hint(text);
  return h.empty() ? h : " (" + h + ")";
}
} // namespace

std::size_t utf8_sequence(std::string_view s, std::size_t i, char32_t& cp) {
  const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = b(0);
  if (c < 0x80) return cp = c, 1;
  std::size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 0;
  if (n == 0 || c > 0xF4 || i + n > s.size()) return 0;
  cp = c & (0x7F >> n);
  for (std::size_t k = 1; k < n; ++k) {
    if ((b(k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(k) & 0x3F);
  }
  const char32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < min[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

namespace {

/// One line made printable, as a list of characters (each one UTF-8 sequence or one escape).
std::vector<std::string> printable_chars(std::string_view line) {
  std::vector<std::string> chars;
  for (std::size_t i = 0; i < line.size();) {
    char32_t cp = 0;
    const std::size_t n = utf8_sequence(line, i, cp);
    if (n == 0) {
      chars.push_back(fmt::format("\\x{:02x}", static_cast<unsigned char>(line[i])));
      ++i;
      continue;
    }
    if (cp == '\t')
      chars.emplace_back("\\t");
    else if (cp == '\r')
      chars.emplace_back("\\r");
    else if (cp < 0x20 || cp == 0x7F)
      chars.push_back(fmt::format("\\x{:02x}", static_cast<unsigned>(cp)));
    else if (cp >= 0x80 && cp < 0xA0)
      chars.push_back(fmt::format("\\u{:04x}", static_cast<unsigned>(cp)));
    else
      chars.emplace_back(line.substr(i, n));
    i += n;
  }
  return chars;
}

} // namespace

std::string printable(std::string_view message) {
  std::string out;
  std::size_t at = 0;
  for (std::size_t line = 0; at < message.size(); ++line) {
    const std::size_t nl = message.find('\n', at), end = nl == std::string_view::npos ? message.size() : nl;
    if (line == k_max_message_lines) {
      const std::string_view rest = message.substr(at);
      const auto more = std::count(rest.begin(), rest.end(), '\n') + (rest.back() == '\n' ? 0 : 1);
      out += fmt::format("… ({} more lines)", more);
      break;
    }
    const std::vector<std::string> chars = printable_chars(message.substr(at, end - at));
    if (chars.size() <= k_max_message_line) {
      for (const std::string& c : chars) out += c;
    } else {
      const std::size_t keep = k_max_message_line / 2 - 20;
      for (std::size_t i = 0; i < keep; ++i) out += chars[i];
      out += fmt::format(" … ({} characters left out) … ", chars.size() - 2 * keep);
      for (std::size_t i = chars.size() - keep; i < chars.size(); ++i) out += chars[i];
    }
    if (nl != std::string_view::npos) out += '\n';
    at = end + 1;
  }
  return out;
}

std::string number_hint(std::string_view text) {
  struct Dash {
    std::string_view text;
    unsigned code;
  };
  static constexpr Dash dashes[] = {{"\u2212", 0x2212}, {"\u2012", 0x2012}, {"\u2013", 0x2013},
                                    {"\u2014", 0x2014}, {"\uFE63", 0xFE63}, {"\uFF0D", 0xFF0D}};
  for (const Dash& dash : dashes)
    if (text.find(dash.text) != std::string_view::npos) {
      std::string fixed;
      for (std::size_t i = 0; i < text.size();) {
        const bool is_dash = text.substr(i, dash.text.size()) == dash.text;
        fixed += is_dash ? '-' : text[i];
        i += is_dash ? dash.text.size() : 1;
      }
      return fmt::format("use the ASCII '-' for minus, not '{}' (U+{:04X}): {}", dash.text, dash.code, fixed);
    }
  const std::size_t comma = text.find(',');
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (comma != std::string_view::npos && comma > 0 && comma + 1 < text.size() && digit(text[comma - 1]) &&
      digit(text[comma + 1]) && text.find(',', comma + 1) == std::string_view::npos) {
    std::string fixed(text);
    fixed[comma] = '.';
    return "use a dot for decimals: " + fixed;
  }
  return {};
}

double parse_value(const std::string& what, std::string_view text) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  double value = 0;
  const auto r = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || r.ptr != text.data() + text.size() ||
      (r.ec != std::errc() && r.ec != std::errc::result_out_of_range)) {
    const std::string hint = number_hint(text);
    throw UsageError(fmt::format("'{}': not a number{}", what, hint.empty() ? "" : " (" + hint + ")"));
  }
  if (r.ec == std::errc::result_out_of_range) {
    value = std::strtod(std::string(text).c_str(), nullptr); // underflow: 0 or a subnormal
    if (std::isinf(value)) throw UsageError(fmt::format("'{}': the number is too large for a double", what));
  }
  return value;
}

template <class T> T parse_number(const std::string& option, const std::string& text) {
  std::string_view body = text;
  if (body.size() > 1 && body[0] == '+' && body[1] != '-' && body[1] != '+') body.remove_prefix(1);
  T value{};
  const auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), value);
  const bool whole = !body.empty() && ec == std::errc() && end == body.data() + body.size();
  if constexpr (std::is_floating_point_v<T>) {
    if (whole && std::isnan(value))
      throw UsageError(fmt::format("{} '{}': NaN is not a value this option takes", option, text));
    if (ec == std::errc::result_out_of_range && end == body.data() + body.size())
      throw UsageError(fmt::format("{} '{}': out of the range of a double", option, text));
    if (!whole) throw UsageError(fmt::format("{} '{}': not a number{}", option, text, hint(text)));
  } else {
    if (!whole && std::is_unsigned_v<T>)
      throw UsageError(fmt::format("{} '{}': not a whole number from 0 to {}", option, text,
                                   std::numeric_limits<T>::max()));
    if (!whole && ec == std::errc::result_out_of_range)
      throw UsageError(fmt::format("{} '{}': out of the range of this option", option, text));
    if (!whole) throw UsageError(fmt::format("{} '{}': not a whole number{}", option, text, hint(text)));
  }
  return value;
}

template int parse_number<int>(const std::string&, const std::string&);
template std::int64_t parse_number<std::int64_t>(const std::string&, const std::string&);
template std::uint64_t parse_number<std::uint64_t>(const std::string&, const std::string&);
template double parse_number<double>(const std::string&, const std::string&);

int exit_code_of(const std::exception& e) {
  if (dynamic_cast<const UsageError*>(&e)) return usage_error;
  if (dynamic_cast<const FormatError*>(&e)) return format_error;
  if (dynamic_cast<const IOError*>(&e)) return io_error;
  if (dynamic_cast<const ShapeError*>(&e)) return shape_error;
  if (dynamic_cast<const ValueError*>(&e)) return value_error;
  if (dynamic_cast<const std::bad_alloc*>(&e)) return out_of_memory;
  return internal_error;
}

const char* kind_of(int code) {
  switch (code) {
  case usage_error: return "usage";
  case format_error: return "format";
  case io_error: return "io";
  case shape_error: return "shape";
  case value_error: return "value";
  case out_of_memory: return "out_of_memory";
  default: return "internal";
  }
}

} // namespace gg::cli
