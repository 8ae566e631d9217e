// DistributedDataParallel's communication thread (distributed/src/progress.hpp) with operations that
// stand for MPI's non-blocking collectives: buffers filled by the caller, handed over, changed by the
// thread's operations and read back after wait(), in the order posted — under ThreadSanitizer
// (scripts/tsan.sh) any unsynchronised access between the caller and the thread is reported.
#include <distributed/src/progress.hpp>

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

using gg::distributed::detail::Operation;
using gg::distributed::detail::Progress;

/// An all-reduce stand-in: when it starts it records its number in `order`; after `polls` polls it
/// doubles every element of `buffer` (what the other ranks' sum would write) and reports completion.
Operation doubling(std::vector<double>& buffer, int number, std::vector<int>& order, int polls) {
  auto left = std::make_shared<int>(polls);
  return {[&order, number] { order.push_back(number); },
          [&buffer, left] {
            if (--*left > 0) return false;
            for (double& x : buffer) x *= 2;
            return true;
          }};
}

/// Steps as DistributedDataParallel runs them: buckets filled and posted one by one while the caller
/// goes on, then a wait for the last; the caller reads the results and fills the buckets again.
void run_steps(bool threaded) {
  Progress progress(threaded);
  std::vector<std::vector<double>> buckets(4, std::vector<double>(1000));
  std::vector<int> order;
  for (int step = 0; step < 50; ++step) {
    Progress::Ticket last = 0;
    for (std::size_t k = 0; k < buckets.size(); ++k) {
      for (double& x : buckets[k]) x = step + static_cast<double>(k);
      last = progress.post(doubling(buckets[k], step * 10 + static_cast<int>(k), order, 1 + step % 3));
      progress.pump();
    }
    progress.wait(last);
    for (std::size_t k = 0; k < buckets.size(); ++k)
      for (const double x : buckets[k]) REQUIRE(x == 2 * (step + static_cast<double>(k)));
  }
  REQUIRE(order.size() == 200);
  for (std::size_t i = 0; i < order.size(); ++i)
    CHECK(order[i] == static_cast<int>(i / 4 * 10 + i % 4)); // started in the order posted
}

} // namespace

TEST_CASE("threads: the communication thread runs the buckets' operations in order and hands back results") {
  run_steps(true);
}

TEST_CASE("threads: without a thread, the operations run in order on the caller's thread") {
  run_steps(false);
}

TEST_CASE("threads: two threads post to and wait on one communication thread") {
  Progress progress(true);
  std::vector<std::vector<double>> buffers(2, std::vector<double>(100, 1.0));
  std::vector<int> order;
  std::atomic<int> posts{0};
  const auto work = [&](std::size_t who) {
    for (int i = 0; i < 20; ++i) {
      const Progress::Ticket t =
          progress.post({[&order, &posts] { order.push_back(posts++); }, [] { return true; }});
      progress.wait(t);
      for (double& x : buffers[who]) x += 1; // this thread's own data between its operations
    }
  };
  std::thread a(work, 0), b(work, 1);
  a.join(), b.join();
  progress.wait_all();
  CHECK(order.size() == 40);
  for (std::size_t i = 0; i < order.size(); ++i) CHECK(order[i] == static_cast<int>(i));
  CHECK(buffers[0][0] == 21);
  CHECK(buffers[1][99] == 21);
}

TEST_CASE("threads: an operation that fails is rethrown by wait and by every later post") {
  for (const bool threaded : {true, false}) {
    Progress progress(threaded);
    std::vector<double> buffer(10, 1.0);
    std::vector<int> order;
    progress.wait(progress.post(doubling(buffer, 0, order, 2)));
    CHECK(buffer[0] == 2);
    const Progress::Ticket bad =
        progress.post({[] {}, []() -> bool { throw std::runtime_error("MPI_Test failed on rank 1"); }});
    CHECK_THROWS_WITH(progress.wait(bad), "MPI_Test failed on rank 1");
    CHECK_THROWS_WITH(progress.post({[] {}, [] { return true; }}), "MPI_Test failed on rank 1");
  }
}

TEST_CASE("threads: the communication thread completes what is in flight before it ends") {
  std::vector<double> buffer(1000, 3.0);
  std::vector<int> order;
  {
    Progress progress(true);
    progress.post(doubling(buffer, 7, order, 5));
  }
  CHECK(buffer[999] == 6);
  CHECK(order == std::vector<int>{7});
}
