// Bad input never crashes: absurd sizes, malformed files and wrong arguments, each refused with a
// gg::Error kind (an exit code) and a message before any large allocation. The table of these
// inputs in docs/reliability.md is generated from this list (GG_UPDATE_DOCS=1 rewrites it) and a
// test fails when it is stale. Also the exit codes --help documents, and the regression inputs
// the fuzzers found in the command line's handling.
#include "cli_test.hpp"

#include <autodiff/error.hpp>
#include <nn/data/idx.hpp>
#include <nn/io/safetensors.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using gg::cli::test::Result;
using gg::cli::test::run;

/// A folder of bad files, made once per process and removed at exit; messages show paths relative
/// to it.
const fs::path& bad_dir() {
  static const gg::test::TempDir made("hardening");
  static const fs::path dir = [] {
    const fs::path d = made.path;
    auto file = [&](const std::string& name, const std::string& bytes) {
      std::ofstream(d / name, std::ios::binary) << bytes;
    };
    auto u32 = [](std::uint32_t v) {
      return std::string{static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                         static_cast<char>(v)};
    };
    auto u64le = [](std::uint64_t v) {
      std::string s(8, '\0');
      for (int i = 0; i < 8; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>(v >> (8 * i));
      return s;
    };
    auto safetensors = [&](const std::string& json, const std::string& data) {
      std::string h = json + std::string((8 - json.size() % 8) % 8, ' ');
      return u64le(h.size()) + h + data;
    };
    file("ok.csv", "x1,x2,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n");
    std::string wide = "x,label\n";
    wide.reserve(20'000'010);
    for (int i = 0; i < 10'000'000; ++i) wide += "1,";
    file("wide.csv", wide + "0\n");
    file("nan.csv", "x,label\n1,0\nnan,1\n");
    file("text.csv", "x,label\n1,0\none,1\n");
    file("ragged.csv", "x1,x2,label\n1,2,0\n3,1\n");
    file("empty.csv", "");
    file("header_only.csv", "x,label\n");
    file("class_id.csv", "x,label\n1,1000000000\n");
    file("one_class.csv", "x,label\n1,0\n2,0\n3,0\n");
    file("many_classes.csv", "x,label\n1,0\n2,20000\n");
    file("swapped.csv", "x2,x1,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n");
    file("renamed.csv", "x1,y2,label\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n");
    // A 2-2 model of ok.csv's columns, and one whose weights are NaN.
    const std::string meta = R"("__metadata__":{"gradgraph.layers":"2,2","gradgraph.activation":"relu",)"
                             R"("gradgraph.features":"[\"x1\",\"x2\"]"},)";
    const std::string entries = R"("0.weight":{"dtype":"F64","shape":[2,2],"data_offsets":[0,32]},)"
                                R"("0.bias":{"dtype":"F64","shape":[2],"data_offsets":[32,48]}})";
    file("named.safetensors", safetensors("{" + meta + entries, std::string(48, '\0')));
    std::string nan_bytes(48, '\0');
    nan_bytes[6] = '\xf8', nan_bytes[7] = '\x7f'; // the first weight: a quiet NaN
    file("nan.safetensors", safetensors("{" + meta + entries, nan_bytes));
    file("quote.csv", "x,label\n\"1,0\n");
    file("huge.idx", std::string("\0\0\x08\x03", 4) + u32(100000) + u32(100000) + u32(100000) + "0123456789");
    file("overflow.idx", std::string("\0\0\x0e\x04", 4) + u32(0xffffffff) + u32(0xffffffff) +
                             u32(0xffffffff) + u32(0xffffffff));
    file("bad_magic.idx", "PK\x03\x04");
    file("nan.idx", std::string("\0\0\x0d\x01", 4) + u32(2) + std::string("\x3f\x80\0\0\x7f\xc0\0\0", 8));
    file("short.safetensors", "abcd");
    file("huge_header.safetensors", u64le(std::uint64_t{1} << 62) + "{}");
    file("huge_shape.safetensors",
         safetensors(R"({"w":{"dtype":"F64","shape":[1000000000000,1000000000000],"data_offsets":[0,8]}})",
                     std::string(8, '\0')));
    file("huge_tensor.safetensors",
         safetensors(R"({"w":{"dtype":"F64","shape":[1000000000],"data_offsets":[0,8000000000]}})",
                     std::string(8, '\0')));
    file("deep.safetensors", safetensors(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[0,8],"x":)" +
                                             std::string(100, '[') + std::string(100, ']') + "}}",
                                         std::string(8, '\0')));
    file("no_weights.safetensors",
         safetensors(R"({"__metadata__":{"gradgraph.layers":"2,2","gradgraph.activation":"relu"}})", ""));
    file("no_metadata.safetensors",
         safetensors(R"({"0.weight":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})",
                     std::string(8, '\0')));
    return d;
  }();
  return dir;
}
std::string bad(const std::string& name) {
  return (bad_dir() / name).string();
}

