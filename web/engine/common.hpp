// What the engine's calls share: numbers as the page receives them (full precision as --json writes
// them, and 6 significant digits as explain's text shows them), numbers read as the CLI reads them,
// and errors turned into the CLI's kind, exit code and message.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <cli/src/json.hpp>

namespace gg::web {

/// v as --json writes it: the shortest text that reads back as v, "nan", "inf", "-inf", -0 as 0.
std::string full_text(double v);
/// v as explain's text shows it: 6 significant digits ("-12", "0.731059"), "nan", "inf".
std::string short_text(double v);
/// [full_text(v), short_text(v)]: how every number reaches the page.
cli::json::Value number(double v);

/// An engine reply: run() as JSON text, or, when it throws, {"error": {"kind", "exit_code",
/// "message", "line", "column"}} with the kind and exit code the CLI gives that exception, its
/// message made printable as the CLI prints it, and the line and column (1-based, 0 when none) the
/// message names in `source`.
std::string guarded(const std::function<cli::json::Value()>& run);

/// The JSON object a request holds; FormatError naming `what` when it is none.
cli::json::Value parse_object(std::string_view json, const char* what);
/// A string member of a request object; FormatError when missing or not a string.
std::string string_member(const cli::json::Value& object, const char* key);
/// A number member, or fallback when absent; FormatError when present and not a number.
double number_member(const cli::json::Value& object, const char* key, double fallback);

} // namespace gg::web
