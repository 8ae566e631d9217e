// Fashion-MNIST with a small CNN: two 3x3 convolutions (32 and 64 channels, ReLU), each followed by 2x2
// max pooling, then 3136 -> 128 -> 10; float32, Adam, batches of 128. The published "2 Conv + pooling"
// reaches 0.916 test accuracy; this one reaches 0.91 or more. examples/pytorch/fashion_mnist.py trains
// the same model in PyTorch, to compare speed.
#include "fashion_mnist.hpp"

int main(int argc, char** argv) {
  namespace nn = gg::nn;
  fashion_mnist::Settings s;
  s.epochs = 8;
  s.images = true;
  return fashion_mnist::main_with(argc, argv, "fashion_mnist_cnn", s, 0.91, [] {
    return std::make_shared<nn::Sequential>(
        nn::Conv2d(1, 32, 3, 1, 1, true, gg::f32), nn::ReLU(), nn::MaxPool2d(2),
        nn::Conv2d(32, 64, 3, 1, 1, true, gg::f32), nn::ReLU(), nn::MaxPool2d(2), nn::Flatten(),
        nn::Linear(64 * 7 * 7, 128, true, gg::f32), nn::ReLU(), nn::Linear(128, 10, true, gg::f32));
  });
}
