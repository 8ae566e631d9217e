// The end-to-end training workloads of the performance issue, in gradgraph; bench/torch_train.py
// and bench/libtorch_train.cpp run the same models, data sizes and steps in PyTorch and LibTorch.
// One workload per run; prints a "kernels: ..." line (which libraries did its products, convolutions
// and elementwise math) and one result line "result side=gradgraph workload=... step_ms=..." for
// bench/run (and a readable summary).
//
//   bench_train WORKLOAD [--batch N] [--dtype f32|f64] [--optim sgd|adam] [--threads N]
//                        [--seconds S] [--repeats R] [--epochs E] [--data DIR] [--steps N] [--images N]
// Workloads: mlp_tiny (2-3-2 sigmoid, batch 1, MSE, SGD), mlp_mnist (784-128-10 ReLU, cross-entropy),
// mlp_big (1024-1024-1024-10 ReLU), cnn (2 conv + 2 max-pool + linear on 1x28x28), fashion (one
// epoch of Fashion-MNIST 784-128-10 ReLU, Adam, batch 128, data loading included), gpt and lstm
// (character language models' steps, nn::lm's GPT and LSTM; sizes in train_options.hpp), fashion_cnn
// (examples/fashion_mnist_cnn's model and settings: the first --images training images for one epoch, the
// 10,000 test images evaluated, data loading included); "info" prints
// which library does the large matrix products. Every step is gg::train::Trainer's, as programs take it.
#include <autodiff/autodiff.hpp>
#include <nn/nn.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "train_options.hpp"

namespace {

using namespace gg;

using bench::TrainOptions;

DType dtype_of(const TrainOptions& o) {
  return o.dtype == "f64" ? f64 : f32;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const nn::Module& model, const std::string& name) {
  if (name == "adam") return std::make_unique<optim::Adam>(model.parameters(), optim::AdamOptions(1e-3));
  if (name == "adamw") return std::make_unique<optim::AdamW>(model.parameters(), optim::AdamWOptions(1e-3));
  return std::make_unique<optim::SGD>(model.parameters(), optim::SGDOptions(0.01));
}

/// Class ids 0..classes-1 at random, as doubles.
Tensor random_labels(std::int64_t n, std::int64_t classes, Rng& rng) {
  Tensor y = Tensor::empty({n}, f64);
  for (std::int64_t i = 0; i < n; ++i)
    y.set_flat(i, static_cast<double>(rng.below(static_cast<std::uint64_t>(classes))));
  return y;
}

/// Floating-point operations of one training step of a stack of Linear layers [in -> out ...] for
/// a batch: forward and weight gradients for every layer, input gradients for all but the first.
double mlp_flops(const std::vector<std::int64_t>& widths, std::int64_t batch) {
  double f = 0;
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    const double mn = 2.0 * static_cast<double>(batch * widths[i] * widths[i + 1]);
    f += (i == 0 ? 2 : 3) * mn;
  }
  return f;
}

/// Which libraries ran the workload so far: its matrix products (each library chosen by shape, as they
/// ran), its convolutions when it has any, and the elementwise math. Printed after the timed steps.
void print_kernels(bool conv) {
  std::string line = "kernels: products: " + kernel::gemm_libraries_ran();
  if (conv) line += "; conv2d: " + kernel::conv2d_library();
  std::printf("%s; elementwise math: %s\n", line.c_str(), kernel::math_library().c_str());
}

void print_result(const TrainOptions& o, const bench::Timing& t, double flops_per_step,
                  const std::string& extra = "") {
  bench::print_train_result("gradgraph", o, kernel::num_threads(), t, flops_per_step, extra);
}

