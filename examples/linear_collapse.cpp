// The course's quiz: without activation functions, a 2-layer MLP is one linear model. The two
// layers y = W2 (W1 x + b1) + b2 collapse to y = W x + b with W = W2 W1 and b = W2 b1 + b2;
// we compute W and b and show both give the same outputs. A sigmoid in between breaks this.
#include <nn/nn.hpp>

#include <cmath>
#include <iostream>

using gg::Tensor;
using gg::Var;
namespace k = gg::kernel;

int main() {
  gg::nn::manual_seed(7);
  gg::nn::Linear layer1(2, 3), layer2(3, 2);

  const Tensor w1 = layer1.weight.value(), b1 = layer1.bias.value();
  const Tensor w2 = layer2.weight.value(), b2 = layer2.bias.value();
  const Tensor w = k::matmul(w2, w1);                                // [2, 2]
  const Tensor b = k::binary(k::Binary::add, k::matmul(w2, b1), b2); // [2]
  std::cout << "W = W2 W1 =\n" << w << "\nb = W2 b1 + b2 =\n" << b << "\n\n";

  gg::Rng rng(1);
  const Tensor x = Tensor::randn({4, 2}, rng);
  const Var two_layers = layer2(layer1(Var::constant(x)));
  const Var one_layer = gg::matmul(Var::constant(x), gg::transpose(Var::constant(w))) + Var::constant(b);
  const Var squashed = layer2(gg::sigmoid(layer1(Var::constant(x))));
  std::cout << "inputs:\n"
            << x << "\n\ntwo linear layers:\n"
            << two_layers.value() << "\n\none linear layer (W, b):\n"
            << one_layer.value() << "\n\nwith a sigmoid between the layers:\n"
            << squashed.value() << "\n\n";

  double worst = 0;
  for (std::int64_t i = 0; i < two_layers.numel(); ++i)
    worst = std::fmax(worst, std::fabs(two_layers.value().flat(i) - one_layer.value().flat(i)));
  std::cout << "largest difference, two layers vs one: " << worst
            << (worst < 1e-12 ? "  -> the same model: depth without activations adds nothing\n"
                              : "  -> DIFFERENT\n");
  return worst < 1e-12 ? 0 : 1;
}
