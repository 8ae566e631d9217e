// Concurrent training: two models trained at once in two threads, each recording its own graph,
// give bit for bit the losses and weights of the same two trainings run one after the other. These
// tests have their own small executable (thread_tests) so that scripts/tsan.sh can build and run
// them under ThreadSanitizer without building the whole suite.
#include <nn/nn.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
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

// Sharing recorded Vars between threads (docs/api.md, "Threads"): handles may be copied, released and
// read anywhere; the graph's backward, gradients and names belong to the thread that recorded it
// while that thread runs, and to any thread (one at a time) after it has exited.

TEST_CASE("threads: two threads copying and releasing one recorded Var leave its graph intact") {
  const Var x = 2.0;
  const Var y = x * x;
  const auto live = gg::tape_stats().live_nodes;
  std::atomic<int> wrong{0}; // Catch2's assertions are for one thread at a time
  auto churn = [&] {
    for (int i = 0; i < 20000; ++i) {
      Var copy = y;
      Var again = copy;
      if (again.item() != 4) ++wrong;
    }
  };
  std::thread t1(churn), t2(churn);
  for (int i = 0; i < 2000; ++i) { // this thread records and frees meanwhile
    const Var z = x * 3.0 + 1.0;
    CHECK(z.item() == 7);
  }
  t1.join();
  t2.join();
  CHECK(wrong == 0);
  CHECK(gg::tape_stats().live_nodes == live); // the other threads' counts applied: nothing leaked
  for (int i = 0; i < 100; ++i) {             // slots freed above are reused: y's must not have been
    const Var z = x + 1.0;
    CHECK(z.item() == 3);
  }
  CHECK(y.item() == 4);
  y.backward();
  CHECK(x.grad().item() == 4);
}

TEST_CASE("threads: scalar leaves shared by two threads' graphs, many per segment, stay counted") {
  // Each leaf's tag (the segment that last took a reference to it) moves between the threads'
  // segments: repeats then take a reference more, which the segment releases with the others.
  std::vector<Var> leaves;
  for (int i = 0; i < 64; ++i) leaves.emplace_back(1.0 + i);
  std::atomic<int> wrong{0};
  auto work = [&] {
    for (int round = 0; round < 50; ++round) {
      Var y = Var::constant(0.0);
      for (int k = 0; k < 200; ++k) y += leaves[static_cast<std::size_t>((k * 7 + round) % 64)] * 2.0;
      y.backward();
      if (gg::tape_stats().live_nodes == 0) ++wrong; // y's graph is alive here
    }
    if (gg::tape_stats().live_nodes != 0) ++wrong;
  };
  std::thread t1(work), t2(work);
  t1.join();
  t2.join();
  CHECK(wrong == 0);
  double total = 0;
  for (const Var& l : leaves) total += l.adj();
  CHECK(total == 2 * 50 * 200 * 2); // each thread: 50 rounds of 200 terms, each passing 2 to a leaf
}

TEST_CASE("threads: a recorded Var released last by another thread is freed by its own thread") {
  const Var x = 2.0;
  const auto live = gg::tape_stats().live_nodes;
  Var y = gg::tanh(x * x);
  std::thread([moved = std::move(y)]() mutable { moved = Var(); }).join();
  CHECK(gg::tape_stats().live_nodes == live);
}

TEST_CASE("threads: a copy made on another thread outlives the recording thread's last Var of the graph") {
  const Var x = 2.0;
  const auto live = gg::tape_stats().live_nodes;
  Var y = gg::tanh(x * x);
  std::mutex m;
  std::condition_variable cv;
  int stage = 0;
  double seen = 0;
  std::thread other([&] {
    const Var copy = y; // queued for the recording thread to count
    std::unique_lock lock(m);
    stage = 1;
    cv.notify_all();
    cv.wait(lock, [&] { return stage == 2; });
    seen = copy.item();
  }); // the copy's release is queued too
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return stage == 1; });
  }
  y = Var(); // the queued copy is counted before the graph is freed (it was freed, and its slots reused)
  {
    const Var z = x * 5.0 + 1.0; // records into the slots a freed graph would have left
    CHECK(z.item() == 11);
    std::lock_guard lock(m);
    stage = 2;
    cv.notify_all();
  }
  other.join();
  CHECK(seen == std::tanh(4.0));
  CHECK(gg::tape_stats().live_nodes == live); // the copy's release applied: the graph is freed
}

TEST_CASE("threads: backward, gradients and names of a running thread's graph are refused elsewhere") {
  const Var x = 2.0;
  const Var y = x * x;
  std::thread([x, y] { // x and y are copied here, on the recording thread, and read and released there
    CHECK(y.item() == 4);
    CHECK(y.shape().rank() == 0);
    CHECK_THROWS_WITH(y.backward(), Catch::Contains("backward: this Var was recorded by another thread"));
    CHECK_THROWS_WITH(gg::grad({y}, {x}), Catch::Contains("grad: this Var was recorded by another thread"));
    CHECK_THROWS_WITH(y.grad(), Catch::Contains("recorded by another thread"));
    CHECK_THROWS_WITH(y.name("y"), Catch::Contains("recorded by another thread"));
    CHECK_THROWS_WITH(y + 1.0, Catch::Contains("another thread"));
    CHECK(y.detach().item() == 4);
  })
      .join();
  y.backward(); // the recording thread still can
  CHECK(x.grad().item() == 4);
}

TEST_CASE("threads: reading a value while its thread runs backward") {
  const Var x = 0.5;
  Var y = x;
  for (int i = 0; i < 1000; ++i) y = gg::tanh(y * 1.5);
  const double v = y.item();
  std::atomic<bool> done{false};
  std::atomic<int> wrong{0};
  std::thread reader([&] {
    while (!done.load())
      if (y.item() != v) ++wrong;
  });
  for (int i = 0; i < 20; ++i) y.backward({.retain_graph = true});
  done = true;
  reader.join();
  CHECK(wrong == 0);
}

TEST_CASE("threads: the graph of a thread that has exited is any thread's, one at a time") {
  const Var w(Tensor({1.0, 2.0}, {2}));
  Var loss;
  std::thread([&] { loss = gg::sum(w * w); }).join();
  std::atomic<int> wrong{0};
  auto work = [&] {
    for (int i = 0; i < 50; ++i) {
      Var copy = loss;
      copy.backward({.retain_graph = true}); // one graph, 100 passes
      if (copy.grad().item() != 1) ++wrong;
    }
  };
  std::thread t1(work), t2(work);
  t1.join();
  t2.join();
  CHECK(wrong == 0);
  CHECK(w.grad().to_vector() == std::vector<double>{200, 400});
  loss = Var(); // frees the exited thread's tape
}

TEST_CASE(
    "threads: gradient hooks run once per pass on each thread, while another registers and removes hooks") {
  Var w(Tensor({0.5, -1.0}, {2}, gg::f64));
  std::atomic<int> calls{0};
  w.register_post_accumulate_grad_hook([&](Var&) { ++calls; });
  const auto work = [&] {
    for (int i = 0; i < 100; ++i) gg::sum(w * w).backward();
  };
  std::atomic<bool> done{false};
  std::thread churn([&] { // the registry changes while passes read it
    while (!done) w.register_hook([](const Tensor&) {}).remove();
  });
  std::thread t1(work), t2(work);
  t1.join(), t2.join();
  done = true;
  churn.join();
  CHECK(calls == 200);
  CHECK(w.grad().flat(0) == 200 * 1.0); // 2w each pass, exactly: every pass added once
  CHECK(w.grad().flat(1) == 200 * -2.0);
}
