// The LibTorch (C++) side of bench/train.cpp: the same workloads (models, shapes, dtypes, losses,
// optimizers, steps) on Debian's libtorch-dev, timed the same way, printing the same "result ..."
// line, so a C++ user sees gradgraph against the C++ API without Python's overhead per op.
//
//   bench_libtorch_train WORKLOAD [the options of bench_train]
//   bench_libtorch_train vecmath [ROUNDS]   (the vector-math rows; see vecmath_main)
// Threads as bench/torch_train.py's tuned side: torch::set_num_threads and OpenBLAS's own count
// (Debian's torch calls OpenBLAS, which torch's setting does not reach). The "kernels: ..." line
// names the BLAS and its core type, ATen's CPU capability (its vectorised kernels), oneDNN's version
// and the vector-math library loaded; run with DNNL_VERBOSE=1, oneDNN prints every primitive it
// executes (bench/run reads which convolution kernels ran from it).
#include <torch/torch.h>

#include <dlfcn.h>
#include <zlib.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <limits>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "train_options.hpp"

namespace {

using bench::TrainOptions;

/// An OpenBLAS function, when the BLAS that torch loaded is OpenBLAS; null otherwise.
template <class F> F openblas_function(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}

void set_threads(int n) {
  torch::set_num_threads(n);
  if (const auto set = openblas_function<void (*)(int)>("openblas_set_num_threads")) set(n);
}

/// "name: value" from at::show_config() (e.g. "CPU capability usage"), or "unknown".
std::string config_field(const std::string& name) {
  const std::regex re(name + ":\\s*([^\\n]+)");
  const std::string config = at::show_config();
  std::smatch m;
  return std::regex_search(config, m, re) ? m[1].str() : "unknown";
}

/// Whether a shared library whose file name contains `part` is mapped into this process.
bool library_loaded(const std::string& part) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line))
    if (line.find(part) != std::string::npos) return true;
  return false;
}

void print_kernels() {
  const auto core = openblas_function<char* (*)()>("openblas_get_corename");
  const std::regex onednn("MKL-DNN (v[0-9.]+)");
  const std::string config = at::show_config();
  std::smatch m;
  std::printf("kernels: products: %s; ATen CPU capability: %s; oneDNN %s; elementwise math: %s\n",
              core ? ("OpenBLAS (" + std::string(core()) + " kernels)").c_str()
                   : "a BLAS other than OpenBLAS",
              config_field("CPU capability usage").c_str(),
              std::regex_search(config, m, onednn) ? m[1].str().c_str() : "not built in",
              library_loaded("libsleef") ? "SLEEF (vectorised)" : "no SLEEF loaded");
}

torch::ScalarType dtype_of(const TrainOptions& o) {
  return o.dtype == "f64" ? torch::kFloat64 : torch::kFloat32;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(torch::nn::Sequential& model,
                                                        const std::string& name) {
  if (name == "adam")
    return std::make_unique<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(1e-3));
  return std::make_unique<torch::optim::SGD>(model->parameters(), torch::optim::SGDOptions(0.01));
}

/// Gradients set to none, as the Python side's zero_grad(set_to_none=True).
void clear_grads(torch::nn::Sequential& model) {
  for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
}

void print_result(const TrainOptions& o, const bench::Timing& t, const std::string& extra = "") {
  bench::print_train_result("libtorch", o, torch::get_num_threads(), t, 0, extra);
}

/// Times one training step (zero_grad, forward, loss, backward, update) of `model` on x.
template <class Loss>
void run_steps(const TrainOptions& o, torch::nn::Sequential& model, const torch::Tensor& x, Loss&& loss_of) {
  auto opt = make_optimizer(model, o.optim);
  const auto step = [&] {
    clear_grads(model);
    loss_of(model->forward(x)).backward();
    opt->step();
  };
  print_result(o, bench::time_train_steps(o, step));
}

torch::nn::Sequential mlp(const std::vector<std::int64_t>& widths, torch::ScalarType dtype) {
  torch::nn::Sequential model;
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    if (i > 0) model->push_back(torch::nn::ReLU());
    model->push_back(torch::nn::Linear(widths[i], widths[i + 1]));
  }
  model->to(dtype);
  return model;
}

void mlp_tiny(const TrainOptions& o) {
  const auto dt = dtype_of(o);
  torch::nn::Sequential model(torch::nn::Linear(2, 3), torch::nn::Sigmoid(), torch::nn::Linear(3, 2));
  model->to(dt);
  const auto x = torch::tensor({0.5, -0.3}, dt).reshape({1, 2});
  const auto target = torch::tensor({1.0, 0.0}, dt).reshape({1, 2});
  run_steps(o, model, x,
            [&](const torch::Tensor& out) { return torch::nn::functional::mse_loss(out, target); });
}

