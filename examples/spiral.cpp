// The cs231n spiral: three interleaved arms of 100 points each. A linear softmax classifier can only
// cut the plane into three wedges (about half the points right); one hidden layer of 100 ReLU units
// bends the boundaries around the arms (~99%). Same loss, optimizer and steps size as cs231n's notes.
#include <nn/nn.hpp>
#include <nn/plot/plot.hpp>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;

namespace {

/// Trains `model` by full-batch gradient descent (lr 1) on cross-entropy + ½·reg·Σ W² over the
/// weights (not the biases), cs231n's loss; returns the final loss.
double train(nn::Module& model, const gg::data::Dataset& data, int steps, double reg) {
  gg::optim::GD opt(model.parameters(), gg::optim::GDOptions(1.0));
  const auto loss = [&](const Var& scores, const Tensor& y) {
    Var l = nn::cross_entropy(scores, y);
    for (const auto& [name, p] : model.named_parameters())
      if (name.ends_with("weight")) l = l + 0.5 * reg * gg::sum(p * p);
    return l;
  };
  // One batch of all points per epoch: an epoch is a step.
  gg::train::Trainer trainer(model, opt, loss, {.epochs = steps, .evaluate_train = false});
  gg::data::DataLoader loader(data.x, data.y, {.batch_size = data.x.shape()[0]});
  return *gg::train::find(trainer.fit(loader).logs, "train_loss");
}

/// Training accuracy of a model on the data.
double accuracy(nn::Module& model, const gg::data::Dataset& data) {
  gg::NoGrad no_grad;
  return gg::metrics::accuracy(model(Var::constant(data.x)).value(), data.y);
}

/// Writes the model's decision regions with the training points.
void draw(nn::Module& model, const gg::data::Dataset& data, const std::string& path,
          const std::string& title) {
  gg::plot::RegionOptions options;
  options.title = title;
  options.class_names = {"arm 0", "arm 1", "arm 2"};
  options.bounds = std::array<double, 4>{-1.1, 1.1, -1.1, 1.1};
  gg::plot::decision_regions(
      path, [&](const Tensor& points) { return model(Var::constant(points)).value(); }, data.x, data.y,
      options);
}

int run(const std::string& dir, int mlp_steps) {
  std::filesystem::create_directories(dir);
  const gg::data::Dataset data = gg::data::spiral(100, 3, 0.2, 1);
  const double reg = 1e-3;
  std::cout << fmt::format("spiral: 3 classes x 100 points (cs231n); full-batch gradient descent, lr 1, loss "
                           "cross-entropy + 1/2 * {} * sum W^2\n\n",
                           reg);

  nn::manual_seed(1);
  nn::Linear linear(2, 3);
  const int linear_steps = 200;
  const double linear_loss = train(linear, data, linear_steps, reg);
  const double linear_acc = accuracy(linear, data);
  std::cout << fmt::format(
      "linear softmax classifier (9 parameters), {:5d} steps: loss {:.3f}, training accuracy "
      "{:.3f}\n",
      linear_steps, linear_loss, linear_acc);

  nn::Sequential mlp(nn::Linear(2, 100), nn::ReLU(), nn::Linear(100, 3));
  const double mlp_loss = train(mlp, data, mlp_steps, reg);
  const double mlp_acc = accuracy(mlp, data);
  std::cout << fmt::format("MLP 2-100-3, ReLU ({} parameters),   {:5d} steps: loss {:.3f}, training accuracy "
                           "{:.3f}\n\n(cs231n's notes: linear 0.49, MLP 0.98)\n",
                           nn::parameter_count(mlp), mlp_steps, mlp_loss, mlp_acc);

  draw(linear, data, dir + "/spiral_linear.svg",
       fmt::format("Spiral: linear softmax classifier, accuracy {:.2f}", linear_acc));
  draw(mlp, data, dir + "/spiral_mlp.svg",
       fmt::format("Spiral: MLP 2-100-3 (ReLU), accuracy {:.2f}", mlp_acc));
  std::cout << "wrote " << dir << "/spiral_linear.svg and " << dir << "/spiral_mlp.svg\n";
  // A line cannot separate the arms; the hidden layer can.
  return linear_acc < 0.6 && mlp_acc >= 0.95 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  try {
    if (argc > 3) throw gg::UsageError("usage: spiral [OUTPUT_DIR] [MLP_STEPS]");
    return run(argc > 1 ? argv[1] : "out", argc > 2 ? std::stoi(argv[2]) : 10000);
  } catch (const std::exception& e) { // a folder that cannot be made or written, a bad number
    std::cerr << "spiral: " << e.what() << "\n";
    return 2;
  }
}
