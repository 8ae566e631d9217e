// gradgraph train never loses a trained model: SIGTERM, SIGHUP and SIGINT checkpoint and exit with
// 128 + the signal; a full disk under --save puts a checkpoint elsewhere and says where, and under
// --log or --plots fails the run only after the model is saved; --resume refuses a checkpoint of
// other data or settings. Also: regression from a CSV (one or several targets), the feature names
// a model records, and a run under an address-space limit that ends instead of spinning.
#include "cli_test.hpp"

#include <nn/io/safetensors.hpp>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <sys/wait.h>
#include <unistd.h>

namespace {
namespace fs = std::filesystem;
using Catch::Matchers::Contains;
using gg::cli::test::quote;
using gg::cli::test::Result;
using gg::cli::test::run;
using gg::cli::test::shell;
using gg::cli::test::temp_dir;
using gg::test::read_file;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool k_sanitized = true; // the sanitizers' shadow memory does not run under ulimit -v
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool k_sanitized = true;
#else
constexpr bool k_sanitized = false;
#endif
#else
constexpr bool k_sanitized = false;
#endif

const std::string k_bin = GG_CLI_BINARY;

/// A two-class CSV of 40 points around (±1, ±1), deterministic.
std::string write_classes(const fs::path& dir) {
  const std::string path = (dir / "points.csv").string();
  std::ofstream out(path);
  out << "x1,x2,label\n";
  for (int i = 0; i < 40; ++i) {
    const double a = std::sin(i * 1.7) * 0.3, b = std::cos(i * 2.3) * 0.3;
    out << (i % 2 ? 1 : -1) + a << "," << (i % 2 ? 1 : -1) + b << "," << i % 2 << "\n";
  }
  return path;
}

} // namespace

TEST_CASE("train: SIGTERM, SIGHUP and SIGINT checkpoint the run and exit with 128 + the signal") {
  const fs::path dir = temp_dir("signals");
  for (const auto& [name, number] : {std::pair{"TERM", 15}, std::pair{"HUP", 1}, std::pair{"INT", 2}}) {
    INFO(name);
    const std::string ck = (dir / fmt::format("{}.safetensors", name)).string(),
                      out = (dir / "out.txt").string(), rc = (dir / "rc.txt").string();
    fs::remove(out); // the previous signal's epoch line must not pass for this run's
    const std::string args =
        "train --dataset moons --samples 300 --layers 2,16,2 --epochs 1000000 --checkpoint " + quote(ck);
    // Started in the background; signalled once its first epoch line is out (at most ~10 s of waiting).
    const std::string script = fmt::format(
        "{} {} > {} 2>&1 & pid=$!; i=0; until grep -qs '^epoch' {} || [ $i -ge 200 ]; do sleep 0.05; "
        "i=$((i+1)); done; kill -{} $pid; wait $pid; echo $? > {}",
        quote(k_bin), args, quote(out), quote(out), name, quote(rc));
    REQUIRE(shell("sh -c " + quote(script)) == 0);
    CHECK(std::stoi(read_file(rc)) == 128 + number);
    const std::string said = read_file(out);
    CHECK_THAT(said, Contains("stopped after step") && Contains("continue with --resume " + ck));
    // The checkpoint resumes: to the end of the epoch it stopped in.
    const auto meta = gg::safetensors::load(ck).metadata;
    const std::string epoch = meta.at("gradgraph.epoch");
    CHECK(shell(fmt::format(
              "{} train --dataset moons --samples 300 --layers 2,16,2 --epochs {} --checkpoint {} "
              "--resume {} > /dev/null",
              quote(k_bin), epoch, quote(ck), quote(ck))) == 0);
  }
  fs::remove_all(dir);
}

