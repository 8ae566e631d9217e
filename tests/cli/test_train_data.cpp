// gradgraph train and eval on IDX files (examples + labels, plain or gzip), --threads giving the same
// numbers, and the progress bar: its layout, and that it is drawn only when asked or on a terminal.
#include "cli_test.hpp"

#include <nn/train/progress.hpp>

#include <autodiff/kernel.hpp>
#include <autodiff/tensor.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace {
using Catch::Matchers::Contains;
using gg::cli::test::run;

/// name in this process's folder of the tests' files, removed at exit.
std::string idx_path(const std::string& name) {
  static const gg::test::TempDir dir("cli_idx");
  return dir / name;
}

/// Writes an IDX file of unsigned bytes with the given dimensions.
void write_idx(const std::string& path, const std::vector<std::uint32_t>& dims,
               const std::vector<unsigned char>& v) {
  std::ofstream out(path, std::ios::binary);
  out.put(0), out.put(0), out.put(0x08), out.put(static_cast<char>(dims.size()));
  for (std::uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) out.put(static_cast<char>((d >> shift) & 0xff));
  out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size()));
}

/// 40 "images" of 2x2 pixels: class 1 when the left column is bright, class 0 when the right one is.
void write_images(const std::string& images, const std::string& labels, std::uint32_t n) {
  std::vector<unsigned char> px, y;
  for (std::uint32_t i = 0; i < n; ++i) {
    const bool left = i % 2 == 1;
    const auto bright = static_cast<unsigned char>(200 + i % 50), dark = static_cast<unsigned char>(i % 40);
    px.insert(px.end(),
              {left ? bright : dark, left ? dark : bright, left ? bright : dark, left ? dark : bright});
    y.push_back(left ? 1 : 0);
  }
  write_idx(images, {n, 2, 2}, px);
  write_idx(labels, {n}, y);
}
} // namespace

TEST_CASE("train: IDX examples with --labels train, save, and eval reads them back") {
  const std::string images = idx_path("images"), labels = idx_path("labels"),
                    model = idx_path("model.safetensors");
  write_images(images, labels, 40);
  const auto r =
      run({"train",         "--data",   images,     "--labels",     labels,        "--test", images,
           "--test-labels", labels,     "--layers", "4,2",          "--optimizer", "adam",   "--lr",
           "0.1",           "--epochs", "30",       "--batch-size", "8",           "--save", model});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("40 examples, 4 features, 2 classes"));
  CHECK_THAT(r.out, Contains("test loss"));
  CHECK_THAT(r.out, Contains("accuracy 1.0000"));
  const auto e = run({"eval", "--model", model, "--data", images, "--labels", labels});
  INFO(e.out << e.err);
  CHECK(e.code == 0);
  CHECK_THAT(e.out, Contains("40 examples, accuracy 1.0000"));
}

TEST_CASE("train: IDX input errors name the file and the fix") {
  const std::string images = idx_path("bad_images"), labels = idx_path("bad_labels");
  write_images(images, labels, 10);
  // An IDX file given as if it were a CSV.
  auto r = run({"train", "--data", images, "--layers", "4,2"});
  CHECK(r.code == gg::cli::usage_error);
  CHECK_THAT(r.err, Contains(images) && Contains("IDX") && Contains("--labels"));
  // Fewer labels than images.
  write_idx(labels, {9}, std::vector<unsigned char>(9, 0));
  r = run({"train", "--data", images, "--labels", labels, "--layers", "4,2"});
  CHECK(r.code == gg::cli::format_error);
  CHECK_THAT(r.err, Contains("10 images but 9 labels"));
  // Labels that are not 1-d.
  write_idx(labels, {5, 2}, std::vector<unsigned char>(10, 0));
  r = run({"train", "--data", images, "--labels", labels, "--layers", "4,2"});
  CHECK(r.code == gg::cli::format_error);
  CHECK_THAT(r.err, Contains(labels) && Contains("1-d"));
  // --labels without --data, --test-labels without --test.
  r = run({"train", "--dataset", "xor", "--labels", labels, "--layers", "2,2"});
  CHECK(r.code == gg::cli::usage_error);
  CHECK_THAT(r.err, Contains("--labels goes with --data"));
  r = run({"train", "--dataset", "xor", "--test-labels", labels, "--layers", "2,2"});
  CHECK(r.code == gg::cli::usage_error);
  CHECK_THAT(r.err, Contains("--test-labels goes with --test"));
}

