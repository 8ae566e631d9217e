// gg::distributed's collectives, run by CTest under mpirun with 1, 2 and 3 processes and once without
// mpirun: every case holds for any number of ranks. Its own main: MPI is set up before Catch2 runs.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <distributed/distributed.hpp>

#include <cstring>
#include <string>

namespace dist = gg::distributed;
using gg::Tensor;

namespace {

/// This rank's tensor of n values r + i / 8 (exact in float32).
Tensor ramp(std::int64_t n, gg::DType dtype, int r) {
  Tensor t = Tensor::zeros({n}, dtype);
  for (std::int64_t i = 0; i < n; ++i) t.set_flat(i, r + static_cast<double>(i) / 8);
  return t;
}

std::string bytes_of(const Tensor& t) {
  return std::string(static_cast<const char*>(t.raw()),
                     static_cast<std::size_t>(t.numel()) * gg::dtype_size(t.dtype()));
}

} // namespace

TEST_CASE("distributed: rank and world size agree with the launcher") {
  const int n = dist::world_size(), r = dist::rank();
  REQUIRE(n >= 1);
  REQUIRE(r >= 0);
  REQUIRE(r < n);
  CHECK(dist::launched() == (n > 1 || std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr));
  Tensor ranks({static_cast<double>(r)}, {1});
  dist::all_reduce(ranks, dist::ReduceOp::sum);
  CHECK(ranks.item() == n * (n - 1) / 2); // every rank took part once
}

TEST_CASE("distributed: all_reduce sums, averages and takes maxima, the same bits on every rank") {
  const int n = dist::world_size(), r = dist::rank();
  for (const gg::DType dtype : {gg::f64, gg::f32}) {
    Tensor sum = ramp(1000, dtype, r), mean = ramp(1000, dtype, r), max = ramp(1000, dtype, r);
    dist::all_reduce(sum, dist::ReduceOp::sum);
    dist::all_reduce(mean, dist::ReduceOp::mean);
    dist::all_reduce(max, dist::ReduceOp::max);
    for (std::int64_t i = 0; i < 1000; ++i) {
      const double v = static_cast<double>(i) / 8;
      REQUIRE(sum.flat(i) == n * v + n * (n - 1) / 2.0);
      REQUIRE(mean.flat(i) == Approx(v + (n - 1) / 2.0).epsilon(1e-6));
      REQUIRE(max.flat(i) == v + (n - 1));
    }
    dist::check_same(bytes_of(mean), "mean bits"); // throws if any rank got other bits
  }
}

TEST_CASE("distributed: broadcast gives every rank the root's tensor") {
  const int n = dist::world_size(), r = dist::rank();
  Tensor t = ramp(5, gg::f64, r);
  dist::broadcast(t, n - 1);
  for (std::int64_t i = 0; i < 5; ++i) CHECK(t.flat(i) == (n - 1) + static_cast<double>(i) / 8);
  CHECK_THROWS_WITH(dist::broadcast(t, n), Catch::Contains("root " + std::to_string(n) + " is not a rank"));
  dist::barrier();
}

TEST_CASE("distributed: tensors of other shapes or dtypes on some ranks are refused on every rank") {
  const int n = dist::world_size(), r = dist::rank();
  Tensor t = Tensor::zeros({r == 1 ? 3 : 2}, gg::f64);
  if (n > 1) {
    CHECK_THROWS_WITH(dist::all_reduce(t), Catch::Contains("ranks 1 differ from rank 0"));
    Tensor u = Tensor::zeros({2}, r == n - 1 ? gg::f32 : gg::f64);
    CHECK_THROWS_AS(dist::broadcast(u), gg::ShapeError);
  } else {
    CHECK_NOTHROW(dist::all_reduce(t));
  }
  Tensor undefined;
  CHECK_THROWS_WITH(dist::all_reduce(undefined), Catch::Contains("undefined"));
  dist::barrier(); // the collectives are still in step
  Tensor one({1.0}, {1});
  dist::all_reduce(one);
  CHECK(one.item() == n);
}

TEST_CASE("distributed: check_same names the ranks started differently") {
  const int n = dist::world_size(), r = dist::rank();
  CHECK_NOTHROW(dist::check_same("--lr 0.1 --epochs 3", "options"));
  if (n > 1)
    CHECK_THROWS_WITH(dist::check_same(r == n - 1 ? "--lr 0.2" : "--lr 0.1", "options"),
                      Catch::Contains("started with different options: rank " + std::to_string(n - 1) +
                                      " differs from rank 0"));
}

int main(int argc, char** argv) {
  dist::Environment env(argc, argv);
  return Catch::Session().run(argc, argv);
}
