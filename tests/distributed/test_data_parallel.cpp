// DistributedDataParallel and the data-parallel Trainer, run by CTest under mpirun with 1, 2 and 3
// processes and once without mpirun: every rank checks its results against one process computing
// the same step on the whole batch (float64, within 1e-12), and the ranks against each other (the
// same bits everywhere).
#include <catch2/catch.hpp>

#include <distributed/data_parallel.hpp>
#include <nn/nn.hpp>

#include <cmath>
#include <string>

namespace dist = gg::distributed;
namespace nn = gg::nn;
using gg::Tensor;
using gg::Var;

namespace {

std::shared_ptr<nn::Sequential> mlp(std::uint64_t seed, std::int64_t hidden = 8) {
  nn::manual_seed(seed);
  return std::make_shared<nn::Sequential>(nn::Linear(3, hidden), nn::Tanh(), nn::Linear(hidden, 2));
}

/// Fixed data, the same on every rank.
std::pair<Tensor, Tensor> data(std::int64_t n) {
  gg::Rng rng(7);
  return {Tensor::randn({n, 3}, rng), Tensor::randn({n, 2}, rng)};
}

std::string bytes_of(const std::vector<Tensor>& ts) {
  std::string s;
  for (const Tensor& t : ts)
    s.append(static_cast<const char*>(t.raw()),
             static_cast<std::size_t>(t.numel()) * gg::dtype_size(t.dtype()));
  return s;
}

std::vector<Tensor> grads(const nn::Module& m) {
  std::vector<Tensor> g;
  for (const Var& p : m.parameters()) g.push_back(p.grad());
  return g;
}
std::vector<Tensor> values(const nn::Module& m) {
  std::vector<Tensor> v;
  for (const Var& p : m.parameters()) v.push_back(p.value());
  return v;
}

/// a and b agree within 1e-12 relative (to the largest magnitude of each tensor).
void require_close(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  REQUIRE(a.size() == b.size());
  for (std::size_t k = 0; k < a.size(); ++k) {
    double scale = 1e-300;
    for (std::int64_t i = 0; i < a[k].numel(); ++i) scale = std::max(scale, std::abs(a[k].flat(i)));
    for (std::int64_t i = 0; i < a[k].numel(); ++i)
      REQUIRE(std::abs(a[k].flat(i) - b[k].flat(i)) <= 1e-12 * scale);
  }
}

/// The rows [first, last) of t.
Tensor rows(const Tensor& t, std::pair<std::int64_t, std::int64_t> r) {
  return gg::kernel::slice(t, 0, r.first, r.second);
}

/// The data-parallel step's gradient computed in one process: every rank's loss on its rows,
/// weighted by its share of the batch (use(r): whether rank r's forward uses the model's second layer).
void reference_step(nn::Sequential& m, const Tensor& x, const Tensor& y, int world,
                    bool skip_second_on_rank0) {
  const std::int64_t n = x.shape()[0];
  Var total = Var::constant(0.0);
  for (int r = 0; r < world; ++r) {
    const auto share = gg::train::shard_rows(n, r, world);
    if (share.second == share.first) continue;
    const Var out = skip_second_on_rank0 && r == 0 ? m[0](Var::constant(rows(x, share)))
                                                   : m(Var::constant(rows(x, share)));
    const Var target =
        Var::constant(skip_second_on_rank0 && r == 0 ? Tensor::zeros(out.shape()) : rows(y, share));
    total = total + nn::mse_loss(out, target) * (static_cast<double>(share.second - share.first) / n);
  }
  total.backward();
}

} // namespace

TEST_CASE("data parallel: rank 0's weights everywhere, gradients of the whole batch on every rank") {
  const int world = dist::world_size(), rank = dist::rank();
  for (const std::int64_t n : {12, 7, 2}) {                   // 2 rows and 3 ranks: rank 0 has none
    auto model = mlp(100 + static_cast<std::uint64_t>(rank)); // different on every rank
    dist::DistributedDataParallel ddp(*model);
    auto reference = mlp(100);
    require_close(values(*model), values(*reference));
    dist::check_same(bytes_of(values(*model)), "weights");
    const auto [x, y] = data(n);
    const auto share = gg::train::shard_rows(n, rank, world);
    ddp.begin_step(share.second - share.first, n);
    if (share.second > share.first)
      nn::mse_loss(ddp(Var::constant(rows(x, share))), Var::constant(rows(y, share))).backward();
    ddp.finish_gradients();
    reference_step(*reference, x, y, world, false);
    require_close(grads(*model), grads(*reference));
    dist::check_same(bytes_of(grads(*model)), "gradients"); // the same bits on every rank
  }
}

TEST_CASE("data parallel: buckets in reverse registration order, started during backward") {
  const int world = dist::world_size(), rank = dist::rank();
  auto model = mlp(3);
  dist::DistributedDataParallel one_each(*model, {.bucket_bytes = 1});
  CHECK(one_each.buckets() ==
        std::vector<std::vector<std::string>>{{"2.bias"}, {"2.weight"}, {"0.bias"}, {"0.weight"}});
  const auto [x, y] = data(6);
  const auto share = gg::train::shard_rows(6, rank, world);
  nn::mse_loss(one_each(Var::constant(rows(x, share))), Var::constant(rows(y, share))).backward();
  one_each.finish_gradients();
  if (world > 1) { // every bucket was complete, and started, before backward returned
    CHECK(one_each.stats().buckets == 4);
    CHECK(one_each.stats().buckets_in_backward == 4);
    CHECK(one_each.stats().steps == 1);
  }
  auto other = mlp(3);
  dist::DistributedDataParallel together(*other);
  CHECK(together.buckets() ==
        std::vector<std::vector<std::string>>{{"2.bias", "2.weight", "0.bias", "0.weight"}});
  CHECK_THROWS_AS(dist::DistributedDataParallel(*other, {.bucket_bytes = 0}), gg::ValueError);
}

