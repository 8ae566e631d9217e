// --detect-anomaly on the command line: explain and train stop at the first NaN or infinity with
// exit code 6 and a message naming the op and its path; train's log keeps the steps before it.
#include "cli_test.hpp"

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

using Catch::Contains;
using gg::cli::test::Result;
using gg::cli::test::run;

TEST_CASE("anomaly: explain --detect-anomaly stops at the first op with a non-finite value") {
  const Result plain = run({"explain", "q = x * y; f = log(q)", "x=0", "y=2"});
  CHECK(plain.code == gg::cli::ok); // without the flag, -inf is shown and flagged
  CHECK_THAT(plain.out, Contains("log of 0"));
  const Result r = run({"explain", "--detect-anomaly", "q = x * y; f = log(q)", "x=0", "y=2"});
  CHECK(r.code == gg::cli::value_error);
  CHECK_THAT(r.err, Contains("anomaly: op log") && Contains("input 0: 'q' (mul), 0") &&
                        Contains("path: 'q' (mul) → log"));
  // A gradient: d sqrt(x)/dx at 0.
  const Result g = run({"explain", "--detect-anomaly", "f = sqrt(x)", "x=0"});
  CHECK(g.code == gg::cli::value_error);
  CHECK_THAT(g.err, Contains("'f' (sqrt) passed a gradient that is not finite"));
}

TEST_CASE(
    "anomaly: train --detect-anomaly stops a diverging run at the op, and the log keeps the steps before") {
  const gg::test::TempDir dir("cli_anomaly");
  const std::string log = dir / "run.jsonl";
  // ReLU and a learning rate of 1e200: the second step's output overflows.
  const std::vector<std::string> args{"train", "--dataset",    "xor",  "--samples",   "40",  "--layers",
                                      "2,4,2", "--activation", "relu", "--optimizer", "sgd", "--lr",
                                      "1e200", "--epochs",     "3",    "--log",       log};
  const Result plain = run(args);
  CHECK(plain.code == gg::cli::ok); // it "trains" on infinities and NaN
  std::vector<std::string> with = args;
  with.push_back("--detect-anomaly");
  const Result r = run(with);
  CHECK(r.code == gg::cli::value_error);
  CHECK_THAT(r.err, Contains("anomaly: op linear, in module '2' (Linear(in=4, out=2))") &&
                        Contains("path: a constant → linear, in module '0'"));
  std::ifstream in(log);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  CHECK(!lines.empty());
  for (const std::string& line : lines) CHECK((line.rfind("{\"step\": ", 0) == 0 && line.back() == '}'));
}