/// The time of the matrix products of one MLP training step alone, called directly through
/// kernel::gemm (the library and threads of the step): for every layer the forward product and the
/// weight gradient, and the input gradient for all but the first. No framework can train the step
/// faster than this with the same GEMM library: it bounds the speed-up over PyTorch.
bench::Timing mlp_gemm_floor(const TrainOptions& o, const std::vector<std::int64_t>& widths) {
  const DType dt = dtype_of(o);
  Rng rng(2);
  std::vector<Tensor> acts, grads, weights;
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    acts.push_back(Tensor::rand({o.batch, widths[i]}, rng, dt));
    grads.push_back(Tensor::rand({o.batch, widths[i + 1]}, rng, dt));
    weights.push_back(Tensor::rand({widths[i + 1], widths[i]}, rng, dt));
  }
  double sink = 0;
  const auto products = [&] {
    for (std::size_t i = 0; i < weights.size(); ++i) {
      sink += kernel::gemm(acts[i], false, weights[i], true).flat(0);              // forward: x W^T
      sink += kernel::gemm(grads[i], true, acts[i], false).flat(0);                // weight gradient: g^T x
      if (i > 0) sink += kernel::gemm(grads[i], false, weights[i], false).flat(0); // input gradient: g W
    }
  };
  const bench::Timing t = bench::time_steps(products, o.seconds, o.repeats);
  if (sink == 12345.678) std::printf(" ");
  return t;
}

/// Times one training step of `model` on (x, y) — gg::train::Trainer::train_step: zero_grad, forward,
/// loss, backward, update — as a program training with the library's trainer takes it.
void run_steps(const TrainOptions& o, nn::Module& model, const Tensor& x, const Tensor& y,
               const train::LossFn& loss, double flops_per_step, const std::string& extra = "",
               bool conv = false) {
  auto opt = make_optimizer(model, o.optim);
  train::Trainer trainer(model, *opt, loss);
  const auto step = [&] { trainer.train_step(x, y); };
  const bench::Timing t = bench::time_train_steps(o, step);
  print_kernels(conv);
  print_result(o, t, flops_per_step, extra);
}

Var cross_entropy(const Var& out, const Tensor& y) {
  return nn::cross_entropy(out, y);
}

void mlp_tiny(const TrainOptions& o) {
  const DType dt = dtype_of(o);
  nn::Sequential model(nn::Linear(2, 3, true, dt), nn::Sigmoid(), nn::Linear(3, 2, true, dt));
  const Tensor x({0.5, -0.3}, {1, 2}, dt), y({1, 0}, {1, 2}, dt);
  const Var target = Var::constant(y);
  run_steps(
      o, model, x, y, [&](const Var& out, const Tensor&) { return nn::mse_loss(out, target); }, 0);
}

void mlp(const TrainOptions& o, const std::vector<std::int64_t>& widths) {
  const DType dt = dtype_of(o);
  nn::Sequential model;
  for (std::size_t i = 0; i + 1 < widths.size(); ++i) {
    if (i > 0) model.push_back(std::make_shared<nn::ReLU>());
    model.push_back(std::make_shared<nn::Linear>(widths[i], widths[i + 1], true, dt));
  }
  Rng rng(1);
  const Tensor x = Tensor::rand({o.batch, widths.front()}, rng, dt);
  const Tensor y = random_labels(o.batch, widths.back(), rng);
  std::string floor_field; // not with --steps: a profile of the steps should hold only them
  if (o.steps == 0) {
    const bench::Timing floor = mlp_gemm_floor(o, widths);
    std::printf("the step's matrix products alone: %.3f ms\n", floor.best * 1e3);
    floor_field = " gemm_floor_ms=" + std::to_string(floor.best * 1e3);
  }
  run_steps(o, model, x, y, cross_entropy, mlp_flops(widths, o.batch), floor_field);
}

void cnn(const TrainOptions& o) {
  const DType dt = dtype_of(o);
  nn::Sequential model(nn::Conv2d(1, 16, 5, 1, 2, true, dt), nn::ReLU(), nn::MaxPool2d(2),
                       nn::Conv2d(16, 32, 5, 1, 2, true, dt), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
                       nn::Linear(32 * 7 * 7, 10, true, dt));
  Rng rng(1);
  const Tensor x = Tensor::rand({o.batch, 1, 28, 28}, rng, dt);
  const Tensor y = random_labels(o.batch, 10, rng);
  // conv1 forward + weight gradient; conv2 forward, weight and input gradients; the linear layer.
  const double b = static_cast<double>(o.batch);
  const double flops =
      2 * (2 * b * 16 * 784 * 25) + 3 * (2 * b * 32 * 196 * 400) + mlp_flops({1568, 10}, o.batch);
  run_steps(o, model, x, y, cross_entropy, flops, "", true);
}

