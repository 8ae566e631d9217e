// `gradgraph explain`: the cs231n and micrograd examples (text golden files and exact JSON), the
// precedence of ^ and unary minus, every error with its message and exit code, non-finite values,
// --check, --dot and --render, and a few end-to-end runs of the real binary.
//
// Golden files (tests/cli/data/explain_*.txt) hold the whole text output. After a deliberate change
// to the output, regenerate them with the built binary and review the diff:
//   B=build/cli/gradgraph D=tests/cli/data
//   $B explain "q = x + y; f = q * z" x=-2 y=5 z=-4 > $D/explain_cs231n.txt
//   $B explain "b = a + a; c = b + b" a=1 > $D/explain_fan_out.txt
//   $B explain "z = 2*x + 2 + x; q = relu(z) + z*x; h = relu(z*z); y = h + q + q*x" x=-4
//   >$D/explain_micrograd.txt
#include "cli_test.hpp"

#include <autodiff/error.hpp>
#include <cli/src/files.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace {

using gg::cli::test::quote;
using gg::cli::test::Result;
using gg::cli::test::shell;
using gg::cli::test::temp_dir;
using gg::test::read_file;

/// Runs `gradgraph explain args...` in-process.
Result explain(std::vector<std::string> args) {
  args.insert(args.begin(), "explain");
  std::ostringstream out, err;
  const int code = gg::cli::run(args, out, err);
  return {code, out.str(), err.str()};
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

/// Text with lines wrapped at the width joined again: a newline and the spaces after it become one
/// space (for checking a long note, wherever it was wrapped).
std::string unwrapped(const std::string& text) {
  std::string r;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\n') {
      r += text[i];
      continue;
    }
    std::size_t j = i + 1;
    while (j < text.size() && text[j] == ' ') ++j;
    if (j - i > 5) { // a continuation line (indented deeper than any row)
      r += ' ';
      i = j - 1;
    } else {
      r += '\n';
    }
  }
  return r;
}

/// The numbers of one member object of a JSON line ("values", "grads", "check"), by name.
std::map<std::string, double> json_object(const std::string& json, const std::string& member) {
  const std::size_t begin = json.find("\"" + member + "\": {");
  REQUIRE(begin != std::string::npos);
  const std::size_t end = json.find('}', begin);
  const std::string body = json.substr(begin, end - begin);
  std::map<std::string, double> r;
  const std::regex item(R"re("(\w+)": (-?[0-9.eE+-]+))re");
  for (auto it = std::sregex_iterator(body.begin(), body.end(), item); it != std::sregex_iterator(); ++it)
    r[(*it)[1]] = std::stod((*it)[2]);
  return r;
}

const std::string k_cs231n = "q = x + y; f = q * z";
const std::string k_micrograd = "z = 2*x + 2 + x; q = relu(z) + z*x; h = relu(z*z); y = h + q + q*x";

} // namespace

TEST_CASE("explain: the cs231n example in text matches its golden file") {
  const Result r = explain({k_cs231n, "x=-2", "y=5", "z=-4"});
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  CHECK(r.out == read_file(GG_TEST_DATA "/explain_cs231n.txt"));
  // What a learner looks for, whatever the layout.
  CHECK(has(r.out, "f = q * z   = -12   output"));
  CHECK(has(r.out, "∂f/∂q = z = -4"));
  CHECK(has(r.out, "df/dx = -4\n"));
  CHECK(has(r.out, "df/dz = 3\n"));
}

TEST_CASE("explain: the cs231n example as JSON") {
  const Result r = explain({"--json", k_cs231n, "x=-2", "y=5", "z=-4"});
  CHECK(r.code == 0);
  CHECK(r.err.empty());
  CHECK(r.out == R"({"output": "f", "values": {"x": -2, "y": 5, "z": -4, "q": 3, "f": -12}, )"
                 R"("grads": {"x": -4, "y": -4, "z": 3, "q": -4, "f": 1}})"
                 "\n");
}

TEST_CASE("explain: JSON writes a negative zero as 0, like the text output") {
  // The course's cross-entropy table: a sure right answer costs 0, and -log(1) is -0 in IEEE.
  const Result r = explain({"--json", "L = -log(p)", "p=1"});
  CHECK(r.code == 0);
  CHECK(r.out == R"({"output": "L", "values": {"p": 1, "L": 0}, "grads": {"p": -1, "L": 1}})"
                 "\n");
  CHECK(has(explain({"L = -log(p)", "p=1"}).out, "L = -log(p)   = 0   output"));
}

