// gg::safetensors: the format's shared pieces (the FormatError text) and File's look-ups.
#include "safetensors_format.hpp"

#include <nn/io/safetensors.hpp>

#include <fmt/format.h>

namespace gg::safetensors {

namespace detail {

[[noreturn]] void format_error(std::string_view file, std::string_view what) {
  throw FormatError(fmt::format("safetensors file '{}': {}", file, what));
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
