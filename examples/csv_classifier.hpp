// What the iris and digits examples share: a classifier trained on a CSV dataset the way one would in
// PyTorch — read the file, split off a test set, standardise with the training rows' statistics, train
// an MLP on shuffled mini-batches with Adam and cross-entropy (gg::train::Trainer), report accuracy and
// the confusion matrix.
#pragma once

#include <nn/nn.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace csv_classifier {

/// What to train on and how.
struct Settings {
  std::string csv;                      ///< the dataset: numeric features, last column the class id
  std::vector<std::string> class_names; ///< one per class id
  std::vector<std::int64_t> hidden;     ///< sizes of the ReLU hidden layers
  double test_fraction = 0.2;
  double lr = 1e-3;
  int epochs = 100;
  std::int64_t batch_size = 32;
  std::uint64_t seed = 1;
};

/// The trained model and its test set (raw and standardised features) with its predictions.
struct Result {
  std::shared_ptr<gg::nn::Sequential> model;
  gg::Tensor x_test_raw, x_test, y_test, predicted;
  double train_accuracy = 0, test_accuracy = 0;
};

/// Class ids predicted by the model for standardised rows x.
inline gg::Tensor predict(gg::nn::Module& model, const gg::Tensor& x) {
  gg::NoGrad no_grad;
  return gg::metrics::class_ids(model(gg::Var::constant(x)).value());
}

/// Trains as described above, printing the data, the model, a line every few epochs and the test
/// accuracy with its confusion matrix.
inline Result train(const Settings& s) {
  namespace nn = gg::nn;
  const gg::data::Dataset data = gg::data::read_csv(s.csv);
  const gg::data::Split split = gg::data::train_test_split(data.x, data.y, s.test_fraction, s.seed);
  gg::data::Standardizer scaler;
  const gg::Tensor x_train = scaler.fit_transform(split.x_train);
  Result r;
  r.x_test_raw = split.x_test;
  r.x_test = scaler.transform(split.x_test);
  r.y_test = split.y_test;
  const std::int64_t features = data.x.shape()[1], classes = data.num_classes;
  std::cout << fmt::format("{}: {} rows, {} features, {} classes; {} for training, {} for testing (features "
                           "standardised with the training rows' mean and std)\n",
                           s.csv, data.x.shape()[0], features, classes, x_train.shape()[0],
                           r.x_test.shape()[0]);

  nn::manual_seed(s.seed);
  r.model = std::make_shared<nn::Sequential>();
  std::int64_t in = features;
  for (std::int64_t h : s.hidden) {
    r.model->push_back(std::make_shared<nn::Linear>(in, h));
    r.model->push_back(std::make_shared<nn::ReLU>());
    in = h;
  }
  r.model->push_back(std::make_shared<nn::Linear>(in, classes));
  std::cout << nn::summary(*r.model, {1, features}) << "\n";

  gg::optim::Adam opt(r.model->parameters(), gg::optim::AdamOptions(s.lr));
  gg::data::DataLoader loader(x_train, split.y_train,
                              {.batch_size = s.batch_size, .shuffle = true, .seed = s.seed});
  std::cout << fmt::format("training: Adam lr {}, cross-entropy, batches of {}, {} epochs\n", s.lr,
                           s.batch_size, s.epochs);
  const auto start = std::chrono::steady_clock::now();
  // The library's loop: the test set evaluated after every epoch, a line every tenth of the run.
  gg::train::Trainer trainer(
      *r.model, opt, [](const gg::Var& out, const gg::Tensor& y) { return nn::cross_entropy(out, y); },
      {.epochs = s.epochs, .evaluate_train = false});
  trainer.add_metric("accuracy", gg::metrics::accuracy);
  gg::train::ProgressLogger progress(std::cout, {.every = std::max(1, s.epochs / 10)});
  trainer.add_callback(progress);
  trainer.fit(loader, r.x_test, r.y_test);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.predicted = predict(*r.model, r.x_test);
  r.train_accuracy = gg::metrics::accuracy(predict(*r.model, x_train), split.y_train);
  r.test_accuracy = gg::metrics::accuracy(r.predicted, r.y_test);
  std::cout << fmt::format(
                   "\ntraining accuracy {:.3f}, test accuracy {:.3f} ({} of {} test rows; {:.1f} s)\n\n",
                   r.train_accuracy, r.test_accuracy,
                   static_cast<std::int64_t>(std::lround(r.test_accuracy * r.y_test.numel())),
                   r.y_test.numel(), seconds)
            << "confusion matrix on the test set (rows: true class, columns: predicted):\n"
            << gg::metrics::format_confusion_matrix(
                   gg::metrics::confusion_matrix(r.predicted, r.y_test, classes), s.class_names);
  return r;
}

/// The main() of these examples: `name [EPOCHS]` trains with `s` (EPOCHS overriding s.epochs) and
/// passes the result to report, whose status it returns; an error gives 2.
template <class Report> int main_with(int argc, char** argv, const char* name, Settings s, Report report) {
  try {
    if (argc > 2) throw gg::UsageError(fmt::format("usage: {} [EPOCHS]", name));
    if (argc > 1) s.epochs = std::stoi(argv[1]);
    if (s.epochs < 1) throw gg::UsageError("EPOCHS must be at least 1");
    return report(train(s));
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return 2;
  }
}

} // namespace csv_classifier
