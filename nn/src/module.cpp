// Module's bookkeeping (parameters, buffers, children, state dicts, modes), Sequential, and the
// model summary.
#include <nn/module.hpp>

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>

namespace gg::nn {

namespace {

/// What Module::forward throws for a module without a single-input forward: summary() recognises
/// its own model's.
struct NoSingleInput : UsageError {
  NoSingleInput(const Module* m, const std::string& message) : UsageError(message), module(m) {}
  const Module* module;
};

/// While summary() runs a model on this thread: the output shapes of each module's calls, in order.
constinit thread_local std::map<const Module*, std::vector<Shape>>* recorded_shapes = nullptr;

} // namespace

Var Module::forward(const Var&) {
  throw NoSingleInput(
      this,
      fmt::format("{}: this module does not take a single input (it defines its own call)", describe()));
}

std::string Module::describe() const {
  return "Module";
}

Var Module::operator()(const Var& x) {
  Var y = scoped([&] { return forward(x); });
  if (recorded_shapes != nullptr) (*recorded_shapes)[this].push_back(y.shape());
  return y;
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
  gg::zero_grad(parameters());
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

std::string summary(Module& model, const Shape& input_shape, DType dtype, int depth) {
  if (depth < 1) throw ValueError(fmt::format("summary: depth {} must be at least 1", depth));
  NoGrad no_grad;
  // Every module's own mode comes back afterwards (a frozen BatchNorm stays in eval), even on error.
  std::vector<std::pair<Module*, bool>> modes;
  auto remember = [&](auto&& self, Module& m) -> void {
    modes.emplace_back(&m, m.is_training());
    for (const auto& [name, child] : m.children()) self(self, *child);
  };
  remember(remember, model);
  std::map<const Module*, std::vector<Shape>> shapes;
  struct Restore {
    std::vector<std::pair<Module*, bool>>& modes;
    std::map<const Module*, std::vector<Shape>>* previous = recorded_shapes;
    ~Restore() {
      for (auto& [m, on] : modes) m->training_ = on;
      recorded_shapes = previous;
    }
  } restore{modes};
  model.eval();

  // Run the model once, each module's call operator noting its output's shape.
  recorded_shapes = &shapes;
  std::optional<Shape> output;
  try {
    output = model(Var::constant(Tensor::zeros(input_shape, dtype))).shape();
  } catch (const NoSingleInput& e) {
    if (e.module != &model) throw; // a child called wrongly: a real error
  }
  recorded_shapes = restore.previous;

  // The rows: modules depth first, to `depth` levels. A module listed more than once (shared)
  // takes its calls' shapes in turn.
  struct Row {
    std::string name, module, shape, params;
  };
  std::vector<Row> rows{{"", "input", input_shape.str(), ""}};
  std::map<const Module*, int> listed, used;
  auto count = [&](auto&& self, const Module& m, int level) -> void {
    for (const auto& [name, child] : m.children()) {
      ++listed[child.get()];
      if (level < depth) self(self, *child, level + 1);
    }
  };
  count(count, model, 1);
  auto walk = [&](auto&& self, const Module& m, const std::string& prefix, int level) -> void {
    for (const auto& [name, child] : m.children()) {
      const std::vector<Shape>& calls = shapes[child.get()];
      const int turn = used[child.get()]++;
      std::string shape;
      if (listed[child.get()] > 1 && turn < static_cast<int>(calls.size()))
        shape = calls[static_cast<std::size_t>(turn)].str();
      else if (!calls.empty())
        shape = calls.front().str() + (calls.size() > 1 ? fmt::format(" x{}", calls.size()) : "");
      rows.push_back({prefix + name,
                      std::string(2 * static_cast<std::size_t>(level - 1), ' ') + child->describe(), shape,
                      std::to_string(parameter_count(*child))});
      if (level < depth) self(self, *child, prefix + name + ".", level + 1);
    }
  };
  walk(walk, model, "", 1);
  if (output && dynamic_cast<Sequential*>(&model) == nullptr)
    rows.push_back({"", "output", output->str(), ""});

  std::size_t name_w = 8, module_w = 34, shape_w = 16;
  for (const Row& r : rows)
    name_w = std::max(name_w, r.name.size()), module_w = std::max(module_w, r.module.size()),
    shape_w = std::max(shape_w, r.shape.size());
  const auto line = [&](const Row& r) {
    std::string l = fmt::format("{:<{}} {:<{}} {:<{}} {:>10}", r.name, name_w, r.module, module_w, r.shape,
                                shape_w, r.params);
    l.erase(l.find_last_not_of(' ') + 1);
    return l + "\n";
  };
  std::string out = line({"layer", "module", "output shape", "params"});
  for (const Row& r : rows) out += line(r);
  if (!output) out += "(no output shapes: the model's forward takes more than one input)\n";
  out += fmt::format("total parameters: {}\n", parameter_count(model));
  return out;
}

} // namespace gg::nn
