// Logistic regression as in the course: d(x) = w0 + w1*x1 + w2*x2, p = sigmoid(d), trained by
// full-batch gradient descent on cross-entropy for two groups of points. Prints the weights, the
// decision line d(x) = 0 and the accuracy, and writes the graph of one prediction as DOT.
#include <nn/nn.hpp>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

using gg::Tensor;
using gg::Var;

/// A term of a sum with its sign as the operator: " + 2.5*x1", " - 1.5*x1" (not " + -1.5*x1").
std::string term(double w, const char* name) {
  std::ostringstream s;
  s << (std::signbit(w) ? " - " : " + ") << std::abs(w) << "*" << name;
  return s.str();
}

int main(int argc, char** argv) {
  // Two clouds of 100 points: class 0 around (-1, -1), class 1 around (1, 1).
  gg::Rng rng(3);
  const std::int64_t n = 200;
  Tensor x = Tensor::randn({n, 2}, rng, gg::f64, 0, 0.8), y = Tensor::zeros({n});
  for (std::int64_t i = 0; i < n; ++i) {
    const double c = i < n / 2 ? -1 : 1;
    x.set_flat(2 * i, x.flat(2 * i) + c);
    x.set_flat(2 * i + 1, x.flat(2 * i + 1) + c);
    y.set_flat(i, i < n / 2 ? 0 : 1);
  }

  Var w0 = 0.0, w1 = 0.0, w2 = 0.0;
  w0.name("w0"), w1.name("w1"), w2.name("w2");
  const Var x1 = Var::constant(gg::kernel::slice(x, 1, 0, 1).reshape({n}));
  const Var x2 = Var::constant(gg::kernel::slice(x, 1, 1, 2).reshape({n}));
  gg::optim::GD opt({w0, w1, w2}, gg::optim::GDOptions(0.5));
  for (int step = 1; step <= 200; ++step) {
    opt.zero_grad();
    const Var d = w0 + w1 * x1 + w2 * x2; // broadcast: one d per point
    const Var loss = gg::nn::binary_cross_entropy_with_logits(d, y);
    loss.backward();
    opt.step();
    if (step == 1 || step % 50 == 0) std::cout << "step " << step << "  loss " << loss.item() << "\n";
  }
  const Tensor d = (w0 + w1 * x1 + w2 * x2).value();
  std::int64_t right = 0;
  for (std::int64_t i = 0; i < n; ++i) right += (d.flat(i) > 0) == (y.flat(i) == 1);
  std::cout << "\nd(x) = " << w0.item() << term(w1.item(), "x1") << term(w2.item(), "x2") << "\n"
            << "decision line d(x) = 0:  x2 = " << -w0.item() / w2.item()
            << term(-w1.item() / w2.item(), "x1") << "\naccuracy " << static_cast<double>(right) / n << "\n";

  // One prediction as a graph: d = w0 + w1*x1 + w2*x2, p = sigmoid(d), for the first point. The
  // weights' gradients are cleared first, so the picture shows this prediction's gradients only.
  opt.zero_grad();
  Var p1 = Var(x.flat(0)).name("x1"), p2 = Var(x.flat(1)).name("x2");
  Var dd = (w0 + w1 * p1 + w2 * p2).name("d");
  Var p = gg::sigmoid(dd).name("p");
  p.backward();
  const std::string path = argc > 1 ? argv[1] : "logistic_regression.dot";
  {
    std::ofstream out(path + ".tmp");
    gg::write_dot(out, p);
    if (!out.flush()) return std::cerr << "cannot write " << path << "\n", 4;
  }
  std::rename((path + ".tmp").c_str(), path.c_str()); // whole file or none
  std::cout << "wrote " << path << "\n";
  return right > 0.9 * n ? 0 : 1;
}
