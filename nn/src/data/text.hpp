// Internal to the data readers: quoting a piece of (possibly binary, possibly huge) input for an
// error message.
#pragma once

#include <string>
#include <string_view>

#include <fmt/format.h>

namespace gg::data::detail {

/// 's' in single quotes, at most 40 characters (then "..."), control and non-ASCII bytes as \xNN.
inline std::string quote_text(std::string_view s) {
  constexpr std::size_t shown = 40;
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < shown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c >= 0x7f)
      out += fmt::format("\\x{:02x}", c);
    else
      out += static_cast<char>(c);
  }
  if (s.size() > shown) out += "...";
  return out + "'";
}

} // namespace gg::data::detail