void mlp_train(const TrainOptions& o, const std::vector<std::int64_t>& widths) {
  const auto dt = dtype_of(o);
  auto model = mlp(widths, dt);
  const auto x = torch::rand({o.batch, widths.front()}, dt);
  const auto y = torch::randint(widths.back(), {o.batch}, torch::kInt64);
  run_steps(o, model, x,
            [&](const torch::Tensor& out) { return torch::nn::functional::cross_entropy(out, y); });
}

void cnn(const TrainOptions& o) {
  namespace nn = torch::nn;
  const auto dt = dtype_of(o);
  nn::Sequential model(nn::Conv2d(nn::Conv2dOptions(1, 16, 5).stride(1).padding(2)), nn::ReLU(),
                       nn::MaxPool2d(nn::MaxPool2dOptions(2)),
                       nn::Conv2d(nn::Conv2dOptions(16, 32, 5).stride(1).padding(2)), nn::ReLU(),
                       nn::MaxPool2d(nn::MaxPool2dOptions(2)), nn::Flatten(), nn::Linear(32 * 7 * 7, 10));
  model->to(dt);
  const auto x = torch::rand({o.batch, 1, 28, 28}, dt);
  const auto y = torch::randint(10, {o.batch}, torch::kInt64);
  run_steps(o, model, x,
            [&](const torch::Tensor& out) { return torch::nn::functional::cross_entropy(out, y); });
}

/// The bytes of a gzip'd IDX file after its header.
std::vector<std::uint8_t> read_idx(const std::string& path, std::size_t header) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<std::uint8_t> bytes;
  std::uint8_t buffer[1 << 16];
  int got;
  while ((got = gzread(f, buffer, sizeof buffer)) > 0) bytes.insert(bytes.end(), buffer, buffer + got);
  gzclose(f);
  if (got < 0 || bytes.size() < header) throw std::runtime_error("cannot read " + path);
  bytes.erase(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(header));
  return bytes;
}

/// Fashion-MNIST's images [n, 784] scaled to [0, 1] and labels [n] (int64), as bench/torch_train.py.
std::pair<torch::Tensor, torch::Tensor> load_fashion(const std::string& dir, bool train,
                                                     torch::ScalarType dt) {
  const std::string prefix = dir + "/" + (train ? "train" : "t10k");
  auto images = read_idx(prefix + "-images-idx3-ubyte.gz", 16);
  auto labels = read_idx(prefix + "-labels-idx1-ubyte.gz", 8);
  const auto n = static_cast<std::int64_t>(labels.size());
  if (images.size() != static_cast<std::size_t>(n * 784))
    throw std::runtime_error("bad Fashion-MNIST in " + dir);
  auto x = torch::from_blob(images.data(), {n, 784}, torch::kUInt8).to(dt) / 255.0;
  auto y = torch::from_blob(labels.data(), {n}, torch::kUInt8).to(torch::kInt64);
  return {x, y};
}

/// One epoch of steps on (x, y) (cross-entropy), `batch` rows at a time in a random order.
void train_epoch(torch::nn::Sequential& model, torch::optim::Optimizer& opt, const torch::Tensor& x,
                 const torch::Tensor& y, std::int64_t batch) {
  const std::int64_t n = x.size(0);
  const auto order = torch::randperm(n, torch::kInt64);
  for (std::int64_t i = 0; i < n; i += batch) {
    const auto idx = order.slice(0, i, std::min(i + batch, n));
    clear_grads(model);
    torch::nn::functional::cross_entropy(model->forward(x.index_select(0, idx)), y.index_select(0, idx))
        .backward();
    opt.step();
  }
}

void fashion(TrainOptions o) {
  o.batch = 128;
  o.optim = "adam";
  const auto dt = dtype_of(o);
  torch::manual_seed(0);
  auto model = mlp({784, 128, 10}, dt);
  auto opt = make_optimizer(model, o.optim);
  // As bench/train.cpp: the first epoch includes reading the data, later ones train on it.
  double first = 0, rss_first = 0, rss_last = 0;
  auto t0 = bench::clock_type::now();
  const auto [x, y] = load_fashion(o.data, true, dt);
  for (int e = 0; e < o.epochs; ++e) {
    if (e > 0) t0 = bench::clock_type::now();
    train_epoch(model, *opt, x, y, o.batch);
    const double s = bench::seconds_since(t0), rss = bench::current_rss_mib();
    if (e == 0) first = s, rss_first = rss;
    rss_last = rss;
  }
  const auto [tx, ty] = load_fashion(o.data, false, dt);
  double acc = 0;
  {
    torch::NoGradGuard no_grad;
    acc = model->forward(tx).argmax(1).eq(ty).to(torch::kFloat64).mean().item<double>();
  }
  o.repeats = o.epochs;
  print_result(o, bench::Timing{first, first, 1},
               " test_accuracy=" + std::to_string(acc) + " rss_first_epoch_mib=" + std::to_string(rss_first) +
                   " rss_last_epoch_mib=" + std::to_string(rss_last));
}

