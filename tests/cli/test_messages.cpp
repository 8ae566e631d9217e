// Error messages as the command line prints them (cli/src/messages.hpp): escaped control characters
// and invalid UTF-8, cut lines and line counts, hints for "0,5" and "−2", and the JSON error object
// of explain --json; each also through gg::cli::run, where every command's errors pass.
#include "cli_test.hpp"

#include <cli/src/json.hpp>
#include <cli/src/messages.hpp>

#include <catch2/catch.hpp>

#include <string>

using gg::cli::number_hint;
using gg::cli::printable;
using gg::cli::test::run;

TEST_CASE("messages: control characters and invalid UTF-8 are escaped, valid text is kept") {
  CHECK(printable("plain ASCII, ∂f/∂x = −4 …, 😀") == "plain ASCII, ∂f/∂x = −4 …, 😀");
  CHECK(printable("two\nlines\n") == "two\nlines\n");
  CHECK(printable("tab\there\rbell\a esc\x1b[31m del\x7f") == "tab\\there\\rbell\\x07 esc\\x1b[31m del\\x7f");
  CHECK(printable("C1 \xc2\x85 control") == "C1 \\u0085 control");
  CHECK(printable("bad \xff byte") == "bad \\xff byte");
  CHECK(printable("stray \x80 continuation") == "stray \\x80 continuation");
  CHECK(printable("overlong \xc0\xaf slash") == "overlong \\xc0\\xaf slash");
  CHECK(printable("surrogate \xed\xa0\x80!") == "surrogate \\xed\\xa0\\x80!");
  CHECK(printable("cut \xe2\x88") == "cut \\xe2\\x88");
  CHECK(printable(std::string("nul \0 inside", 12)) == "nul \\x00 inside");
}

TEST_CASE("messages: a long line is cut in its middle and a long message after 40 lines") {
  const std::string input = "'x=" + std::string(400'000, '7') + "a': not a number";
  const std::string cut = printable(input);
  CHECK(cut.size() < 500);
  CHECK(cut.rfind("'x=777", 0) == 0);
  CHECK(cut.find(" … (399659 characters left out) … ") != std::string::npos);
  CHECK(cut.size() - cut.rfind("7a': not a number") == std::string("7a': not a number").size());
  std::string many;
  for (int i = 0; i < 100; ++i) many += "line " + std::to_string(i) + "\n";
  const std::string shown = printable(many);
  CHECK(shown.find("line 39\n… (60 more lines)") != std::string::npos);
  CHECK(shown.find("line 40") == std::string::npos);
}

TEST_CASE("messages: numbers written with a decimal comma or a typographic minus get a hint") {
  CHECK(number_hint("0,5") == "use a dot for decimals: 0.5");
  CHECK(number_hint("−2") == "use the ASCII '-' for minus, not '−' (U+2212): -2");
  CHECK(number_hint("–1,5") == "use the ASCII '-' for minus, not '–' (U+2013): -1,5");
  CHECK(number_hint("1,000,000").empty()); // thousands separators are not decimals
  CHECK(number_hint("abc").empty());
  CHECK(number_hint(",5").empty());
}

TEST_CASE("messages: every command's errors pass through them") {
  auto r = run({"explain", "f = x", "x=\x1b[2J\xff"});
  CHECK(r.code == gg::cli::usage_error);
  CHECK(r.err == "gradgraph explain: 'x=\\x1b[2J\\xff': not a number\n");
  r = run({"explain", "f = x", "x=" + std::string(400'000, '7') + "a"});
  CHECK(r.code == gg::cli::usage_error);
  CHECK(r.err.size() < 500);
  CHECK(r.err.find("a': not a number\n") != std::string::npos);
  r = run({"train", "--dataset", "xor", "--layers", "2,2,2", "--lr", "0,5"});
  CHECK(r.code == gg::cli::usage_error);
  CHECK(r.err == "gradgraph train: --lr '0,5': not a number (use a dot for decimals: 0.5)\n");
  r = run({"summary", "--layers", "2,3,2", "--seed", "\xff"});
  CHECK(r.code == gg::cli::usage_error);
  CHECK(r.err.find("'\\xff'") != std::string::npos);
}

TEST_CASE("messages: under --json an error is also one JSON object on standard output") {
  auto r = run({"explain", "--json", "f = x +", "x=1"});
  CHECK(r.code == gg::cli::format_error);
  CHECK(r.err.rfind("gradgraph explain: parse error at column 8", 0) == 0);
  const auto error = gg::cli::json::Value::parse(r.out);
  CHECK(error["error"]["kind"] == "format");
  CHECK(error["error"]["exit_code"] == 3);
  CHECK(error["error"]["message"] ==
        "parse error at column 8: expected an expression after '+'\nf = x +\n       ^");
  CHECK(std::count(r.out.begin(), r.out.end(), '\n') == 1);
  r = run({"explain", "--json", "f = x", "x=\xff"});
  CHECK(gg::cli::json::Value::parse(r.out)["error"]["message"] == "'x=\\xff': not a number");
  CHECK(gg::cli::json::Value::parse(run({"explain", "--json", "f = w", "x=1"}).out)["error"]["kind"] ==
        "value");
  // Without --json, standard output stays empty.
  CHECK(run({"explain", "f = x +", "x=1"}).out.empty());
}
