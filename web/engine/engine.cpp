// The engine's dispatch: method names to the explorer's and the playground's calls.
#include "engine.hpp"

#include "common.hpp"
#include "explorer.hpp"
#include "playground.hpp"

#include <autodiff/error.hpp>

#include <fmt/format.h>

namespace gg::web {

std::string call(std::string_view method, std::string_view request) {
  if (method == "explain") return guarded([&] { return explain(parse_explain_request(request)); });
  if (method.starts_with("playground.")) return playground_call(method.substr(11), request);
  return guarded(
      [&]() -> cli::json::Value { throw UsageError(fmt::format("the engine has no method '{}'", method)); });
}

} // namespace gg::web
