// What the training benchmarks bench_train (gradgraph) and bench_libtorch_train (LibTorch) share, so
// both sides run the same workloads alike: the command line, the MLPs' widths, the dispatch from a
// workload's name, the timing of steps and the "result" line bench/run reads.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace bench {

/// The sizes of the sequence models' rows (issue 13), the same on every side (bench/torch_train.py
/// repeats them): a character language model over a 65-token vocabulary (tiny Shakespeare's), fed
/// random tokens; the batch is the options' (bench/run passes 16 for gpt, 32 for lstm).
struct SequenceSizes {
  std::int64_t vocab = 65;
  std::int64_t gpt_layers = 4, gpt_embedding = 128, gpt_heads = 4, gpt_context = 128;
  std::int64_t lstm_layers = 2, lstm_embedding = 128, lstm_hidden = 256, lstm_sequence = 64;
};
inline constexpr SequenceSizes sequence_sizes{};

/// One training workload's options (see bench/train.cpp for the workloads).
struct TrainOptions {
  std::string workload;
  std::int64_t batch = 64;
  std::string dtype = "f32"; ///< "f32" or "f64"
  std::string optim = "sgd"; ///< "sgd", "adam" or "adamw"
  int threads = 1;
  double seconds = 1.0;
  int repeats = 5;
  int epochs = 1;
  long steps = 0; ///< a fixed number of steps, timed once (for profilers and probes); 0: timed by seconds
  std::string data;
  /// fashion_cnn: the first `images` training images make the timed epoch (60000: the whole epoch).
  std::int64_t images = 10000;
};

/// Parses `PROGRAM WORKLOAD [--option value ...]`; throws std::invalid_argument naming the option.
inline TrainOptions parse_train_options(int argc, char** argv, const std::string& program,
                                        const std::string& default_data) {
  if (argc < 2)
    throw std::invalid_argument(
        "usage: " + program +
        " WORKLOAD [--batch N] [--dtype f32|f64] [--optim sgd|adam|adamw] [--threads N] "
        "[--seconds S] [--repeats R] [--epochs E] [--data DIR] [--steps N] [--images N]");
  TrainOptions o;
  o.workload = argv[1];
  o.data = default_data;
  std::map<std::string, std::string> kv;
  for (int i = 2; i < argc; i += 2) {
    if (i + 1 == argc) throw std::invalid_argument(program + ": option " + argv[i] + " has no value");
    kv[argv[i]] = argv[i + 1];
  }
  for (const auto& [k, v] : kv) {
    if (k == "--batch")
      o.batch = std::stoll(v);
    else if (k == "--dtype" && (v == "f32" || v == "f64"))
      o.dtype = v;
    else if (k == "--optim" && (v == "sgd" || v == "adam" || v == "adamw"))
      o.optim = v;
    else if (k == "--threads")
      o.threads = std::stoi(v);
    else if (k == "--seconds")
      o.seconds = std::stod(v);
    else if (k == "--repeats")
      o.repeats = std::stoi(v);
    else if (k == "--epochs")
      o.epochs = std::stoi(v);
    else if (k == "--steps")
      o.steps = std::stol(v);
    else if (k == "--data")
      o.data = v;
    else if (k == "--images")
      o.images = std::stoll(v);
    else
      throw std::invalid_argument(program + ": unknown option or value: " + k + " " + v);
  }
  return o;
}

/// Times step() as the options say: `steps` steps timed once, or time_steps by seconds and repeats.
template <class F> Timing time_train_steps(const TrainOptions& o, F&& step) {
  if (o.steps <= 0) return time_steps(step, o.seconds, o.repeats);
  const auto t0 = clock_type::now();
  for (long i = 0; i < o.steps; ++i) step();
  const double s = seconds_since(t0) / static_cast<double>(o.steps);
  return Timing{s, s, o.steps};
}

/// Prints the readable summary and the line bench/run reads: "result side=... workload=...
/// step_ms=... median_ms=... gflops=... peak_rss_mib=..." followed by `extra` (" key=value" pairs).
inline void print_train_result(const char* side, const TrainOptions& o, int threads, const Timing& t,
                               double flops_per_step, const std::string& extra = "") {
  const double gflops = flops_per_step > 0 ? flops_per_step / t.best * 1e-9 : 0;
  std::printf("%s %s batch=%lld %s %s threads=%d: best %.4f ms/step, median %.4f ms (%ld steps x %d)", side,
              o.workload.c_str(), static_cast<long long>(o.batch), o.dtype.c_str(), o.optim.c_str(), threads,
              t.best * 1e3, t.median * 1e3, t.steps, o.steps > 0 ? 1 : o.repeats);
  if (gflops > 0) std::printf(" %.1f GFLOP/s", gflops);
  std::printf("\nresult side=%s workload=%s step_ms=%.6f median_ms=%.6f gflops=%.3f peak_rss_mib=%.1f%s\n",
              side, o.workload.c_str(), t.best * 1e3, t.median * 1e3, gflops, peak_rss_mib(), extra.c_str());
  std::fflush(stdout);
}

/// One side's runners of the workloads (see bench/train.cpp).
struct TrainWorkloads {
  std::function<void(const TrainOptions&)> info, mlp_tiny, cnn, fashion;
  std::function<void(const TrainOptions&)> gpt, lstm; ///< the sequence models' steps (issue 13)
  /// The Fashion-MNIST CNN's timed part of an epoch (issue 16 item 2; see bench/train.cpp).
  std::function<void(const TrainOptions&)> fashion_cnn;
  std::function<void(const TrainOptions&)> gru, rnn; ///< the LSTM step's model with a GRU or a tanh RNN
  std::function<void(const TrainOptions&, const std::vector<std::int64_t>& widths)> mlp;
};

/// A training benchmark's main(): parses the command line, sets the threads, runs the workload
/// (mlp_mnist is a 784-128-10 MLP, mlp_big 1024-1024-1024-10); errors go to stderr with exit code 2.
/// gpt, lstm, gru and rnn are character language models' training steps (see bench/train.cpp).
inline int train_main(int argc, char** argv, const std::string& program, const std::string& default_data,
                      const std::function<void(int threads)>& set_threads, const TrainWorkloads& run) {
  try {
    const TrainOptions o = parse_train_options(argc, argv, program, default_data);
    set_threads(o.threads);
    if (o.workload == "info")
      run.info(o);
    else if (o.workload == "mlp_tiny")
      run.mlp_tiny(o);
    else if (o.workload == "mlp_mnist")
      run.mlp(o, {784, 128, 10});
    else if (o.workload == "mlp_big")
      run.mlp(o, {1024, 1024, 1024, 10});
    else if (o.workload == "cnn")
      run.cnn(o);
    else if (o.workload == "fashion")
      run.fashion(o);
    else if (o.workload == "gpt")
      run.gpt(o);
    else if (o.workload == "lstm")
      run.lstm(o);
    else if (o.workload == "fashion_cnn")
      run.fashion_cnn(o);
    else if (o.workload == "gru" && run.gru)
      run.gru(o);
    else if (o.workload == "rnn" && run.rnn)
      run.rnn(o);
    else
      throw std::invalid_argument(program + ": unknown workload " + o.workload);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), e.what());
    return 2;
  }
  return 0;
}

} // namespace bench
