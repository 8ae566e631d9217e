// gradgraph train and eval: per-step losses equal PyTorch's for every optimizer (float64, from the
// same initial weights and batches: tests/cli/data/make_train_reference.py), a small training run
// that learns, save -> eval, and each bad input named with its exit code.
#include "cli_test.hpp"

#include <nn/io/safetensors.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace {
using gg::cli::test::Result;
using gg::cli::test::run;
std::string data(const std::string& name) {
  return std::string(GG_TEST_DATA) + "/" + name;
}
/// name in this process's folder of the tests' files, removed at exit.
std::string temp(const std::string& name) {
  static const gg::test::TempDir dir("cli_train");
  return dir / name;
}
std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> w;
  for (std::string t; in >> t;) w.push_back(t);
  return w;
}
/// The "loss" of each step line of a JSONL log, in order.
std::vector<double> step_losses(const std::string& path) {
  std::ifstream in(path);
  std::vector<double> losses;
  for (std::string line; std::getline(in, line);)
    if (line.rfind("{\"step\"", 0) == 0)
      losses.push_back(std::stod(line.substr(line.find("\"loss\": ") + 8)));
  return losses;
}
} // namespace

TEST_CASE("train: per-step losses equal PyTorch's for every optimizer in float64") {
  std::ifstream ref(data("train_reference.txt"));
  REQUIRE(ref.good());
  int configs = 0;
  for (std::string line; std::getline(ref, line);) {
    const auto sep = line.find(" : ");
    const std::string flags = line.substr(0, sep);
    std::vector<double> expected;
    for (const std::string& w : words(line.substr(sep + 3))) expected.push_back(std::stod(w));
    INFO(flags);
    const std::string log = temp("ref.jsonl");
    std::vector<std::string> args{"train",
                                  "--data",
                                  data("train_small.csv"),
                                  "--layers",
                                  "3,5,3",
                                  "--activation",
                                  "tanh",
                                  "--init",
                                  data("train_init.safetensors"),
                                  "--no-shuffle",
                                  "--batch-size",
                                  "8",
                                  "--epochs",
                                  "3",
                                  "--dtype",
                                  "f64",
                                  "--log",
                                  log};
    for (const std::string& w : words(flags)) args.push_back(w);
    const Result r = run(args);
    REQUIRE(r.code == 0);
    const std::vector<double> got = step_losses(log);
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i)
      CHECK(std::fabs(got[i] - expected[i]) <= 1e-9 * std::fabs(expected[i]));
    ++configs;
  }
  CHECK(configs >= 10);
}

TEST_CASE("train: one output unit for two classes: bce and mse losses and eval's accuracy equal PyTorch's") {
  // tests/cli/data/make_train_reference.py: "flags : losses... : accuracy" (class 1 where σ > 0.5).
  std::ifstream ref(data("train_binary_reference.txt"));
  REQUIRE(ref.good());
  int configs = 0;
  for (std::string line; std::getline(ref, line);) {
    const auto sep = line.find(" : "), last = line.rfind(" : ");
    const std::string flags = line.substr(0, sep);
    std::vector<double> expected;
    for (const std::string& w : words(line.substr(sep + 3, last - sep - 3))) expected.push_back(std::stod(w));
    const double accuracy = std::stod(line.substr(last + 3));
    INFO(flags);
    const std::string log = temp("binary.jsonl"), model = temp("binary.safetensors");
    std::vector<std::string> args{"train",
                                  "--data",
                                  data("train_binary.csv"),
                                  "--layers",
                                  "3,5,1",
                                  "--activation",
                                  "tanh",
                                  "--init",
                                  data("train_binary_init.safetensors"),
                                  "--no-shuffle",
                                  "--batch-size",
                                  "8",
                                  "--epochs",
                                  "3",
                                  "--log",
                                  log,
                                  "--save",
                                  model};
    for (const std::string& w : words(flags)) args.push_back(w);
    const Result r = run(args);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("2 classes"));
    const std::vector<double> got = step_losses(log);
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < got.size(); ++i)
      CHECK(std::fabs(got[i] - expected[i]) <= 1e-9 * std::fabs(expected[i]));
    const Result e = run({"eval", "--model", model, "--data", data("train_binary.csv")});
    REQUIRE(e.code == 0);
    CHECK_THAT(e.out, Catch::Contains(fmt::format("accuracy {:.4f}", accuracy)));
    std::filesystem::remove(log);
    std::filesystem::remove(model);
    ++configs;
  }
  CHECK(configs == 4);
}

