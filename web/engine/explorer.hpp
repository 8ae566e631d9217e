// The expression explorer's engine: one call turns an explain program and its input values into
// everything the page shows (the graph, every forward and backward step with its formula and
// numbers, the gradients and their finite-difference checks) as one JSON text. The same code runs
// in the browser (compiled to WebAssembly) and in `gradgraph explain --html` (natively).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <cli/src/json.hpp>

namespace gg::web {

/// Most op nodes a program may record in the page (checked after parsing, before evaluating):
/// the page lays out and steps through every node.
inline constexpr std::size_t k_max_page_nodes = 5000;

/// A program and the text of its input values, as the page's fields hold them.
struct ExplainRequest {
  std::string program;
  /// (name, value text); names the program does not use are ignored, and an input of the program
  /// with no entry takes the value 1 (the page then shows a field holding 1).
  std::vector<std::pair<std::string, std::string>> inputs;
  bool check = true; ///< add central finite differences for the inputs and statements
};

/// The explorer's answer as one JSON object (docs/web.md describes its fields). Throws the CLI's
/// errors, with its messages, for a program it rejects, a value that is not a number, and a
/// program over k_max_page_nodes.
cli::json::Value explain(const ExplainRequest& request);

/// explain() as JSON text; an error is {"error": {"kind", "exit_code", "message", "line",
/// "column"}} (web/engine/common.hpp): never throws.
std::string explain_json(const ExplainRequest& request);

/// The request the page sends, {"program": "...", "inputs": {"x": "-2"}, "check": true}, parsed;
/// FormatError when it is not such an object.
ExplainRequest parse_explain_request(std::string_view json);

} // namespace gg::web