// ---- the sequence models (issue 13), as bench/train.cpp's gpt and lstm

/// A pre-norm transformer block as gradgraph's nn::lm::GPTBlock and PyTorch's
/// TransformerEncoderLayer(norm_first, GELU, 4E) — LibTorch's TransformerEncoderLayer has no
/// norm_first, so the block is written from its layers; attention runs sequence-first as LibTorch's
/// MultiheadAttention takes it (as Python's does inside with batch_first).
struct GPTBlockImpl : torch::nn::Module {
  GPTBlockImpl(std::int64_t e, std::int64_t heads)
      : norm1(register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({e})))),
        self_attn(register_module("self_attn", torch::nn::MultiheadAttention(e, heads))),
        norm2(register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({e})))),
        linear1(register_module("linear1", torch::nn::Linear(e, 4 * e))),
        linear2(register_module("linear2", torch::nn::Linear(4 * e, e))) {}
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask) {
    const auto h = norm1(x).transpose(0, 1);
    const auto a = x + std::get<0>(self_attn->forward(h, h, h, torch::Tensor(), false, mask)).transpose(0, 1);
    return a + linear2(torch::gelu(linear1(norm2(a))));
  }
  torch::nn::LayerNorm norm1;
  torch::nn::MultiheadAttention self_attn;
  torch::nn::LayerNorm norm2;
  torch::nn::Linear linear1, linear2;
};
TORCH_MODULE(GPTBlock);

/// gradgraph's nn::lm::GPT: embeddings, blocks with a causal mask, final LayerNorm, tied output.
struct GPTImpl : torch::nn::Module {
  explicit GPTImpl(const bench::SequenceSizes& s)
      : token_embedding(register_module("token_embedding", torch::nn::Embedding(s.vocab, s.gpt_embedding))),
        position_embedding(
            register_module("position_embedding", torch::nn::Embedding(s.gpt_context, s.gpt_embedding))),
        norm(register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({s.gpt_embedding})))),
        mask(torch::full({s.gpt_context, s.gpt_context}, -std::numeric_limits<float>::infinity()).triu(1)) {
    for (std::int64_t i = 0; i < s.gpt_layers; ++i)
      blocks.push_back(register_module("block" + std::to_string(i), GPTBlock(s.gpt_embedding, s.gpt_heads)));
  }
  torch::Tensor forward(const torch::Tensor& idx) {
    const std::int64_t t = idx.size(1);
    auto x = token_embedding(idx) + position_embedding(torch::arange(t, torch::kInt64));
    const auto m = mask.slice(0, 0, t).slice(1, 0, t).to(x.scalar_type());
    for (auto& b : blocks) x = b(x, m);
    return torch::nn::functional::linear(norm(x), token_embedding->weight);
  }
  torch::nn::Embedding token_embedding, position_embedding;
  std::vector<GPTBlock> blocks;
  torch::nn::LayerNorm norm;
  torch::Tensor mask;
};
TORCH_MODULE(GPT);

/// gradgraph's nn::lm::Recurrent with an LSTM: embedding, LSTM (batch_first), Linear head.
struct LSTMModelImpl : torch::nn::Module {
  explicit LSTMModelImpl(const bench::SequenceSizes& s)
      : embedding(register_module("embedding", torch::nn::Embedding(s.vocab, s.lstm_embedding))),
        rnn(register_module("rnn", torch::nn::LSTM(torch::nn::LSTMOptions(s.lstm_embedding, s.lstm_hidden)
                                                       .num_layers(s.lstm_layers)
                                                       .batch_first(true)))),
        head(register_module("head", torch::nn::Linear(s.lstm_hidden, s.vocab))) {}
  torch::Tensor forward(const torch::Tensor& idx) { return head(std::get<0>(rnn(embedding(idx)))); }
  torch::nn::Embedding embedding;
  torch::nn::LSTM rnn;
  torch::nn::Linear head;
};
TORCH_MODULE(LSTMModel);

