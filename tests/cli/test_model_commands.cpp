// gradgraph summary and gradgraph dot: the course's parameter count, the model picture with one
// cluster a layer, and every bad argument named with its exit code.
#include "cli_test.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace {
using gg::cli::test::Result;
using gg::cli::test::run;
std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}
} // namespace

TEST_CASE("models: summary answers the course's quiz, 17 parameters for 2-3-2") {
  const Result r = run({"summary", "--layers", "2,3,2", "--activation", "sigmoid"});
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("Linear(in=2, out=3)") && Catch::Contains("Sigmoid") &&
                        Catch::Contains("[1, 2]") && Catch::Contains("total parameters: 17"));
  CHECK(run({"summary", "--layers", "784,128,10", "--activation", "relu"}).out.find("101770") !=
        std::string::npos);
}

TEST_CASE("models: summary and dot reject bad arguments with a message and an exit code") {
  CHECK(run({"summary"}).code == gg::cli::usage_error); // --layers is required
  const Result zero = run({"summary", "--layers", "2,0,2"});
  CHECK(zero.code == gg::cli::value_error);
  CHECK_THAT(zero.err, Catch::Contains("entry 2 ('0')"));
  CHECK(run({"summary", "--layers", "5"}).code == gg::cli::value_error);
  CHECK(run({"summary", "--layers", "2,x"}).code == gg::cli::value_error);
  const Result huge = run({"summary", "--layers", "1000000000000,1000000000000"});
  CHECK(huge.code == gg::cli::value_error); // refused before any allocation
  CHECK_THAT(huge.err, Catch::Contains("parameters"));
  const Result act = run({"summary", "--layers", "2,2", "--activation", "swish"});
  CHECK(act.code == gg::cli::value_error);
  CHECK_THAT(act.err, Catch::Contains("swish"));
  CHECK(run({"dot", "--layers", "2,2"}).code == gg::cli::usage_error); // -o is required
  CHECK(run({"dot", "--layers", "2,2", "-o", "x.dot", "--render", "gif"}).code == gg::cli::usage_error);
  CHECK(run({"dot", "--layers", "2,2", "-o", "/nonexistent-dir/x.dot"}).code == gg::cli::io_error);
  CHECK(run({"summary", "--bogus"}).code == gg::cli::usage_error);
}

TEST_CASE("models: dot draws each layer as a cluster, and --backward adds the gradients") {
  const auto dir = std::filesystem::temp_directory_path();
  const std::string forward = (dir / "gg_cli_mlp_forward.dot").string(),
                    back = (dir / "gg_cli_mlp_back.dot").string();
  REQUIRE(run({"dot", "--layers", "2,3,2", "--activation", "tanh", "-o", forward}).code == 0);
  const std::string f = slurp(forward);
  CHECK_THAT(f, Catch::Contains("digraph") && Catch::Contains("0: Linear(in=2, out=3)") &&
                    Catch::Contains("1: Tanh") && Catch::Contains("2: Linear(in=3, out=2)"));
  CHECK(f.find("grad ") == std::string::npos);
  REQUIRE(run({"dot", "--layers", "2,3,2", "-o", back, "--backward"}).code == 0);
  const std::string b = slurp(back);
  CHECK_THAT(b, Catch::Contains("grad ") && Catch::Contains("loss"));
  std::filesystem::remove(forward);
  std::filesystem::remove(back);
}

TEST_CASE("models: dot --entries shows more of each tensor, and --render refuses a graph too large") {
  const gg::test::TempDir dir("cli_entries");
  const std::string path = dir / "g.dot";
  REQUIRE(run({"dot", "--layers", "6,1", "-o", path}).code == 0);
  CHECK_THAT(slurp(path), Catch::Contains("tensors: their shape and first 4 entries") &&
                              Catch::Contains("…]")); // the 6 weights cut after 4
  REQUIRE(run({"dot", "--layers", "6,1", "-o", path, "--entries", "6"}).code == 0);
  const std::string all = slurp(path);
  CHECK_THAT(all, Catch::Contains("first 6 entries") && !Catch::Contains("…]"));
  for (const char* bad : {"-1", "1001", "x"}) {
    INFO(bad);
    CHECK(run({"dot", "--layers", "6,1", "-o", path, "--entries", bad}).code == gg::cli::usage_error);
  }
  std::filesystem::remove(path);
  // 4 nodes a layer of width 1 and the output unit's sigmoid: 501 layers are 2005 nodes, refused
  // before the DOT file is written.
  std::string layers = "1";
  for (int i = 0; i < 501; ++i) layers += ",1";
  const Result big = run({"dot", "--layers", layers, "-o", path, "--render", "svg"});
  CHECK(big.code == gg::cli::usage_error);
  CHECK_THAT(big.err, Catch::Contains("2005 nodes") && Catch::Contains("at most 2000"));
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("models: dot --rankdir TB stacks the layers top to bottom for a page") {
  const gg::test::TempDir dir("cli_mlp_tb");
  const std::string file = dir / "g.dot";
  REQUIRE(run({"dot", "--layers", "2,3,2", "-o", file}).code == 0);
  CHECK_THAT(slurp(file), Catch::Contains("rankdir=LR"));
  REQUIRE(run({"dot", "--layers", "2,3,2", "-o", file, "--rankdir", "TB"}).code == 0);
  CHECK_THAT(slurp(file), Catch::Contains("rankdir=TB") && Catch::Contains("0: Linear(in=2, out=3)"));
  const Result bad = run({"dot", "--layers", "2,3,2", "-o", file, "--rankdir", "tb"});
  CHECK(bad.code == gg::cli::usage_error);
  CHECK_THAT(bad.err, Catch::Contains("--rankdir 'tb'"));
  std::filesystem::remove(file);
}