TEST_CASE("data parallel: the communication thread gives the bits of all-reduces progressed by the hooks") {
  const int world = dist::world_size(), rank = dist::rank();
  const auto [x, y] = data(10);
  const auto share = gg::train::shard_rows(10, rank, world);
  std::vector<std::string> results;
  for (const bool thread : {true, false}) {
    auto model = mlp(11, 40);
    dist::DistributedDataParallel ddp(*model, {.bucket_bytes = 64, .communication_thread = thread});
    CHECK(ddp.stats().threaded == (thread && world > 1)); // Open MPI provides MPI_THREAD_MULTIPLE
    for (int step = 0; step < 3; ++step) {
      for (Var& p : model->parameters()) p.zero_grad();
      ddp.begin_step(share.second - share.first, 10);
      nn::mse_loss(ddp(Var::constant(rows(x, share))), Var::constant(rows(y, share))).backward();
      ddp.finish_gradients();
      std::vector<double> loss{static_cast<double>(step)};
      ddp.all_reduce_sum(loss); // the trainer's numbers go through the same thread
      CHECK(loss[0] == step * world);
    }
    results.push_back(bytes_of(grads(*model)));
  }
  CHECK(results[0] == results[1]);
}

TEST_CASE("data parallel: a parameter without a gradient on some rank counts as zero there") {
  const int world = dist::world_size(), rank = dist::rank();
  auto model = mlp(5);
  auto reference = mlp(5);
  dist::DistributedDataParallel ddp(*model, {.bucket_bytes = 1});
  const auto [x, y] = data(9);
  const auto share = gg::train::shard_rows(9, rank, world);
  ddp.begin_step(share.second - share.first, 9);
  const Var in = Var::constant(rows(x, share));
  // Rank 0 uses only the first layer (its output against zeros); the others the whole model.
  const Var out = rank == 0 ? (*model)[0](in) : ddp(in);
  nn::mse_loss(out, Var::constant(rank == 0 ? Tensor::zeros(out.shape()) : rows(y, share))).backward();
  ddp.finish_gradients();
  reference_step(*reference, x, y, world, true);
  require_close(grads(*model), grads(*reference));
  dist::check_same(bytes_of(grads(*model)), "gradients");
}

TEST_CASE("data parallel: ranks with different models are refused on every rank") {
  const int world = dist::world_size(), rank = dist::rank();
  auto model = mlp(1, world > 1 && rank == world - 1 ? 9 : 8);
  if (world > 1)
    CHECK_THROWS_WITH(dist::DistributedDataParallel(*model),
                      Catch::Contains("different models") && Catch::Contains("from rank 0"));
  else
    CHECK_NOTHROW(dist::DistributedDataParallel(*model));
}

TEST_CASE("data parallel: the Trainer trains as one process would, and logs the whole data's numbers") {
  const int world = dist::world_size(), rank = dist::rank();
  const auto xy = data(23); // batches of 6, 6, 6 and 5 rows
  const Tensor &x = xy.first, &y = xy.second;
  const auto fit = [&](nn::Sequential& m, gg::train::DataParallel* dp) {
    gg::optim::Adam opt(m.parameters(), gg::optim::AdamOptions(0.01));
    gg::train::Trainer trainer(
        m, opt, [](const Var& out, const Tensor& t) { return nn::mse_loss(out, Var::constant(t)); },
        {.epochs = 3});
    gg::data::DataLoaderOptions options{.batch_size = 6, .shuffle = true, .seed = 4};
    if (dp) {
      trainer.set_data_parallel(*dp);
      options.rank = dp->rank(), options.world_size = dp->world_size();
    }
    gg::data::DataLoader loader(x, y, options);
    return trainer.fit(loader, x, y);
  };
  auto model = mlp(11 + static_cast<std::uint64_t>(rank));
  dist::DistributedDataParallel ddp(*model, {.bucket_bytes = 100});
  const gg::train::FitResult r = fit(*model, &ddp);
  auto alone = mlp(11);
  const gg::train::FitResult ref = fit(*alone, nullptr);
  CHECK(r.position.step == 12);
  require_close(values(*model), values(*alone));
  dist::check_same(bytes_of(values(*model)), "weights after training");
  REQUIRE(r.logs.size() == ref.logs.size());
  for (std::size_t i = 0; i < r.logs.size(); ++i) {
    CHECK(r.logs[i].first == ref.logs[i].first);
    CHECK(std::abs(r.logs[i].second - ref.logs[i].second) <= 1e-12 * std::abs(ref.logs[i].second));
  }
  gg::optim::Adam opt(model->parameters());
  gg::train::Trainer trainer(
      *model, opt, [](const Var& out, const Tensor& t) { return nn::mse_loss(out, Var::constant(t)); });
  trainer.set_data_parallel(ddp);
  gg::data::DataLoader wrong(x, y, {.batch_size = 6});
  if (world > 1) CHECK_THROWS_AS(trainer.fit(wrong), gg::UsageError);
}
