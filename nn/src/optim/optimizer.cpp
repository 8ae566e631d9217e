// Optimizer's bookkeeping: parameter checks, step() over the parameters that have gradients,
// zero_grad(), the learning rate, and saving and restoring the per-parameter state.
#include "fp_mode.hpp"

#include <nn/optim/optimizer.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace gg::optim {

namespace detail {

void check_non_negative(std::string_view opt, std::string_view field, double v) {
  if (!(v >= 0)) throw ValueError(fmt::format("{}: {} must be >= 0, got {}", opt, field, v));
}

void check_unit_open(std::string_view opt, std::string_view field, double v) {
  if (!(v >= 0 && v < 1)) throw ValueError(fmt::format("{}: {} must be in [0, 1), got {}", opt, field, v));
}

void StateFields::operator()(std::string_view key, Tensor& tensor) {
  if (tensor.defined()) fields_.push_back({key, &tensor, nullptr});
}

void StateFields::operator()(std::string_view key, float& count) {
  fields_.push_back({key, nullptr, &count});
}

std::vector<std::string> StateFields::keys() const {
  std::vector<std::string> out;
  for (const Field& f : fields_) out.emplace_back(f.key);
  return out;
}

void StateFields::save(std::size_t i, StateList& out) const {
  for (const Field& f : fields_)
    out.emplace_back(fmt::format("state.{}.{}", i, f.key),
                     f.tensor ? f.tensor->clone() : Tensor::scalar(*f.count, f32));
}

void StateFields::restore(std::size_t i, const std::map<std::string, Tensor, std::less<>>& saved,
                          std::string_view where) {
  for (const Field& f : fields_) {
    const std::string name = fmt::format("state.{}.{}", i, f.key);
    const auto it = saved.find(f.key);
    if (it == saved.end()) throw ValueError(fmt::format("{}: missing entry \"{}\"", where, name));
    const Tensor& t = it->second;
    if (!t.defined()) throw ValueError(fmt::format("{}: entry \"{}\" is an undefined tensor", where, name));
    const Shape& want = f.tensor ? f.tensor->shape() : Shape{};
    if (!(t.shape() == want))
      throw ValueError(fmt::format("{}: entry \"{}\" has shape {} but parameter {} needs {}", where, name,
                                   t.shape().str(), i, want.str()));
    if (f.tensor)
      f.tensor->assign(t); // a copy, converted to the state's dtype: the caller's tensors stay theirs
    else
      *f.count = static_cast<float>(t.item());
  }
}

} // namespace detail

namespace {

/// Splits "state.<i>.<key>" into i and key; false if it is not of that form or key is not one of keys.
bool parse_state_name(std::string_view name, const std::vector<std::string>& keys, std::size_t& i,
                      std::string_view& key) {
  constexpr std::string_view prefix = "state.";
  if (!name.starts_with(prefix)) return false;
  name.remove_prefix(prefix.size());
  const std::size_t dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + dot, i);
  if (ec != std::errc{} || end != name.data() + dot) return false;
  key = name.substr(dot + 1);
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

} // namespace

Optimizer::Optimizer(std::string name, std::vector<Var> params, double lr)
    : name_(std::move(name)), params_(std::move(params)), lr_(lr) {
  if (params_.empty()) throw ValueError(fmt::format("{}: got an empty parameter list", name_));
  std::set<const void*> seen;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const Var& p = params_[i];
    if (!p.defined()) throw ValueError(fmt::format("{}: parameter {} is an undefined Var", name_, i));
    if (!p.is_leaf())
      throw ValueError(fmt::format("{}: parameter {} is computed by an op ({}); only leaves can be optimized",
                                   name_, i, p.op_name()));
    if (!seen.insert(p.node()).second)
      throw ValueError(
          fmt::format("{}: parameter {} appears more than once in the parameter list", name_, i));
  }
  detail::check_non_negative(name_, "lr", lr);
}

void Optimizer::set_lr(double lr) {
  detail::check_non_negative(name_, "lr", lr);
  lr_ = lr;
}

void Optimizer::step() {
  // In place on each leaf's value, under one lock; the leaves are then marked changed (a graph
  // recorded before is stale) with one count of the change clock.
  update_leaves(params_,
                [this](std::size_t i, Tensor& param, const Tensor& grad) { update_param(i, param, grad); });
}

void Optimizer::zero_grad() {
  gg::zero_grad(params_);
}

StateList Optimizer::state() const {
  StateList out;
  out.emplace_back("lr", Tensor::scalar(lr_));
  for (std::size_t i = 0; i < params_.size(); ++i) save_state(i, out);
  return out;
}

void Optimizer::load_state(const StateList& entries) {
  const std::string where = name_ + ".load_state";
  const std::vector<std::string> keys = state_keys();
  const std::string expected =
      fmt::format("expected \"lr\" and \"state.<i>.<key>\" with i < {} and key one of {{{}}}", params_.size(),
                  fmt::join(keys, ", "));
  std::optional<double> lr;
  SavedState saved; // validated completely by restore_state before anything changes
  for (const auto& [name, t] : entries) {
    if (name == "lr") {
      if (t.numel() != 1)
        throw ValueError(
            fmt::format("{}: \"lr\" must have one element, got shape {}", where, t.shape().str()));
      lr = t.item();
      continue;
    }
    std::size_t i = 0;
    std::string_view key;
    if (!parse_state_name(name, keys, i, key) || i >= params_.size())
      throw ValueError(fmt::format("{}: unknown entry \"{}\" ({})", where, name, expected));
    if (!saved[i].emplace(std::string(key), t).second)
      throw ValueError(fmt::format("{}: entry \"{}\" appears twice", where, name));
  }
  if (!lr) throw ValueError(fmt::format("{}: missing entry \"lr\"", where));
  if (!(*lr >= 0)) throw ValueError(fmt::format("{}: \"lr\" must be >= 0, got {}", where, *lr));
  // Parameters without saved state start fresh, as after torch's load_state_dict.
  restore_state(saved, where);
  lr_ = *lr;
}

} // namespace gg::optim