/// One training step of a character language model on random tokens (cross-entropy over every
/// position), as bench/train.cpp's language_model_step.
template <class Model> void language_model_step(const TrainOptions& o, Model& model, std::int64_t length) {
  model->to(dtype_of(o));
  const std::int64_t v = bench::sequence_sizes.vocab;
  const auto x = torch::randint(v, {o.batch, length}, torch::kInt64);
  const auto y = torch::randint(v, {o.batch * length}, torch::kInt64);
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (o.optim == "adamw")
    opt = std::make_unique<torch::optim::AdamW>(model->parameters(), torch::optim::AdamWOptions(1e-3));
  else
    opt = std::make_unique<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(1e-3));
  const auto step = [&] {
    for (auto& p : model->parameters()) p.mutable_grad() = torch::Tensor();
    torch::nn::functional::cross_entropy(model->forward(x).reshape({-1, v}), y).backward();
    opt->step();
  };
  print_result(o, bench::time_train_steps(o, step));
}

void gpt(const TrainOptions& o) {
  GPT model(bench::sequence_sizes);
  language_model_step(o, model, bench::sequence_sizes.gpt_context);
}

void lstm(const TrainOptions& o) {
  LSTMModel model(bench::sequence_sizes);
  language_model_step(o, model, bench::sequence_sizes.lstm_sequence);
}

// ---- the Fashion-MNIST CNN's epoch (issue 16 item 2), as bench/train.cpp's fashion_cnn

/// examples/pytorch/fashion_mnist.py's cnn model and loop (Adam 1e-3, batches of 128 in a random order,
/// the test set evaluated 1000 images at a time without recording), timed from before loading the data
/// to after the evaluation: one epoch over the first o.images training images, then the 10,000 test
/// images (with --steps N: N batches and the first 1000 test images).
void fashion_cnn(TrainOptions o) {
  namespace nn = torch::nn;
  o.batch = 128;
  o.optim = "adam";
  const auto t0 = bench::clock_type::now();
  const double cpu0 = bench::cpu_seconds();
  torch::manual_seed(1);
  nn::Sequential model(
      nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
      nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(nn::MaxPool2dOptions(2)),
      nn::Flatten(), nn::Linear(64 * 7 * 7, 128), nn::ReLU(), nn::Linear(128, 10));
  auto opt = make_optimizer(model, o.optim);
  const auto [train_x, train_y] = load_fashion(o.data, true, torch::kFloat32);
  const auto [test_x, test_y] = load_fashion(o.data, false, torch::kFloat32);
  const std::int64_t images =
      std::min(o.steps > 0 ? std::min(o.images, o.steps * o.batch) : o.images, train_x.size(0));
  const std::int64_t tests = o.steps > 0 ? 1000 : test_x.size(0);
  const auto x = train_x.slice(0, 0, images).reshape({-1, 1, 28, 28}), y = train_y.slice(0, 0, images);
  const auto tx = test_x.slice(0, 0, tests).reshape({-1, 1, 28, 28}), ty = test_y.slice(0, 0, tests);
  const double cpu_loaded = bench::cpu_seconds();
  model->train();
  train_epoch(model, *opt, x, y, o.batch);
  const double cpu_trained = bench::cpu_seconds();
  model->eval();
  std::int64_t correct = 0;
  {
    torch::NoGradGuard no_grad;
    for (std::int64_t i = 0; i < tests; i += 1000) {
      const std::int64_t end = std::min(i + 1000, tests);
      correct +=
          model->forward(tx.slice(0, i, end)).argmax(1).eq(ty.slice(0, i, end)).sum().item<std::int64_t>();
    }
  }
  const double seconds = bench::seconds_since(t0), cpu_end = bench::cpu_seconds();
  o.repeats = 1;
  print_result(o, bench::Timing{seconds, seconds, 1},
               " test_accuracy=" + std::to_string(static_cast<double>(correct) / static_cast<double>(tests)) +
                   " images=" + std::to_string(images) +
                   bench::cpu_phases(cpu0, cpu_loaded, cpu_trained, cpu_end));
}

// ---- GRU and RNN steps (issue 13): the lstm workload's model with a GRU or a tanh RNN

