// Uses only the installed package: checks the cs231n gradients with autodiff, then trains a small
// MLP with nn (Adam, cross-entropy) to 100% accuracy on XOR.
#include <nn/nn.hpp>

#include <cstdio>

int main() {
  gg::Var x = -2.0, y = 5.0, z = -4.0;
  gg::Var f = (x + y) * z;
  f.backward();
  const bool grads_ok =
      f.item() == -12 && x.grad().item() == -4 && y.grad().item() == -4 && z.grad().item() == 3;

  gg::nn::manual_seed(1);
  gg::nn::Sequential model(gg::nn::Linear(2, 8), gg::nn::Tanh(), gg::nn::Linear(8, 2));
  const gg::Tensor inputs({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2}), labels({0, 1, 1, 0}, {4});
  gg::optim::Adam opt(model.parameters(), gg::optim::AdamOptions(0.05));
  double loss = 0;
  for (int step = 0; step < 300; ++step) {
    opt.zero_grad();
    gg::Var l = gg::nn::cross_entropy(model(gg::Var::constant(inputs)), labels);
    l.backward();
    opt.step();
    loss = l.item();
  }
  const double acc = gg::metrics::accuracy(model(gg::Var::constant(inputs)).value(), labels);
  std::printf("consumer: cs231n gradients %s, XOR accuracy %.2f after 300 Adam steps (loss %.4f)\n",
              grads_ok ? "right" : "WRONG", acc, loss);
  return grads_ok && acc == 1.0 ? 0 : 1;
}
