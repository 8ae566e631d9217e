// Tests of the performance paths of autodiff: the recycled tensor buffers, the kernels' threaded
// paths against their single-threaded results, and the fused ops against finite differences.
#include <autodiff/autodiff.hpp>

#include <catch2/catch.hpp>

#include <thread>
#include <vector>

using gg::Shape;
using gg::Tensor;
using gg::Var;

TEST_CASE("kernels: recycled buffers never alias a live tensor, across threads too") {
  std::vector<Tensor> live;
  for (int i = 0; i < 200; ++i) {
    Tensor t = Tensor::full({static_cast<std::int64_t>(1 + i % 37)}, i, gg::f32);
    if (i % 3 == 0) live.push_back(t); // the others are freed and their buffers reused
  }
  std::vector<Tensor> from_thread;
  std::thread([&] { // allocated here, freed on the main thread: goes to the main thread's cache
    for (int i = 0; i < 50; ++i) from_thread.push_back(Tensor::full({16}, -1.0, gg::f64));
  })
      .join();
  from_thread.clear();
  std::vector<Tensor> fresh;
  for (int i = 0; i < 100; ++i) fresh.push_back(Tensor::full({16}, 1000.0 + i, gg::f64));
  for (std::size_t k = 0; k < live.size(); ++k) {
    const int i = static_cast<int>(3 * k);
    REQUIRE(live[k].numel() == 1 + i % 37);
    for (std::int64_t j = 0; j < live[k].numel(); ++j) REQUIRE(live[k].flat(j) == i);
  }
  for (int i = 0; i < 100; ++i)
    for (std::int64_t j = 0; j < 16; ++j) REQUIRE(fresh[static_cast<std::size_t>(i)].flat(j) == 1000.0 + i);
}
