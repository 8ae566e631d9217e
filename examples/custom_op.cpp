// A new operation with its own backward rule: softplus(x) = log(1 + exp(x)), whose derivative is
// sigmoid(x). It records, prints, draws and differentiates (twice, even) like a built-in op.
#include <autodiff/autodiff.hpp>

#include <cmath>
#include <iostream>

namespace {
struct Softplus : gg::Function {
  std::string name() const override { return "softplus"; }

  gg::Tensor forward(const std::vector<gg::Tensor>& in) const override {
    gg::Tensor out = in[0].clone();
    for (std::int64_t i = 0; i < out.numel(); ++i) {
      const double x = out.flat(i); // log1p(exp(-|x|)) + max(x, 0): no overflow for large x
      out.set_flat(i, std::log1p(std::exp(-std::fabs(x))) + std::fmax(x, 0.0));
    }
    return out;
  }

  // d softplus / dx = sigmoid(x). Written with gg ops, so the rule itself can be differentiated.
  std::vector<gg::Var> backward(const std::vector<gg::Var>& in, const gg::Var& /*out*/,
                                const gg::Var& grad_out) const override {
    return {grad_out * gg::sigmoid(in[0])};
  }
};
} // namespace

int main() {
  const auto softplus = std::make_shared<Softplus>();
  gg::Var x(gg::Tensor({0.5}, {1}));
  gg::Var y = gg::apply(softplus, {x}).name("y");
  gg::Var loss = gg::sum(y * y).name("loss");
  loss.backward();
  std::cout << "softplus(0.5) = " << y.item() << "\n"
            << "d loss / dx   = " << x.grad().item() << "  (2 * softplus(x) * sigmoid(x))\n";

  gg::Var dy = gg::grad({gg::sum(gg::apply(softplus, {x}))}, {x}, {}, {.create_graph = true})[0];
  gg::Var d2y = gg::grad({gg::sum(dy)}, {x})[0];
  std::cout << "second derivative = " << d2y.item() << "  (sigmoid(x) * (1 - sigmoid(x)))\n";

  const gg::GradcheckResult check =
      gg::gradcheck([&](const std::vector<gg::Var>& v) { return gg::apply(softplus, {v[0]}); },
                    {gg::Tensor({-3.0, 0.0, 0.5, 20.0}, {4})});
  std::cout << "gradcheck: " << (check.ok ? "ok" : "FAILED") << ", worst error " << check.max_error << "\n\n";
  gg::write_dot(std::cout, loss);
  return check.ok ? 0 : 1;
}