/// One bad input: how the table shows it, what is wrong with it, and how to try it.
struct BadInput {
  std::string shown;
  std::string problem;
  std::function<Result()> attempt;
  int expected; ///< exit code (library calls: the code the CLI gives that error kind)
};

Result cli(std::vector<std::string> args) {
  return run(args);
}
/// Runs the gradgraph binary (args already shell words) with its standard output on /dev/full: its
/// exit code and what it said on standard error.
Result into_dev_full(const std::string& args) {
  const std::string err = (bad_dir() / "dev_full_err.txt").string();
  const int status = std::system(fmt::format("'{}' {} >/dev/full 2>'{}'", GG_CLI_BINARY, args, err).c_str());
  std::ifstream in(err);
  std::stringstream text;
  text << in.rdbuf();
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, "", text.str()};
}
/// Runs a library call and reports its gg::Error as the CLI would (exit code, message).
Result library(const std::function<void()>& f) {
  try {
    f();
  } catch (const gg::FormatError& e) {
    return {gg::cli::format_error, "", e.what()};
  } catch (const gg::IOError& e) {
    return {gg::cli::io_error, "", e.what()};
  } catch (const gg::ShapeError& e) {
    return {gg::cli::shape_error, "", e.what()};
  } catch (const gg::ValueError& e) {
    return {gg::cli::value_error, "", e.what()};
  } catch (const gg::UsageError& e) {
    return {gg::cli::usage_error, "", e.what()};
  }
  return {gg::cli::ok, "", ""};
}

