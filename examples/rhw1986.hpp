// What the xor, symmetry and family_trees examples share: the training procedure of Rumelhart, Hinton
// & Williams (1986) — logistic units, weights uniform in [-r, r], error E = ½Σ(y − d)² over all cases,
// one update per sweep Δw(t) = −ε ∂E/∂w + α Δw(t−1) — and the sweeps-to-solve statistics.
#pragma once

#include <nn/nn.hpp>

#include <algorithm>
#include <cstdint>
#include <iostream>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

namespace rhw1986 {

/// Every parameter of the model (weights and biases: a bias is the weight from an always-on unit)
/// drawn uniform in [-range, range].
inline void init_uniform(gg::nn::Module& model, double range, gg::Rng& rng) {
  for (gg::Var& p : model.parameters()) {
    gg::Tensor t = p.value(); // shares the parameter's storage
    gg::nn::init::uniform(t, -range, range, rng);
  }
}

/// A network of logistic units with the given layer sizes, e.g. {6, 2, 1}.
inline std::shared_ptr<gg::nn::Sequential> logistic_network(const std::vector<std::int64_t>& sizes) {
  auto model = std::make_shared<gg::nn::Sequential>();
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    model->push_back(std::make_shared<gg::nn::Linear>(sizes[i], sizes[i + 1]));
    model->push_back(std::make_shared<gg::nn::Sigmoid>());
  }
  return model;
}

/// E = ½Σ(y − d)²: summed over cases and outputs, not averaged.
inline gg::Var paper_error(const gg::Var& y, const gg::Var& d) {
  return 0.5 * gg::nn::mse_loss(y, d, gg::nn::Reduction::sum);
}

/// The largest |y − d| over all cases and outputs.
inline double worst_miss(const gg::Var& y, const gg::Var& d) {
  using namespace gg::kernel;
  return max(unary(Unary::abs, binary(Binary::sub, y.value(), d.value()))).item();
}

/// Learning rate ε, momentum α, and when to stop.
struct Settings {
  double lr = 0.1, momentum = 0.9;
  int max_sweeps = 10000;
  /// "Learned" when every output is within this of its target; training stops there.
  double tolerance = 0.1;
};

/// One training run: the sweeps (weight updates) after which every output was first on the right
/// side of 0.5 (within 0.5 of its target) and first within the tolerance; E after each sweep.
struct Run {
  std::optional<int> correct, learned;
  std::vector<double> errors;
};

/// Full-batch training of model on inputs x and targets d with the paper's rule, which is
/// torch.optim.SGD with lr ε, momentum α and dampening 0: its buffer b starts as the first gradient
/// and b ← αb + g, so Δw = −εb satisfies Δw(t) = −ε g + α Δw(t−1) with Δw(0) = 0.
inline Run train(gg::nn::Module& model, const gg::Tensor& x, const gg::Tensor& d, const Settings& s) {
  Run run;
  gg::optim::SGD opt(model.parameters(), gg::optim::SGDOptions(s.lr).momentum(s.momentum));
  const gg::Var xv = gg::Var::constant(x), dv = gg::Var::constant(d);
  for (int sweep = 0;; ++sweep) {
    opt.zero_grad();
    const gg::Var y = model(xv);
    const gg::Var error = paper_error(y, dv);
    run.errors.push_back(error.item());
    const double miss = worst_miss(y, dv);
    if (miss < 0.5 && !run.correct) run.correct = sweep;
    if (miss < s.tolerance) run.learned = sweep;
    if (run.learned || sweep == s.max_sweeps) return run;
    error.backward();
    opt.step();
  }
}

/// The median of values (the mean of the two middle ones for an even count); NaN for none.
inline double median(std::vector<int> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/// "n of m runs; sweeps min a, median b, max c" for the runs that got there.
inline std::string sweeps_summary(const std::vector<int>& sweeps, std::size_t runs) {
  std::string s = fmt::format("{:2d} of {} runs", sweeps.size(), runs);
  if (!sweeps.empty())
    s += fmt::format("; sweeps min {}, median {}, max {}", *std::min_element(sweeps.begin(), sweeps.end()),
                     median(sweeps), *std::max_element(sweeps.begin(), sweeps.end()));
  return s;
}

/// One network trained from one seed.
struct Trial {
  std::uint64_t seed = 0;
  std::shared_ptr<gg::nn::Sequential> model;
  Run run;
};

/// Trains a logistic network of the given sizes from each seed 1..seeds (the seed draws its initial
/// weights, uniform in [-init_range, init_range]).
inline std::vector<Trial> train_seeds(const std::vector<std::int64_t>& sizes, double init_range,
                                      const gg::Tensor& x, const gg::Tensor& d, const Settings& s,
                                      int seeds) {
  std::vector<Trial> trials;
  for (int seed = 1; seed <= seeds; ++seed) {
    Trial t{static_cast<std::uint64_t>(seed), logistic_network(sizes), {}};
    gg::Rng rng(t.seed);
    init_uniform(*t.model, init_range, rng);
    t.run = train(*t.model, x, d, s);
    trials.push_back(std::move(t));
  }
  return trials;
}

/// The sweeps each seed needed to learn (ten a row, "-" for a run that did not get there), then the
/// statistics of "correct" and "learned".
inline std::string sweeps_report(const std::vector<Trial>& trials) {
  std::string s = "  sweeps to learn, seed 1 onwards:";
  std::vector<int> correct, learned;
  for (std::size_t i = 0; i < trials.size(); ++i) {
    const Run& r = trials[i].run;
    if (i % 10 == 0) s += "\n   ";
    s += r.learned ? fmt::format(" {:5d}", *r.learned) : fmt::format(" {:>5}", "-");
    if (r.correct) correct.push_back(*r.correct);
    if (r.learned) learned.push_back(*r.learned);
  }
  return s + "\n  correct: " + sweeps_summary(correct, trials.size()) +
         "\n  learned: " + sweeps_summary(learned, trials.size()) + "\n";
}

/// The main() of these examples: `name [OUTPUT_DIR] [SEEDS] [MAX_SWEEPS]` calls run(dir, seeds,
/// max_sweeps) and returns its status; bad arguments or a folder that cannot be written give 2.
inline int main_with(int argc, char** argv, const char* name, int seeds, int max_sweeps,
                     int (*run)(const std::string& dir, int seeds, int max_sweeps)) {
  try {
    if (argc > 4) throw gg::UsageError(fmt::format("usage: {} [OUTPUT_DIR] [SEEDS] [MAX_SWEEPS]", name));
    const std::string dir = argc > 1 ? argv[1] : "out";
    if (argc > 2) seeds = std::stoi(argv[2]);
    if (argc > 3) max_sweeps = std::stoi(argv[3]);
    if (seeds < 1 || max_sweeps < 1) throw gg::UsageError("SEEDS and MAX_SWEEPS must be at least 1");
    return run(dir, seeds, max_sweeps);
  } catch (const std::exception& e) {
    std::cerr << name << ": " << e.what() << "\n";
    return 2;
  }
}

} // namespace rhw1986