TEST_CASE("explain: JSON lists inputs in the order the program first uses them") {
  const Result r = explain({"--json", "f = b * a", "a=2", "b=3"});
  CHECK(r.out == R"({"output": "f", "values": {"b": 3, "a": 2, "f": 6}, "grads": {"b": 2, "a": 3, "f": 1}})"
                 "\n");
}

TEST_CASE("explain: micrograd's example gives y = -20 and dy/dx = 46") {
  const Result r = explain({"--json", k_micrograd, "x=-4"});
  CHECK(r.code == 0);
  CHECK(r.out == R"({"output": "y", "values": {"x": -4, "z": -10, "q": 40, "h": 100, "y": -20}, )"
                 R"("grads": {"x": 46, "z": -8, "q": -3, "h": 1, "y": 1}})"
                 "\n");
  const Result text = explain({k_micrograd, "x=-4"});
  CHECK(text.code == 0);
  CHECK(text.out == read_file(GG_TEST_DATA "/explain_micrograd.txt"));
}

TEST_CASE("explain: golden trace of a graph with fan-out shows running sums") {
  const Result r = explain({"b = a + a; c = b + b", "a=1"});
  CHECK(r.code == 0);
  CHECK(r.out == read_file(GG_TEST_DATA "/explain_fan_out.txt"));
  CHECK(has(unwrapped(r.out), "dc/db = 1 + 1 = 2 (2 of 2: complete)"));
  CHECK(has(unwrapped(r.out), "dc/da = 2 + 2 = 4 (2 of 2: complete)"));
  // Without a width limit, each step is one line.
  const Result wide = explain({"--width", "0", "b = a + a; c = b + b", "a=1"});
  CHECK(has(wide.out, "dc/db = 1 + 1 = 2   (2 of 2: complete)\n"));
}

TEST_CASE("explain: unary minus binds looser than ^ and ^ is right-associative") {
  Result r = explain({"--json", "f = -x^2", "x=3"});
  CHECK(r.out == R"({"output": "f", "values": {"x": 3, "f": -9}, "grads": {"x": -6, "f": 1}})"
                 "\n");
  r = explain({"--json", "f = (-x)^2", "x=3"});
  CHECK(r.out == R"({"output": "f", "values": {"x": 3, "f": 9}, "grads": {"x": 6, "f": 1}})"
                 "\n");
  // Constants fold: a statement without inputs is a leaf of its own.
  r = explain({"--json", "a = 2^3^2; b = -2^2; c = 2^-1; d = --3; e = a + b + c + d"});
  CHECK(r.out == R"({"output": "e", "values": {"a": 512, "b": -4, "c": 0.5, "d": 3, "e": 511.5}, )"
                 R"("grads": {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1}})"
                 "\n");
  // The trace shows the parse: f = -(x^2).
  r = explain({"f = -x^2", "x=3"});
  CHECK(has(r.out, "f = -(x^2)"));
  CHECK(has(r.out, "(x^2) = x^2"));
  // An exponent's minus covers the rest of the chain: 2^-x^2 is 2^(-(x^2)).
  r = explain({"--json", "f = 2^-x^2", "x=1"});
  CHECK(json_object(r.out, "values")["f"] == 0.5);
}

TEST_CASE("explain: numbers and operators and every function") {
  Result r = explain({"--json", "f = .5 + 1e-3 + 2.5E+1 + 10/4 - 3*2", "x=+1.5"});
  CHECK(r.code == 2); // x is not used
  r = explain({"--json", "f = .5 + 1e-3 + 2.5E+1 + 10/4 - 3*2 + 0*x", "x=+1.5"});
  CHECK(r.code == 0);
  CHECK(json_object(r.out, "values")["f"] == Approx(22.001));
  CHECK(json_object(r.out, "values")["x"] == 1.5);

  r = explain(
      {"--check", "--json",
       "f = exp(x) + log(x) + sqrt(x) + abs(-x) + tanh(x) + sigmoid(x) + relu(x) + sin(x) + cos(x) + x/y - "
       "y^x + 2^x + x^y",
       "x=0.7", "y=1.3"});
  REQUIRE(r.code == 0);
  const auto grads = json_object(r.out, "grads"), check = json_object(r.out, "check");
  for (const char* name : {"x", "y", "f"}) {
    INFO(name);
    CHECK(grads.at(name) == Approx(check.at(name)).epsilon(1e-6));
  }
}

TEST_CASE("explain: statements may be bare names or constants and end with a semicolon") {
  const Result r = explain({"--json", "c = 2; b = a; f = c * b;", "a=5"});
  CHECK(r.out == R"({"output": "f", "values": {"a": 5, "c": 2, "b": 5, "f": 10}, )"
                 R"("grads": {"a": 2, "c": 5, "b": 2, "f": 1}})"
                 "\n");
  const Result text = explain({"f = x; g = f", "x=2"});
  CHECK(has(text.out, "g = f "));
  CHECK(has(text.out, "∂g/∂f = 1"));
}

