// What the command line prints about bad input: error messages made safe to print (invalid UTF-8 and
// control characters escaped, overlong lines and messages cut) and hints for numbers written the
// way a word processor or a European keyboard writes them ("0,5", "−2").
#pragma once

#include <cstddef>
#include <exception>
#include <string>
#include <string_view>

namespace gg::cli {

/// Longest line and most lines printable() keeps of a message.
inline constexpr std::size_t k_max_message_line = 400;
inline constexpr std::size_t k_max_message_lines = 40;

/// The message as it can be printed: control characters other than newlines written as \t, \r,
/// \xNN (C1 controls as \u0085), invalid UTF-8 bytes as \xNN, a line longer than
/// k_max_message_line characters cut in its middle ("… (N characters left out) …", so both the
/// echoed input's start and the reason after it stay), at most k_max_message_lines lines.
std::string printable(std::string_view message);

/// The length of the valid UTF-8 sequence starting at s[i] (1 to 4) and its code point; 0 when the
/// byte starts none (a stray continuation byte, an overlong form, a surrogate, a cut sequence).
std::size_t utf8_sequence(std::string_view s, std::size_t i, char32_t& code_point);

/// A hint for a number that did not parse, or "": "use a dot for decimals: 0.5" for "0,5" and
/// "use the ASCII '-' for minus: -2" for "−2" (U+2212 and the dashes a text editor puts there).
std::string number_hint(std::string_view text);

/// text as a double, read as explain reads an input's value (NAME=VALUE, a field of the browser
/// page): decimal or exponent form, a leading '+', "inf", "nan"; an underflow gives 0 or a
/// subnormal. UsageError "'what': not a number" (with number_hint's hint) or "'what': the number is
/// too large for a double".
double parse_value(const std::string& what, std::string_view text);

/// `text`, the value of `option` (e.g. "--seed"), as a T: int, std::int64_t, std::uint64_t or double.
/// Whole numbers: digits only (no exponent, no fraction) within T's range; reals: decimal or
/// exponent form, "inf" and "-inf" too (an option's own range check refuses them where they make
/// no sense). A UsageError naming the option, the text and what it takes otherwise.
template <class T> T parse_number(const std::string& option, const std::string& text);

/// The exit code (cli.hpp's Exit) for an exception that ends a command: one per gg::Error kind,
/// out_of_memory for std::bad_alloc, internal_error for anything else.
int exit_code_of(const std::exception& e);
/// The kind of failure an exit code stands for, as JSON error objects name it ("usage", "format").
const char* kind_of(int code);

} // namespace gg::cli