TEST_CASE("train: the course's 2-3-1 triangle network learns with --loss bce and mse, and eval, dot and the "
          "plots take it") {
  const auto dir = gg::cli::test::temp_dir("train_231");
  for (const char* loss : {"bce", "mse"}) {
    INFO(loss);
    const std::string model = (dir / (std::string(loss) + ".safetensors")).string();
    const Result r = run({"train", "--dataset", "triangle", "--layers", "2,3,1", "--loss", loss, "--lr",
                          "0.05", "--epochs", "100", "--save", model, "--plots", (dir / loss).string()});
    REQUIRE(r.code == 0);
    const auto pos = r.out.rfind("accuracy ");
    REQUIRE(pos != std::string::npos);
    CHECK(std::stod(r.out.substr(pos + 9)) >= 0.95);
    std::ifstream regions(dir / loss / "regions.svg");
    std::stringstream svg;
    svg << regions.rdbuf();
    CHECK(svg.str().find("</svg>") != std::string::npos);
    const auto file = gg::safetensors::load(model);
    CHECK(file.metadata.at("gradgraph.layers") == "2,3,1");
    CHECK(file.metadata.at("gradgraph.task") == "classification");
  }
  // eval thresholds σ(output) at 0.5: a point far inside the triangle is class 1, far outside class 0
  const std::string csv = (dir / "two.csv").string();
  std::ofstream(csv) << "x1,x2,label\n0,0,1\n0.9,0.9,0\n";
  const Result e = run({"eval", "--model", (dir / "bce.safetensors").string(), "--data", csv});
  REQUIRE(e.code == 0);
  CHECK_THAT(e.out, Catch::Contains("2 examples, accuracy 1.0000"));
  // one output unit with a loss that needs one output per class, or bce on other shapes: named
  const Result ce = run({"train", "--dataset", "triangle", "--layers", "2,3,1", "--epochs", "1"});
  CHECK(ce.code == gg::cli::shape_error);
  CHECK_THAT(ce.err, Catch::Contains("--loss bce or mse"));
  const Result two = run({"train", "--dataset", "triangle", "--layers", "2,3,2", "--loss", "bce"});
  CHECK(two.code == gg::cli::shape_error);
  CHECK_THAT(two.err, Catch::Contains("end --layers with 1"));
  const Result three = run({"train", "--dataset", "spiral", "--layers", "2,3,1", "--loss", "bce"});
  CHECK(three.code == gg::cli::value_error);
  CHECK_THAT(three.err, Catch::Contains("3 classes"));
  CHECK(run({"train", "--dataset", "xor", "--layers", "2,3,1", "--loss", "hinge"}).code ==
        gg::cli::usage_error);
  // dot draws the logistic unit on top, p = σ(output), and backward through binary cross-entropy
  const std::string dot = (dir / "mlp.dot").string();
  REQUIRE(run({"dot", "--layers", "2,3,1", "--backward", "-o", dot}).code == 0);
  std::ifstream in(dot);
  std::stringstream graph;
  graph << in.rdbuf();
  CHECK_THAT(graph.str(), Catch::Contains("label=\"p\\nsigmoid") && Catch::Contains("label=\"loss"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("train: with default flags, every generated dataset learns with the tutorial's layer sizes") {
  // The tutorial's networks (and the issue's): a learner runs these without choosing a learning rate.
  const std::vector<std::vector<std::string>> runs{{"triangle", "2,3,1", "--loss", "bce"},
                                                   {"triangle", "2,3,1", "--loss", "mse"},
                                                   {"triangle", "2,3,2"},
                                                   {"xor", "2,4,2"},
                                                   {"xor", "2,3,1", "--loss", "bce"},
                                                   {"moons", "2,16,2"},
                                                   {"circles", "2,8,2"},
                                                   {"spiral", "2,16,16,3"}};
  for (const auto& r : runs) {
    std::vector<std::string> args{"train", "--dataset", r[0], "--layers", r[1]};
    args.insert(args.end(), r.begin() + 2, r.end());
    INFO(r[0] << " " << r[1]);
    const Result t = run(args);
    REQUIRE(t.code == 0);
    const auto pos = t.out.rfind("accuracy ");
    REQUIRE(pos != std::string::npos);
    CHECK(std::stod(t.out.substr(pos + 9)) >= 0.95);
  }
  // The header says what the defaults were; a given --lr or --epochs is kept.
  const Result g = run({"train", "--dataset", "xor", "--layers", "2,4,2", "--optimizer", "gd"});
  CHECK_THAT(g.out, Catch::Contains("2000 epochs of 1 steps, optimizer gd (lr 3)"));
  const Result given =
      run({"train", "--dataset", "xor", "--layers", "2,4,2", "--lr", "0.01", "--epochs", "3"});
  CHECK_THAT(given.out, Catch::Contains("3 epochs of 10 steps, optimizer adam (lr 0.01)"));
  // CSV data keeps PyTorch's defaults
  const Result csv = run({"train", "--data", data("train_small.csv"), "--layers", "3,5,3", "--epochs", "1"});
  CHECK_THAT(csv.out, Catch::Contains("optimizer adam (lr 0.001)"));
  // --help prints its numbers as written, without binary float noise (0.90000000000000002)
  const Result help = run({"train", "--help"});
  CHECK_THAT(help.out, Catch::Contains("(=0.9)") && !Catch::Contains("0000000"));
}

TEST_CASE("train: a small run learns, saves, and eval reads the model back") {
  const std::string model = temp("moons.safetensors"), log = temp("moons.jsonl");
  const Result r =
      run({"train", "--dataset",   "moons", "--samples", "200",  "--layers", "2,16,2", "--activation",
           "tanh",  "--optimizer", "adam",  "--lr",      "0.05", "--epochs", "60",     "--seed",
           "3",     "--split",     "0.25",  "--save",    model,  "--log",    log});
  REQUIRE(r.code == 0);
  const std::vector<double> losses = step_losses(log);
  REQUIRE(losses.size() > 10);
  CHECK(losses.back() < 0.5 * losses.front());
  CHECK_THAT(r.out, Catch::Contains("epoch   60") && Catch::Contains("saved"));
  // the last epoch line reports a test accuracy of at least 0.9
  const auto pos = r.out.rfind("accuracy ");
  REQUIRE(pos != std::string::npos);
  CHECK(std::stod(r.out.substr(pos + 9)) >= 0.9);
  const Result e = run({"eval", "--model", model, "--data", data("train_small.csv")});
  CHECK(e.code == gg::cli::shape_error); // 3 features in that file, the model takes 2
  const Result ok = run({"train", "--data", data("train_small.csv"), "--layers", "3,8,3", "--epochs", "5",
                         "--standardize", "--save", model});
  REQUIRE(ok.code == 0);
  const Result ev = run({"eval", "--model", model, "--data", data("train_small.csv")});
  CHECK(ev.code == 0);
  CHECK_THAT(ev.out, Catch::Contains("24 examples") && Catch::Contains("confusion matrix"));
  std::filesystem::remove(model);
  std::filesystem::remove(log);
}

TEST_CASE("eval: a model trained with --split scores the rows it held out, unless --part says otherwise") {
  const auto dir = gg::cli::test::temp_dir("eval_split");
  const std::string model = (dir / "m.safetensors").string(), csv = data("train_small.csv");
  const Result t =
      run({"train", "--data", csv, "--layers", "3,5,3", "--split", "0.25", "--seed", "4", "--epochs", "20",
           "--lr", "0.05", "--save", model, "--plots", (dir / "p").string() + "/"});
  REQUIRE(t.code == 0);
  // --plots DIR/ names its files DIR/loss.svg, not DIR//loss.svg
  CHECK_THAT(t.out, Catch::Contains("plots: " + (dir / "p" / "loss.svg").string() + ", "));
  CHECK_THAT(t.out, !Catch::Contains("//"));
  // the held-out 6 of 24 rows by default: the same accuracy as train's last test accuracy
  const std::string test_accuracy = t.out.substr(t.out.rfind("accuracy ") + 9, 6);
  const Result e = run({"eval", "--model", model, "--data", csv});
  REQUIRE(e.code == 0);
  CHECK_THAT(e.out, Catch::Contains("the held-out rows of --split 0.25 (seed 4): 6 examples, accuracy " +
                                    test_accuracy));
  CHECK_THAT(run({"eval", "--model", model, "--data", csv, "--part", "train"}).out,
             Catch::Contains("the training rows of --split 0.25 (seed 4): 18 examples"));
  CHECK_THAT(run({"eval", "--model", model, "--data", csv, "--part", "all"}).out,
             Catch::Contains("all rows (training and held-out): 24 examples"));
  // other data: all its rows, said so; its held-out part is not known
  const std::string other = (dir / "other.csv").string();
  {
    std::ifstream in(csv);
    std::ofstream o(other);
    std::string line;
    for (int i = 0; i < 11 && std::getline(in, line); ++i) o << line << "\n";
  }
  CHECK_THAT(run({"eval", "--model", model, "--data", other}).out,
             Catch::Contains("not the data the model's --split was made on): 10 examples"));
  const Result unknown = run({"eval", "--model", model, "--data", other, "--part", "test"});
  CHECK(unknown.code == gg::cli::value_error);
  CHECK_THAT(unknown.err, Catch::Contains("use --part all"));
  CHECK(run({"eval", "--model", model, "--data", csv, "--part", "half"}).code == gg::cli::usage_error);
  CHECK(run({"eval", "--model", model}).code == gg::cli::usage_error); // a CSV's model needs --data
  // a model trained without --split has no held-out part
  const std::string whole = (dir / "whole.safetensors").string();
  REQUIRE(run({"train", "--data", csv, "--layers", "3,5,3", "--epochs", "1", "--save", whole}).code == 0);
  CHECK(run({"eval", "--model", whole, "--data", csv, "--part", "test"}).code == gg::cli::value_error);
  CHECK_THAT(run({"eval", "--model", whole, "--data", csv}).out, Catch::Contains(csv + ": 24 examples"));
  // a generated dataset is made again; the test points are drawn on the regions, as diamonds
  const std::string circles = (dir / "c.safetensors").string();
  REQUIRE(run({"train", "--dataset", "circles", "--samples", "120", "--layers", "2,8,2", "--epochs", "30",
               "--split", "0.25", "--save", circles, "--plots", (dir / "c").string()})
              .code == 0);
  CHECK_THAT(
      run({"eval", "--model", circles}).out,
      Catch::Contains("circles (--samples 120 --seed 0), the held-out rows of --split 0.25 (seed 0): 30 "
                      "examples"));
  std::ifstream regions(dir / "c" / "regions.svg");
  std::stringstream svg;
  svg << regions.rdbuf();
  CHECK_THAT(svg.str(), Catch::Contains("class=\"test-points\"") && Catch::Contains(">test point</text>"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("train: bad inputs are named, with distinct exit codes") {
  const std::string bad_csv = temp("bad.csv"), bad_model = temp("bad.safetensors");
  std::ofstream(bad_csv) << "a,b,label\n1,2,0\n3,x,1\n";
  std::ofstream(bad_model) << "this is not a safetensors file";
  const std::vector<std::string> base{"train", "--layers", "2,4,2", "--epochs", "1"};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> a = base;
    a.insert(a.end(), more.begin(), more.end());
    return run(a);
  };
  const Result csv = with({"--data", bad_csv});
  CHECK(csv.code == gg::cli::format_error);
  CHECK_THAT(csv.err, Catch::Contains("bad.csv:3:2"));
  const Result missing = with({"--data", temp("does_not_exist.csv")});
  CHECK(missing.code == gg::cli::io_error);
  CHECK_THAT(missing.err, Catch::Contains("does_not_exist.csv"));
  const Result sizes = run({"train", "--dataset", "xor", "--layers", "3,4,2", "--epochs", "1"});
  CHECK(sizes.code == gg::cli::shape_error);
  CHECK_THAT(sizes.err, Catch::Contains("input size 3") && Catch::Contains("2 features"));
  CHECK(run({"train", "--dataset", "xor", "--layers", "2,4,5", "--epochs", "1"}).code ==
        gg::cli::shape_error);
  const Result init = with({"--dataset", "xor", "--init", bad_model});
  CHECK(init.code == gg::cli::format_error);
  CHECK_THAT(init.err, Catch::Contains("bad.safetensors"));
  CHECK(with({"--dataset", "xor", "--optimizer", "lbfgs"}).code == gg::cli::value_error);
  CHECK(with({"--dataset", "xor", "--data", bad_csv}).code == gg::cli::usage_error);
  CHECK(with({"--dataset", "xor", "--lr", "-1"}).code == gg::cli::value_error);
  CHECK(with({"--dataset", "xor", "--dtype", "f16"}).code == gg::cli::usage_error);
  CHECK(run({"eval", "--model", bad_model, "--data", bad_csv}).code == gg::cli::format_error);
  std::filesystem::remove(bad_csv);
  std::filesystem::remove(bad_model);
}

TEST_CASE("train: --plots writes the loss and accuracy curves and, for 2-D data, the decision regions") {
  const auto dir = gg::test::unique_temp_path("cli_train_plots"); // made by --plots
  const Result r = run({"train", "--dataset", "circles", "--samples", "120", "--layers", "2,8,2", "--epochs",
                        "5", "--split", "0.25", "--plots", dir.string()});
  REQUIRE(r.code == 0);
  for (const char* name : {"loss.svg", "accuracy.svg", "regions.svg"}) {
    INFO(name);
    std::ifstream in(dir / name);
    std::stringstream s;
    s << in.rdbuf();
    CHECK(s.str().rfind("<svg", 0) == 0);
    CHECK(s.str().find("</svg>") != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE(
    "train: a run stopped as by Ctrl-C and resumed gives the same losses and weights as one that was not") {
  const std::vector<std::string> common{"train", "--dataset",    "moons", "--samples", "90",   "--layers",
                                        "2,6,2", "--optimizer",  "adam",  "--lr",      "0.02", "--epochs",
                                        "4",     "--batch-size", "16",    "--seed",    "7"};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> a = common;
    a.insert(a.end(), more.begin(), more.end());
    return run(a);
  };
  const std::string whole_log = temp("whole.jsonl"), whole = temp("whole.safetensors");
  REQUIRE(with({"--log", whole_log, "--save", whole}).code == 0);

  const std::string ckpt = temp("stop.ckpt"), log1 = temp("part1.jsonl"), log2 = temp("part2.jsonl"),
                    resumed = temp("resumed.safetensors");
  const Result stopped = with({"--log", log1, "--checkpoint", ckpt, "--stop-after", "9"}); // mid-epoch 2
  CHECK(stopped.code == gg::cli::interrupted);
  CHECK_THAT(stopped.out, Catch::Contains("--resume"));
  REQUIRE(with({"--log", log2, "--resume", ckpt, "--save", resumed}).code == 0);

  std::vector<double> both = step_losses(log1);
  for (double l : step_losses(log2)) both.push_back(l);
  CHECK(both == step_losses(whole_log));
  const auto a = gg::safetensors::load(whole), b = gg::safetensors::load(resumed);
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i)
    CHECK(a.tensors[i].second.to_vector() == b.tensors[i].second.to_vector());

  const Result other =
      run({"train", "--dataset", "moons", "--samples", "90", "--layers", "2,5,2", "--resume", ckpt});
  CHECK(other.code == gg::cli::value_error); // a checkpoint of another run is refused
  for (const auto& f : {whole_log, whole, ckpt, log1, log2, resumed}) std::filesystem::remove(f);
}