TEST_CASE("explain: names the output does not depend on get zero gradients") {
  const Result r = explain({"q = y * 2; f = x * 3", "x=1", "y=1"});
  CHECK(r.code == 0);
  CHECK(has(r.out, "df/dy = 0   (f does not depend on y)"));
  CHECK(has(r.out, "df/dq = 0   (f does not depend on q)"));
  const Result c = explain({"f = 2 + 3"});
  CHECK(c.code == 0);
  CHECK(has(c.out, "backward pass: f depends on no input"));
}

TEST_CASE("explain: non-finite values follow IEEE and are flagged") {
  Result r = explain({"f = x/0; g = log(f - f) + 1", "x=1"});
  CHECK(r.code == 0);
  CHECK(has(r.out, "f = x/0              = inf   not finite: division by zero\n"));
  CHECK(has(r.out, "not finite: inf - inf in (f - f)"));
  CHECK(has(r.out, "dg/dx = nan   (not finite)"));
  r = explain({"--json", "f = log(x); g = sqrt(f - 1) * 0/0", "x=0"});
  CHECK(r.code == 0);
  CHECK(r.out == R"({"output": "g", "values": {"x": 0, "f": "-inf", "g": "nan"}, )"
                 R"("grads": {"x": "nan", "f": "nan", "g": 1}})"
                 "\n");
  r = explain({"f = x^-1 + y", "x=0", "y=1"});
  CHECK(has(r.out, "not finite: 0 to a negative power in (x^-1)"));
  r = explain({"f = log(x)", "x=-1"});
  CHECK(has(r.out, "not finite: log of a negative number"));
  r = explain({"f = x * 2", "x=inf"});
  CHECK(r.code == 0);
  CHECK(has(r.out, "= inf   input, not finite"));
  CHECK(has(r.out, "not finite: from x"));
}

TEST_CASE("explain: --check puts a finite difference next to each gradient") {
  Result r = explain({"--check", k_cs231n, "x=-2", "y=5", "z=-4"});
  CHECK(r.code == 0);
  CHECK(has(r.out, "df/dx = -4   finite difference -4   agrees\n"));
  CHECK(has(r.out, "df/dq = -4   finite difference -4   agrees\n"));
  r = explain({"--check", "--json", "f = sin(x) * exp(y); g = f^2 / y", "x=0.3", "y=-1.2"});
  REQUIRE(r.code == 0);
  const auto grads = json_object(r.out, "grads"), check = json_object(r.out, "check");
  REQUIRE(check.size() == 4);
  for (const auto& [name, g] : grads) {
    INFO(name);
    CHECK(check.at(name) == Approx(g).epsilon(1e-7));
  }
  // At relu's kink the one-sided derivatives differ: the check says so.
  r = explain({"--check", "f = relu(x)", "x=0"});
  CHECK(has(r.out, "df/dx = 0   finite difference 0.5   differs:"));
}

TEST_CASE("explain: --check of many names (eight at a time) agrees with backward everywhere") {
  std::string program = "a0 = x * y + sin(z)";
  for (int i = 1; i < 40; ++i)
    program += fmt::format("; a{} = a{} * 0.5 + tanh(x) / {} - y^2 * exp(-a{}^2)", i, i - 1, i + 1, i - 1);
  const Result r = explain({"--check", "--json", program, "x=0.3", "y=-1.1", "z=2"});
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  REQUIRE(j["check"].size() == 43);
  for (const auto& [name, g] : j["grads"].items()) {
    INFO(name);
    CHECK(j["check"][name].get<double>() == Approx(g.get<double>()).epsilon(1e-6).margin(1e-9));
  }
  CHECK_FALSE(j.contains("notes"));
}

