// Argument checks shared by the layers' constructors (layers.cpp, recurrent.cpp): a wrong size is a
// ValueError naming the layer and the argument.
#pragma once

#include <autodiff/error.hpp>

#include <cstdint>
#include <string_view>

#include <fmt/format.h>

namespace gg::nn::detail {

/// Throws ValueError unless v > 0: "<layer>: <what> must be positive, got <v>".
inline void require_positive(std::int64_t v, std::string_view what, std::string_view layer) {
  if (v <= 0) throw ValueError(fmt::format("{}: {} must be positive, got {}", layer, what, v));
}

} // namespace gg::nn::detail
