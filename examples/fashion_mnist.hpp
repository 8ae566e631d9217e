// What the Fashion-MNIST examples share: loading Debian's dataset-fashion-mnist (IDX, gzip'd) as float32,
// mini-batch training with Adam and cross-entropy (gg::train::Trainer), the test accuracy and samples/s
// after each epoch, the confusion matrix, and a main() that skips (exit 77) when the dataset is not
// installed.
#pragma once

#include <nn/nn.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace fashion_mnist {

/// Exit status of a run that could not happen (CTest's SKIP_RETURN_CODE).
inline constexpr int skipped = 77;

/// How to train.
struct Settings {
  int epochs = 10;
  std::int64_t limit = 60000; ///< use only the first `limit` training and test images
  int threads = 1;
  std::int64_t batch_size = 128;
  double lr = 1e-3;
  std::uint64_t seed = 1;
  /// Anneal the learning rate from lr to 0 over the epochs (CosineAnnealingLR, stepped per epoch).
  bool cosine_lr = false;
  bool images = false; ///< give the model [n, 1, 28, 28] images instead of [n, 784] rows
};

/// The first n rows of x (all when n >= its row count).
inline gg::Tensor head(const gg::Tensor& x, std::int64_t n) {
  return n >= x.shape()[0] ? x : gg::kernel::slice(x, 0, 0, n);
}

/// Trains the model and reports after every epoch; returns the final test accuracy.
inline double train(gg::nn::Module& model, const Settings& s) {
  namespace nn = gg::nn;
  gg::kernel::set_num_threads(s.threads);
  const auto load_start = std::chrono::steady_clock::now();
  gg::data::Dataset train =
      gg::data::load_fashion_mnist(std::string(gg::data::fashion_mnist_dir), true, gg::f32);
  gg::data::Dataset test =
      gg::data::load_fashion_mnist(std::string(gg::data::fashion_mnist_dir), false, gg::f32);
  gg::Tensor x_train = head(train.x, s.limit), y_train = head(train.y, s.limit);
  gg::Tensor x_test = head(test.x, s.limit), y_test = head(test.y, s.limit);
  if (s.images) {
    x_train = x_train.reshape({-1, 1, 28, 28});
    x_test = x_test.reshape({-1, 1, 28, 28});
  }
  std::cout << fmt::format(
      "Fashion-MNIST ({}): {} training and {} test images, float32, loaded in {:.1f} s\n",
      gg::data::fashion_mnist_dir, x_train.shape()[0], x_test.shape()[0],
      std::chrono::duration<double>(std::chrono::steady_clock::now() - load_start).count());
  std::cout << nn::summary(model, s.images ? gg::Shape{1, 1, 28, 28} : gg::Shape{1, 784}, gg::f32) << "\n";

  gg::optim::Adam opt(model.parameters(), gg::optim::AdamOptions(s.lr));
  gg::data::DataLoader loader(x_train, y_train,
                              {.batch_size = s.batch_size, .shuffle = true, .seed = s.seed});
  std::cout << fmt::format(
      "training: Adam lr {}{}, cross-entropy, batches of {}, {} epochs, {} thread(s), seed {}\n", s.lr,
      s.cosine_lr ? " (cosine-annealed to 0 over the epochs)" : "", s.batch_size, s.epochs, s.threads,
      s.seed);
  // The library's loop, the test set evaluated 1000 images at a time after every epoch; each
  // epoch's training time (without the evaluation) is kept for the summary.
  gg::train::Trainer trainer(
      model, opt, [](const gg::Var& out, const gg::Tensor& y) { return nn::cross_entropy(out, y); },
      {.epochs = s.epochs, .evaluate_train = false, .eval_batch_size = 1000});
  // The accuracy metric keeps the last evaluation's outputs: the confusion matrix below is theirs, not a
  // second pass over the test set.
  gg::Tensor test_output;
  trainer.add_metric("accuracy", [&](const gg::Tensor& out, const gg::Tensor& y) {
    test_output = out;
    return gg::metrics::accuracy(out, y);
  });
  std::optional<gg::optim::CosineAnnealingLR> schedule;
  if (s.cosine_lr) trainer.add_scheduler(schedule.emplace(opt, s.epochs));
  std::vector<double> seconds;
  std::chrono::steady_clock::time_point start, last;
  gg::train::LambdaCallback clock(
      {.epoch_begin = [&](gg::train::Trainer&, std::int64_t) { start = std::chrono::steady_clock::now(); },
       .batch_end = [&](gg::train::Trainer&,
                        const gg::train::StepInfo&) { last = std::chrono::steady_clock::now(); },
       .epoch_end =
           [&](gg::train::Trainer&, std::int64_t, const gg::train::Logs&) {
             seconds.push_back(std::chrono::duration<double>(last - start).count());
           }});
  gg::train::ProgressLogger progress(std::cout, {.every = 1});
  trainer.add_callback(clock).add_callback(progress);
  const double accuracy = *gg::train::find(trainer.fit(loader, x_test, y_test).logs, "test_accuracy");
  std::sort(seconds.begin(), seconds.end());
  std::cout << fmt::format(
                   "\ntest accuracy {:.4f}; seconds per training epoch: median {:.1f}, min {:.1f}\n\n",
                   accuracy, seconds[seconds.size() / 2], seconds.front())
            << gg::metrics::format_confusion_matrix(
                   gg::metrics::confusion_matrix(gg::metrics::class_ids(test_output), y_test, 10),
                   gg::data::fashion_mnist_classes());
  return accuracy;
}

/// The main() of these examples: `name [EPOCHS] [LIMIT] [THREADS] [SEED]` trains make_model()'s model
/// (SEED: initial weights and shuffling, default s.seed). A full
/// run (all 60,000 images, at least s.epochs epochs) must reach `target` test accuracy; a reduced one
/// (a test) only has to learn something (0.5; chance is 0.1). Exit 77 when the dataset is not installed, 2 on
/// errors.
inline int main_with(int argc, char** argv, const char* name, Settings s, double target,
                     const std::function<std::shared_ptr<gg::nn::Module>()>& make_model) {
  try {
    if (argc > 5) throw gg::UsageError(fmt::format("usage: {} [EPOCHS] [LIMIT] [THREADS] [SEED]", name));
    const int full_epochs = s.epochs;
    if (argc > 1) s.epochs = std::stoi(argv[1]);
    if (argc > 2) s.limit = std::stoll(argv[2]);
    if (argc > 3) s.threads = std::stoi(argv[3]);
    if (argc > 4) s.seed = std::stoull(argv[4]);
    if (s.epochs < 1 || s.limit < 1 || s.threads < 1)
      throw gg::UsageError("EPOCHS, LIMIT and THREADS must be at least 1");
    const std::string probe = std::string(gg::data::fashion_mnist_dir) + "/train-images-idx3-ubyte.gz";
    if (!std::filesystem::exists(probe)) {
      std::cout << name << ": skipped, " << probe << " is missing (apt-get install dataset-fashion-mnist)\n";
      return skipped;
    }
    gg::nn::manual_seed(s.seed);
    const auto model = make_model();
    const double accuracy = train(*model, s);
    const bool full = s.limit >= 60000 && s.epochs >= full_epochs;
    const double needed = full ? target : 0.5;
    if (accuracy < needed)
      std::cerr << fmt::format("{}: test accuracy {:.4f} is below {}\n", name, accuracy, needed);
    return accuracy >= needed ? 0 : 1;
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return 2;
  }
}

} // namespace fashion_mnist
