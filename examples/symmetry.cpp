// The symmetry detector of Rumelhart, Hinton & Williams (1986), as in the paper: a 6-2-1 network of
// logistic units learns whether a 6-bit input is a palindrome, from all 64 inputs. The paper solved it
// after 1,425 sweeps with two hidden units whose weights mirror each other with opposite signs, in
// magnitudes 1:2:4 across the mirrored pairs. Reports the sweeps over many seeds and the weights.
#include <nn/nn.hpp>
#include <nn/plot/plot.hpp>

#include "rhw1986.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <fmt/format.h>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;

namespace {

constexpr double paper_sweeps = 1425;

/// All 64 inputs (bit k of i is input k + 1) and their targets: 1 when x1..x6 reads the same backwards.
std::pair<Tensor, Tensor> palindromes() {
  Tensor x = Tensor::zeros({64, 6}), d = Tensor::zeros({64, 1});
  for (int i = 0; i < 64; ++i) {
    for (int k = 0; k < 6; ++k) x.set_flat(6 * i + k, (i >> k) & 1);
    bool symmetric = true;
    for (int k = 0; k < 3; ++k) symmetric = symmetric && ((i >> k) & 1) == ((i >> (5 - k)) & 1);
    d.set_flat(i, symmetric);
  }
  return {x, d};
}

/// How a hidden unit's weights fit the paper's description: w_{7-i} = -w_i for each mirrored pair, and
/// the pairs' magnitudes (inner x3/x4, middle x2/x5, outer x1/x6) relative to the smallest pair.
struct Mirror {
  double antisymmetry = 0;        ///< max |w_i + w_{7-i}| / max |w|: 0 for exact opposite signs
  std::array<double, 3> ratios{}; ///< inner, middle, outer pair's mean |w|, divided by the smallest
};

Mirror mirror(const Tensor& weight, int unit) {
  Mirror m;
  std::array<double, 3> size{};
  double largest = 0;
  for (int k = 0; k < 6; ++k) largest = std::max(largest, std::abs(weight.flat(6 * unit + k)));
  for (int p = 0; p < 3; ++p) { // p = 0: x3/x4 (inner), 1: x2/x5, 2: x1/x6 (outer)
    const double a = weight.flat(6 * unit + 2 - p), b = weight.flat(6 * unit + 3 + p);
    m.antisymmetry = std::max(m.antisymmetry, std::abs(a + b) / largest);
    size[p] = 0.5 * (std::abs(a) + std::abs(b));
  }
  const double smallest = *std::min_element(size.begin(), size.end());
  for (int p = 0; p < 3; ++p) m.ratios[p] = size[p] / smallest;
  return m;
}

/// Prints the weights of a network that learned the task and how they mirror.
void explain(nn::Sequential& model) {
  auto& hidden = dynamic_cast<nn::Linear&>(model[0]);
  auto& out = dynamic_cast<nn::Linear&>(model[2]);
  const Tensor w = hidden.weight.value(), b = hidden.bias.value(), v = out.weight.value();
  std::cout << "               x1      x2      x3      x4      x5      x6     bias   to output\n";
  for (int j = 0; j < 2; ++j) {
    std::cout << fmt::format("  hidden {}:", j + 1);
    for (int k = 0; k < 6; ++k) std::cout << fmt::format(" {:7.2f}", w.flat(6 * j + k));
    std::cout << fmt::format("  {:7.2f}   {:7.2f}\n", b.flat(j), v.flat(j));
  }
  std::cout << fmt::format("  output bias {:.2f}\n", out.bias.value().flat(0));
  std::cout
      << "With w(7-i) = -w(i), a hidden unit's net input is its bias plus a weighted sum of the pair\n"
         "differences x(i) - x(7-i), each -1, 0 or 1. A symmetric input makes them all 0: both hidden units\n"
         "stay off and the output is on. With weights 1:2:4 the differences cannot cancel (like binary\n"
         "digits), so any asymmetry makes the sum nonzero: one of the two units (opposite signs) turns on,\n"
         "and that turns the output off.\n";
}

/// Trains from `seeds` seeds, compares the sweeps with the paper's and explains the first solution.
int run(const std::string& dir, int seeds, int max_sweeps) {
  std::filesystem::create_directories(dir);
  const auto [x, d] = palindromes();
  const rhw1986::Settings settings{.lr = 0.1, .momentum = 0.9, .max_sweeps = max_sweeps, .tolerance = 0.1};
  std::cout << fmt::format(
      "symmetry: 6-2-1 logistic network on all 64 inputs (8 symmetric), E = 1/2 sum (y - d)^2 (a sum, not a\n"
      "  mean), one update per sweep dw(t) = -0.1 dE/dw + 0.9 dw(t-1) (gg::optim::SGD, lr 0.1, momentum "
      "0.9),\n"
      "  initial weights uniform in [-0.3, 0.3]; {} seeds, at most {} sweeps.\n"
      "  correct: every output within 0.5 of its target; learned: every output within {}.\n\n",
      seeds, max_sweeps, settings.tolerance);

  const auto trials = rhw1986::train_seeds({6, 2, 1}, 0.3, x, d, settings, seeds);
  std::cout << rhw1986::sweeps_report(trials);
  std::vector<int> correct;
  for (const auto& t : trials)
    if (t.run.correct) correct.push_back(*t.run.correct);
  std::cout << fmt::format(
      "  the paper: solved after {} sweeps; our median sweeps to correct: {:.0f} ({:.2f}x)\n\n", paper_sweeps,
      rhw1986::median(correct), rhw1986::median(correct) / paper_sweeps);

  // Every network that learned: how well its weights fit the paper's picture.
  std::cout
      << "the networks that learned, hidden unit 1's weights: how far from w(7-i) = -w(i), and unit 2's\n"
         "from unit 1's with all signs flipped (as % of the largest weight); the mirrored pairs' magnitudes\n"
         "              w(7-i)=-w(i)  unit2=-unit1   x3/x4 : x2/x5 : x1/x6\n";
  int mirrored = 0, one_two_four = 0, learned = 0;
  const rhw1986::Trial* first = nullptr;
  for (const auto& t : trials) {
    if (!t.run.learned) continue;
    ++learned;
    if (!first) first = &t;
    const Tensor w = dynamic_cast<nn::Linear&>((*t.model)[0]).weight.value();
    const Mirror m = mirror(w, 0);
    double opposite = 0; // max |w2 + w1| / max |w1|: 0 when unit 2 is unit 1 with its signs flipped
    for (int k = 0; k < 6; ++k) opposite = std::max(opposite, std::abs(w.flat(k) + w.flat(6 + k)));
    opposite /= gg::kernel::max(gg::kernel::unary(gg::kernel::Unary::abs, w)).item();
    std::array<double, 3> sorted = m.ratios;
    std::sort(sorted.begin(), sorted.end());
    const bool ratio_124 = std::abs(sorted[1] - 2) < 0.2 && std::abs(sorted[2] - 4) < 0.4;
    mirrored += m.antisymmetry < 0.1 && opposite < 0.1;
    one_two_four += ratio_124;
    std::cout << fmt::format("  seed {:3d}:     {:5.1f}%        {:5.1f}%       {:.2f} : {:.2f} : {:.2f}{}\n",
                             t.seed, 100 * m.antisymmetry, 100 * opposite, m.ratios[0], m.ratios[1],
                             m.ratios[2], ratio_124 ? "   1:2:4" : "");
  }
  std::cout << fmt::format(
      "  {} of {} are mirror-antisymmetric to within 10%; {} of them have pair magnitudes "
      "1:2:4 (in some order)\n\n",
      mirrored, learned, one_two_four);
  if (!first) {
    std::cerr << "symmetry: no seed learned the task\n";
    return 1;
  }
  std::cout << fmt::format("the first network that learned it (seed {}):\n", first->seed);
  explain(*first->model);

  gg::plot::LineChart chart("Symmetry: error per sweep, 6-2-1 logistic network", "sweep",
                            "E = 1/2 sum (y - d)^2");
  for (const auto& t : trials)
    if (t.seed <= 5) chart.add(fmt::format("seed {}", t.seed), t.run.errors);
  chart.log_y().save(dir + "/symmetry_error.svg");
  std::cout << "\nwrote " << dir << "/symmetry_error.svg\n";
  return 2 * learned >= seeds && mirrored == learned && 2 * one_two_four >= learned ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  return rhw1986::main_with(argc, argv, "symmetry", 20, 20000, run);
}