TEST_CASE(
    "train: a full disk under --save puts a checkpoint elsewhere, under --log or --plots the model is saved "
    "first") {
  if (shell("unshare -m true 2>/dev/null") != 0) {
    WARN("unshare -m is not permitted here (it needs root): the full-disk runs are skipped");
    return;
  }
  const fs::path dir = temp_dir("full"), small = dir / "small";
  fs::create_directories(small);
  const std::string data = write_classes(dir);
  // A tmpfs of `size` over `small`, seen by this one command only (a mount namespace).
  auto on_small_disk = [&](const std::string& size, const std::string& args) {
    const std::string inner = fmt::format("mount -t tmpfs -o size={} tmpfs {} && exec {} train --data {} {}",
                                          size, quote(small.string()), quote(k_bin), quote(data), args);
    return shell(fmt::format("unshare -m sh -c {} > {} 2> {}", quote(inner),
                             quote((dir / "out.txt").string()), quote((dir / "err.txt").string())));
  };

  // The model (36 KB) does not fit in 16 KB: it goes to the temporary folder, and the run says where.
  CHECK(on_small_disk("16k", "--layers 2,64,64,2 --epochs 3 --save " +
                                 quote((small / "m.safetensors").string())) == gg::cli::io_error);
  const std::string err = read_file(dir / "err.txt");
  CHECK_THAT(err, Contains("No space left on device"));
  std::smatch m;
  REQUIRE(std::regex_search(err, m, std::regex("saved as a checkpoint in (\\S+) instead")));
  const std::string rescued = m[1];
  CHECK(rescued.find("gradgraph-rescue-") != std::string::npos);
  // eval reads the checkpoint as a model.
  const Result e = run({"eval", "--model", rescued, "--data", data});
  CHECK(e.code == 0);
  CHECK_THAT(e.out, Contains("40 examples, accuracy"));
  fs::remove(rescued);

  // The log fills its disk; training goes on, the model is saved, then the run fails with exit 4.
  const std::string model = (dir / "m.safetensors").string();
  CHECK(on_small_disk("8k", "--layers 2,4,2 --epochs 40 --batch-size 4 --log " +
                                quote((small / "run.jsonl").string()) + " --save " + quote(model)) ==
        gg::cli::io_error);
  CHECK_THAT(read_file(dir / "err.txt"), Contains("--log") && Contains("training goes on without the log"));
  CHECK_THAT(read_file(dir / "out.txt"), Contains("epoch   40") && Contains("saved " + model));
  CHECK(run({"eval", "--model", model, "--data", data}).code == 0);
  fs::remove(model);

  // The plots do not fit: the model is saved all the same.
  CHECK(on_small_disk("4k", "--layers 2,4,2 --epochs 300 --plots " + quote(small.string()) + " --save " +
                                quote(model)) == gg::cli::io_error);
  CHECK_THAT(read_file(dir / "out.txt"), Contains("saved " + model));
  CHECK_THAT(read_file(dir / "err.txt"), Contains("No space left on device"));
  CHECK(fs::exists(model));
  fs::remove_all(dir);
}

TEST_CASE("train: --resume refuses a checkpoint made with other data or settings, naming each difference") {
  const fs::path dir = temp_dir("resume");
  const std::string ck = (dir / "ck.safetensors").string();
  const std::vector<std::string> base{"train",    "--dataset", "moons",  "--samples", "90",
                                      "--layers", "2,6,2",     "--seed", "7",         "--checkpoint",
                                      ck,         "--epochs",  "3"};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> a = base;
    a.insert(a.end(), more.begin(), more.end());
    return run(a);
  };
  REQUIRE(with({"--stop-after", "4"}).code == gg::cli::interrupted);
  const Result r = with({"--resume", ck, "--noise", "0.2", "--beta1", "0.8", "--standardize"});
  CHECK(r.code == gg::cli::value_error);
  CHECK_THAT(r.err, Contains("--noise 0.1 there, 0.2 here") && Contains("--beta1 0.9 there, 0.8 here") &&
                        Contains("--standardize false there, true here") &&
                        Contains("the data's contents differ"));
  CHECK(with({"--resume", ck, "--optimizer", "sgd"}).code == gg::cli::value_error);
  CHECK(with({"--resume", ck, "--momentum", "0.5"}).code == 0); // Adam has no momentum: not part of its run
  CHECK(with({"--resume", ck}).code == 0);

  // The same CSV path with other contents.
  const std::string data = write_classes(dir);
  const std::vector<std::string> csv{"train",    "--data", data,           "--layers", "2,4,2",
                                     "--epochs", "3",      "--checkpoint", ck};
  auto csv_with = [&](std::vector<std::string> more) {
    std::vector<std::string> a = csv;
    a.insert(a.end(), more.begin(), more.end());
    return run(a);
  };
  REQUIRE(csv_with({"--stop-after", "5"}).code == gg::cli::interrupted);
  // The same contents under another path are the same data.
  const std::string moved = (dir / "moved.csv").string();
  fs::copy_file(data, moved);
  CHECK(run({"train", "--data", moved, "--layers", "2,4,2", "--epochs", "3", "--checkpoint", ck, "--resume",
             ck})
            .code == 0);
  std::string text = read_file(data);
  text.replace(text.find("\n") + 1, 1, "0"); // the first value's sign
  std::ofstream(data) << text;
  const Result changed = csv_with({"--resume", ck});
  CHECK(changed.code == gg::cli::value_error);
  CHECK_THAT(changed.err, Contains("the data's contents differ") && !Contains("--layers"));
  fs::remove_all(dir);
}

