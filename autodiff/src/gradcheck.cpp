// Gradient checking by central finite differences (float64), through a random projection of the
// output so that one backward pass checks the whole vector-Jacobian product.
#include <autodiff/gradcheck.hpp>
#include <autodiff/ops.hpp>

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace gg {

namespace {
std::vector<Var> leaves(const std::vector<Tensor>& xs) {
  std::vector<Var> vs;
  for (const Tensor& x : xs) vs.push_back(x.rank() == 0 ? Var(x.item()) : Var(x.clone(), true));
  return vs;
}
} // namespace

GradcheckResult gradcheck(const std::function<Var(const std::vector<Var>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  for (const Tensor& x : inputs)
    if (x.dtype() != f64) throw ValueError("gradcheck: inputs must be float64");
  Tensor w;
  auto objective = [&](const std::vector<Var>& vs) {
    const Var y = f(vs);
    if (!w.defined()) {
      Rng rng(options.seed);
      w = Tensor::rand(y.shape(), rng, f64, 0.5, 1.5);
    }
    return sum(y * Var::constant(w));
  };

  std::vector<Var> vs = leaves(inputs);
  const Var loss = objective(vs);
  loss.backward();
  std::vector<Tensor> analytic;
  for (const Var& v : vs) analytic.push_back(v.grad());

  GradcheckResult r;
  auto check = [&](std::size_t i, std::int64_t k, double a, double n, const char* what) {
    const double err = std::fabs(a - n) / std::max({1.0, std::fabs(a), std::fabs(n)});
    if (!(err <= r.max_error) || std::isnan(err)) { // NaN counts as the worst
      r.max_error = std::isnan(err) ? INFINITY : err;
      r.input = i, r.index = k, r.analytic = a, r.numeric = n;
      r.message =
          fmt::format("input {} element {}: backward {} vs {} {} (error {:.3g})", i, k, a, what, n, err);
    }
  };

  for (std::size_t i = 0; i < inputs.size(); ++i) {
    for (std::int64_t k = 0; k < inputs[i].numel(); ++k) {
      auto eval = [&](double delta) {
        std::vector<Tensor> xs;
        for (const Tensor& x : inputs) xs.push_back(x.clone());
        xs[i].set_flat(k, xs[i].flat(k) + delta);
        // Recording stays on: f may itself call gg::grad (create_graph), to check second derivatives.
        return objective(leaves(xs)).item();
      };
      const double numeric = (eval(options.eps) - eval(-options.eps)) / (2 * options.eps);
      check(i, k, analytic[i].flat(k), numeric, "finite differences");
    }
  }

  if (options.check_graph) { // the recorded backward must give the same numbers as the plain one
    std::vector<Var> vs2 = leaves(inputs);
    const std::vector<Var> g = grad({objective(vs2)}, vs2, {}, {.create_graph = true});
    for (std::size_t i = 0; i < inputs.size(); ++i) {
      const Tensor gi = g[i].value();
      for (std::int64_t k = 0; k < gi.numel(); ++k)
        check(i, k, analytic[i].flat(k), gi.flat(k), "create_graph backward");
    }
  }
  r.ok = r.max_error <= options.tolerance;
  if (r.message.empty()) r.message = "no inputs";
  return r;
}

} // namespace gg
