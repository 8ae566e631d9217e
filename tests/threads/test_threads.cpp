// Concurrent training: two models trained at once in two threads, each recording its own graph,
// give bit for bit the losses and weights of the same two trainings run one after the other. These
// tests have their own small executable (thread_tests) so that scripts/tsan.sh can build and run
// them under ThreadSanitizer without building the whole suite.
#include <nn/nn.hpp>

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <thread>
#include <vector>

namespace {

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;

/// What a training run leaves: the loss of every step and the final parameters.
struct Outcome {
  std::vector<double> losses;
  std::vector<std::vector<double>> weights;
};

/// A spiral classifier: MLP, cross-entropy, Adam, shuffled mini-batches.
std::function<Outcome()> mlp_run(std::uint64_t seed) {
  nn::manual_seed(seed); // built here, on the calling thread: initialisation draws from one generator
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(std::make_shared<nn::Linear>(2, 16));
  model->push_back(std::make_shared<nn::Activation>(nn::Activation::Kind::tanh));
  model->push_back(std::make_shared<nn::Linear>(16, 3));
  const gg::data::Dataset data = gg::data::spiral(40, 3, 0.1, seed);
  return [model, data, seed] {
    gg::optim::Adam opt(model->parameters(), gg::optim::AdamOptions(0.01));
    gg::data::DataLoader loader(data.x, data.y, {.batch_size = 16, .shuffle = true, .seed = seed});
    Outcome o;
    for (int epoch = 0; epoch < 8; ++epoch)
      for (const gg::data::Batch& b : loader) {
        opt.zero_grad();
        const Var loss = nn::cross_entropy((*model)(Var::constant(b.x)), b.y);
        loss.backward();
        opt.step();
        o.losses.push_back(loss.item());
      }
    for (const Var& p : model->parameters()) o.weights.push_back(p.value().to_vector());
    return o;
  };
}

/// A small convolutional regressor on random images: Conv2d, max pooling, mse, SGD with momentum.
std::function<Outcome()> conv_run(std::uint64_t seed) {
  nn::manual_seed(seed);
  auto model = std::make_shared<nn::Sequential>();
  model->push_back(std::make_shared<nn::Conv2d>(1, 3, 3, 1, 1));
  model->push_back(std::make_shared<nn::Activation>(nn::Activation::Kind::relu));
  model->push_back(std::make_shared<nn::MaxPool2d>(2));
  model->push_back(std::make_shared<nn::Flatten>());
  model->push_back(std::make_shared<nn::Linear>(18, 1));
  gg::Rng rng(seed);
  const Tensor x = Tensor::randn({24, 1, 4, 6}, rng), y = Tensor::randn({24, 1}, rng);
  return [model, x, y] {
    gg::optim::SGD opt(model->parameters(), gg::optim::SGDOptions(0.05).momentum(0.9));
    Outcome o;
    for (int step = 0; step < 30; ++step) {
      opt.zero_grad();
      const Var loss = nn::mse_loss((*model)(Var::constant(x)), Var::constant(y));
      loss.backward();
      opt.step();
      o.losses.push_back(loss.item());
    }
    for (const Var& p : model->parameters()) o.weights.push_back(p.value().to_vector());
    return o;
  };
}

/// Runs a and b one after the other, then fresh copies of them in two threads at once.
void check_same(const std::function<std::function<Outcome()>()>& make_a,
                const std::function<std::function<Outcome()>()>& make_b) {
  const Outcome a = make_a()(), b = make_b()();
  auto run_a = make_a(), run_b = make_b();
  Outcome ta, tb;
  std::thread t1([&] { ta = run_a(); }), t2([&] { tb = run_b(); });
  t1.join();
  t2.join();
  CHECK(ta.losses == a.losses); // bit for bit: same ops in the same order
  CHECK(tb.losses == b.losses);
  CHECK(ta.weights == a.weights);
  CHECK(tb.weights == b.weights);
  CHECK(a.losses.back() < a.losses.front()); // and they learned something
  CHECK(b.losses.back() < b.losses.front());
}

} // namespace

TEST_CASE("threads: two MLPs trained at once in two threads equal the same trainings run in sequence") {
  check_same([] { return mlp_run(1); }, [] { return mlp_run(2); });
}

TEST_CASE("threads: an MLP and a CNN trained at once in two threads equal the same trainings in sequence") {
  check_same([] { return mlp_run(3); }, [] { return conv_run(4); });
}

TEST_CASE("threads: eight threads training their own models at once, twice, agree") {
  std::vector<std::function<Outcome()>> first, second;
  for (std::uint64_t s = 0; s < 8; ++s) first.push_back(s % 2 ? mlp_run(s) : conv_run(s));
  for (std::uint64_t s = 0; s < 8; ++s) second.push_back(s % 2 ? mlp_run(s) : conv_run(s));
  std::vector<Outcome> a(8), b(8);
  {
    std::vector<std::jthread> threads;
    for (std::size_t i = 0; i < 8; ++i) threads.emplace_back([&, i] { a[i] = first[i](); });
  }
  for (std::size_t i = 0; i < 8; ++i) b[i] = second[i](); // sequentially
  for (std::size_t i = 0; i < 8; ++i) {
    CHECK(a[i].losses == b[i].losses);
    CHECK(a[i].weights == b[i].weights);
  }
}
