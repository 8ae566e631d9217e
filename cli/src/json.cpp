// json::dump: the CLI's JSON text, written by walking an nlohmann value (nlohmann's own dump has no
// spaced separators and writes NaN as null, -0 as -0.0 and 2.0 as 2.0).
#include "json.hpp"

#include <cmath>

#include <fmt/format.h>

namespace gg::cli::json {

namespace {

void write_number(std::string& out, double v) {
  if (std::isnan(v))
    out += "\"nan\"";
  else if (std::isinf(v))
    out += v > 0 ? "\"inf\"" : "\"-inf\"";
  else
    fmt::format_to(std::back_inserter(out), "{}", v == 0 ? 0.0 : v); // shortest round-trip digits
}

void write(std::string& out, const Value& v) {
  switch (v.type()) {
  case Value::value_t::object: {
    out += '{';
    bool first = true;
    for (const auto& [key, member] : v.items()) {
      if (!first) out += ", ";
      first = false;
      out += Value(key).dump(-1, ' ', false, Value::error_handler_t::replace);
      out += ": ";
      write(out, member);
    }
    out += '}';
    return;
  }
  case Value::value_t::array: {
    out += '[';
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (i > 0) out += ", ";
      write(out, v[i]);
    }
    out += ']';
    return;
  }
  case Value::value_t::number_float: write_number(out, v.get<double>()); return;
  default: out += v.dump(-1, ' ', false, Value::error_handler_t::replace); return;
  }
}

} // namespace

std::string dump(const Value& value) {
  std::string out;
  write(out, value);
  return out;
}

void append(Value& object, std::string key, Value member) {
  if (object.is_null()) object = Value::object();
  auto& members = object.get_ref<Value::object_t&>(); // a std::vector of (key, value) pairs
  members.Value::object_t::Container::emplace_back(std::move(key), std::move(member));
}

} // namespace gg::cli::json
