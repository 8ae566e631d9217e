// A model beyond an MLP: a residual network, written as Module classes, whose blocks compute
// y = x + f(x). Trained on the spiral next to the same network without the "+ x": with 10 blocks
// (22 linear layers) the plain one does not learn — its gradient fades on the way down — while the
// skip connections carry it through. Prints both losses and draws the residual network's graph.
#include <nn/nn.hpp>
#include <nn/plot/plot.hpp>

#include <cmath>
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

/// One block: f(x) = fc2(relu(fc1(x))), and y = x + f(x) with the skip connection, y = f(x) without.
class Block : public nn::Module {
public:
  Block(std::int64_t width, bool skip)
      : fc1(register_module("fc1", std::make_shared<nn::Linear>(width, width))),
        fc2(register_module("fc2", std::make_shared<nn::Linear>(width, width))), skip_(skip) {}
  Var forward(const Var& x) override {
    const Var f = (*fc2)(gg::relu((*fc1)(x)));
    return skip_ ? x + f : f;
  }
  std::string describe() const override { return skip_ ? "Block: x + f(x)" : "Block: f(x)"; }
  std::shared_ptr<nn::Linear> fc1, fc2;

private:
  bool skip_;
};

/// stem (2 -> width), `depth` blocks, then relu and a head (width -> classes): parameter names as a
/// PyTorch model with the same attributes ("stem.weight", "blocks.3.fc1.bias", "head.weight").
class Network : public nn::Module {
public:
  Network(std::int64_t width, int depth, std::int64_t classes, bool skip)
      : stem(register_module("stem", std::make_shared<nn::Linear>(2, width))),
        blocks(register_module("blocks", std::make_shared<nn::Sequential>())),
        head(register_module("head", std::make_shared<nn::Linear>(width, classes))) {
    for (int i = 0; i < depth; ++i) blocks->push_back(std::make_shared<Block>(width, skip));
  }
  Var forward(const Var& x) override { return (*head)(gg::relu((*blocks)((*stem)(x)))); }
  std::string describe() const override { return "Network"; }
  std::shared_ptr<nn::Linear> stem;
  std::shared_ptr<nn::Sequential> blocks;
  std::shared_ptr<nn::Linear> head;
};

/// The gradient's size at the stem's weight: how much of the loss's gradient reaches the bottom.
double stem_gradient_norm(Network& net) {
  const Tensor g = net.stem->weight.grad();
  return std::sqrt(gg::kernel::sum(gg::kernel::unary(gg::kernel::Unary::square, g)).item());
}

/// A run: the loss per step, the gradient at the stem after the first backward, final accuracy.
struct Run {
  std::vector<double> losses;
  double first_stem_gradient = 0, accuracy = 0;
};

Run train(Network& net, const gg::data::Dataset& data, int steps) {
  Run run;
  gg::optim::SGD opt(net.parameters(), gg::optim::SGDOptions(0.01).momentum(0.9));
  // The library's loop with one batch of all points (an epoch is a step); a callback looks at the
  // stem's gradient between the first backward and its update, and keeps every step's loss.
  gg::train::Trainer trainer(net, opt,
                             [](const Var& out, const Tensor& y) { return nn::cross_entropy(out, y); },
                             {.epochs = steps, .evaluate_train = false});
  gg::train::LambdaCallback watch(
      {.after_backward =
           [&](gg::train::Trainer&, const gg::train::Position& p) {
             if (p.step == 0) run.first_stem_gradient = stem_gradient_norm(net);
           },
       .batch_end = [&](gg::train::Trainer&,
                        const gg::train::StepInfo& s) { run.losses.push_back(s.loss); }});
  trainer.add_callback(watch);
  gg::data::DataLoader loader(data.x, data.y, {.batch_size = data.x.shape()[0]});
  trainer.fit(loader);
  run.accuracy = gg::metrics::accuracy(trainer.predict(data.x), data.y);
  return run;
}

