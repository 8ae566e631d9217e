// The command line's one JSON policy, on nlohmann-json: every JSON text gradgraph prints or logs
// (explain --json, train's JSONL log, error objects) is built as a json::Value and written by
// json::dump, so numbers, non-finite values, -0 and strings look the same everywhere.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace gg::cli::json {

/// A JSON value whose objects keep their members in the order they were added.
using Value = nlohmann::ordered_json;

/// One line of JSON (no newline): `{"a": 1, "b": [2, 3]}` with ", " and ": " separators.
/// Numbers: the shortest text that reads back as the same double (0.1, 1e-07, 0.6931471805599453,
/// whole numbers without ".0"); -0 is written 0 (as the text output: -log(1) is a loss of 0);
/// NaN and infinities, which JSON lacks, are the strings "nan", "inf" and "-inf". Strings: JSON
/// escapes, and invalid UTF-8 replaced by U+FFFD.
std::string dump(const Value& value);

/// Adds a member to an object without looking for one of the same name (the caller knows the names
/// are distinct): constant time, where Value's operator[] and emplace search the members linearly.
void append(Value& object, std::string key, Value member);

} // namespace gg::cli::json
