// DataLoader (mini-batches, reshuffled each epoch from one seeded Rng), the Fisher–Yates
// permutation it uses, and train_test_split.
#include <nn/data/dataloader.hpp>

#include <autodiff/kernel.hpp>

#include <algorithm>
#include <cmath>
#include <numeric>

#include <fmt/format.h>

namespace gg::data {

namespace detail {
namespace {

std::int64_t rows_of(const Tensor& t, std::string_view who, std::string_view what) {
  if (!t.defined()) throw ValueError(fmt::format("{}: {} is undefined", who, what));
  if (t.rank() < 1)
    throw ShapeError(
        fmt::format("{}: {} needs a first (row) dimension, got shape {}", who, what, t.shape().str()));
  return t.shape()[0];
}

void check_same_rows(const Tensor& x, const Tensor& y, std::string_view who) {
  const std::int64_t n = rows_of(x, who, "x");
  if (y.defined() && rows_of(y, who, "y") != n)
    throw ShapeError(fmt::format("{}: x has {} rows (shape {}) but y has {} (shape {})", who, n,
                                 x.shape().str(), y.shape()[0], y.shape().str()));
}

Tensor rows(const Tensor& t, const std::vector<std::int64_t>& index) {
  return t.defined() ? kernel::index_select(t, 0, index) : Tensor();
}

} // namespace
} // namespace detail

std::vector<std::int64_t> permutation(std::int64_t n, Rng& rng) {
  if (n < 0) throw ValueError(fmt::format("permutation: n must be non-negative, got {}", n));
  std::vector<std::int64_t> p(static_cast<std::size_t>(n));
  std::iota(p.begin(), p.end(), std::int64_t{0});
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(rng.below(static_cast<std::uint64_t>(i) + 1));
    std::swap(p[static_cast<std::size_t>(i)], p[static_cast<std::size_t>(j)]);
  }
  return p;
}

DataLoader::DataLoader(Tensor x, Tensor y, DataLoaderOptions options)
    : x_(std::move(x)), y_(std::move(y)), options_(options), rng_(options.seed) {
  if (options_.batch_size < 1)
    throw ValueError(
        fmt::format("DataLoaderOptions: batch_size must be positive, got {}", options_.batch_size));
  if (options_.world_size < 1 || options_.rank < 0 || options_.rank >= options_.world_size)
    throw ValueError(
        fmt::format("DataLoaderOptions: rank {} is not one of the {} ranks of world_size (0 to {})",
                    options_.rank, options_.world_size, options_.world_size - 1));
  detail::check_same_rows(x_, y_, "DataLoader");
  n_ = x_.shape()[0];
  order_.resize(static_cast<std::size_t>(n_));
  std::iota(order_.begin(), order_.end(), std::int64_t{0});
}

DataLoader::Iterator DataLoader::begin() {
  ++epoch_;
  if (options_.shuffle) order_ = permutation(n_, rng_);
  return {this, 0};
}

DataLoader::Iterator DataLoader::end() const {
  Iterator it;
  it.loader_ = this;
  it.index_ = size();
  return it;
}

std::int64_t DataLoader::size() const {
  const std::int64_t b = options_.batch_size;
  return options_.drop_last ? n_ / b : n_ / b + (n_ % b != 0);
}

Batch DataLoader::batch(std::int64_t i) const {
  if (i < 0 || i >= size())
    throw ValueError(fmt::format("DataLoader::batch: index {} is out of range for {} batches", i, size()));
  const std::int64_t start = i * options_.batch_size;
  const std::int64_t rows = std::min(n_, start + options_.batch_size) - start;
  const std::int64_t r = options_.rank, world = options_.world_size;
  const std::vector<std::int64_t> index(order_.begin() + start + r * rows / world,
                                        order_.begin() + start + (r + 1) * rows / world);
  return {detail::rows(x_, index), detail::rows(y_, index), rows};
}

DataLoader::Iterator::Iterator(const DataLoader* loader, std::int64_t index)
    : loader_(loader), index_(index) {
  if (index_ < loader_->size()) batch_ = loader_->batch(index_);
}

DataLoader::Iterator& DataLoader::Iterator::operator++() {
  ++index_;
  batch_ = index_ < loader_->size() ? loader_->batch(index_) : Batch{};
  return *this;
}

Split train_test_split(const Tensor& x, const Tensor& y, double test_fraction, std::uint64_t seed) {
  detail::check_same_rows(x, y, "train_test_split");
  if (!(test_fraction > 0 && test_fraction < 1))
    throw ValueError(fmt::format("train_test_split: test_fraction must be in (0, 1), got {}", test_fraction));
  const std::int64_t n = x.shape()[0];
  const auto n_test = static_cast<std::int64_t>(std::ceil(test_fraction * static_cast<double>(n)));
  const std::int64_t n_train = n - n_test;
  if (n_train < 1 || n_test < 1)
    throw ValueError(
        fmt::format("train_test_split: {} rows with test_fraction {} leave {} for training and {} for "
                    "testing; both need at least one",
                    n, test_fraction, n_train, n_test));
  Rng rng(seed);
  const std::vector<std::int64_t> p = permutation(n, rng);
  const std::vector<std::int64_t> test(p.begin(), p.begin() + n_test);
  const std::vector<std::int64_t> train(p.begin() + n_test, p.end());
  return {detail::rows(x, train), detail::rows(y, train), detail::rows(x, test), detail::rows(y, test)};
}

} // namespace gg::data
