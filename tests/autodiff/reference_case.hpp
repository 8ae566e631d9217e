// An op against a PyTorch reference case (tests/autodiff/data/*.txt, written by the scripts there
// through reference_text.py): its value, and its inputs' gradients of sum(value * r) by backward()
// and by the recorded create_graph rule.
#pragma once

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "inputs.hpp"

namespace gg::test {

/// |a - b| / max(1, |b|) over the elements (shapes must match); equal infinities and NaN against NaN
/// count as 0, a NaN against a number as infinite.
inline double max_error(const Tensor& a, const Tensor& b) {
  INFO("shapes " << a.shape().str() << " and " << b.shape().str());
  REQUIRE(a.shape() == b.shape());
  double w = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double u = a.flat(i), v = b.flat(i);
    if (u == v || (std::isnan(u) && std::isnan(v))) continue;
    w = std::isnan(u) || std::isnan(v) ? INFINITY
                                       : std::max(w, std::fabs(u - v) / std::max(1.0, std::fabs(v)));
  }
  return w;
}

/// Case `name` of ref: f of its inputs (leaves, by name) against <name>.value, and the gradients of
/// sum(value * <name>.<weight>) against <name>.grad.<input>, to tolerance.
inline void check_reference_case(const std::map<std::string, Tensor>& ref, const std::string& name,
                                 const std::vector<std::string>& inputs,
                                 const std::function<Var(const std::vector<Var>&)>& f,
                                 const std::string& weight = "w", double tolerance = 1e-12) {
  INFO("case " << name);
  const auto at = [&](const std::string& key) -> const Tensor& {
    INFO("reference " << key);
    REQUIRE(ref.count(key) == 1);
    return ref.at(key);
  };
  std::vector<Var> leaves;
  for (const std::string& in : inputs) leaves.emplace_back(at(name + "." + in).clone());
  const Var y = f(leaves);
  CHECK(max_error(y.value(), at(name + ".value")) < tolerance);
  const Var loss = gg::sum(y * Var::constant(at(name + "." + weight)));
  const std::vector<Var> recorded = gg::grad({loss}, leaves, {}, {.create_graph = true});
  loss.backward();
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    INFO("gradient of " << inputs[i]);
    CHECK(max_error(leaves[i].grad(), at(name + ".grad." + inputs[i])) < tolerance);
    CHECK(max_error(recorded[i].value(), at(name + ".grad." + inputs[i])) < tolerance);
  }
}

} // namespace gg::test
