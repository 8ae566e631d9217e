// The table of --optimizer's choices and the factory that builds one from its hyper-parameters
// (shared by `gradgraph train` and the browser page's playground: gg_cli_shared).
#include "optimizers.hpp"

#include <autodiff/error.hpp>
#include <nn/optim/optim.hpp>

#include <algorithm>

#include <fmt/format.h>

namespace gg::cli {

const std::vector<OptimizerKind>& optimizer_kinds() {
  static const std::vector<OptimizerKind> kinds{
      {"gd", {{"lr", 0.01}}, 3, 2000},
      {"sgd", {{"lr", 0.01}, {"momentum", 0}, {"nesterov", 0, true}, {"weight-decay", 0}}, 1, 500},
      {"momentum", {{"lr", 0.01}, {"momentum", 0.9}, {"nesterov", 0, true}, {"weight-decay", 0}}, 0.1, 500},
      {"nesterov", {{"lr", 0.01}, {"momentum", 0.9}, {"nesterov", 1, true}, {"weight-decay", 0}}, 0.1, 500},
      {"rmsprop",
       {{"lr", 1e-2}, {"alpha", 0.99}, {"eps", 1e-8}, {"momentum", 0}, {"weight-decay", 0}},
       0.03,
       200},
      {"adam",
       {{"lr", 1e-3}, {"beta1", 0.9}, {"beta2", 0.999}, {"eps", 1e-8}, {"weight-decay", 0}},
       0.05,
       200},
      {"adamw",
       {{"lr", 1e-3}, {"beta1", 0.9}, {"beta2", 0.999}, {"eps", 1e-8}, {"weight-decay", 1e-2}},
       0.05,
       200},
      {"adagrad", {{"lr", 1e-2}, {"lr-decay", 0}, {"eps", 1e-10}, {"weight-decay", 0}}, 0.3, 200},
      {"adadelta", {{"lr", 1.0}, {"rho", 0.9}, {"eps", 1e-6}, {"weight-decay", 0}}, 10, 200},
      {"nadam",
       {{"lr", 2e-3},
        {"beta1", 0.9},
        {"beta2", 0.999},
        {"eps", 1e-8},
        {"weight-decay", 0},
        {"momentum-decay", 4e-3}},
       0.05,
       200},
  };
  return kinds;
}

const OptimizerKind& optimizer_kind(const std::string& name) {
  const auto& kinds = optimizer_kinds();
  const auto it =
      std::find_if(kinds.begin(), kinds.end(), [&](const OptimizerKind& k) { return k.name == name; });
  if (it != kinds.end()) return *it;
  std::vector<std::string> names;
  for (const OptimizerKind& k : kinds) names.emplace_back(k.name);
  const std::string last = names.back();
  names.pop_back();
  throw ValueError(fmt::format("--optimizer '{}': use {} or {}", name, fmt::join(names, ", "), last));
}

OptimizerChoice make_optimizer(const std::string& name, std::vector<Var> params,
                               const std::map<std::string, double>& given, bool generated_data) {
  const OptimizerKind& kind = optimizer_kind(name);
  Record settings;
  std::map<std::string, double> v;
  for (const HyperParameter& p : kind.parameters) {
    const auto it = given.find(p.name);
    const double fallback =
        std::string_view(p.name) == "lr" && generated_data ? kind.generated_lr : p.fallback;
    const double value = it == given.end() ? fallback : it->second;
    v[p.name] = value;
    settings.emplace_back(p.name, p.flag ? (value != 0 ? "true" : "false") : fmt::format("{}", value));
  }
  const std::string n = name;
  std::unique_ptr<optim::Optimizer> opt;
  const auto betas = [&] { return optim::Betas{v["beta1"], v["beta2"]}; };
  if (n == "gd")
    opt = std::make_unique<optim::GD>(params, optim::GDOptions(v["lr"]));
  else if (n == "sgd" || n == "momentum" || n == "nesterov")
    opt = std::make_unique<optim::SGD>(params, optim::SGDOptions(v["lr"])
                                                   .momentum(v["momentum"])
                                                   .nesterov(v["nesterov"] != 0)
                                                   .weight_decay(v["weight-decay"]));
  else if (n == "rmsprop")
    opt = std::make_unique<optim::RMSprop>(params, optim::RMSpropOptions(v["lr"])
                                                       .alpha(v["alpha"])
                                                       .eps(v["eps"])
                                                       .momentum(v["momentum"])
                                                       .weight_decay(v["weight-decay"]));
  else if (n == "adam")
    opt = std::make_unique<optim::Adam>(
        params, optim::AdamOptions(v["lr"]).betas(betas()).eps(v["eps"]).weight_decay(v["weight-decay"]));
  else if (n == "adamw")
    opt = std::make_unique<optim::AdamW>(
        params, optim::AdamWOptions(v["lr"]).betas(betas()).eps(v["eps"]).weight_decay(v["weight-decay"]));
  else if (n == "adagrad")
    opt = std::make_unique<optim::Adagrad>(
        params,
        optim::AdagradOptions(v["lr"]).lr_decay(v["lr-decay"]).eps(v["eps"]).weight_decay(v["weight-decay"]));
  else if (n == "adadelta")
    opt = std::make_unique<optim::Adadelta>(
        params, optim::AdadeltaOptions(v["lr"]).rho(v["rho"]).eps(v["eps"]).weight_decay(v["weight-decay"]));
  else
    opt = std::make_unique<optim::NAdam>(params, optim::NAdamOptions(v["lr"])
                                                     .betas(betas())
                                                     .eps(v["eps"])
                                                     .weight_decay(v["weight-decay"])
                                                     .momentum_decay(v["momentum-decay"]));
  return {std::move(opt), std::move(settings)};
}

} // namespace gg::cli
