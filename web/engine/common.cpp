// Numbers, number parsing, errors and request reading shared by the explorer and the playground.
#include "common.hpp"

#include <autodiff/error.hpp>

#include <cmath>
#include <cstdlib>
#include <regex>

#include <fmt/format.h>

#include <cli/cli.hpp>
#include <cli/src/messages.hpp>

namespace gg::web {

using cli::json::Value;

std::string full_text(double v) {
  std::string s = cli::json::dump(Value(v));
  if (s.front() == '"') s = s.substr(1, s.size() - 2); // "nan", "inf", "-inf"
  return s;
}

std::string short_text(double v) {
  if (std::isnan(v)) return "nan"; // not "-nan"
  return fmt::format("{:.6g}", v == 0 ? 0.0 : v);
}

Value number(double v) {
  return Value::array({full_text(v), short_text(v)});
}

std::string guarded(const std::function<Value()>& run) {
  try {
    return cli::json::dump(run());
  } catch (const std::exception& e) {
    const int code = cli::exit_code_of(e);
    const std::string message =
        cli::printable(code == cli::out_of_memory    ? "out of memory: the program or the model does not fit"
                       : code == cli::internal_error ? fmt::format("internal error: {}", e.what())
                                                     : std::string(e.what()));
    // "at line 2, column 4" or "at column 9": where the editor puts its marker.
    long line = 0, column = 0;
    std::smatch m;
    static const std::regex position(R"(at (?:line (\d+), )?column (\d+))");
    if (std::regex_search(message, m, position)) {
      line = m[1].matched ? std::strtol(m[1].str().c_str(), nullptr, 10) : 1;
      column = std::strtol(m[2].str().c_str(), nullptr, 10);
    }
    return cli::json::dump({{"error",
                             {{"kind", cli::kind_of(code)},
                              {"exit_code", code},
                              {"message", message},
                              {"line", line},
                              {"column", column}}}});
  }
}

Value parse_object(std::string_view json, const char* what) {
  Value j = Value::parse(json, nullptr, false);
  if (!j.is_object()) throw FormatError(fmt::format("{}: not a JSON object", what));
  return j;
}

std::string string_member(const Value& object, const char* key) {
  if (!object.contains(key) || !object[key].is_string())
    throw FormatError(fmt::format("the request has no string '{}'", key));
  return object[key].get<std::string>();
}

double number_member(const Value& object, const char* key, double fallback) {
  if (!object.contains(key)) return fallback;
  if (!object[key].is_number()) throw FormatError(fmt::format("the request's '{}' is not a number", key));
  return object[key].get<double>();
}

} // namespace gg::web
