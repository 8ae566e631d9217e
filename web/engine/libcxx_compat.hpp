// The two C++20 library pieces Emscripten's libc++ 14 (which builds the WebAssembly engine) lacks,
// force-included there by cmake/web_deps.cmake so the code is the same in every build:
// std::from_chars for double, on strtod with from_chars' rules (no leading space or '+', no
// hexadecimal, the longest number at the start, overflow and underflow as result_out_of_range),
// and std::bit_cast, on the compiler's builtin.
#pragma once

#include <charconv>
#include <version>

#if !defined(__cpp_lib_bit_cast)
#include <type_traits>

namespace std {
template <class To, class From>
requires(sizeof(To) == sizeof(From) && is_trivially_copyable_v<To> &&
         is_trivially_copyable_v<From>) constexpr To bit_cast(const From& from) noexcept {
  return __builtin_bit_cast(To, from);
}
} // namespace std
#endif

#if !defined(__cpp_lib_to_chars)
#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>

namespace std {

inline from_chars_result from_chars(const char* first, const char* last, double& value,
                                    chars_format = chars_format::general) {
  const char* p = first;
  if (p != last && *p == '-') ++p;
  const bool hex = last - p >= 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X');
  if (p == last || hex ||
      !(*p == '.' || (*p >= '0' && *p <= '9') || *p == 'i' || *p == 'I' || *p == 'n' || *p == 'N'))
    return {first, errc::invalid_argument};
  const string text(first, last); // strtod needs a terminated string
  char* end = nullptr;
  errno = 0;
  const double v = strtod(text.c_str(), &end);
  if (end == text.c_str()) return {first, errc::invalid_argument};
  const char* ptr = first + (end - text.c_str());
  if (errno == ERANGE) return {ptr, errc::result_out_of_range};
  value = v;
  return {ptr, errc{}};
}

} // namespace std
#endif
