// The course's triangle problem: the points inside a triangle (class 1) are not linearly separable,
// but three logistic units — one line each — and one logistic unit on top of them separate them. The
// course's 2-3-1 sigmoid MLP (13 parameters) learns exactly that; prints its lines and writes pictures
// to a folder.
#include <nn/nn.hpp>
#include <nn/plot/plot.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include <fmt/format.h>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;

namespace {

/// The sign to print between terms written with their absolute values.
char sign(double v) {
  return v < 0 ? '-' : '+';
}

/// "a*x1 + b*x2 + c = 0" and, when x2 can be solved for, "x2 = m*x1 + q".
std::string line_text(double a, double b, double c) {
  std::string s =
      fmt::format("{:7.3f}*x1 {} {:6.3f}*x2 {} {:6.3f} = 0", a, sign(b), std::abs(b), sign(c), std::abs(c));
  if (std::abs(b) > 1e-12)
    s += fmt::format("   <=>   x2 = {:6.3f}*x1 {} {:.3f}", -a / b, sign(-c / b), std::abs(c / b));
  return s;
}

/// Trains the network, prints what it learned and writes the pictures; returns the exit status.
int run(const std::string& dir, std::uint64_t seed) {
  std::filesystem::create_directories(dir);

  // 300 points uniform in [-1, 1]^2; class 1 inside the triangle (-0.8,-0.6), (0.8,-0.6), (0,0.8).
  const gg::data::Dataset train = gg::data::triangle(300, seed);
  std::int64_t inside = 0;
  for (std::int64_t i = 0; i < train.y.numel(); ++i) inside += train.y.flat(i) == 1;
  std::cout << "triangle: " << train.y.numel() << " points, " << inside << " inside the triangle\n";

  // The course's network: three logistic (sigmoid) units as features, then one logistic unit on top,
  // a(x) = σ(w0 + w1 h1 + w2 h2 + w3 h3). The model gives the top unit's weighted sum (its logit); the
  // loss applies the sigmoid (binary cross-entropy from logits, PyTorch's BCEWithLogitsLoss).
  nn::manual_seed(seed);
  auto hidden = std::make_shared<nn::Linear>(2, 3);
  auto top = std::make_shared<nn::Linear>(3, 1);
  nn::Sequential model{hidden, std::make_shared<nn::Sigmoid>(), top};
  std::cout << nn::summary(model, {1, 2}) << "\n";

  // Full-batch Adam reaches 99-100% in 2000 steps for every seed tried (1..20); plain gradient descent
  // (gd, lr 1) gets to 95% too, after 900 to 2700 steps depending on the seed.
  const int steps = 2000;
  const double lr = 0.05;
  gg::optim::Adam opt(model.parameters(), gg::optim::AdamOptions(lr));
  std::vector<double> losses;
  const auto start = std::chrono::steady_clock::now();
  std::cout << "training: full batch, binary cross-entropy, Adam lr " << lr << ", " << steps << " steps\n";
  // The library's loop with one batch of all points (an epoch is a step); a callback prints every
  // 250th step's loss and accuracy (of the scores the step computed, before its update).
  // The targets 0/1 as [n, 1] numbers, the shape of the output; a point is "inside" where σ > 0.5.
  const auto loss = [](const Var& logit, const Tensor& y) {
    return nn::binary_cross_entropy_with_logits(logit, y.reshape(logit.shape()));
  };
  const auto predicted = [](const Tensor& logit) {
    gg::NoGrad no_grad;
    return gg::metrics::binary_class_ids(gg::sigmoid(Var::constant(logit)).value());
  };
  gg::train::Trainer trainer(model, opt, loss, {.epochs = steps, .evaluate_train = false});
  gg::train::LambdaCallback report({.batch_end = [&](gg::train::Trainer&, const gg::train::StepInfo& s) {
    losses.push_back(s.loss);
    if (s.step == 1 || s.step % 250 == 0)
      std::cout << fmt::format("  step {:5d}  loss {:.4f}  accuracy {:.3f}\n", s.step, s.loss,
                               gg::metrics::accuracy(predicted(s.output.value()), s.data.y));
  }});
  trainer.add_callback(report);
  gg::data::DataLoader loader(train.x, train.y, {.batch_size = train.x.shape()[0]});
  trainer.fit(loader);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const Tensor classes = predicted(trainer.predict(train.x));
  const double accuracy = gg::metrics::accuracy(classes, train.y);
  std::cout << fmt::format("final training accuracy {:.3f} ({} steps in {:.2f} s)\n\n", accuracy, steps,
                           seconds);
  std::cout << gg::metrics::format_confusion_matrix(gg::metrics::confusion_matrix(classes, train.y, 2),
                                                    {"outside", "inside"})
            << "\n";

  // Each hidden unit is a logistic regression sigmoid(w·x + b): its line w·x + b = 0 splits the plane.
  const Tensor w = hidden->weight.value(), b = hidden->bias.value();
  std::cout << "the three hidden units' lines (each is a logistic regression, 0.5 on its line):\n";
  std::vector<gg::plot::RegionLine> lines;
  for (int j = 0; j < 3; ++j) {
    const double a1 = w.flat(2 * j), a2 = w.flat(2 * j + 1), c = b.flat(j);
    std::cout << fmt::format("  h{}: {}\n", j + 1, line_text(a1, a2, c));
    lines.push_back({a1, a2, c, fmt::format("h{} = 0.5", j + 1)});
  }
  std::cout << "the triangle's edges, for comparison:\n"
            << "      bottom: x2 = -0.6,  left: x2 = 1.75*x1 + 0.8,  right: x2 = -1.75*x1 + 0.8\n";
  // The unit on top: σ(v·h + d) > 0.5 exactly where v·h + d > 0.
  const Tensor v = top->weight.value(), d = top->bias.value();
  std::cout << fmt::format(
      "the unit on top: inside when {:.2f}*h1 {} {:.2f}*h2 {} {:.2f}*h3 {} {:.2f} > 0\n\n", v.flat(0),
      sign(v.flat(1)), std::abs(v.flat(1)), sign(v.flat(2)), std::abs(v.flat(2)), sign(d.flat(0)),
      std::abs(d.flat(0)));

  // Pictures: the decision regions with the points and the hidden lines, the loss curve, the graph.
  gg::plot::RegionOptions regions;
  regions.title = fmt::format("Triangle: 2-3-1 sigmoid MLP, training accuracy {:.3f}", accuracy);
  regions.class_names = {"outside (0)", "inside (1)"};
  regions.bounds = std::array<double, 4>{-1.1, 1.1, -1.1, 1.1};
  regions.lines = lines;
  const auto classify = [&](const Tensor& points) { return predicted(model(Var::constant(points)).value()); };
  gg::plot::decision_regions(dir + "/triangle_regions.svg", classify, train.x, train.y, regions);

  gg::plot::LineChart chart("Triangle: training loss (full batch, Adam)", "step", "binary cross-entropy");
  chart.add(fmt::format("Adam lr {}", lr), losses).log_y();
  chart.save(dir + "/triangle_loss.svg");

  // The loss of one input as a graph: the top unit's sigmoid p, then -(y log p + (1 - y) log(1 - p));
  // each layer is a cluster, the gradients from backward on it.
  const Var x0 = Var::constant(gg::kernel::slice(train.x, 0, 0, 1)).name("x");
  const Var p0 = gg::sigmoid(model(x0).name("logit")).name("p");
  const Var loss0 =
      nn::binary_cross_entropy(p0, gg::kernel::slice(train.y, 0, 0, 1).reshape({1, 1})).name("loss");
  model.zero_grad();
  loss0.backward();
  std::ostringstream dot;
  gg::write_dot(dot, loss0);
  gg::write_atomically(dir + "/triangle_model.dot", dot.str());

  std::cout << "wrote " << dir << "/triangle_regions.svg, " << dir << "/triangle_loss.svg, " << dir
            << "/triangle_model.dot (draw it: dot -Tsvg " << dir << "/triangle_model.dot -o model.svg)\n";
  return accuracy >= 0.9 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  try {
    return run(argc > 1 ? argv[1] : "out", argc > 2 ? std::stoull(argv[2]) : 1);
  } catch (const std::exception& e) { // a folder that cannot be made or written, a bad seed
    std::cerr << "triangle: " << e.what() << "\n";
    return 2;
  }
}
