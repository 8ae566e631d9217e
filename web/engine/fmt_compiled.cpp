// fmt's compiled part, built once for the WebAssembly engine (cmake/web_deps.cmake). The web build
// takes the host's fmt headers, and there is no fmt library for wasm: in fmt's header-only mode every
// file that includes <fmt/format.h> compiles all of format-inl.h again (2.7 s of em++ CPU in each of
// ~80 files). Here format-inl.h's functions are compiled in this one file, with the explicit
// instantiations of the templates fmt 9's format.h declares but does not define.
#include <fmt/format-inl.h>

#if FMT_VERSION < 90000 || FMT_VERSION >= 100000
#error "fmt_compiled.cpp is written for fmt 9 (cmake/web_deps.cmake builds header-only for others)"
#endif

FMT_BEGIN_NAMESPACE
namespace detail {
template FMT_API auto dragonbox::to_decimal(float x) noexcept -> dragonbox::decimal_fp<float>;
template FMT_API auto dragonbox::to_decimal(double x) noexcept -> dragonbox::decimal_fp<double>;
template FMT_API locale_ref::locale_ref(const std::locale& loc);
template FMT_API auto locale_ref::get<std::locale>() const -> std::locale;
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<char>;
template FMT_API auto thousands_sep_impl(locale_ref) -> thousands_sep_result<wchar_t>;
template FMT_API auto decimal_point_impl(locale_ref) -> char;
template FMT_API auto decimal_point_impl(locale_ref) -> wchar_t;
} // namespace detail
FMT_END_NAMESPACE