/// gradgraph's nn::lm::Recurrent with a GRU or an RNN (tanh): embedding, the layers (batch_first),
/// Linear head.
template <class Layer, class Options> struct RecurrentModelImpl : torch::nn::Module {
  explicit RecurrentModelImpl(const bench::SequenceSizes& s)
      : embedding(register_module("embedding", torch::nn::Embedding(s.vocab, s.lstm_embedding))),
        rnn(register_module(
            "rnn",
            Layer(Options(s.lstm_embedding, s.lstm_hidden).num_layers(s.lstm_layers).batch_first(true)))),
        head(register_module("head", torch::nn::Linear(s.lstm_hidden, s.vocab))) {}
  torch::Tensor forward(const torch::Tensor& idx) { return head(std::get<0>(rnn(embedding(idx)))); }
  torch::nn::Embedding embedding;
  Layer rnn;
  torch::nn::Linear head;
};

template <class Layer, class Options> void recurrent_model_step(const TrainOptions& o) {
  auto model = std::make_shared<RecurrentModelImpl<Layer, Options>>(bench::sequence_sizes);
  language_model_step(o, model, bench::sequence_sizes.lstm_sequence);
}
void gru(const TrainOptions& o) {
  recurrent_model_step<torch::nn::GRU, torch::nn::GRUOptions>(o);
}
void rnn(const TrainOptions& o) {
  recurrent_model_step<torch::nn::RNN, torch::nn::RNNOptions>(o);
}

// --- vecmath: the vector-math rows of bench/run (issue 16, item 3), as bench/vecmath's torch side ---

/// Times exp, log, tanh, sigmoid, erf, GELU (exact and tanh), softmax and log_softmax over [64, 1024]
/// in float32 and float64 on one thread, forward alone (no grad) and forward + backward (a ones
/// seed): best of `rounds` timings of 20 calls, process CPU time. Prints "vecmath name=... dtype=...
/// backward=0|1 mps=..." (million elements per second) per function.
int vecmath_main(int rounds) {
  torch::set_num_threads(1);
  set_threads(1);
  using Fn = torch::Tensor (*)(const torch::Tensor&);
  const std::vector<std::pair<const char*, Fn>> fns{
      {"exp", [](const torch::Tensor& x) { return torch::exp(x); }},
      {"log", [](const torch::Tensor& x) { return torch::log(x); }},
      {"tanh", [](const torch::Tensor& x) { return torch::tanh(x); }},
      {"sigmoid", [](const torch::Tensor& x) { return torch::sigmoid(x); }},
      {"erf", [](const torch::Tensor& x) { return torch::erf(x); }},
      {"gelu", [](const torch::Tensor& x) { return torch::gelu(x); }},
      {"gelu_tanh", [](const torch::Tensor& x) { return torch::gelu(x, "tanh"); }},
      {"softmax", [](const torch::Tensor& x) { return torch::softmax(x, -1); }},
      {"log_softmax", [](const torch::Tensor& x) { return torch::log_softmax(x, -1); }}};
  const auto cpu_now = [] {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  for (const auto& [name, f] : fns)
    for (const torch::ScalarType dt : {torch::kFloat32, torch::kFloat64}) {
      torch::Tensor x = torch::randn({64, 1024}, torch::TensorOptions().dtype(dt));
      if (std::string(name) == "log") x = x.abs();
      const torch::Tensor seed = torch::ones_like(x);
      for (const int backward : {0, 1}) {
        torch::Tensor xv = x.clone().requires_grad_(backward == 1);
        const auto step = [&] {
          if (backward) {
            xv.mutable_grad() = torch::Tensor();
            f(xv).backward(seed);
          } else {
            const torch::NoGradGuard off;
            f(xv);
          }
        };
        for (int i = 0; i < 5; ++i) step();
        double best = 1e300;
        for (int r = 0; r < rounds; ++r) {
          const double t0 = cpu_now();
          for (int i = 0; i < 20; ++i) step();
          best = std::min(best, (cpu_now() - t0) / 20);
        }
        std::printf("vecmath name=%s dtype=%s backward=%d mps=%.2f\n", name,
                    dt == torch::kFloat32 ? "f32" : "f64", backward, 65536 / best * 1e-6);
      }
    }
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  torch::manual_seed(1);
  if (argc >= 2 && std::string(argv[1]) == "vecmath") return vecmath_main(argc >= 3 ? std::atoi(argv[2]) : 7);
  print_kernels();
  return bench::train_main(argc, argv, "bench_libtorch_train", "/usr/share/datasets/fashion-mnist",
                           set_threads,
                           {.info = [](const TrainOptions&) {}, // the kernels line says it all
                            .mlp_tiny = mlp_tiny,
                            .cnn = cnn,
                            .fashion = fashion,
                            .gpt = gpt,
                            .lstm = lstm,
                            .fashion_cnn = fashion_cnn,
                            .gru = gru,
                            .rnn = rnn,
                            .mlp = mlp_train});
}
