// The course's optimizers side by side: GD, SGD, Momentum, Nesterov, RMSprop, Adam, AdamW, Adagrad,
// Adadelta and NAdam train the same small MLP on the same data from the same initial weights.
// Prints a table of losses and accuracies and writes two pictures: all loss curves on one chart (each
// with its own colour, dash and markers, so curves on top of each other stay apart), and one panel per
// optimizer with its update rule over its curve (small multiples).
#include <nn/nn.hpp>
#include <nn/plot/plot.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <fmt/format.h>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;
namespace optim = gg::optim;

namespace {

/// One contestant: how to make the optimizer, what it was given, its update rule (θ a parameter, g
/// its gradient, t the step; PyTorch's definitions), how its curve is drawn, and its batch size (0:
/// full batch).
struct Contestant {
  std::string name;
  std::string settings;
  std::string rule;
  std::function<std::unique_ptr<optim::Optimizer>(std::vector<Var>)> make;
  gg::plot::SeriesStyle style;
  std::int64_t batch_size = 0;
};

/// The small MLP every optimizer trains: 2 inputs, two tanh hidden layers, one logit per class.
std::shared_ptr<nn::Sequential> make_model(std::int64_t hidden, std::int64_t classes) {
  return std::make_shared<nn::Sequential>(nn::Linear(2, hidden), nn::Tanh(), nn::Linear(hidden, hidden),
                                          nn::Tanh(), nn::Linear(hidden, classes));
}

/// 0, 1, ..., n - 1: the update counts the losses were taken after.
std::vector<double> losses_x(std::size_t n) {
  std::vector<double> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = static_cast<double>(i);
  return x;
}

/// Cross-entropy of the model on the whole training set, without recording.
double full_loss(nn::Module& model, const Tensor& x, const Tensor& y) {
  gg::NoGrad no_grad;
  return nn::cross_entropy(model(Var::constant(x)), y).item();
}

/// Trains one model per optimizer, prints the table and writes the picture; returns the exit status.
int run(const std::string& dir, const std::string& problem) {
  std::filesystem::create_directories(dir);

  // The cs231n spiral (3 classes, 100 points each) or two moons (200 points): one problem for all.
  const gg::data::Dataset train =
      problem == "spiral" ? gg::data::spiral(100, 3, 0.2, 1) : gg::data::two_moons(200, 0.1, 1);
  const std::int64_t n = train.x.shape()[0], hidden = 16;
  const int steps = 1000;
  nn::manual_seed(1);
  const auto initial = make_model(hidden, train.num_classes)->state_dict();
  std::cout << fmt::format("{}: {} points, {} classes; MLP 2-{}-{}-{} (tanh), cross-entropy; {} updates per "
                           "optimizer, all from the same initial weights\n",
                           problem, n, train.num_classes, hidden, hidden, train.num_classes, steps);
  std::cout
      << "learning rates: PyTorch's defaults; GD and SGD have none, they get lr 0.1. All use the whole "
         "training set per update but SGD (mini-batches of 32).\nloss@k: the loss on the whole training "
         "set after k updates.\n\n";

  using namespace optim;
  const double lr = 0.1;
  // The pairs that draw nearly the same curve (GD and SGD, Momentum and Nesterov, Adam and AdamW)
  // differ in dash and marker as well as colour.
  using gg::plot::Dash;
  using gg::plot::Marker;
  const auto style = [](Marker m, Dash d = Dash::solid) {
    return gg::plot::SeriesStyle{.dash = d, .marker = m};
  };
  const std::vector<Contestant> contestants{
      {"GD", "lr 0.1, full batch", "θ ← θ − lr·g   (g over the whole training set)",
       [&](std::vector<Var> p) { return std::make_unique<GD>(std::move(p), GDOptions(lr)); },
       style(Marker::circle)},
      {"SGD", "lr 0.1, batches of 32", "θ ← θ − lr·g   (g over a batch of 32)",
       [&](std::vector<Var> p) { return std::make_unique<SGD>(std::move(p), SGDOptions(lr)); },
       style(Marker::cross, Dash::dashed), 32},
      {"Momentum", "lr 0.1, momentum 0.9", "v ← μ·v + g;   θ ← θ − lr·v",
       [&](std::vector<Var> p) { return std::make_unique<SGD>(std::move(p), SGDOptions(lr).momentum(0.9)); },
       style(Marker::square)},
      {"Nesterov", "lr 0.1, momentum 0.9, nesterov", "v ← μ·v + g;   θ ← θ − lr·(g + μ·v)",
       [&](std::vector<Var> p) {
         return std::make_unique<SGD>(std::move(p), SGDOptions(lr).momentum(0.9).nesterov(true));
       },
       style(Marker::plus, Dash::dashed)},
      {"RMSprop", "lr 0.01, alpha 0.99", "s ← α·s + (1−α)·g²;   θ ← θ − lr·g / (√s + ε)",
       [](std::vector<Var> p) { return std::make_unique<RMSprop>(std::move(p)); }, style(Marker::triangle)},
      {"Adam", "lr 0.001, betas 0.9, 0.999",
       "m ← β₁·m + (1−β₁)·g;   v ← β₂·v + (1−β₂)·g²\nθ ← θ − lr·m̂ / (√v̂ + ε),   m̂ = m / (1−β₁ᵗ),   v̂ = v / "
       "(1−β₂ᵗ)",
       [](std::vector<Var> p) { return std::make_unique<Adam>(std::move(p)); }, style(Marker::diamond)},
      {"AdamW", "lr 0.001, weight decay 0.01", "θ ← θ − lr·λ·θ,   then Adam's step",
       [](std::vector<Var> p) { return std::make_unique<AdamW>(std::move(p)); },
       style(Marker::circle, Dash::dashed)},
      {"Adagrad", "lr 0.01", "s ← s + g²;   θ ← θ − lr·g / (√s + ε)",
       [](std::vector<Var> p) { return std::make_unique<Adagrad>(std::move(p)); }, style(Marker::square)},
      {"Adadelta", "lr 1, rho 0.9",
       "s ← ρ·s + (1−ρ)·g²;   Δ ← √(u + ε) / √(s + ε) · g\nu ← ρ·u + (1−ρ)·Δ²;   θ ← θ − lr·Δ",
       [](std::vector<Var> p) { return std::make_unique<Adadelta>(std::move(p)); }, style(Marker::triangle)},
      {"NAdam", "lr 0.002, momentum decay 0.004",
       "m, v as Adam;   μₜ = β₁·(1 − ½·0.96^(0.004·t))\nθ ← θ − lr·(μₜ₊₁·m / (1 − μ₁⋯μₜ₊₁) + (1 − μₜ)·g / (1 "
       "− μ₁⋯μₜ)) / (√v̂ + ε)",
       [](std::vector<Var> p) { return std::make_unique<NAdam>(std::move(p)); }, style(Marker::diamond)},
  };

  const std::vector<int> checkpoints{0, 10, 100, steps / 2, steps};
  std::string header = fmt::format("{:<9} {:<31}", "optimizer", "settings");
  for (int k : checkpoints) header += fmt::format(" {:>9}", fmt::format("loss@{}", k));
  std::cout << header << fmt::format(" {:>9} {:>7}\n", "accuracy", "time");

  gg::plot::LineChart chart(fmt::format("The optimizers on the {} from the same initial weights", problem),
                            "update step", "training loss, cross-entropy");
  chart.log_y().size(1000, 560);
  bool all_learned = true;
  std::vector<std::vector<double>> curves;
  const auto start_all = std::chrono::steady_clock::now();
  for (const Contestant& c : contestants) {
    auto model = make_model(hidden, train.num_classes);
    model->load_state_dict(initial);
    auto opt = c.make(model->parameters());
    const bool full_batch = c.batch_size == 0;
    gg::data::DataLoader loader(
        train.x, train.y, {.batch_size = full_batch ? n : c.batch_size, .shuffle = !full_batch, .seed = 1});
    // losses[k]: the whole set's loss after k updates. A full-batch step computes it anyway (before
    // its update); a mini-batch run evaluates it separately.
    std::vector<double> losses;
    if (!full_batch) losses.push_back(full_loss(*model, train.x, train.y));
    const auto start = std::chrono::steady_clock::now();
    // The library's loop for as many epochs as `steps` updates need, stopped after the last one.
    gg::train::Trainer trainer(
        *model, *opt, [](const Var& out, const Tensor& y) { return nn::cross_entropy(out, y); },
        {.epochs = (steps + loader.size() - 1) / loader.size(), .evaluate_train = false});
    gg::train::LambdaCallback record({.batch_end = [&](gg::train::Trainer& t, const gg::train::StepInfo& s) {
      losses.push_back(full_batch ? s.loss : full_loss(*model, train.x, train.y));
      if (s.step == steps) t.stop();
    }});
    trainer.add_callback(record);
    trainer.fit(loader);
    if (full_batch) losses.push_back(full_loss(*model, train.x, train.y));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    Tensor scores;
    {
      gg::NoGrad no_grad;
      scores = (*model)(Var::constant(train.x)).value();
    }
    std::string row = fmt::format("{:<9} {:<31}", c.name, c.settings);
    for (int k : checkpoints) row += fmt::format(" {:>9.4f}", losses[static_cast<std::size_t>(k)]);
    std::cout << row << fmt::format(" {:>9.3f} {:>6.2f}s\n", gg::metrics::accuracy(scores, train.y), seconds);
    all_learned = all_learned && losses.back() < losses.front();
    chart.add(fmt::format("{}: {}", c.name, c.settings), losses_x(losses.size()), losses, c.style);
    curves.push_back(std::move(losses));
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_all).count();
  chart.save(dir + "/optimizers_loss.svg");

  // Small multiples: one panel per optimizer on the same axes, its curve in colour over the others
  // in grey, its update rule under its name.
  double lowest = curves.front().front(), highest = lowest;
  for (const auto& curve : curves)
    for (const double v : curve) lowest = std::min(lowest, v), highest = std::max(highest, v);
  std::vector<gg::plot::LineChart> panels;
  for (std::size_t i = 0; i < contestants.size(); ++i) {
    gg::plot::LineChart panel(fmt::format("{} ({})", contestants[i].name, contestants[i].settings),
                              "update step", "training loss");
    // Every panel keeps two lines for its rule, so that the panels of a row line up.
    const std::string& rule = contestants[i].rule;
    panel.subtitle(rule.find('\n') == std::string::npos ? rule + "\n" : rule)
        .log_y()
        .x_range(0, steps)
        .y_range(lowest, highest)
        .size(560, 300);
    for (std::size_t j = 0; j < curves.size(); ++j)
      if (j != i)
        panel.add(contestants[j].name, losses_x(curves[j].size()), curves[j],
                  {.color = "#d4d4d4", .dash = gg::plot::Dash::solid, .width = 1, .in_legend = false});
    gg::plot::SeriesStyle own = contestants[i].style;
    own.color = gg::plot::color(i);
    own.in_legend = false;
    panel.add(contestants[i].name, losses_x(curves[i].size()), curves[i], own);
    panels.push_back(std::move(panel));
  }
  gg::plot::small_multiples(dir + "/optimizers_panels.svg", panels, 2,
                            fmt::format("Each optimizer's loss on the {} (grey: the others)", problem));
  std::cout << fmt::format(
      "\n{} optimizers in {:.2f} s; wrote {}/optimizers_loss.svg and {}/optimizers_panels.svg\n",
      contestants.size(), total, dir, dir);
  if (!all_learned) std::cerr << "optimizers: some optimizer did not lower the loss\n";
  return all_learned ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  const std::string problem = argc > 2 ? argv[2] : "spiral";
  if (argc > 3 || (problem != "spiral" && problem != "moons")) {
    std::cerr << "usage: optimizers [OUTPUT_DIR] [spiral|moons]\n";
    return 2;
  }
  try {
    return run(argc > 1 ? argv[1] : "out", problem);
  } catch (const std::exception& e) { // a folder that cannot be made or written
    std::cerr << "optimizers: " << e.what() << "\n";
    return 2;
  }
}
