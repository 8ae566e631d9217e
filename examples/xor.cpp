// XOR as Rumelhart, Hinton & Williams (1986) trained it: a 2-2-1 network of logistic units, error
// E = ½Σ(y − d)² over the four cases, weights changed after each sweep with momentum. Reports the
// sweeps to a solution over many seeds, then prints one network's weights and what its hidden units mean.
#include <nn/nn.hpp>
#include <nn/plot/plot.hpp>

#include "rhw1986.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;

namespace {

constexpr double lr = 0.5, momentum = 0.9, init_range = 0.3;

/// The logical function of two inputs whose truth table is `table`: bits 3, 2, 1, 0 are its values at
/// 00, 01, 10, 11 (so 0b0001 is AND, 0b0111 is OR).
std::string boolean_name(unsigned table, const std::string& a, const std::string& b) {
  const std::array<std::string, 16> names{"FALSE",
                                          a + " AND " + b,
                                          a + " AND NOT " + b,
                                          a,
                                          "NOT " + a + " AND " + b,
                                          b,
                                          a + " XOR " + b,
                                          a + " OR " + b,
                                          a + " NOR " + b,
                                          a + " XNOR " + b,
                                          "NOT " + b,
                                          a + " OR NOT " + b,
                                          "NOT " + a,
                                          "NOT " + a + " OR " + b,
                                          a + " NAND " + b,
                                          "TRUE"};
  return names[table & 15u];
}

/// Bits of a truth table from four values in the order 00, 01, 10, 11, each "on" when > 0.5.
unsigned truth_table(const std::vector<double>& v) {
  unsigned t = 0;
  for (std::size_t i = 0; i < 4; ++i) t |= (v[i] > 0.5 ? 1u : 0u) << (3 - i);
  return t;
}

/// Prints the network's weights and the logical function each unit computes.
void explain(nn::Sequential& model, const Tensor& x) {
  auto& hidden = dynamic_cast<nn::Linear&>(model[0]);
  auto& out = dynamic_cast<nn::Linear&>(model[2]);
  const Tensor w = hidden.weight.value(), b = hidden.bias.value(), v = out.weight.value(),
               c = out.bias.value();
  std::cout << "learned weights:\n";
  for (int j = 0; j < 2; ++j)
    std::cout << fmt::format("  h{} = sigmoid({:7.3f}*x1 {:+8.3f}*x2 {:+8.3f})\n", j + 1, w.flat(2 * j),
                             w.flat(2 * j + 1), b.flat(j));
  std::cout << fmt::format("  y  = sigmoid({:7.3f}*h1 {:+8.3f}*h2 {:+8.3f})\n\n", v.flat(0), v.flat(1),
                           c.flat(0));

  Tensor h, y;
  {
    gg::NoGrad no_grad;
    const Var hv = model[1](model[0](Var::constant(x)));
    h = hv.value();
    y = model[3](model[2](hv)).value();
  }
  std::cout << "  x1 x2 |   h1     h2   |   y\n";
  for (int i = 0; i < 4; ++i)
    std::cout << fmt::format("   {}  {} | {:.3f}  {:.3f} | {:.3f}\n", x.flat(2 * i), x.flat(2 * i + 1),
                             h.flat(2 * i), h.flat(2 * i + 1), y.flat(i));
  // What each unit means: threshold it at 0.5 and name the truth table. The output unit is read as
  // a function of h1, h2 by feeding it the four binary hidden patterns.
  std::vector<double> h1, h2, yb;
  for (int i = 0; i < 4; ++i) {
    h1.push_back(h.flat(2 * i));
    h2.push_back(h.flat(2 * i + 1));
    const double a = i / 2, bb = i % 2;
    yb.push_back(1 / (1 + std::exp(-(v.flat(0) * a + v.flat(1) * bb + c.flat(0)))));
  }
  std::cout << fmt::format(
      "\nwhat the units mean (each thresholded at 0.5):\n  h1 = {}\n  h2 = {}\n  y  = {},  "
      "which is {}\n",
      boolean_name(truth_table(h1), "x1", "x2"), boolean_name(truth_table(h2), "x1", "x2"),
      boolean_name(truth_table(yb), "h1", "h2"), boolean_name(truth_table(y.to_vector()), "x1", "x2"));
}

/// Trains 2-2-1 and 2-3-1 networks from `seeds` seeds each, reports the sweeps, explains the first
/// 2-2-1 network that learned XOR and writes its pictures.
int run(const std::string& dir, int seeds, int max_sweeps) {
  std::filesystem::create_directories(dir);
  const gg::data::Dataset xor4 = gg::data::xor_dataset(4, 0.0); // the truth table: 00, 01, 10, 11
  const Tensor targets = xor4.y.reshape({4, 1});
  const rhw1986::Settings settings{
      .lr = lr, .momentum = momentum, .max_sweeps = max_sweeps, .tolerance = 0.1};
  std::cout << fmt::format(
      "XOR with logistic units: E = 1/2 sum (y - d)^2 over the 4 cases, one update per sweep,\n"
      "  dw(t) = -{} dE/dw + {} dw(t-1), initial weights uniform in [-{}, {}]; {} seeds, at most {} sweeps.\n"
      "  correct: every output within 0.5 of its target; learned: every output within {}.\n",
      lr, momentum, init_range, init_range, seeds, max_sweeps, settings.tolerance);

  std::vector<rhw1986::Trial> two, three;
  for (std::int64_t hidden : {2, 3}) {
    auto trials = rhw1986::train_seeds({2, hidden, 1}, init_range, xor4.x, targets, settings, seeds);
    std::cout << fmt::format("\n2-{}-1 network:\n", hidden) << rhw1986::sweeps_report(trials);
    (hidden == 2 ? two : three) = std::move(trials);
  }
  const auto learned = [](const rhw1986::Trial& t) { return t.run.learned.has_value(); };
  const auto first = std::find_if(two.begin(), two.end(), learned);
  if (first == two.end()) {
    std::cerr << "xor: no 2-2-1 network learned XOR\n";
    return 1;
  }
  std::cout << fmt::format("\nthe first 2-2-1 network that learned it (seed {}):\n", first->seed);
  nn::Sequential& model = *first->model;
  explain(model, xor4.x);

  // Pictures: that network's regions with its hidden units' lines, and its error per sweep.
  auto& hidden = dynamic_cast<nn::Linear&>(model[0]);
  const Tensor w = hidden.weight.value(), b = hidden.bias.value();
  gg::plot::RegionOptions regions;
  regions.title = "XOR: 2-2-1 logistic network";
  regions.class_names = {"0", "1"};
  regions.bounds = std::array<double, 4>{-0.5, 1.5, -0.5, 1.5};
  for (int j = 0; j < 2; ++j)
    regions.lines.push_back({w.flat(2 * j), w.flat(2 * j + 1), b.flat(j), fmt::format("h{} = 0.5", j + 1)});
  const auto classify = [&](const Tensor& points) {
    const Tensor y = model(Var::constant(points)).value();
    return gg::kernel::binary_scalar(gg::kernel::Binary::gt, y.reshape({-1}), 0.5);
  };
  gg::plot::decision_regions(dir + "/xor_regions.svg", classify, xor4.x, xor4.y, regions);
  gg::plot::LineChart chart("XOR: error per sweep (full batch, momentum)", "sweep", "E = 1/2 sum (y - d)^2");
  chart.add(fmt::format("2-2-1 logistic, seed {}", first->seed), first->run.errors).log_y();
  chart.save(dir + "/xor_error.svg");
  std::cout << "\nwrote " << dir << "/xor_regions.svg and " << dir << "/xor_error.svg\n";

  // The result: most seeds learn XOR; a few 2-2-1 networks end in a local minimum.
  const auto share = [&](const std::vector<rhw1986::Trial>& ts) {
    return static_cast<double>(std::count_if(ts.begin(), ts.end(), learned)) / static_cast<double>(ts.size());
  };
  return share(two) >= 0.75 && share(three) >= 0.75 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  return rhw1986::main_with(argc, argv, "xor", 50, 10000, run);
}