TEST_CASE("explain: --check says where the function has a kink and which subgradient backward used") {
  Result r = explain({"--check", "f = relu(x) + abs(y)", "x=0", "y=0"});
  CHECK(r.code == 0);
  const std::string flat = unwrapped(r.out);
  CHECK(has(flat, "df/dx = 0   finite difference 0.5   differs: relu(x) has a kink here (its input is 0): "
                  "slope 0 to the left, 1 to the right; backward used the subgradient 0"));
  CHECK(has(flat, "df/dy = 0   finite difference 0     agrees: abs(y) has a kink here (its input is 0): "
                  "slope -1 to the left, 1 to the right; backward used the subgradient 0"));
  // A step of h across a kink near the point.
  r = explain({"--check", "f = relu(x - 1e-7)", "x=0"});
  CHECK(has(unwrapped(r.out), "f = relu(x - 1e-7) has a kink within h of here (its input is -1e-07): slope 0 "
                              "to the left, 1 to the right; the difference straddles it"));
  // Only names whose difference reaches the kink are told; away from it nothing is said.
  r = explain({"--check", "--json", "f = relu(y) + x", "y=0", "x=1"});
  auto j = nlohmann::json::parse(r.out);
  CHECK(j["notes"].size() == 1);
  CHECK(j["notes"]["y"].get<std::string>().rfind("relu(y) has a kink here", 0) == 0);
  CHECK_FALSE(has(explain({"--check", "f = relu(x) + abs(x)", "x=1"}).out, "kink"));
}

TEST_CASE("explain: a gradient that flows through a value that is not finite is flagged") {
  Result r = explain({"f = log(x - 3)", "x=1"});
  CHECK(r.code == 0);
  CHECK(has(unwrapped(r.out), "df/dx = -0.5   (through a value that is not finite, f = log(x - 3) = nan: "
                              "not a meaningful gradient)"));
  CHECK(has(r.out, "df/df = 1\n"));
  r = explain({"--json", "y = log(x - 3); g = y * 0 + x", "x=1"});
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["notes"]["x"] ==
        "through a value that is not finite, y = log(x - 3) = nan: not a meaningful gradient");
  CHECK_FALSE(has(explain({"f = log(x - 3)", "x=5"}).out, "not finite"));
}