/// Each epoch's time and the resident size after it.
struct EpochClock : train::Callback {
  bench::clock_type::time_point start;
  std::vector<double> seconds, rss;
  void on_epoch_begin(train::Trainer&, std::int64_t epoch) override {
    if (epoch > 1) start = bench::clock_type::now();
  }
  void on_epoch_end(train::Trainer&, std::int64_t epoch, const train::Logs&) override {
    seconds.push_back(bench::seconds_since(start));
    rss.push_back(bench::current_rss_mib());
    std::printf("epoch %lld: %.3f s%s, resident %.1f MiB\n", static_cast<long long>(epoch), seconds.back(),
                epoch == 1 ? " (data loading included)" : "", rss.back());
  }
};

void fashion(TrainOptions o) {
  o.batch = 128;
  o.optim = "adam";
  const DType dt = dtype_of(o);
  nn::Sequential model(nn::Linear(784, 128, true, dt), nn::ReLU(), nn::Linear(128, 10, true, dt));
  auto opt = make_optimizer(model, o.optim);
  // The first epoch's time includes reading the data; later epochs train on the loaded data, and
  // the resident size after each shows whether training memory grows from epoch to epoch. No
  // evaluation between epochs: the times are the training's.
  EpochClock clock;
  clock.start = bench::clock_type::now();
  const data::Dataset train_set = data::load_fashion_mnist(o.data, true, dt);
  train::Trainer trainer(model, *opt, cross_entropy, {.epochs = o.epochs, .evaluate_train = false});
  trainer.add_metric("accuracy", metrics::accuracy).add_callback(clock);
  data::DataLoader loader(train_set.x, train_set.y, {.batch_size = o.batch, .shuffle = true, .seed = 0});
  trainer.fit(loader);
  const data::Dataset test = data::load_fashion_mnist(o.data, false, dt);
  const double acc = *train::find(trainer.evaluate(test.x, test.y), "accuracy");
  print_kernels(false);
  bench::Timing t{clock.seconds.front(), clock.seconds.front(), 1};
  o.repeats = o.epochs;
  print_result(o, t, 0,
               " test_accuracy=" + std::to_string(acc) +
                   " rss_first_epoch_mib=" + std::to_string(clock.rss.front()) +
                   " rss_last_epoch_mib=" + std::to_string(clock.rss.back()));
}

// ---- the sequence models (issue 13)

/// Random tokens x and next tokens y [batch, length] of the vocabulary, as indices in a float tensor.
std::pair<Tensor, Tensor> random_tokens(std::int64_t batch, std::int64_t length, DType dt) {
  Rng rng(1);
  Tensor x = random_labels(batch * length, bench::sequence_sizes.vocab, rng).to(dt).reshape({batch, length});
  Tensor y = random_labels(batch * length, bench::sequence_sizes.vocab, rng).reshape({batch, length});
  return {x, y};
}

/// One step of a character language model (lm::loss over every position), as `gradgraph lm train`
/// takes it: the library's model and loss, the trainer's step.
void language_model_step(const TrainOptions& o, const nn::lm::Config& c, std::int64_t length) {
  nn::manual_seed(1);
  auto model = nn::lm::make_model(c);
  const auto [x, y] = random_tokens(o.batch, length, c.dtype);
  run_steps(
      o, *model, x, y, [](const Var& logits, const Tensor& t) { return nn::lm::loss(logits, t); }, 0);
}

void gpt(const TrainOptions& o) {
  const auto& s = bench::sequence_sizes;
  const nn::lm::Config c{.model = "gpt",
                         .vocab_size = s.vocab,
                         .context = s.gpt_context,
                         .embedding = s.gpt_embedding,
                         .layers = s.gpt_layers,
                         .heads = s.gpt_heads,
                         .dtype = dtype_of(o)};
  language_model_step(o, c, s.gpt_context);
}

/// A recurrent character model's step (lstm, gru, rnn): the LSTM row's sizes with the given model.
void recurrent_model_step(const TrainOptions& o, const char* model) {
  const auto& s = bench::sequence_sizes;
  const nn::lm::Config c{.model = model,
                         .vocab_size = s.vocab,
                         .context = s.lstm_sequence,
                         .embedding = s.lstm_embedding,
                         .hidden = s.lstm_hidden,
                         .layers = s.lstm_layers,
                         .dtype = dtype_of(o)};
  language_model_step(o, c, s.lstm_sequence);
}
void lstm(const TrainOptions& o) {
  recurrent_model_step(o, "lstm");
}

