// Nothing is lost: gg::AtomicFile (which every writer uses: weights, checkpoints, logs, charts, DOT)
// leaves the old file or the whole new one, also when the process is killed halfway; and regression
// inputs for the data readers; and a loss recorded before an optimizer step refuses backward.
#include <nn/data/idx.hpp>
#include <nn/init.hpp>
#include <nn/io/atomic_file.hpp>
#include <nn/io/safetensors.hpp>
#include <nn/layers.hpp>
#include <nn/optim/optim.hpp>
#include <nn/plot/plot.hpp>

#include <autodiff/autodiff.hpp>

#include <catch2/catch.hpp>

#include "../temp_dir.hpp"

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

namespace {

namespace fs = std::filesystem;
using gg::test::read_file;
using gg::test::TempDir;

} // namespace

TEST_CASE("hardening: an AtomicFile replaces the old file only on commit") {
  TempDir dir("nn_hardening");
  const std::string path = (dir.path / "log.jsonl").string();
  gg::write_atomically(path, "old\n");
  {
    gg::AtomicFile f(path);
    f.write("new 1\n");
    // What is written is in the temporary file at once (a reader can follow it), not in path.
    CHECK(read_file(f.temp_path()) == "new 1\n");
    CHECK(read_file(path) == "old\n");
    f.write("new 2\n");
    f.commit();
    CHECK_THROWS_AS(f.write("more"), gg::UsageError);
    CHECK_THROWS_AS(f.commit(), gg::UsageError);
  }
  CHECK(read_file(path) == "new 1\nnew 2\n");
  CHECK(dir.entries() == std::vector<std::string>{"log.jsonl"});

  SECTION("without a commit (an exception unwinds), the old file stays and the temporary file goes") {
    try {
      gg::AtomicFile f(path);
      f.write("half of a new file");
      throw gg::ValueError("training failed");
    } catch (const gg::ValueError&) {
    }
    CHECK(read_file(path) == "new 1\nnew 2\n");
    CHECK(dir.entries() == std::vector<std::string>{"log.jsonl"});
  }
  SECTION("keep_unfinished (a log): an error still leaves the whole lines written up to it") {
    try {
      gg::AtomicFile f(path, true);
      f.write("step 1\n");
      throw gg::ValueError("NaN at step 2");
    } catch (const gg::ValueError&) {
    }
    CHECK(read_file(path) == "step 1\n");
    CHECK(dir.entries() == std::vector<std::string>{"log.jsonl"});
  }
  SECTION("an empty path is an IOError") {
    CHECK_THROWS_AS(gg::AtomicFile(""), gg::IOError);
  }
}

TEST_CASE("hardening: a process killed while writing leaves the old file whole") {
  TempDir dir("nn_hardening");
  const std::string path = (dir.path / "model.safetensors").string();
  const std::vector<std::pair<std::string, gg::Tensor>> old_weights{{"w", gg::Tensor({1, 2, 3}, {3})}};
  gg::safetensors::save(path, old_weights);
  const std::string before = read_file(path);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) { // half a new file, then SIGKILL: no destructor, no commit
    gg::AtomicFile f(path);
    f.write(std::string(100000, 'x'));
    ::kill(::getpid(), SIGKILL);
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFSIGNALED(status));
  CHECK(read_file(path) == before);
  CHECK(gg::safetensors::load(path).at("w").to_vector() == std::vector<double>{1, 2, 3});
  // The killed run's bytes are in the temporary file next to it, under a hidden name that says
  // whose it is; the next write into the folder removes it (its process is gone).
  const std::vector<std::string> names = dir.entries();
  REQUIRE(names.size() == 2);
  CHECK(names[0].rfind(".model.safetensors.gradgraph-tmp-" + std::to_string(child) + "-", 0) == 0);
  CHECK(names[1] == "model.safetensors");
  CHECK(read_file(dir.path / names[0]) == std::string(100000, 'x'));
  gg::write_atomically((dir.path / "other.txt").string(), "x");
  CHECK(dir.entries() == std::vector<std::string>{"model.safetensors", "other.txt"});
}

TEST_CASE("hardening: charts and DOT files go through the same atomic writer") {
  TempDir dir("nn_hardening");
  const std::string path = (dir.path / "chart.svg").string();
  gg::plot::LineChart chart("loss");
  chart.add("train", {3, 2, 1});
  chart.save(path);
  CHECK(read_file(path) == chart.svg());
  fs::create_directory(dir.path / "taken.svg");
  CHECK_THROWS_WITH(chart.save((dir.path / "taken.svg").string()),
                    Catch::Contains("taken.svg") && Catch::Contains("Is a directory"));
  CHECK(dir.entries() == std::vector<std::string>{"chart.svg", "taken.svg"});
}

TEST_CASE("hardening: a loss recorded before an optimizer step cannot be differentiated after it") {
  gg::nn::manual_seed(0);
  gg::nn::Linear layer(2, 1);
  gg::optim::Adam opt(layer.parameters(), gg::optim::AdamOptions(0.1));
  const gg::Tensor x({1.0, 2.0}, {1, 2});
  const gg::Var loss = gg::sum(layer(gg::Var::constant(x)));
  loss.backward({.retain_graph = true}); // kept: the second pass below fails for another reason
  opt.step();                            // changes the weights the loss's graph used
  CHECK_THROWS_WITH(loss.backward(), Catch::Contains("changed in place") && Catch::Contains("linear"));
  for (int step = 0; step < 3; ++step) { // the usual loop records a fresh graph each step
    opt.zero_grad();
    const gg::Var l = gg::sum(layer(gg::Var::constant(x)));
    l.backward();
    opt.step();
  }
}

TEST_CASE("hardening: a gzip IDX file inflating beyond the machine's memory is refused early") {
  // A gzip file can hold a thousand times its size: once more than the first MiB of data has arrived,
  // the memory the header asks for is compared with the machine's (a lying header with less data is
  // a truncated file, tested in test_data.cpp).
  std::string idx("\0\0\x08\x03", 4);
  for (int d = 0; d < 3; ++d) idx += std::string("\x00\x01\x86\xa0", 4); // 100000 each: 10^15 bytes
  idx += std::string(3 << 20, '\0');                                     // 3 MiB of them are there
  std::vector<unsigned char> gz(compressBound(static_cast<uLong>(idx.size())) + 32);
  z_stream zs{};
  REQUIRE(deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  zs.next_in = reinterpret_cast<Bytef*>(idx.data());
  zs.avail_in = static_cast<uInt>(idx.size());
  zs.next_out = gz.data();
  zs.avail_out = static_cast<uInt>(gz.size());
  REQUIRE(deflate(&zs, Z_FINISH) == Z_STREAM_END);
  gz.resize(zs.total_out);
  deflateEnd(&zs);
  CHECK(gz.size() < 10000);
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(gz.data()), gz.size());
  CHECK_THROWS_WITH(gg::data::parse_idx(bytes, "bomb.idx.gz"),
                    Catch::Contains("bomb.idx.gz: the header's dimensions [100000, 100000, 100000]") &&
                        Catch::Contains("GB in memory as float64, more than this machine's"));
}