/// Whether two texts are the same but for their numbers, which may differ by a relative `tol`.
bool same_up_to_rounding(const std::string& a, const std::string& b, double tol) {
  const std::regex number(R"(-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?)");
  std::sregex_iterator ia(a.begin(), a.end(), number), ib(b.begin(), b.end(), number), end;
  std::size_t pa = 0, pb = 0;
  for (; ia != end && ib != end; ++ia, ++ib) {
    if (a.substr(pa, static_cast<std::size_t>(ia->position()) - pa) !=
        b.substr(pb, static_cast<std::size_t>(ib->position()) - pb))
      return false;
    const double x = std::stod(ia->str()), y = std::stod(ib->str());
    if (std::abs(x - y) > tol * std::max(std::abs(x), std::abs(y))) return false;
    pa = static_cast<std::size_t>(ia->position() + ia->length());
    pb = static_cast<std::size_t>(ib->position() + ib->length());
  }
  return ia == end && ib == end && a.substr(pa) == b.substr(pb);
}

TEST_CASE("train: --threads 2 gives the numbers of --threads 1, and restores the thread count") {
  const std::string log1 = idx_path("t1.jsonl"), log2 = idx_path("t2.jsonl");
  const int before = gg::kernel::num_threads();
  auto args = [](const std::string& threads, const std::string& log) {
    return std::vector<std::string>{"train",  "--dataset", "spiral", "--samples",    "600",   "--layers",
                                    "2,64,3", "--epochs",  "3",      "--threads",    threads, "--log",
                                    log,      "--seed",    "3",      "--batch-size", "300"};
  };
  REQUIRE(run(args("1", log1)).code == 0);
  REQUIRE(run(args("2", log2)).code == 0);
  CHECK(gg::kernel::num_threads() == before);
  std::ifstream a(log1), b(log2);
  const std::string sa((std::istreambuf_iterator<char>(a)), {}), sb((std::istreambuf_iterator<char>(b)), {});
  CHECK(!sa.empty());
  // Up to float64 rounding, not bit for bit: on one thread the narrow products (this 2-64-3 MLP's)
  // run on BLIS, on two on OpenBLAS, chosen by measurement per shape and thread count (docs/gemm.md).
  CHECK(same_up_to_rounding(sa, sb, 1e-12));
  CHECK(!same_up_to_rounding(sa, "{\"step\": 1}", 1e-12));
  const auto bad = run({"train", "--dataset", "xor", "--layers", "2,2", "--threads", "0"});
  CHECK(bad.code == gg::cli::value_error);
  CHECK_THAT(bad.err, Contains("--threads 0"));
}

TEST_CASE("train: the progress bar shows epoch, step, loss, accuracy, samples/s and ETA") {
  gg::train::Progress p;
  p.epoch = 3, p.epochs = 20, p.step = 120, p.steps = 469, p.loss = 0.43121, p.accuracy = 0.8451;
  p.samples_per_second = 52100, p.eta_seconds = 83;
  const std::string line = gg::train::format_progress(p, 100);
  CHECK(line.size() == 99); // fits the width, leaving the last column free
  CHECK_THAT(line, Contains("epoch  3/20 [") && Contains("]  120/469  loss 0.4312  acc 0.8451") &&
                       Contains("52.1k samples/s  ETA 1m23s"));
  // A quarter of the epoch done: a quarter of the bar's cells are full.
  const auto open = line.find('['), close = line.find(']');
  const std::string bar = line.substr(open + 1, close - open - 1);
  CHECK(std::count(bar.begin(), bar.end(), '=') == static_cast<long>(bar.size() * 120 / 469));
  p.accuracy = -1; // regression: no accuracy
  CHECK_THAT(gg::train::format_progress(p, 60), !Contains("acc"));
  CHECK(gg::train::format_duration(45) == "45s");
  CHECK(gg::train::format_duration(7325) == "2h02m");
  CHECK(gg::train::format_duration(-1) == "?");

  // --progress bar draws with carriage returns; auto does not when output is not a terminal.
  const std::vector<std::string> args{"train", "--dataset", "xor", "--layers", "2,4,2", "--epochs", "2"};
  auto with = [&](const std::string& mode) {
    auto a = args;
    a.insert(a.end(), {"--progress", mode});
    return run(a);
  };
  const auto bar_run = with("bar"), auto_run = with("auto");
  REQUIRE(bar_run.code == 0);
  CHECK_THAT(bar_run.out, Contains("\r") && Contains("ETA") && Contains("epoch    2  train loss"));
  REQUIRE(auto_run.code == 0);
  CHECK_THAT(auto_run.out, !Contains("\r") && Contains("epoch    2  train loss"));
  CHECK(with("fancy").code == gg::cli::usage_error);
}
