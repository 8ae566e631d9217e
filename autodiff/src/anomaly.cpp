// Anomaly detection (gg::DetectAnomaly): the checks of recorded values and backward gradients for
// NaN and infinity, and the messages that name the op, the user names on its path through the graph
// (Vars and module scopes) and its inputs' shapes and values.
#include <autodiff/error.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "internal.hpp"

namespace gg::detail {

namespace {

std::string op_of(const Node* n) {
  return ref(const_cast<Node*>(n)).op_name();
}
std::string name_of(const Node* n) {
  return n->ext ? n->ext->name : std::string();
}

/// "'h' (log)", "log", "'x' (leaf)", "a constant".
std::string label(const Node* n) {
  const std::string name = name_of(n);
  if (n->op == Op::leaf)
    return name.empty() ? (n->requires_grad() ? "a leaf" : "a constant") : "'" + name + "'";
  return name.empty() ? op_of(n) : fmt::format("'{}' ({})", name, op_of(n));
}

/// ", in module 'net/0' (Linear(2, 3))", or "" outside any gg::Scope.
std::string module_of(const Node* n) {
  const std::uint32_t id = n->ext ? n->ext->scope : 0;
  if (id == 0) return "";
  const std::string path = scope_path(id), description = scope_label(id);
  return fmt::format(", in module '{}'{}", path, description.empty() ? "" : " (" + description + ")");
}

/// A number as printed in messages ("nan", never "-nan").
std::string number(double v) {
  return std::isnan(v) ? "nan" : fmt::format("{:.6g}", v);
}

/// The value in a line: all of it when small, else its non-finite count and the first entries.
std::string values(const Tensor& t) {
  if (t.rank() == 0) return number(t.item());
  std::int64_t nan = 0, inf = 0, first = -1;
  for (std::int64_t i = 0; i < t.numel(); ++i) {
    const double v = t.flat(i);
    nan += std::isnan(v), inf += std::isinf(v);
    if (first < 0 && !std::isfinite(v)) first = i;
  }
  std::vector<std::string> shown;
  for (std::int64_t i = 0; i < std::min<std::int64_t>(t.numel(), 6); ++i) shown.push_back(number(t.flat(i)));
  std::string s =
      fmt::format("shape {} = [{}{}]", t.shape().str(), fmt::join(shown, ", "), t.numel() > 6 ? ", …" : "");
  if (nan || inf)
    s += fmt::format(" ({} NaN, {} infinite of {}; the first, {}, at flat index {})", nan, inf, t.numel(),
                     number(t.flat(first)), first);
  return s;
}

std::string inputs_text(const Node* n) {
  std::string s;
  for (int i = 0; i < n->num_inputs(); ++i)
    s += fmt::format("\n  input {}: {}{}, {}", i, label(n->input(i)), module_of(n->input(i)),
                     values(value_of(n->input(i))));
  return s;
}

/// How the forward pass reached n: back through each first input to a named value or a leaf, then
/// forward again ("'x' → mul → 'z' (add) → log"); module scopes are shown where they change.
std::string forward_path(const Node* n) {
  std::vector<const Node*> chain{n};
  while (chain.size() < 8 && chain.back()->num_inputs() > 0 &&
         (chain.size() == 1 || name_of(chain.back()).empty()))
    chain.push_back(chain.back()->input(0));
  std::string s;
  for (auto it = chain.rbegin(); it != chain.rend(); ++it)
    s += (s.empty() ? "" : " → ") + label(*it) + module_of(*it);
  return (chain.size() == 8 ? "… → " : "") + s;
}

std::string backward_path(const std::vector<const Node*>& path) {
  std::string s;
  for (std::size_t i = path.size(); i-- > 0;)
    s += (s.empty() ? "" : " → ") + label(path[i]) + module_of(path[i]);
  return s;
}

} // namespace

bool all_finite(const Tensor& t) {
  const std::int64_t n = t.numel();
  if (t.dtype() == f64) {
    const double* p = t.data<double>();
    for (std::int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return false;
  } else {
    const float* p = t.data<float>();
    for (std::int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return false;
  }
  return true;
}

void check_forward(const Node* n) {
  if (n->is_tensor() ? all_finite(n->ext->value) : std::isfinite(n->value)) return;
  throw AnomalyError(
      fmt::format("anomaly: op {}{} gave a value that is not finite in the forward pass: {}{}\n"
                  "  path: {}",
                  label(n), module_of(n), values(value_of(n)), inputs_text(n), forward_path(n)));
}

void throw_backward_anomaly(const Node* n, int input, const Tensor& gradient, const Tensor& upstream,
                            const std::vector<const Node*>& path) {
  throw AnomalyError(fmt::format(
      "anomaly: op {}{} passed a gradient that is not finite to its input {} in the backward pass: {}\n"
      "  its own gradient (from the output): {}{}\n"
      "  path from the output: {}",
      label(n), module_of(n), input, values(gradient), values(upstream), inputs_text(n),
      backward_path(path)));
}

void throw_seed_anomaly(const Node* n, const Tensor& seed) {
  throw AnomalyError(fmt::format("anomaly: the seed gradient of {}{} is not finite: {}", label(n),
                                 module_of(n), values(seed)));
}

} // namespace gg::detail
