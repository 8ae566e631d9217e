// Module's bookkeeping (parameters, buffers, children, state dicts, modes), Sequential, and the
// model summary.
#include <nn/module.hpp>

#include <map>
#include <set>

#include <fmt/format.h>

namespace gg::nn {

Var Module::forward(const Var&) {
  throw UsageError(
      fmt::format("{}: this module does not take a single input (it defines its own call)", describe()));
}

std::string Module::describe() const {
  return "Module";
}

Var Module::operator()(const Var& x) {
  if (scope_name_.empty()) return forward(x);
  Scope scope(scope_name_, describe());
  return forward(x);
}

Var Module::register_parameter(std::string name, const Tensor& value) {
  Var p(value, true);
  p.name(name);
  params_.emplace_back(std::move(name), p);
  return p;
}

Tensor Module::register_buffer(std::string name, const Tensor& value) {
  buffers_.emplace_back(std::move(name), value);
  return value;
}

void Module::add_child(std::string name, std::shared_ptr<Module> module) {
  if (!module) throw UsageError(fmt::format("{}: child module '{}' is null", describe(), name));
  module->scope_name_ = name;
  children_.emplace_back(std::move(name), std::move(module));
}

void Module::collect_parameters(const std::string& prefix,
                                std::vector<std::pair<std::string, Var>>& out) const {
  for (const auto& [name, p] : params_) out.emplace_back(prefix + name, p);
  for (const auto& [name, child] : children_) child->collect_parameters(prefix + name + ".", out);
}

void Module::collect_buffers(const std::string& prefix,
                             std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, b] : buffers_) out.emplace_back(prefix + name, b);
  for (const auto& [name, child] : children_) child->collect_buffers(prefix + name + ".", out);
}

// PyTorch's state_dict order: a module's own parameters, then its buffers, then each child's.
void Module::collect_state(const std::string& prefix,
                           std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, p] : params_) out.emplace_back(prefix + name, p.value());
  for (const auto& [name, b] : buffers_) out.emplace_back(prefix + name, b);
  for (const auto& [name, child] : children_) child->collect_state(prefix + name + ".", out);
}

std::vector<std::pair<std::string, Var>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Var>> all, out;
  collect_parameters("", all);
  // A module used twice (Sequential{l, tanh, l}) shares its parameters: list each once, under the
  // first name, as PyTorch does.
  std::set<const void*> seen;
  for (auto& [name, p] : all)
    if (seen.insert(p.node()).second) out.emplace_back(std::move(name), std::move(p));
  return out;
}

std::vector<Var> Module::parameters() const {
  std::vector<Var> out;
  for (auto& [name, p] : named_parameters()) out.push_back(p);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_buffers("", out);
  return out;
}

std::vector<std::pair<std::string, Tensor>> Module::state_dict() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_state("", out);
  return out;
}

void Module::load_state_dict(const std::vector<std::pair<std::string, Tensor>>& state) {
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : state)
    if (!given.emplace(name, &t).second)
      throw ValueError(fmt::format("load_state_dict: '{}' appears twice", name));
  auto mine = state_dict(); // values share storage with the parameters and buffers
  std::map<std::string, Tensor*> targets;
  for (auto& [name, dst] : mine) targets.emplace(name, &dst);
  for (const auto& [name, t] : given)
    if (!targets.count(name))
      throw ValueError(fmt::format("load_state_dict: unexpected '{}' (not in the model)", name));
  for (const auto& [name, dst] : mine) { // check everything, in the model's order, before changing anything
    auto it = given.find(name);
    if (it == given.end()) throw ValueError(fmt::format("load_state_dict: missing '{}'", name));
    if (!(it->second->shape() == dst.shape()))
      throw ShapeError(fmt::format("load_state_dict: '{}' has shape {} in the file but {} in the model", name,
                                   it->second->shape().str(), dst.shape().str()));
  }
  for (auto& [name, dst] : targets) dst->assign(*given.at(name));
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (Var& p : parameters()) p.zero_grad();
}

Sequential::Sequential(std::initializer_list<std::shared_ptr<Module>> modules) {
  for (const auto& m : modules) push_back(m);
}

void Sequential::push_back(std::shared_ptr<Module> module) {
  add_child(std::to_string(children().size()), std::move(module));
}

Var Sequential::forward(const Var& x) {
  Var h = x;
  for (const auto& [name, child] : children()) h = (*child)(h);
  return h;
}

std::int64_t parameter_count(const Module& model) {
  std::int64_t n = 0;
  for (const Var& p : model.parameters()) n += p.numel();
  return n;
}

std::string summary(Module& model, const Shape& input_shape, DType dtype) {
  std::string out = fmt::format("{:<8} {:<34} {:<16} {:>10}\n", "layer", "module", "output shape", "params");
  const bool sequential = dynamic_cast<Sequential*>(&model) != nullptr;
  NoGrad no_grad;
  // Every module's own mode comes back afterwards (a frozen BatchNorm stays in eval), even on error.
  std::vector<std::pair<Module*, bool>> modes;
  auto remember = [&](auto&& self, Module& m) -> void {
    modes.emplace_back(&m, m.is_training());
    for (const auto& [name, child] : m.children()) self(self, *child);
  };
  remember(remember, model);
  struct Restore {
    std::vector<std::pair<Module*, bool>>& modes;
    ~Restore() {
      for (auto& [m, on] : modes) m->training_ = on;
    }
  } restore{modes};
  model.eval();
  Var h = Var::constant(Tensor::zeros(input_shape, dtype));
  if (sequential) out += fmt::format("{:<8} {:<34} {:<16} {:>10}\n", "", "input", input_shape.str(), "");
  for (const auto& [name, child] : model.children()) {
    std::string shape = "";
    if (sequential) {
      h = (*child)(h);
      shape = h.shape().str();
    }
    out +=
        fmt::format("{:<8} {:<34} {:<16} {:>10}\n", name, child->describe(), shape, parameter_count(*child));
  }
  out += fmt::format("total parameters: {}\n", parameter_count(model));
  return out;
}

} // namespace gg::nn
