// The optimizers of `gradgraph train --optimizer` and of the browser page's playground: their names,
// their hyper-parameters with PyTorch's defaults (and the learning rates for the generated datasets),
// and the one factory both build them with, so the page and the command line cannot drift apart.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nn/optim/optimizer.hpp>

namespace gg::cli {

/// One hyper-parameter as its --option names it ("lr", "weight-decay"), with PyTorch's default; a
/// flag (nesterov) is 0 or 1 and is recorded as "false" or "true".
struct HyperParameter {
  const char* name;
  double fallback;
  bool flag = false;
};

/// One choice of --optimizer: the hyper-parameters it reads, in the order the run record lists
/// them, and its defaults for the generated datasets (triangle, xor, moons, circles, spiral).
struct OptimizerKind {
  const char* name;
  std::vector<HyperParameter> parameters;
  /// PyTorch's learning rates are made for large models: with Adam's 0.001 the triangle's 2-3-2
  /// stays at accuracy 0.72 after 1000 steps and 0.89 after 20,000. With these, every generated
  /// dataset with the tutorial's layer sizes reaches accuracy 0.95 or more (adam, the default: 0.977
  /// at worst over seeds 0-2; tests/cli/test_train.cpp) in about a second. sgd and gd take no
  /// adaptive steps, so more epochs (gd: one step an epoch).
  double generated_lr;
  std::int64_t generated_epochs;
};

/// Every choice of --optimizer, in --help's order: gd (full batch), sgd, momentum, nesterov,
/// rmsprop, adam, adamw, adagrad, adadelta, nadam.
const std::vector<OptimizerKind>& optimizer_kinds();

/// The kind named `name`; ValueError "--optimizer 'NAME': use gd, sgd, ... or nadam" otherwise.
const OptimizerKind& optimizer_kind(const std::string& name);

/// Settings as (option, value) pairs in --help's words, e.g. {"momentum", "0.9"}.
using Record = std::vector<std::pair<std::string, std::string>>;

/// An optimizer and the settings it was given (a checkpoint's run record).
struct OptimizerChoice {
  std::unique_ptr<optim::Optimizer> optimizer;
  Record settings;
};

/// The optimizer `name` over params. Each hyper-parameter is given.at(its name) when given, else its
/// default: the kind's generated_lr for the learning rate when `generated_data`, else PyTorch's. The
/// options' constructors check the values (a negative lr, betas outside [0, 1)) with their messages.
OptimizerChoice make_optimizer(const std::string& name, std::vector<Var> params,
                               const std::map<std::string, double>& given, bool generated_data);

} // namespace gg::cli