std::vector<BadInput> bad_inputs() {
  const std::vector<std::string> xor_run{"train", "--dataset", "xor", "--layers", "2,2,2"};
  auto train = [xor_run](std::vector<std::string> extra) {
    std::vector<std::string> a = xor_run;
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  };
  auto csv = [](const std::string& name) {
    return std::vector<std::string>{"train", "--data", bad(name), "--layers", "1,2,2"};
  };
  const std::string deep = "f = " + std::string(300, '(') + "x" + std::string(300, ')');
  const std::string big(2'000'000, ' ');
  std::string layers = "1"; // 501 layers of width 1 and a sigmoid: 2005 nodes
  for (int i = 0; i < 501; ++i) layers += ",1";
  std::string chain = "a0 = x"; // 40,000 statements: just over 10^8 op evaluations for --check
  for (int i = 1; i < 40'000; ++i) chain += fmt::format("; a{} = a{} * x", i, i - 1);
  return {
      {"gradgraph summary --layers 1000000000000,1000000000000", "a model of 10^24 parameters",
       [] {
         return cli({"summary", "--layers", "1000000000000,1000000000000"});
       },
       gg::cli::value_error},
      {"gradgraph summary --layers 2,30000,30000,2", "9·10^8 parameters (7 GB of float64 weights)",
       [] {
         return cli({"summary", "--layers", "2,30000,30000,2"});
       },
       gg::cli::value_error},
      {"gradgraph summary --layers 2,99999999999999999999", "a size beyond 64 bits",
       [] {
         return cli({"summary", "--layers", "2,99999999999999999999"});
       },
       gg::cli::value_error},
      {"gradgraph summary --layers 2,0,2", "a layer of size 0",
       [] {
         return cli({"summary", "--layers", "2,0,2"});
       },
       gg::cli::value_error},
      {"gradgraph summary --layers 2", "one size only",
       [] {
         return cli({"summary", "--layers", "2"});
       },
       gg::cli::value_error},
      {"gradgraph summary --layers 2,3,2 --activation softplus", "an unknown activation",
       [] {
         return cli({"summary", "--layers", "2,3,2", "--activation", "softplus"});
       },
       gg::cli::value_error},
      {"gradgraph train --dataset xor --layers 2,2,2 --samples 1000000000000", "10^12 generated points",
       [=] {
         return cli(train({"--samples", "1000000000000"}));
       },
       gg::cli::value_error},
      {"gradgraph train ... --epochs 0", "no epochs",
       [=] {
         return cli(train({"--epochs", "0"}));
       },
       gg::cli::value_error},
      {"gradgraph train ... --epochs 10000000000", "10^10 epochs",
       [=] {
         return cli(train({"--epochs", "10000000000"}));
       },
       gg::cli::value_error},
      {"gradgraph train ... --epochs many", "not a number",
       [=] {
         return cli(train({"--epochs", "many"}));
       },
       gg::cli::usage_error},
      {"gradgraph train ... --batch-size 0", "an empty batch",
       [=] {
         return cli(train({"--batch-size", "0"}));
       },
       gg::cli::value_error},
      {"gradgraph train ... --lr -1", "a negative learning rate",
       [=] {
         return cli(train({"--lr", "-1"}));
       },
       gg::cli::value_error},
      {"gradgraph train ... --lr nan", "a NaN learning rate",
       [=] {
         return cli(train({"--lr", "nan"}));
       },
       gg::cli::usage_error},
      {"gradgraph train ... --seed -1", "a negative seed (it wrapped to 2^64 - 1)",
       [=] {
         return cli(train({"--seed", "-1"}));
       },
       gg::cli::usage_error},
      {"gradgraph train ... --split nan", "a NaN fraction (it meant no split)",
       [=] {
         return cli(train({"--split", "nan"}));
       },
       gg::cli::usage_error},
      {"gradgraph train ... --split -0.5", "a negative fraction (it meant no split)",
       [=] {
         return cli(train({"--split", "-0.5"}));
       },
       gg::cli::value_error},
      {"gradgraph train ... --epochs 1e3", "an exponent for a whole number",
       [=] {
         return cli(train({"--epochs", "1e3"}));
       },
       gg::cli::usage_error},
      {"gradgraph train ... --log run.out --checkpoint run.out", "two outputs on one file",
       [=] {
         return cli(train({"--log", bad("run.out"), "--checkpoint", bad("run.out")}));
       },
       gg::cli::usage_error},
      {"gradgraph train --data ok.csv --save ok.csv ...", "an output that is the input",
       [] {
         return cli({"train", "--data", bad("ok.csv"), "--layers", "2,2", "--save", bad("ok.csv")});
       },
       gg::cli::usage_error},
      {"gradgraph train --data one_class.csv --layers 1,2", "a single-class data set",
       [] {
         return cli({"train", "--data", bad("one_class.csv"), "--layers", "1,2"});
       },
       gg::cli::value_error},
      {"gradgraph train --data many_classes.csv --layers 1,20001", "20,001 classes (eval's limit is 10,000)",
       [] {
         return cli({"train", "--data", bad("many_classes.csv"), "--layers", "1,20001"});
       },
       gg::cli::value_error},
      {"gradgraph train --data ok.csv --layers 2,2 --target x1 --target x2",
       "two target columns, cross-entropy",
       [] {
         return cli(
             {"train", "--data", bad("ok.csv"), "--layers", "2,2", "--target", "x1", "--target", "x2"});
       },
       gg::cli::usage_error},
      {"gradgraph train ... --lr inf", "a learning rate that makes the weights infinite",
       [=] {
         return cli(train({"--lr", "inf", "--epochs", "2"}));
       },
       gg::cli::diverged},
      {"gradgraph eval --model nan.safetensors --data ok.csv", "a model with NaN weights",
       [] {
         return cli({"eval", "--model", bad("nan.safetensors"), "--data", bad("ok.csv")});
       },
       gg::cli::value_error},
      {"gradgraph eval --model m.safetensors --data swapped.csv", "feature columns swapped since training",
       [] {
         return cli({"eval", "--model", bad("named.safetensors"), "--data", bad("swapped.csv")});
       },
       gg::cli::value_error},
      {"gradgraph eval --model m.safetensors --data renamed.csv", "a feature column renamed since training",
       [] {
         return cli({"eval", "--model", bad("named.safetensors"), "--data", bad("renamed.csv")});
       },
       gg::cli::value_error},
      {"gradgraph train ... --split 1", "nothing left to train on",
       [=] {
         return cli(train({"--split", "1"}));
       },
       gg::cli::value_error},
      {"gradgraph train ... --dtype f16", "an unsupported dtype",
       [=] {
         return cli(train({"--dtype", "f16"}));
       },
       gg::cli::usage_error},
      {"gradgraph train --dataset moon --layers 2,2,2", "an unknown dataset",
       [] {
         return cli({"train", "--dataset", "moon", "--layers", "2,2,2"});
       },
       gg::cli::value_error},
      {"gradgraph train ... --samples '%value%'",
       "a value holding Boost's placeholder (it hung: found by fuzzing)",
       [=] {
         return cli(train({"--samples", "%value%"}));
       },
       gg::cli::usage_error},
      {"gradgraph train --%option% 1", "an option named as a placeholder",
       [] {
         return cli({"train", "--%option%", "1"});
       },
       gg::cli::usage_error},
      {"gradgraph train --layers 2,2,2", "no data",
       [] {
         return cli({"train", "--layers", "2,2,2"});
       },
       gg::cli::usage_error},
      {"gradgraph train --data missing.csv --layers 1,2,2", "a missing file",
       [=] { return cli(csv("missing.csv")); }, gg::cli::io_error},
      {"gradgraph train --data wide.csv ...", "a row of 10^7 columns (20 MB)",
       [=] { return cli(csv("wide.csv")); }, gg::cli::format_error},
      {"gradgraph train --data nan.csv ...", "NaN in the data", [=] { return cli(csv("nan.csv")); },
       gg::cli::format_error},
      {"gradgraph train --data text.csv ...", "text in a numeric column",
       [=] { return cli(csv("text.csv")); }, gg::cli::format_error},
      {"gradgraph train --data ragged.csv ...", "a row with a missing field",
       [=] { return cli(csv("ragged.csv")); }, gg::cli::format_error},
      {"gradgraph train --data empty.csv ...", "an empty file", [=] { return cli(csv("empty.csv")); },
       gg::cli::format_error},
      {"gradgraph train --data header_only.csv ...", "no data rows",
       [=] { return cli(csv("header_only.csv")); }, gg::cli::format_error},
      {"gradgraph train --data class_id.csv ...", "a class id of 10^9",
       [=] { return cli(csv("class_id.csv")); }, gg::cli::format_error},
      {"gradgraph train --data quote.csv ...", "an unterminated quote", [=] { return cli(csv("quote.csv")); },
       gg::cli::format_error},
      {"gradgraph train --data ok.csv --layers 3,2,2", "layer sizes that do not fit the data",
       [] {
         return cli({"train", "--data", bad("ok.csv"), "--layers", "3,2,2"});
       },
       gg::cli::shape_error},
      {"gradgraph train ... --init short.safetensors", "a 4-byte weights file",
       [=] {
         return cli(train({"--init", bad("short.safetensors")}));
       },
       gg::cli::format_error},
      {"gradgraph train ... --resume no_metadata.safetensors", "a file that is no checkpoint",
       [=] {
         return cli(train({"--resume", bad("no_metadata.safetensors")}));
       },
       gg::cli::value_error},
      {"gradgraph eval --model no_metadata.safetensors --data ok.csv", "a model not saved by gradgraph train",
       [] {
         return cli({"eval", "--model", bad("no_metadata.safetensors"), "--data", bad("ok.csv")});
       },
       gg::cli::format_error},
      {"gradgraph eval --model huge_header.safetensors --data ok.csv", "a header length of 2^62",
       [] {
         return cli({"eval", "--model", bad("huge_header.safetensors"), "--data", bad("ok.csv")});
       },
       gg::cli::format_error},
      {"gradgraph eval --model no_weights.safetensors --data ok.csv", "a model file with no weights",
       [] {
         return cli({"eval", "--model", bad("no_weights.safetensors"), "--data", bad("ok.csv")});
       },
       gg::cli::format_error},
      {"gradgraph train ... --save missing/m.safetensors",
       "a folder that does not exist (found before training)",
       [=] {
         return cli(train({"--save", bad("missing/m.safetensors")}));
       },
       gg::cli::io_error},
      {"gradgraph dot --layers 2,3,2 -o missing/g.dot", "a folder that does not exist",
       [] {
         return cli({"dot", "--layers", "2,3,2", "-o", bad("missing/g.dot")});
       },
       gg::cli::io_error},
      {"gradgraph explain \"f = (((…x…)))\" x=1", "parentheses nested 300 deep",
       [=] {
         return cli({"explain", deep, "x=1"});
       },
       gg::cli::format_error},
      {"gradgraph explain \"<2 MB of spaces>\"", "a 2 MB program",
       [=] {
         return cli({"explain", big});
       },
       gg::cli::usage_error},
      {"gradgraph explain \"f = x +\" x=1", "an unfinished expression",
       [] {
         return cli({"explain", "f = x +", "x=1"});
       },
       gg::cli::format_error},
      {"gradgraph explain \"f = erf(x)\" x=1", "an unknown function",
       [] {
         return cli({"explain", "f = erf(x)", "x=1"});
       },
       gg::cli::value_error},
      {"gradgraph explain \"f = x * y\" x=1", "an input without a value",
       [] {
         return cli({"explain", "f = x * y", "x=1"});
       },
       gg::cli::usage_error},
      {"gradgraph explain \"f = x\" x=1e999", "a number beyond float64",
       [] {
         return cli({"explain", "f = x", "x=1e999"});
       },
       gg::cli::usage_error},
      {"gradgraph explain \"f = x\" x=0,5", "a decimal comma",
       [] {
         return cli({"explain", "f = x", "x=0,5"});
       },
       gg::cli::usage_error},
      {"gradgraph explain \"f = x\" x=−2", "a typographic minus (U+2212)",
       [] {
         return cli({"explain", "f = x", "x=−2"});
       },
       gg::cli::usage_error},
      {"gradgraph explain \"f = x\" $'x=\\e[2J\\xff'",
       "a terminal escape sequence and a byte that is not UTF-8",
       [] {
         return cli({"explain", "f = x", "x=\x1b[2J\xff"});
       },
       gg::cli::usage_error},
      {"gradgraph explain \"f = x\" x=<400 KB of digits>",
       "a 400 KB value echoed in the message (cut in its middle)",
       [=] {
         return cli({"explain", "f = x", "x=" + std::string(400'000, '7') + "a"});
       },
       gg::cli::usage_error},
      {"gradgraph explain \"f = x\" x=1 >/dev/full", "a standard output that cannot be written",
       [] { return into_dev_full("explain 'f = x' x=1"); }, gg::cli::io_error},
      {"gradgraph explain --check \"a0 = x; a1 = a0 * x; …; a39999 = a39998 * x\" x=1",
       "finite differences of 40,000 chained statements (n²/8 op evaluations)",
       [=] {
         return cli({"explain", "--check", chain, "x=1"});
       },
       gg::cli::usage_error},
      {"gradgraph dot --layers 1,1,…,1 (501 layers) -o g.dot --render svg",
       "a picture too large for Graphviz",
       [=] {
         return cli({"dot", "--layers", layers, "-o", bad("g.dot"), "--render", "svg"});
       },
       gg::cli::usage_error},
      {"gradgraph train ... --lr 0,5", "a decimal comma in an option",
       [=] {
         return cli(train({"--lr", "0,5"}));
       },
       gg::cli::usage_error},
      {"gradgraph fit", "an unknown command", [] { return cli({"fit"}); }, gg::cli::usage_error},
      {"gradgraph train --no-such-option", "an unknown option",
       [] {
         return cli({"train", "--no-such-option"});
       },
       gg::cli::usage_error},
      {"gg::data::read_idx(\"huge.idx\")", "a header claiming 10^15 bytes, 10 present",
       [] { return library([] { gg::data::read_idx(bad("huge.idx")); }); }, gg::cli::format_error},
      {"gg::data::read_idx(\"overflow.idx\")", "dimensions whose product overflows 64 bits",
       [] { return library([] { gg::data::read_idx(bad("overflow.idx")); }); }, gg::cli::format_error},
      {"gg::data::read_idx(\"bad_magic.idx\")", "a ZIP file",
       [] { return library([] { gg::data::read_idx(bad("bad_magic.idx")); }); }, gg::cli::format_error},
      {"gg::data::read_idx(\"nan.idx\")", "float data holding NaN",
       [] { return library([] { gg::data::read_idx(bad("nan.idx")); }); }, gg::cli::format_error},
      {"gg::safetensors::load(\"huge_shape.safetensors\")", "a tensor of shape [10^12, 10^12]",
       [] { return library([] { gg::safetensors::load(bad("huge_shape.safetensors")); }); },
       gg::cli::format_error},
      {"gg::safetensors::load(\"huge_tensor.safetensors\")", "an 8 GB tensor in a 100-byte file",
       [] { return library([] { gg::safetensors::load(bad("huge_tensor.safetensors")); }); },
       gg::cli::format_error},
      {"gg::safetensors::load(\"deep.safetensors\")", "JSON nested 100 deep",
       [] { return library([] { gg::safetensors::load(bad("deep.safetensors")); }); }, gg::cli::format_error},
      {"gg::Tensor::zeros({1 << 40, 1 << 40})", "2^80 elements",
       [] { return library([] {
              gg::Tensor::zeros({std::int64_t{1} << 40, std::int64_t{1} << 40});
            }); },
       gg::cli::value_error},
  };
}

const char* kind_name(int code) {
  switch (code) {
  case gg::cli::usage_error: return "usage";
  case gg::cli::format_error: return "format";
  case gg::cli::io_error: return "I/O";
  case gg::cli::shape_error: return "shape";
  case gg::cli::value_error: return "value";
  case gg::cli::diverged: return "diverged";
  case gg::cli::ok: return "none";
  default: return "internal";
  }
}

/// The message a user sees: the first line of the error, bad_dir() left out, '|' escaped.
std::string shown_message(const Result& r) {
  std::string m = r.err.substr(0, r.err.find('\n'));
  const std::string dir = bad_dir().string() + "/";
  for (std::size_t at; (at = m.find(dir)) != std::string::npos;) m.erase(at, dir.size());
  for (std::size_t at = 0; (at = m.find('|', at)) != std::string::npos; at += 2) m.replace(at, 1, "\\|");
  return m;
}

std::string docs_path() {
  return std::string(GG_TEST_DATA) + "/../../../docs/reliability.md";
}
constexpr const char* k_begin = "<!-- bad-inputs:begin (generated by tests/cli/test_hardening.cpp) -->\n";
constexpr const char* k_end = "<!-- bad-inputs:end -->\n";

} // namespace

TEST_CASE(
    "hardening: every bad input gets its error kind and a message, and docs/reliability.md lists them") {
  std::string table = "| input | what is wrong | error (exit code) | message |\n| --- | --- | --- | --- |\n";
  for (const BadInput& b : bad_inputs()) {
    INFO(b.shown);
    Result r = b.attempt();
    CHECK(r.code == b.expected);
    CHECK(r.out.find("internal error") == std::string::npos);
    CHECK(r.err.find("internal error") == std::string::npos);
    const std::string message = shown_message(r);
    CHECK(!message.empty());
    table +=
        fmt::format("| `{}` | {} | {} ({}) | {} |\n", b.shown, b.problem, kind_name(r.code), r.code, message);
  }
  std::ifstream in(docs_path());
  std::stringstream doc;
  doc << in.rdbuf();
  std::string text = doc.str();
  const std::size_t begin = text.find(k_begin), end = text.find(k_end);
  REQUIRE(begin != std::string::npos);
  REQUIRE(end != std::string::npos);
  const std::size_t from = begin + std::string(k_begin).size();
  if (std::getenv("GG_UPDATE_DOCS")) {
    text.replace(from, end - from, table);
    std::ofstream(docs_path() + ".tmp") << text;
    fs::rename(docs_path() + ".tmp", docs_path());
  } else {
    INFO("docs/reliability.md's table of bad inputs is stale: run GG_UPDATE_DOCS=1 ctest -R hardening");
    CHECK(text.substr(from, end - from) == table);
  }
}

TEST_CASE("hardening: --help documents one exit code per error kind") {
  const Result r = run({"--help"});
  CHECK(r.code == 0);
  for (const char* line :
       {"  1  internal error", "  2  usage error", "  3  format error", "  4  I/O error", "  5  shape error",
        "  6  value error", "  7  out of memory", "  8  training diverged", "130  interrupted"})
    CHECK(r.out.find(line) != std::string::npos);
}

TEST_CASE("hardening: train's --log is replaced only when the run ends, by its whole log") {
  const fs::path dir = bad_dir() / "log";
  fs::create_directories(dir);
  const std::string log = (dir / "run.jsonl").string();
  std::ofstream(log) << "the previous run's log\n";
  const Result r = run({"train", "--dataset", "xor", "--samples", "40", "--layers", "2,3,2", "--epochs", "5",
                        "--batch-size", "10", "--log", log, "--stop-after", "7", "--checkpoint",
                        (dir / "c.safetensors").string()});
  CHECK(r.code == gg::cli::interrupted);
  std::ifstream in(log);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  REQUIRE(lines.size() == 8); // 7 steps and the first epoch's summary, each a whole JSON line
  CHECK(lines.front().rfind("{\"step\": 1,", 0) == 0);
  for (const std::string& line : lines) CHECK((line.front() == '{' && line.back() == '}'));
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"c.safetensors", "run.jsonl"}); // no temporary file left
}

TEST_CASE(
    "hardening: an argument holding Boost.Program_options' placeholders does not hang (found by fuzzing)") {
  // Boost 1.74 replaced "%value%" in its message by the value, forever; the fuzzers' inputs are
  // fuzz/corpus/cli/timeout-boost-value-placeholder and fuzz/corpus/expr/timeout-boost-original-token.
  for (const char* value : {"%value%", "x%canonical_option%y", "%original_token%", "%prefix_option%"}) {
    const Result r = run({"train", "--dataset", "xor", "--layers", "2,2,2", "--samples", value});
    CHECK(r.code == gg::cli::usage_error);
    CHECK_THAT(r.err, Catch::Contains("--samples '" + std::string(value) + "': not a whole number"));
  }
  CHECK(run({"train", "\n--epochs", "%value%"}).code == gg::cli::usage_error);
  // A program that starts with '-' is taken for an option, and its text is the message's token.
  const Result r = run({"explain", "-xexp(b a%original_token% a"});
  CHECK(r.code == gg::cli::usage_error);
  CHECK_THAT(r.err, Catch::Contains("original_token"));
}
