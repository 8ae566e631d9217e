// The training loop written out, as a learner writes it: forward, loss, backward, step, zero_grad.
// It trains the network of the tutorial's section 7 on the same data from the same seed as
//   gradgraph train --dataset spiral --layers 2,16,16,3 --activation sigmoid --optimizer adam --lr 0.02
//                   --batch-size 32 --epochs 200 --split 0.2 --seed 0
// and prints the same epoch lines (the test example_training_loop_matches_cli compares them).
#include <nn/nn.hpp>

#include <iostream>
#include <utility>

#include <fmt/format.h>

namespace nn = gg::nn;

int main() {
  const std::uint64_t seed = 0;

  // The data: the cs231n spiral, 100 points of each of 3 classes (noise 0.1); 20% held out for testing.
  const gg::data::Dataset spiral = gg::data::spiral(100, 3, 0.1, seed);
  const gg::data::Split data = gg::data::train_test_split(spiral.x, spiral.y, 0.2, seed);

  // The model: 2 inputs, two hidden layers of 16 sigmoid units, one score per class. Braces, not
  // parentheses: C++ makes the layers left to right only in braces, so they draw their initial
  // weights in order, as PyTorch's nn.Sequential does.
  nn::manual_seed(seed);
  nn::Sequential model{nn::Linear(2, 16), nn::Sigmoid(), nn::Linear(16, 16), nn::Sigmoid(),
                       nn::Linear(16, 3)};
  gg::optim::Adam optimizer(model.parameters(), gg::optim::AdamOptions(0.02));
  gg::data::DataLoader loader(data.x_train, data.y_train, {.batch_size = 32, .shuffle = true, .seed = seed});

  // Loss and accuracy on a whole set, without recording a graph.
  const auto evaluate = [&](const gg::Tensor& x, const gg::Tensor& y) {
    gg::NoGrad no_grad;
    const gg::Var scores = model(gg::Var::constant(x));
    return std::pair{nn::cross_entropy(scores, y).item(), gg::metrics::accuracy(scores.value(), y)};
  };

  for (int epoch = 1; epoch <= 200; ++epoch) {
    // One epoch: every training point once, in batches of 32, in a new random order.
    for (const gg::data::Batch& batch : loader) {
      const gg::Var scores = model(gg::Var::constant(batch.x)); // 1. forward: [32, 3] class scores
      const gg::Var loss = nn::cross_entropy(scores, batch.y);  // 2. loss: one number
      loss.backward();       // 3. backward: every parameter's .grad() = d(loss)/d(parameter)
      optimizer.step();      // 4. step: every parameter a little against its gradient
      optimizer.zero_grad(); // 5. clear the gradients: backward adds to them
    }
    if (epoch == 1 || epoch % 10 == 0) {
      const auto [train_loss, train_accuracy] = evaluate(data.x_train, data.y_train);
      const auto [test_loss, test_accuracy] = evaluate(data.x_test, data.y_test);
      std::cout << fmt::format(
          "epoch {:>4}  train loss {:.6g}  accuracy {:.4f}  test loss {:.6g}  accuracy {:.4f}\n", epoch,
          train_loss, train_accuracy, test_loss, test_accuracy);
    }
  }
}