int run(const std::string& dir, int steps) {
  std::filesystem::create_directories(dir);
  const gg::data::Dataset data = gg::data::spiral(100, 3, 0.2, 1);
  const std::int64_t width = 16;
  const int depth = 10;
  std::cout << fmt::format(
      "spiral, 3 x 100 points; stem 2->{0}, {1} blocks of two {0}x{0} linear layers, head "
      "{0}->3; full-batch SGD lr 0.01 momentum 0.9, cross-entropy, {2} steps, same initial weights\n\n",
      width, depth, steps);

  nn::manual_seed(1);
  Network residual(width, depth, 3, true);
  Network plain(width, depth, 3, false);
  plain.load_state_dict(residual.state_dict()); // the same weights: only the skips differ
  std::cout << nn::summary(residual, {1, 2}) << "\n";

  const Run r = train(residual, data, steps), p = train(plain, data, steps);
  std::cout << "                          with skips (x + f(x))   without (f(x))\n";
  std::cout << fmt::format("  gradient at the stem, step 1:  {:12.3g}   {:12.3g}\n", r.first_stem_gradient,
                           p.first_stem_gradient);
  for (int k : {1, steps / 10, steps / 4, steps / 2, steps})
    if (k >= 1)
      std::cout << fmt::format("  loss after step {:5d}:        {:12.4f}   {:12.4f}\n", k,
                               r.losses[static_cast<std::size_t>(k - 1)],
                               p.losses[static_cast<std::size_t>(k - 1)]);
  std::cout << fmt::format("  training accuracy:             {:12.3f}   {:12.3f}\n", r.accuracy, p.accuracy);
  std::cout
      << "Without skips, each block multiplies the gradient by its weights on the way down: 22 layers "
         "shrink\n"
         "it to nothing and only the head learns (the loss stays at ln 3 = 1.0986). With them, dy/dx = 1 +\n"
         "df/dx passes the gradient through every block. (Adam, which divides each step by the gradient's\n"
         "own size, trains the plain network too here: the fading is a matter of scale.)\n\n";

  gg::plot::LineChart chart("Spiral, 10 blocks deep: with and without skip connections", "step",
                            "cross-entropy");
  chart.add("residual: x + f(x)", r.losses).add("plain: f(x)", p.losses).log_y();
  chart.save(dir + "/residual_loss.svg");
  gg::plot::RegionOptions regions;
  regions.class_names = {"arm 0", "arm 1", "arm 2"};
  for (auto* net : {&residual, &plain}) {
    const bool skips = net == &residual;
    regions.title = fmt::format("Spiral: {} blocks {}, accuracy {:.2f}", depth,
                                skips ? "with skips" : "without skips", skips ? r.accuracy : p.accuracy);
    gg::plot::decision_regions(
        dir + (skips ? "/residual_regions.svg" : "/plain_regions.svg"),
        [&](const Tensor& points) { return (*net)(Var::constant(points)).value(); }, data.x, data.y, regions);
  }

  // The graph of one point's loss through a two-block residual network: each block is a cluster, and
  // its input's edge into the block's add node is the skip connection.
  Network small(4, 2, 3, true);
  const Var loss = nn::cross_entropy(small(Var::constant(gg::kernel::slice(data.x, 0, 150, 151)).name("x")),
                                     gg::kernel::slice(data.y, 0, 150, 151))
                       .name("loss");
  loss.backward();
  std::ostringstream dot;
  gg::write_dot(dot, loss, {.rankdir = "TB"});
  gg::write_atomically(dir + "/residual_model.dot", dot.str());
  std::cout << "wrote " << dir
            << "/residual_loss.svg, residual_regions.svg, plain_regions.svg and residual_model.dot"
            << " (a 2-block version of the network; draw it: dot -Tsvg " << dir
            << "/residual_model.dot -o model.svg)\n";
  return r.accuracy >= 0.9 && r.losses.back() < 0.5 * p.losses.back() ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  try {
    if (argc > 3) throw gg::UsageError("usage: residual [OUTPUT_DIR] [STEPS]");
    const int steps = argc > 2 ? std::stoi(argv[2]) : 1000;
    if (steps < 10) throw gg::UsageError("STEPS must be at least 10");
    return run(argc > 1 ? argv[1] : "out", steps);
  } catch (const std::exception& e) { // a folder that cannot be made or written, a bad number
    std::cerr << "residual: " << e.what() << "\n";
    return 2;
  }
}