TEST_CASE("explain: --check refuses a program whose differences would take too long") {
  std::string program = "a0 = x";
  for (int i = 1; i < 30'000; ++i) program += fmt::format(";a{}=a{}*x+x", i, i - 1);
  const Result r = explain({"--check", program, "x=1"});
  CHECK(r.code == gg::cli::usage_error);
  CHECK(has(r.err, "--check: finite differences of all 30001 names would take"));
  CHECK(explain({"--json", program, "x=1"}).code == 0); // without --check it is fine
}

TEST_CASE("explain: parse errors show the program with a caret and exit 3") {
  struct Case {
    const char *program, *message;
  };
  const Case cases[] = {
      {"q = x * ;", "parse error at column 9: expected an expression after '*'\nq = x * ;\n        ^\n"},
      {"q = x *", "parse error at column 8: expected an expression after '*'\nq = x *\n       ^\n"},
      {"x + y", "parse error at column 3: expected '=' after 'x': a program is statements like 'f = x * y', "
                "separated by "
                "';'\nx + y\n  ^\n"},
      {"2 * x", "parse error at column 1: expected a statement 'name = expression', found '2'"},
      {"f = (x",
       "parse error at column 7: expected ')' to close the '(' at column 5, found the end of the program"},
      {"f = x)", "parse error at column 6: unmatched ')'\nf = x)\n     ^\n"},
      {"f = ()", "parse error at column 6: expected an expression inside '()'"},
      {"f = x y", "parse error at column 7: expected an operator or ';' before 'y'"},
      {"f = 2x", "parse error at column 6: expected an operator before 'x': write 2*x for a product"},
      {"f = x**2", "parse error at column 6: '**' is not an operator here: write x^2 for a power"},
      {"f = x # 2", "parse error at column 7: unexpected character '#'"},
      {"f = x → 2", "parse error at column 7: unexpected character '→' (U+2192)\nf = x → 2\n      ^\n"},
      // Numbers and operators as documents write them get a hint.
      {"f = x − 3",
       "parse error at column 7: unexpected character '−' (U+2212): write the ASCII '-' for minus"},
      {"f = x × 2", "parse error at column 7: unexpected character '×' (U+00D7): write * for a product"},
      {"f = x * 0,5",
       "parse error at column 9: '0,5': use a dot for decimals: 0.5\nf = x * 0,5\n        ^\n"},
      {"f = x\u00a0+ 1", "parse error at column 6: unexpected character '\u00a0' (U+00A0): a special space"},
      // Bytes that are not UTF-8 are named, and shown as one column so the caret stays under them.
      {"f = x\xff+ 1", "parse error at column 6: unexpected byte 0xff\nf = x?+ 1\n     ^\n"},
      {"f = x = 2", "parse error at column 7: unexpected '=': separate statements with ';'"},
      {"f = 1e", "parse error at column 5: the number '1e' has no exponent digits after 'e'"},
      {"f = 1e999", "parse error at column 5: the number '1e999' is too large for a double"},
      {"f = exp", "parse error at column 8: expected '(' after the function 'exp': write exp(x)"},
      {"exp = 2", "parse error at column 1: cannot assign to 'exp': it is a function"},
      {"", "parse error at column 1: the program has no statements"},
      {" ; ", "parse error at column 4: the program has no statements"},
      {"q = x + y;\nf = q * * z",
       "parse error at line 2, column 9: expected an expression after '*'\nf = q * * z\n"
       "        ^\n"},
  };
  for (const Case& c : cases) {
    INFO(c.program);
    const Result r = explain({c.program, "x=1"});
    CHECK(r.code == gg::cli::format_error);
    CHECK(r.out.empty());
    CHECK(r.err.rfind(std::string("gradgraph explain: ") + c.message, 0) == 0);
  }
}

TEST_CASE("explain: name and input errors are one line naming the culprit") {
  struct Case {
    std::vector<std::string> args;
    int code;
    const char* message;
  };
  const Case cases[] = {
      {{"f = w * x", "x=1", "z=2"},
       gg::cli::value_error,
       "unknown name 'w' at column 5 (no statement assigns it and no value is given for it; given but not "
       "used: z)"},
      {{"f = q * z; q = z", "z=1"},
       gg::cli::value_error,
       "unknown name 'q' at column 5 (statement 2 assigns it, later: use a name only after its statement)"},
      {{"x = x + 1"},
       gg::cli::value_error,
       "unknown name 'x' at column 5 (a statement cannot use the name it assigns)"},
      {{"q = x + y; f = q * z", "x=-2", "y=5"},
       gg::cli::usage_error,
       "no value given for input 'z' (used at column 20): add z=VALUE after the program"},
      {{"f = x", "x=1", "x=2"}, gg::cli::usage_error, "input 'x' is given twice (x=1 and x=2)"},
      {{"f = x", "x=1", "w=2"}, gg::cli::usage_error, "input 'w' is not used by the program"},
      {{"q = x; f = q; q = x", "x=1"}, gg::cli::value_error, "'q' is assigned twice (statements 1 and 3)"},
      {{"q = 2; x = q", "x=1"},
       gg::cli::value_error,
       "'x' is an input (given as x=1) but statement 2 assigns it"},
      {{"f = x", "x=abc"}, gg::cli::usage_error, "'x=abc': not a number"},
      {{"f = x", "x=1.5.2"}, gg::cli::usage_error, "'x=1.5.2': not a number"},
      {{"f = x", "x=0,5"}, gg::cli::usage_error, "'x=0,5': not a number (use a dot for decimals: 0.5)"},
      {{"f = x", "x=−2"},
       gg::cli::usage_error,
       "'x=−2': not a number (use the ASCII '-' for minus, not '−' (U+2212): -2)"},
      {{"f = exp(0,5) * x", "x=1"},
       gg::cli::value_error,
       "exp() takes one argument, got 2 at column 5 ('0,5': use a dot for decimals: 0.5)"},
      {{"f = x", "x="}, gg::cli::usage_error, "'x=': not a number"},
      {{"f = x", "x"}, gg::cli::usage_error, "'x': expected NAME=VALUE, like x=-2"},
      {{"f = x", "3x=1"},
       gg::cli::usage_error,
       "'3x=1': '3x' is not a name (letters, digits and _, not starting with a digit)"},
      {{"f = x", "exp=1"}, gg::cli::usage_error, "'exp=1': 'exp' is a function, not an input"},
      {{"f = x", "x=1e999"}, gg::cli::usage_error, "'x=1e999': the number is too large for a double"},
      {{"f = foo(x)", "x=1"},
       gg::cli::value_error,
       "unknown function 'foo' at column 5 (the functions are exp log sqrt abs tanh sigmoid relu sin cos)"},
      {{"f = exp(x, x)", "x=1"}, gg::cli::value_error, "exp() takes one argument, got 2 at column 5"},
      {{"f = 1 + sin()", "x=1"}, gg::cli::value_error, "sin() takes one argument, got 0 at column 9"},
      {{}, gg::cli::usage_error, "no program given"},
      {{"--render", "svg", "f = x", "x=1"}, gg::cli::usage_error, "--render needs --dot FILE"},
      {{"--dot", "g.dot", "--render", "pdf", "f = x", "x=1"},
       gg::cli::usage_error,
       "--render: 'pdf' is not svg or png"},
      {{"--frobnicate", "f = x", "x=1"}, gg::cli::usage_error, "unrecognised option '--frobnicate'"},
  };
  for (const Case& c : cases) {
    INFO((c.args.empty() ? "" : c.args[0]));
    const Result r = explain(c.args);
    CHECK(r.code == c.code);
    CHECK(r.out.empty());
    CHECK(r.err.rfind(std::string("gradgraph explain: ") + c.message, 0) == 0);
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  }
}

TEST_CASE("explain: oversized programs and inputs are refused and deep nesting is capped") {
  Result r = explain({"f = x" + std::string(1 << 20, ' '), "x=1"});
  CHECK(r.code == gg::cli::usage_error);
  CHECK(has(r.err, "the program is 1048581 bytes: at most 1048576 (1 MB) are accepted"));
  r = explain({"f = x", "x=1" + std::string(1 << 20, '0')});
  CHECK(r.code == gg::cli::usage_error);
  CHECK(has(r.err, "the inputs are"));

  r = explain({"f = " + std::string(100'000, '(') + "x" + std::string(100'000, ')'), "x=1"});
  CHECK(r.code == gg::cli::format_error);
  CHECK(
      has(r.err, "parse error at column 261: parentheses and function calls nest deeper than 256 levels\n"));
  CHECK(r.err.size() < 400); // the echoed line is cut to a window around the caret

  r = explain({"--json", "f = " + std::string(256, '(') + "x" + std::string(256, ')'), "x=1"});
  CHECK(r.code == 0);
  std::string calls;
  for (int i = 0; i < 256; ++i) calls += "abs(";
  r = explain({"--json", "f = " + calls + "x" + std::string(256, ')'), "x=-1"});
  CHECK(r.code == 0);
  CHECK(has(r.out, R"("grads": {"x": -1,)"));
  r = explain({"--json", "f = (" + calls + "x" + std::string(257, ')'), "x=-1"});
  CHECK(r.code == gg::cli::format_error);
  CHECK(has(r.err, "parse error at column 1029: parentheses and function calls nest deeper than 256 levels"));
}

TEST_CASE("explain: long chains evaluate without recursion") {
  // ~600 KB: a left-deep chain of 200k additions, then 100k unary minuses and a ^ chain.
  std::string program = "f = x";
  for (int i = 0; i < 200'000; ++i) program += "+x";
  program += "; g = " + std::string(100'000, '-') + "f";
  for (int i = 0; i < 1000; ++i) program += "^1";
  const Result r = explain({"--json", program, "x=1"});
  REQUIRE(r.code == 0);
  CHECK(r.out == R"({"output": "g", "values": {"x": 1, "f": 200001, "g": 200001}, )"
                 R"("grads": {"x": 200001, "f": 1, "g": 1}})"
                 "\n");
  const Result text = explain({"f = x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x", "x=1"});
  CHECK(has(text.out, "(x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+x+…)")); // long names are cut
}

TEST_CASE("explain: ten thousand inputs, with options among them, parse") {
  std::string program = "f = x0";
  std::vector<std::string> args{"explain", "--rankdir", "TB", "x0=0"};
  for (int i = 1; i < 10'000; ++i) {
    program += fmt::format(" + {}*x{}", i % 7, i);
    args.push_back(fmt::format("x{}={}", i, i));
    if (i == 5'000) args.emplace_back("--json"); // options may come between the inputs
  }
  args.insert(args.begin() + 3, program);
  const auto r = gg::cli::test::run(args);
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  CHECK(j["values"].size() == 10'001);
  CHECK(j["grads"]["x9999"] == 9999 % 7);
  // Boost's parser is quadratic in what it parses itself: options are capped.
  std::vector<std::string> options(1'002, "--json");
  options.front() = "explain";
  const auto many = gg::cli::test::run(options);
  CHECK(many.code == gg::cli::usage_error);
  CHECK(many.err ==
        "gradgraph explain: 1001 options (arguments starting with '-'): at most 1000 are accepted\n");
}

TEST_CASE("explain: repeated subexpressions get numbered names") {
  const Result r = explain({"a = x*y + 1; b = x*y + a", "x=2", "y=3"});
  CHECK(r.code == 0);
  CHECK(has(r.out, "(x*y) = x * y"));
  CHECK(has(r.out, "(x*y)#2 = x * y"));
}

TEST_CASE("explain: --dot writes the graph atomically with values and gradients") {
  const auto dir = temp_dir("dot");
  const std::string file = (dir / "g.dot").string();
  Result r = explain({"--dot", file, k_cs231n, "x=-2", "y=5", "z=-4"});
  CHECK(r.code == 0);
  CHECK(has(r.out, "graph: wrote " + file));
  const std::string dot = read_file(file);
  CHECK(has(dot, "digraph"));
  CHECK(has(dot, R"(label="f\nmul\nvalue -12\ngrad 1")"));
  CHECK(has(dot, R"(label="x\nleaf\nvalue -2\ngrad -4")"));
  CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()) == 1);

  // With --json, stdout stays one JSON object.
  r = explain({"--json", "--dot", file, k_cs231n, "x=-2", "y=5", "z=-4"});
  CHECK(r.code == 0);
  CHECK(r.out.rfind("{\"output\"", 0) == 0);
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);

  r = explain({"--dot", (dir / "missing" / "g.dot").string(), k_cs231n, "x=-2", "y=5", "z=-4"});
  CHECK(r.code == gg::cli::io_error);
  CHECK(has(r.err, "cannot write"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("explain: --rankdir TB draws the graph top to bottom, and only LR and TB are accepted") {
  const auto dir = temp_dir("rankdir");
  const std::string file = (dir / "g.dot").string();
  REQUIRE(explain({"--dot", file, k_cs231n, "x=-2", "y=5", "z=-4"}).code == 0);
  CHECK(has(read_file(file), "rankdir=LR"));
  REQUIRE(explain({"--dot", file, "--rankdir", "TB", k_cs231n, "x=-2", "y=5", "z=-4"}).code == 0);
  CHECK(has(read_file(file), "rankdir=TB"));
  const Result bad = explain({"--dot", file, "--rankdir", "up", k_cs231n, "x=-2", "y=5", "z=-4"});
  CHECK(bad.code == gg::cli::usage_error);
  CHECK(has(bad.err, "--rankdir 'up': use LR (left to right) or TB (top to bottom)"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("explain: --help describes the language and the exit codes") {
  const Result r = explain({"--help"});
  CHECK(r.code == 0);
  CHECK(has(r.out, "usage: gradgraph explain"));
  CHECK(has(r.out, "-x^2 is -(x^2)"));
  CHECK(has(r.out, "--render"));
  CHECK(has(r.out, "exit codes:"));
}

TEST_CASE("explain: the real binary exits with the documented codes") {
  const std::string bin = quote(GG_CLI_BINARY) + " explain ";
  CHECK(shell(bin + quote(k_cs231n) + " x=-2 y=5 z=-4 >/dev/null") == 0);
  CHECK(shell(bin + quote("q = x * ;") + " x=1 2>/dev/null") == 3);
  CHECK(shell(bin + quote("f = x") + " x=abc 2>/dev/null") == 2);
  CHECK(shell(bin + quote("f = w") + " x=1 2>/dev/null") == 6);
  CHECK(shell(bin + "--dot /nonexistent-dir/g.dot " + quote("f = x") + " x=1 >/dev/null 2>&1") == 4);

  // JSON through a pipe: exactly one line.
  FILE* p = ::popen((bin + "--json " + quote(k_cs231n) + " x=-2 y=5 z=-4").c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  CHECK(WEXITSTATUS(::pclose(p)) == 0);
  CHECK(out == R"({"output": "f", "values": {"x": -2, "y": 5, "z": -4, "q": 3, "f": -12}, )"
               R"("grads": {"x": -4, "y": -4, "z": 3, "q": -4, "f": 1}})"
               "\n");
}

TEST_CASE("explain: --render without Graphviz on PATH says so and succeeds") {
  const auto dir = temp_dir("render_missing");
  const std::string file = (dir / "g.dot").string(), err = (dir / "err.txt").string();
  // An empty PATH finds no dot; run from the directory so nothing named dot is found there either.
  const int code =
      shell("cd " + quote(dir.string()) + " && PATH= " + quote(GG_CLI_BINARY) + " explain --dot " +
            quote(file) + " --render svg " + quote(k_cs231n) + " x=-2 y=5 z=-4 >/dev/null 2>" + quote(err));
  CHECK(code == 0);
  CHECK(
      has(read_file(err), "Graphviz's dot is not on PATH, so " + (dir / "g.svg").string() + " was not made"));
  CHECK(std::filesystem::exists(file));
  CHECK_FALSE(std::filesystem::exists(dir / "g.svg"));
  std::filesystem::remove_all(dir);
}

namespace {
/// A directory holding a stand-in for Graphviz's dot: a shell script writing `picture` into the
/// file after -o (its 4th argument: -Tsvg IN -o OUT) and exiting with `status`.
std::filesystem::path fake_dot(const std::string& name, const std::string& picture, int status) {
  const auto dir = temp_dir(name);
  std::filesystem::create_directories(dir / "bin");
  std::ofstream(dir / "bin" / "dot") << "#!/bin/sh\nprintf '%s' " << quote(picture) << " > \"$4\"\nexit "
                                     << status << "\n";
  std::filesystem::permissions(dir / "bin" / "dot", std::filesystem::perms::owner_all);
  std::ofstream(dir / "g.svg") << "the old picture";
  return dir;
}
/// The names of the files in dir (not folders).
std::vector<std::string> files_in(const std::filesystem::path& dir) {
  std::vector<std::string> r;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    if (e.is_regular_file()) r.push_back(e.path().filename().string());
  std::sort(r.begin(), r.end());
  return r;
}
} // namespace

TEST_CASE("explain: --render that fails leaves the old picture whole, and one that succeeds replaces it") {
  for (const int status : {1, 0}) {
    INFO("dot's exit status " << status);
    const auto dir = fake_dot("render_atomic", "half a new pict", status);
    const std::string err = (dir / "err.txt").string();
    const int code = shell("PATH=" + quote((dir / "bin").string()) + " " + quote(GG_CLI_BINARY) +
                           " explain --dot " + quote((dir / "g.dot").string()) + " --render svg " +
                           quote(k_cs231n) + " x=-2 y=5 z=-4 >/dev/null 2>" + quote(err));
    CHECK(files_in(dir) == std::vector<std::string>{"err.txt", "g.dot", "g.svg"}); // no temporary file left
    if (status != 0) {
      CHECK(code == gg::cli::io_error);
      CHECK(has(read_file(err), "Graphviz's dot failed (exit status 1)"));
      CHECK(read_file((dir / "g.svg").string()) == "the old picture");
    } else {
      CHECK(code == 0);
      CHECK(read_file((dir / "g.svg").string()) == "half a new pict");
    }
    std::filesystem::remove_all(dir);
  }
}

TEST_CASE("explain: --render of a graph over 2000 nodes is refused before anything is written") {
  std::string program = "a0 = x"; // 2000 statements and x: 2001 nodes
  for (int i = 1; i < 2000; ++i) program += fmt::format("; a{} = a{} * x", i, i - 1);
  const auto dir = temp_dir("render_limit");
  const std::string file = (dir / "g.dot").string();
  const Result r = explain({"--dot", file, "--render", "svg", program, "x=1"});
  CHECK(r.code == gg::cli::usage_error);
  CHECK(has(r.err, "--render: the graph has 2001 nodes, and Graphviz's dot is given at most 2000"));
  CHECK_FALSE(std::filesystem::exists(file));
  CHECK(explain({"--dot", file, program, "x=1"}).code == 0); // without --render, the DOT file is written
  CHECK(std::filesystem::exists(file));
  CHECK_NOTHROW(gg::cli::check_render_size("svg", 2000));
  CHECK_NOTHROW(gg::cli::check_render_size("", 2001));
  CHECK_THROWS_AS(gg::cli::check_render_size("svg", 2001), gg::UsageError);
  std::filesystem::remove_all(dir);
}

TEST_CASE("explain: a Graphviz that runs past its time is stopped, and the old picture stays") {
  const auto dir = fake_dot("render_timeout", "", 0);
  std::ofstream(dir / "bin" / "dot") << "#!/bin/sh\nprintf 'half' > \"$4\"\nexec /bin/sleep 20\n";
  const char* old_path = std::getenv("PATH");
  const std::string saved = old_path ? old_path : "";
  ::setenv("PATH", (dir / "bin").string().c_str(), 1);
  const auto start = std::chrono::steady_clock::now();
  std::ostringstream err;
  std::string message;
  try {
    gg::cli::save_graph("explain", (dir / "g.dot").string(), "digraph G {}\n", "svg", err,
                        std::chrono::milliseconds(300));
  } catch (const gg::IOError& e) {
    message = e.what();
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ::setenv("PATH", saved.c_str(), 1);
  CHECK(has(message, "did not finish rendering"));
  CHECK(has(message, "in 0.3 s and was stopped"));
  CHECK(seconds < 10); // not the 20 s the stand-in sleeps
  CHECK(read_file((dir / "g.svg").string()) == "the old picture");
  CHECK(files_in(dir) == std::vector<std::string>{"g.dot", "g.svg"});
  std::filesystem::remove_all(dir);
}

TEST_CASE("explain: --render runs Graphviz when it is installed") {
  if (shell("command -v dot >/dev/null 2>&1") != 0) {
    WARN("Graphviz's dot is not installed: skipped");
    return;
  }
  const auto dir = temp_dir("render");
  const std::string file = (dir / "-odd name.dot").string(); // no shell: spaces and dashes are fine
  const Result r = explain({"--dot", file, "--render", "svg", k_cs231n, "x=-2", "y=5", "z=-4"});
  CHECK(r.code == 0);
  CHECK(has(r.out, "rendered " + (dir / "-odd name.svg").string()));
  CHECK(has(read_file((dir / "-odd name.svg").string()), "<svg"));
  std::filesystem::remove_all(dir);
}