TEST_CASE("train: a diverging run stops with exit 8, keeps its log and saves no model") {
  const fs::path dir = temp_dir("diverged");
  const std::string model = (dir / "m.safetensors").string(), log = (dir / "run.jsonl").string();
  const Result r = run({"train", "--dataset", "xor", "--layers", "2,4,2", "--lr", "inf", "--epochs", "3",
                        "--save", model, "--log", log, "--plots", (dir / "plots").string()});
  CHECK(r.code == gg::cli::diverged);
  CHECK_THAT(r.err,
             Contains("the loss is nan at epoch 1, step 2") && Contains("nothing was saved as a model"));
  CHECK_FALSE(fs::exists(model));
  CHECK_FALSE(fs::exists(dir / "plots" / "regions.svg"));
  CHECK_THAT(read_file(log), Catch::StartsWith("{\"step\": 1, \"epoch\": 1, \"loss\": "));
  fs::remove_all(dir);
}

TEST_CASE("train: regression from a CSV, with one target or several, and eval's MSE, MAE and R²") {
  const fs::path dir = temp_dir("regression");
  const std::string data = (dir / "lines.csv").string(), model = (dir / "m.safetensors").string();
  {
    std::ofstream out(data);
    out << "x1,x2,y,z\n";
    for (int i = 0; i < 60; ++i) {
      const double a = std::sin(i * 0.9), b = std::cos(i * 1.3);
      out << a << "," << b << "," << 2 * a - b + 0.5 << "," << a + b << "\n";
    }
  }
  // One target: the column named y (z is then a feature: --layers 3,1).
  const Result one = run({"train", "--data", data, "--target", "y", "--loss", "mse", "--layers", "3,1",
                          "--lr", "0.05", "--epochs", "300", "--save", model});
  REQUIRE(one.code == 0);
  CHECK_THAT(one.out, Contains("regression") && Contains("mae ") && Contains("r2 "));
  Result e = run({"eval", "--model", model, "--data", data});
  REQUIRE(e.code == 0);
  std::smatch m;
  REQUIRE(std::regex_search(e.out, m, std::regex("60 examples, MSE (\\S+), MAE (\\S+), R² (\\S+)")));
  CHECK(std::stod(m[1]) < 1e-3);
  CHECK(std::stod(m[3]) > 0.999);
  // Two targets: y and z from x1 and x2.
  const Result two = run({"train", "--data", data, "--target", "y", "--target", "z", "--loss", "mse",
                          "--layers", "2,2", "--lr", "0.05", "--epochs", "300", "--save", model});
  REQUIRE(two.code == 0);
  CHECK_THAT(two.out, Contains("2 targets"));
  e = run({"eval", "--model", model, "--data", data});
  REQUIRE(e.code == 0);
  REQUIRE(std::regex_search(e.out, m, std::regex("R² (\\S+)")));
  CHECK(std::stod(m[1]) > 0.999);
  // --layers must end in the number of target columns.
  CHECK(run({"train", "--data", data, "--target", "y", "--target", "z", "--loss", "mse", "--layers", "2,1"})
            .code == gg::cli::shape_error);
  fs::remove_all(dir);
}

TEST_CASE("train: the model records its feature names, and eval refuses columns in another order") {
  const fs::path dir = temp_dir("names");
  const std::string data = write_classes(dir), model = (dir / "m.safetensors").string();
  REQUIRE(run({"train", "--data", data, "--layers", "2,2", "--epochs", "2", "--save", model}).code == 0);
  CHECK(gg::safetensors::load(model).metadata.at("gradgraph.features") == R"(["x1","x2"])");
  std::string text = read_file(data);
  text.replace(0, 5, "x2,x1");
  const std::string swapped = (dir / "swapped.csv").string();
  std::ofstream(swapped) << text;
  const Result r = run({"eval", "--model", model, "--data", swapped});
  CHECK(r.code == gg::cli::value_error);
  CHECK_THAT(r.err, Contains("another order"));
  fs::remove_all(dir);
}

TEST_CASE("train: under an address-space limit a run trains or ends with exit 7, never spins") {
  if (k_sanitized) {
    WARN("sanitizer build: its shadow memory does not fit under ulimit -v; skipped");
    return;
  }
  // 300 MB: OpenBLAS's threads would each want a 128 MiB buffer (the run spun at 100% CPU forever).
  const std::string limited = "ulimit -v 300000 && exec timeout 60 " + quote(k_bin) +
                              " train --dataset moons --layers 2,64,2 --epochs 1 --threads 2 ";
  CHECK(shell("sh -c " + quote(limited + "--samples 2000 > /dev/null")) == 0);
  CHECK(shell("sh -c " + quote(limited + "--samples 5000000 > /dev/null 2>&1")) == gg::cli::out_of_memory);
}