// ---- the Fashion-MNIST CNN's epoch (issue 16 item 2)

/// examples/fashion_mnist_cnn's model, settings and loop (gg::train::Trainer, Adam 1e-3, batches of 128
/// shuffled, the test set evaluated 1000 images at a time), timed from before loading the data to
/// after the evaluation: one epoch over the first o.images training images (a fixed part of the epoch,
/// the same on every side, so that bench/run can afford rounds of it), then the 10,000 test images.
/// With --steps N (probes, profiles): N batches and the first 1000 test images. Prints the wall time
/// of that span, its CPU time and that of its phases (bench::cpu_phases) and the test accuracy.
void fashion_cnn(TrainOptions o) {
  o.batch = 128;
  o.optim = "adam";
  const auto t0 = bench::clock_type::now();
  const double cpu0 = bench::cpu_seconds();
  nn::manual_seed(1);
  nn::Sequential model(nn::Conv2d(1, 32, 3, 1, 1, true, f32), nn::ReLU(), nn::MaxPool2d(2),
                       nn::Conv2d(32, 64, 3, 1, 1, true, f32), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
                       nn::Linear(64 * 7 * 7, 128, true, f32), nn::ReLU(), nn::Linear(128, 10, true, f32));
  const data::Dataset train_set = data::load_fashion_mnist(o.data, true, f32);
  const data::Dataset test_set = data::load_fashion_mnist(o.data, false, f32);
  const std::int64_t images = o.steps > 0 ? std::min(o.images, o.steps * o.batch) : o.images;
  const std::int64_t tests = o.steps > 0 ? 1000 : test_set.x.shape()[0];
  const auto first = [](const Tensor& t, std::int64_t n) {
    return n >= t.shape()[0] ? t : kernel::slice(t, 0, 0, n);
  };
  const Tensor x = first(train_set.x, images).reshape({-1, 1, 28, 28}), y = first(train_set.y, images);
  const Tensor tx = first(test_set.x, tests).reshape({-1, 1, 28, 28}), ty = first(test_set.y, tests);
  const double cpu_loaded = bench::cpu_seconds();
  auto opt = make_optimizer(model, o.optim);
  train::Trainer trainer(model, *opt, cross_entropy,
                         {.epochs = 1, .evaluate_train = false, .eval_batch_size = 1000});
  trainer.add_metric("accuracy", metrics::accuracy);
  double cpu_trained = 0; // after the last step, before the evaluation
  train::LambdaCallback phases(
      {.batch_end = [&](train::Trainer&, const train::StepInfo&) { cpu_trained = bench::cpu_seconds(); }});
  trainer.add_callback(phases);
  data::DataLoader loader(x, y, {.batch_size = o.batch, .shuffle = true, .seed = 1});
  const double acc = *train::find(trainer.fit(loader, tx, ty).logs, "test_accuracy");
  const double seconds = bench::seconds_since(t0), cpu_end = bench::cpu_seconds();
  print_kernels(true);
  o.repeats = 1;
  print_result(o, bench::Timing{seconds, seconds, 1}, 0,
               " test_accuracy=" + std::to_string(acc) + " images=" + std::to_string(images) +
                   bench::cpu_phases(cpu0, cpu_loaded, cpu_trained, cpu_end));
}

// ---- GRU and RNN steps (issue 13): the lstm workload's model and sizes with a GRU or a tanh RNN

void gru(const TrainOptions& o) {
  recurrent_model_step(o, "gru");
}
void rnn(const TrainOptions& o) {
  recurrent_model_step(o, "rnn");
}

} // namespace

int main(int argc, char** argv) {
  return bench::train_main(
      argc, argv, "bench_train", std::string(data::fashion_mnist_dir), kernel::set_num_threads,
      {.info = [](const TrainOptions&) { std::printf("gemm library: %s\n", kernel::gemm_library().c_str()); },
       .mlp_tiny = mlp_tiny,
       .cnn = cnn,
       .fashion = fashion,
       .gpt = gpt,
       .lstm = lstm,
       .fashion_cnn = fashion_cnn,
       .gru = gru,
       .rnn = rnn,
       .mlp = mlp});
}
