// Optimizer's bookkeeping: parameter checks, step() over the parameters that have gradients,
// zero_grad(), the learning rate, and saving and restoring the per-parameter state.
#include "fp_mode.hpp"

#include <nn/optim/optimizer.hpp>

#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace gg::optim {

namespace detail {

double advance_step(Tensor& step) {
  float& s = step.data<float>()[0];
  s += 1.0f;
  return s;
}

void check_non_negative(std::string_view opt, std::string_view field, double v) {
  if (!(v >= 0)) throw ValueError(fmt::format("{}: {} must be >= 0, got {}", opt, field, v));
}

void check_unit_open(std::string_view opt, std::string_view field, double v) {
  if (!(v >= 0 && v < 1)) throw ValueError(fmt::format("{}: {} must be in [0, 1), got {}", opt, field, v));
}

} // namespace detail

namespace {

/// Splits "state.<i>.<key>" into i and the index of key in keys; false if it is not of that form.
bool parse_state_name(std::string_view name, const std::vector<std::string>& keys, std::size_t& i,
                      std::size_t& k) {
  constexpr std::string_view prefix = "state.";
  if (!name.starts_with(prefix)) return false;
  name.remove_prefix(prefix.size());
  const std::size_t dot = name.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  const auto [end, ec] = std::from_chars(name.data(), name.data() + dot, i);
  if (ec != std::errc{} || end != name.data() + dot) return false;
  const std::string_view key = name.substr(dot + 1);
  for (k = 0; k < keys.size(); ++k)
    if (keys[k] == key) return true;
  return false;
}

} // namespace

Optimizer::Optimizer(std::string name, std::vector<Var> params, double lr)
    : name_(std::move(name)), params_(std::move(params)), lr_(lr), state_(params_.size()) {
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

std::vector<Tensor> Optimizer::init_state(const Tensor&) const {
  return {};
}

void Optimizer::init_all_state() {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    state_[i].tensors = init_state(params_[i].value());
    state_[i].ready = true;
  }
}

void Optimizer::step() {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Var& v = params_[i];
    if (!v.has_grad()) continue;
    // A tensor leaf's value() shares its storage, so the update lands in place; a scalar leaf's
    // is a copy, written back below.
    Tensor p = v.value();
    Tensor g = v.grad();
    if (g.dtype() != p.dtype()) g = g.to(p.dtype());
    ParamState& s = state_[i];
    const bool fresh = !s.ready;
    if (fresh) {
      s.tensors = init_state(p);
      s.ready = true;
    }
    update(p, g, s.tensors, fresh);
    v.set_value(p); // writes a scalar leaf back; marks the leaf changed (a graph recorded before is stale)
  }
}

void Optimizer::zero_grad() {
  for (Var& p : params_) p.zero_grad();
}

StateList Optimizer::state() const {
  StateList out;
  out.emplace_back("lr", Tensor::scalar(lr_));
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!state_[i].ready) continue;
    for (std::size_t k = 0; k < state_keys_.size(); ++k)
      out.emplace_back(fmt::format("state.{}.{}", i, state_keys_[k]), state_[i].tensors[k].clone());
  }
  return out;
}

void Optimizer::load_state(const StateList& entries) {
  const std::string where = name_ + ".load_state";
  const std::string expected =
      fmt::format("expected \"lr\" and \"state.<i>.<key>\" with i < {} and key one of {{{}}}", params_.size(),
                  fmt::join(state_keys_, ", "));
  std::optional<double> lr;
  // Parsed entries by parameter, then key index; validated completely before anything changes.
  std::map<std::size_t, std::map<std::size_t, Tensor>> found;
  for (const auto& [name, t] : entries) {
    if (name == "lr") {
      if (t.numel() != 1)
        throw ValueError(
            fmt::format("{}: \"lr\" must have one element, got shape {}", where, t.shape().str()));
      lr = t.item();
      continue;
    }
    std::size_t i = 0, k = 0;
    if (!parse_state_name(name, state_keys_, i, k) || i >= params_.size())
      throw ValueError(fmt::format("{}: unknown entry \"{}\" ({})", where, name, expected));
    if (!found[i].emplace(k, t).second)
      throw ValueError(fmt::format("{}: entry \"{}\" appears twice", where, name));
  }
  if (!lr) throw ValueError(fmt::format("{}: missing entry \"lr\"", where));
  if (!(*lr >= 0)) throw ValueError(fmt::format("{}: \"lr\" must be >= 0, got {}", where, *lr));

  std::vector<ParamState> next(params_.size());
  for (auto& [i, tensors] : found) {
    std::vector<Tensor> fresh = init_state(params_[i].value());
    for (std::size_t k = 0; k < state_keys_.size(); ++k) {
      const std::string key = fmt::format("state.{}.{}", i, state_keys_[k]);
      const auto it = tensors.find(k);
      if (it == tensors.end()) throw ValueError(fmt::format("{}: missing entry \"{}\"", where, key));
      const Tensor& t = it->second;
      if (!t.defined()) throw ValueError(fmt::format("{}: entry \"{}\" is an undefined tensor", where, key));
      if (!(t.shape() == fresh[k].shape()))
        throw ValueError(fmt::format("{}: entry \"{}\" has shape {} but parameter {} needs {}", where, key,
                                     t.shape().str(), i, fresh[k].shape().str()));
      fresh[k].assign(t); // a copy, converted to the state's dtype: the caller's tensors stay theirs
    }
    next[i].tensors = std::move(fresh);
    next[i].ready = true;
  }
  // Parameters without saved state start fresh, as after torch's load_state_dict.
  state_ = std::move(next);
  lr_ = *lr;
}

} // namespace gg::optim
