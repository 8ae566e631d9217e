// gg::data::DataLoader: mini-batches of (x, y) rows, optionally reshuffled every epoch from a seed,
// iterated with a range-for; and train_test_split, a seeded random split into training and test rows.
#pragma once

#include <autodiff/tensor.hpp>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <utility>
#include <vector>

namespace gg::data {

/// One mini-batch: the selected rows of x and of y (y is undefined when the loader has no targets).
struct Batch {
  Tensor x;
  Tensor y;
  /// The rows of the whole batch, on every rank of a data-parallel run (x's rows with one process):
  /// a rank's share of the batch's mean gradient is its rows / global_rows.
  std::int64_t global_rows = 0;
};

/// Options of DataLoader, as torch.utils.data.DataLoader's.
struct DataLoaderOptions {
  std::int64_t batch_size = 1;
  /// Visit the rows in a new random order every epoch.
  bool shuffle = false;
  /// Seed of the shuffling: the same seed gives the same sequence of epochs.
  std::uint64_t seed = 0;
  /// Leave out the last batch when it is smaller than batch_size.
  bool drop_last = false;
  /// Data-parallel runs (gg::distributed): this process's rank and the number of ranks. Every rank
  /// draws the same order and cuts it into the same batches of batch_size rows (the global batch);
  /// rank r takes the rows [r·b/N, (r+1)·b/N) of each batch of b rows, so that the ranks' shares
  /// together are exactly the batch one process would take, for any world size and any timing.
  int rank = 0;
  int world_size = 1;
};

/// Mini-batches over the rows (first dimension) of x and y. Each range-for (each begin()) is one
/// epoch; with shuffle, each epoch draws a fresh permutation (Fisher–Yates with Rng::below) from one
/// Rng seeded once, so epochs differ from each other and the whole sequence is reproducible.
///
///     DataLoader loader(x, y, {.batch_size = 32, .shuffle = true, .seed = 1});
///     for (const Batch& b : loader) { ... b.x ... b.y ... }
///
/// A loader holds one epoch's order: iterate it from one place at a time.
class DataLoader {
public:
  class Iterator;

  /// x and y must have the same number of rows (ShapeError); y may be undefined (no targets).
  DataLoader(Tensor x, Tensor y, DataLoaderOptions options = {});
  /// A loader over x alone.
  explicit DataLoader(Tensor x, DataLoaderOptions options = {})
      : DataLoader(std::move(x), Tensor(), options) {}

  /// Starts the next epoch (reshuffling when shuffle is on) and returns its first batch.
  Iterator begin();
  Iterator end() const;

  /// Number of batches per epoch.
  std::int64_t size() const;
  /// Number of rows.
  std::int64_t num_samples() const { return n_; }
  /// Number of epochs started so far.
  std::int64_t epoch() const { return epoch_; }
  /// All rows of x and of y, in their original order (y undefined when the loader has none).
  const Tensor& x() const { return x_; }
  const Tensor& y() const { return y_; }
  /// The options the loader was made with.
  const DataLoaderOptions& options() const { return options_; }
  /// The batch at position i of the current epoch's order.
  Batch batch(std::int64_t i) const;
  /// The current epoch's row order.
  const std::vector<std::int64_t>& order() const { return order_; }

  class Iterator {
  public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = const Batch*;
    using reference = const Batch&;

    Iterator() = default;
    const Batch& operator*() const { return batch_; }
    const Batch* operator->() const { return &batch_; }
    Iterator& operator++();
    void operator++(int) { ++*this; }
    bool operator==(const Iterator& o) const { return index_ == o.index_; }

  private:
    friend class DataLoader;
    Iterator(const DataLoader* loader, std::int64_t index);
    const DataLoader* loader_ = nullptr;
    std::int64_t index_ = 0;
    Batch batch_;
  };

private:
  Tensor x_, y_;
  DataLoaderOptions options_;
  std::int64_t n_ = 0;
  std::int64_t epoch_ = 0;
  Rng rng_;
  std::vector<std::int64_t> order_;
};

/// A random permutation of 0..n-1 (Fisher–Yates with Rng::below).
std::vector<std::int64_t> permutation(std::int64_t n, Rng& rng);

/// Training and test parts of a dataset.
struct Split {
  Tensor x_train, y_train, x_test, y_test;
};

/// Splits the rows of x and y at random, as sklearn's train_test_split: ceil(test_fraction * n) test
/// rows, the rest for training; test_fraction in (0, 1) and both parts non-empty (ValueError).
Split train_test_split(const Tensor& x, const Tensor& y, double test_fraction, std::uint64_t seed = 0);

} // namespace gg::data
