// The command line's JSON policy (cli/src/json.hpp): numbers that read back exactly, -0 as 0,
// non-finite values as strings, member order kept, spaced separators, escaped strings and invalid
// UTF-8 replaced, so explain --json and train's log write numbers alike.
#include <cli/src/json.hpp>

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <string>

using gg::cli::json::dump;
using gg::cli::json::Value;

TEST_CASE("json: numbers are the shortest text that reads back as the same double") {
  CHECK(dump(Value(2.0)) == "2");
  CHECK(dump(Value(-2.5)) == "-2.5");
  CHECK(dump(Value(0.1)) == "0.1");
  CHECK(dump(Value(std::log(2.0))) == "0.6931471805599453");
  CHECK(dump(Value(1e-7)) == "1e-07");
  CHECK(dump(Value(1e300)) == "1e+300");
  CHECK(dump(Value(5e-324)) == "5e-324");
  for (const double v : {1.0 / 3, std::exp(1.0), 123456789.123456789, -1e-310, 0.1 + 0.2}) {
    INFO(v);
    CHECK(Value::parse(dump(Value(v))).get<double>() == v);
  }
  CHECK(dump(Value(std::int64_t{-3})) == "-3");
  CHECK(dump(Value(true)) == "true");
  CHECK(dump(Value(nullptr)) == "null");
}

TEST_CASE("json: -0 is written 0 and non-finite values as strings") {
  CHECK(dump(Value(-0.0)) == "0");
  CHECK(dump(Value(std::numeric_limits<double>::quiet_NaN())) == "\"nan\"");
  CHECK(dump(Value(-std::numeric_limits<double>::quiet_NaN())) == "\"nan\"");
  CHECK(dump(Value(std::numeric_limits<double>::infinity())) == "\"inf\"");
  CHECK(dump(Value(-std::numeric_limits<double>::infinity())) == "\"-inf\"");
}

TEST_CASE("json: objects keep their order, with spaced separators, and strings are escaped") {
  Value v = Value::object();
  gg::cli::json::append(v, "z", 1.0);
  gg::cli::json::append(v, "a", Value::array({1.5, "two", -0.0}));
  v["q\"uote\n"] = "tab\there";
  CHECK(dump(v) == R"({"z": 1, "a": [1.5, "two", 0], "q\"uote\n": "tab\there"})");
  CHECK(dump(Value::object()) == "{}");
  CHECK(dump(Value::array()) == "[]");
  // Invalid UTF-8 (a file's column name, say) is replaced, never written raw or thrown.
  CHECK(dump(Value(std::string("a\xff"
                               "b"))) == "\"a\xEF\xBF\xBD"
                                         "b\"");
  CHECK(dump(Value("é")) == "\"é\"");
}
