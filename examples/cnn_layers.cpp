// What the convolutional and pooling layers compute, on a 6x6 image small enough to check by hand
// (a bright square in its top-right corner): Conv2d slides a 3x3 kernel over it (here a vertical-edge
// detector), MaxPool2d keeps the largest value of each 2x2 window. Then their parameter counts (the course's
// quiz: Conv2d(1, 32, 3) has 320), the summary of the Fashion-MNIST CNN (examples/fashion_mnist_cnn) and its
// graph for one test image as DOT. usage: cnn_layers [OUTPUT_DIR]   (writes OUTPUT_DIR/cnn.dot; default out)
#include <nn/nn.hpp>

#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>

#include <fmt/format.h>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;

namespace {

/// The last two dimensions of t as a grid of numbers, each line indented.
std::string grid(const Tensor& t) {
  const std::int64_t rows = t.shape()[t.rank() - 2], cols = t.shape()[t.rank() - 1];
  std::string s;
  for (std::int64_t r = 0; r < rows; ++r) {
    s += "   ";
    for (std::int64_t c = 0; c < cols; ++c) s += fmt::format(" {:3g}", t.flat(r * cols + c));
    s += "\n";
  }
  return s;
}

int run(const std::string& dir) {
  std::filesystem::create_directories(dir);

  // A 6x6 grey image, dark (0) but for a bright (1) square in its top-right corner.
  Tensor image = Tensor::zeros({1, 1, 6, 6});
  for (int r = 0; r < 3; ++r)
    for (int c = 3; c < 6; ++c) image.set_flat(6 * r + c, 1);
  nn::Conv2d conv(1, 1, 3); // in channels, out channels, kernel size (stride 1, no padding)
  const Tensor kernel({-1, 0, 1, -1, 0, 1, -1, 0, 1}, {1, 1, 3, 3});
  conv.weight.set_value(kernel);
  conv.bias.set_value(Tensor::zeros({1}));
  const Var y = conv(Var::constant(image));
  std::cout << "Conv2d(1, 1, 3): a 3x3 kernel w slides over the image x; at each of the 4x4 positions\n"
               "  y[i][j] = b + sum over u, v = 0..2 of w[u][v] * x[i+u][j+v]\n";
  std::cout << "image x " << image.shape().str() << ":\n" << grid(image);
  std::cout << "kernel w " << kernel.shape().str() << " (a vertical-edge detector), bias b = 0:\n"
            << grid(kernel);
  std::cout << "output y " << y.shape().str() << ":\n" << grid(y.value());
  std::cout
      << "  y[0][1] = 3: the window at rows 0..2, columns 1..3 has the square's left edge in all 3 rows\n"
         "  (-1*0 + 0*0 + 1*1 each); y[2][1] = 1: only in its top row; y[0][0] = 0: all dark. The kernel\n"
         "  answers where a vertical edge is, and how much of it.\n\n";

  const Var pooled = nn::MaxPool2d(2)(y);
  std::cout
      << "MaxPool2d(2): the largest value of each 2x2 window, windows side by side (stride 2):\n"
      << "output " << pooled.shape().str() << ":\n"
      << grid(pooled.value())
      << "  half the height and width; the strong answer stays at the top: pooling keeps what the kernel\n"
         "  found and forgets exactly where.\n\n";

  // Parameters: one k x k kernel per (input channel, output channel) pair, and one bias per output channel.
  std::cout << "parameters: Conv2d(in, out, k) has out*in*k*k weights and out biases\n";
  const auto count = [](const std::string& what, const nn::Module& m, const std::string& formula) {
    std::cout << fmt::format("  {:<20} {:<22} = {}\n", what, formula, nn::parameter_count(m));
  };
  count("Conv2d(1, 32, 3)", nn::Conv2d(1, 32, 3), "32*1*3*3 + 32");
  count("Conv2d(32, 64, 3)", nn::Conv2d(32, 64, 3), "64*32*3*3 + 64");
  count("MaxPool2d(2)", nn::MaxPool2d(2), "nothing to learn");
  count("Linear(3136, 128)", nn::Linear(3136, 128), "3136*128 + 128");
  count("Linear(784, 32)", nn::Linear(784, 32), "784*32 + 32");
  std::cout
      << "  (32 units that each look at the whole 28x28 image, against 32 3x3 kernels that each slide over\n"
         "  it: a kernel is the same 9 weights at every position)\n\n";

  // The Fashion-MNIST CNN: its layers and output shapes for one 28x28 grey image.
  // (Braces: the layers are made, and draw their initial weights, left to right.)
  nn::manual_seed(1);
  nn::Sequential model{nn::Conv2d(1, 32, 3, 1, 1),
                       nn::ReLU(),
                       nn::MaxPool2d(2),
                       nn::Conv2d(32, 64, 3, 1, 1),
                       nn::ReLU(),
                       nn::MaxPool2d(2),
                       nn::Flatten(),
                       nn::Linear(64 * 7 * 7, 128),
                       nn::ReLU(),
                       nn::Linear(128, 10)};
  std::cout << "the Fashion-MNIST CNN (examples/fashion_mnist_cnn), float64 here:\n"
            << nn::summary(model, {1, 1, 28, 28});

  // Its graph for one image, the first of Fashion-MNIST's test set (a random one without the
  // dataset), and the loss against its class, after backward: one node per layer.
  Tensor pixels, label = Tensor({0}, {1});
  std::string what = "a random 28x28 image (dataset-fashion-mnist is not installed), loss against class 0";
  const std::string images = std::string(gg::data::fashion_mnist_dir) + "/t10k-images-idx3-ubyte.gz";
  if (std::filesystem::exists(images)) {
    const gg::data::Dataset test =
        gg::data::load_fashion_mnist(std::string(gg::data::fashion_mnist_dir), false);
    pixels = gg::kernel::slice(test.x, 0, 0, 1).reshape({1, 1, 28, 28});
    label = gg::kernel::slice(test.y, 0, 0, 1);
    what = fmt::format("Fashion-MNIST's first test image (class {}, {}) and its loss", label.item(),
                       test.class_names.at(static_cast<std::size_t>(label.item())));
  } else {
    gg::Rng rng(1);
    pixels = Tensor::rand({1, 1, 28, 28}, rng);
  }
  const Var loss = nn::cross_entropy(model(Var::constant(pixels).name("image")), label).name("loss");
  loss.backward();
  std::cout << "\nthe graph of " << what << ", after backward:\n";
  std::ostringstream dot;
  gg::write_dot(dot, loss, {.rankdir = "TB"});
  gg::write_atomically(dir + "/cnn.dot", dot.str());
  std::cout << "wrote " << dir << "/cnn.dot (draw it: dot -Tsvg " << dir << "/cnn.dot -o " << dir
            << "/cnn.svg)\n";
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc > 2) {
    std::cerr << "usage: cnn_layers [OUTPUT_DIR]\n";
    return 2;
  }
  try {
    return run(argc > 1 ? argv[1] : "out");
  } catch (const std::exception& e) {
    std::cerr << "cnn_layers: " << e.what() << "\n";
    return 2;
  }
}
