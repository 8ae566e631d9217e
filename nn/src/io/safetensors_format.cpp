// gg::safetensors: the format's shared pieces (the UTF-8 check, the FormatError text) and File's
// look-ups.
#include "safetensors_format.hpp"

#include <nn/io/safetensors.hpp>

#include <fmt/format.h>

namespace gg::safetensors {

namespace detail {

[[noreturn]] void format_error(std::string_view file, std::string_view what) {
  throw FormatError(fmt::format("safetensors file '{}': {}", file, what));
}

bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const std::size_t n = s.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF; // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF)
      len = 2;
    else if (c == 0xE0)
      len = 3, lo = 0xA0;
    else if (c >= 0xE1 && c <= 0xEC)
      len = 3;
    else if (c == 0xED)
      len = 3, hi = 0x9F;
    else if (c >= 0xEE && c <= 0xEF)
      len = 3;
    else if (c == 0xF0)
      len = 4, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3)
      len = 4;
    else if (c == 0xF4)
      len = 4, hi = 0x8F;
    else
      return false;
    if (n - i < len) return false;
    const auto c1 = static_cast<unsigned char>(s[i + 1]);
    if (c1 < lo || c1 > hi) return false;
    for (std::size_t k = 2; k < len; ++k) {
      const auto ck = static_cast<unsigned char>(s[i + k]);
      if (ck < 0x80 || ck > 0xBF) return false;
    }
    i += len;
  }
  return true;
}

} // namespace detail

const Tensor& File::at(std::string_view name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  std::string names;
  for (std::size_t k = 0; k < tensors.size() && k < 10; ++k)
    names += fmt::format("{}'{}'", k ? ", " : "", tensors[k].first);
  if (tensors.size() > 10) names += ", ...";
  throw ValueError(fmt::format("safetensors file '{}' has no tensor named '{}' (it has {})", path, name,
                               tensors.empty() ? std::string("none") : names));
}

bool File::contains(std::string_view name) const {
  return std::any_of(tensors.begin(), tensors.end(), [&](const auto& e) { return e.first == name; });
}

} // namespace gg::safetensors
