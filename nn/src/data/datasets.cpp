// The synthetic 2-D teaching datasets. Shapes and label layouts follow sklearn's make_moons /
// make_circles and cs231n's spiral; the random numbers come from gg::Rng, so they are the same on
// every machine (but not NumPy's).
#include <nn/data/dataloader.hpp>
#include <nn/data/datasets.hpp>

#include <autodiff/kernel.hpp>

#include <cmath>
#include <numbers>

#include <fmt/format.h>

namespace gg::data {

namespace detail {
namespace {

void check_count(std::int64_t n, std::string_view who, std::string_view what) {
  if (n < 0 || n > max_generated_samples)
    throw ValueError(fmt::format("{}: {} must be in [0, {}], got {}", who, what, max_generated_samples, n));
}

void check_noise(double noise, std::string_view who) {
  if (!(noise >= 0) || !std::isfinite(noise))
    throw ValueError(fmt::format("{}: noise must be a finite standard deviation >= 0, got {}", who, noise));
}

/// An [n, 2] float64 x and [n] float64 y, uninitialised.
Dataset make(std::int64_t n, std::int64_t classes) {
  Dataset ds;
  ds.x = Tensor::empty(Shape{n, 2}, f64);
  ds.y = Tensor::empty(Shape{n}, f64);
  ds.num_classes = classes;
  ds.feature_names = {"x1", "x2"};
  return ds;
}

/// NumPy's linspace(start, stop, count), endpoint included or not.
double linspace(double start, double stop, std::int64_t count, std::int64_t i, bool endpoint = true) {
  const std::int64_t div = endpoint ? count - 1 : count;
  if (div <= 0) return start;
  return start + (stop - start) * static_cast<double>(i) / static_cast<double>(div);
}

/// sklearn's order of work: rows shuffled, then Gaussian noise added to every coordinate.
void shuffle_then_noise(Dataset& ds, double noise, Rng& rng) {
  const std::int64_t n = ds.y.numel();
  const std::vector<std::int64_t> p = permutation(n, rng);
  ds.x = kernel::index_select(ds.x, 0, p);
  ds.y = kernel::index_select(ds.y, 0, p);
  double* x = ds.x.data<double>();
  if (noise > 0)
    for (std::int64_t i = 0; i < 2 * n; ++i) x[i] += noise * rng.normal();
}

} // namespace
} // namespace detail

bool in_triangle(double px, double py) {
  // The point is inside when it is on the left of (or on) all three counter-clockwise edges.
  for (std::size_t k = 0; k < 3; ++k) {
    const auto& a = triangle_vertices[k];
    const auto& b = triangle_vertices[(k + 1) % 3];
    if ((b[0] - a[0]) * (py - a[1]) - (b[1] - a[1]) * (px - a[0]) < 0) return false;
  }
  return true;
}

Dataset triangle(std::int64_t n, std::uint64_t seed) {
  detail::check_count(n, "triangle", "n");
  Dataset ds = detail::make(n, 2);
  Rng rng(seed);
  double* x = ds.x.data<double>();
  double* y = ds.y.data<double>();
  for (std::int64_t i = 0; i < n; ++i) {
    x[2 * i] = 2 * rng.uniform() - 1;
    x[2 * i + 1] = 2 * rng.uniform() - 1;
    y[i] = in_triangle(x[2 * i], x[2 * i + 1]) ? 1 : 0;
  }
  return ds;
}

Dataset xor_dataset(std::int64_t n, double noise, std::uint64_t seed) {
  detail::check_count(n, "xor_dataset", "n");
  detail::check_noise(noise, "xor_dataset");
  Dataset ds = detail::make(n, 2);
  Rng rng(seed);
  double* x = ds.x.data<double>();
  double* y = ds.y.data<double>();
  for (std::int64_t i = 0; i < n; ++i) {
    const int a = static_cast<int>((i % 4) / 2), b = static_cast<int>(i % 2);
    x[2 * i] = a + noise * rng.normal();
    x[2 * i + 1] = b + noise * rng.normal();
    y[i] = a ^ b;
  }
  return ds;
}

Dataset two_moons(std::int64_t n, double noise, std::uint64_t seed) {
  detail::check_count(n, "two_moons", "n");
  detail::check_noise(noise, "two_moons");
  Dataset ds = detail::make(n, 2);
  double* x = ds.x.data<double>();
  double* y = ds.y.data<double>();
  const std::int64_t n_out = n / 2, n_in = n - n_out;
  constexpr double pi = std::numbers::pi;
  for (std::int64_t i = 0; i < n_out; ++i) {
    const double t = detail::linspace(0, pi, n_out, i);
    x[2 * i] = std::cos(t);
    x[2 * i + 1] = std::sin(t);
    y[i] = 0;
  }
  for (std::int64_t i = 0; i < n_in; ++i) {
    const double t = detail::linspace(0, pi, n_in, i);
    const std::int64_t r = n_out + i;
    x[2 * r] = 1 - std::cos(t);
    x[2 * r + 1] = 1 - std::sin(t) - 0.5;
    y[r] = 1;
  }
  Rng rng(seed);
  detail::shuffle_then_noise(ds, noise, rng);
  return ds;
}

Dataset circles(std::int64_t n, double noise, double factor, std::uint64_t seed) {
  detail::check_count(n, "circles", "n");
  detail::check_noise(noise, "circles");
  if (!(factor >= 0 && factor < 1))
    throw ValueError(fmt::format("circles: factor must be in [0, 1), got {}", factor));
  Dataset ds = detail::make(n, 2);
  double* x = ds.x.data<double>();
  double* y = ds.y.data<double>();
  const std::int64_t n_out = n / 2, n_in = n - n_out;
  constexpr double pi = std::numbers::pi;
  for (std::int64_t i = 0; i < n_out; ++i) {
    const double t = detail::linspace(0, 2 * pi, n_out, i, false);
    x[2 * i] = std::cos(t);
    x[2 * i + 1] = std::sin(t);
    y[i] = 0;
  }
  for (std::int64_t i = 0; i < n_in; ++i) {
    const double t = detail::linspace(0, 2 * pi, n_in, i, false);
    const std::int64_t r = n_out + i;
    x[2 * r] = factor * std::cos(t);
    x[2 * r + 1] = factor * std::sin(t);
    y[r] = 1;
  }
  Rng rng(seed);
  detail::shuffle_then_noise(ds, noise, rng);
  return ds;
}

Dataset spiral(std::int64_t points_per_class, std::int64_t classes, double noise, std::uint64_t seed) {
  detail::check_count(points_per_class, "spiral", "points_per_class");
  detail::check_noise(noise, "spiral");
  if (classes < 1 || classes > 1000)
    throw ValueError(fmt::format("spiral: classes must be in [1, 1000], got {}", classes));
  detail::check_count(points_per_class * classes, "spiral", "points_per_class * classes");
  const std::int64_t m = points_per_class;
  Dataset ds = detail::make(m * classes, classes);
  double* x = ds.x.data<double>();
  double* y = ds.y.data<double>();
  Rng rng(seed);
  for (std::int64_t j = 0; j < classes; ++j)
    for (std::int64_t i = 0; i < m; ++i) {
      const std::int64_t row = j * m + i;
      const double r = detail::linspace(0, 1, m, i);
      const double t =
          detail::linspace(4.0 * static_cast<double>(j), 4.0 * static_cast<double>(j + 1), m, i) +
          noise * rng.normal();
      x[2 * row] = r * std::sin(t);
      x[2 * row + 1] = r * std::cos(t);
      y[row] = static_cast<double>(j);
    }
  return ds;
}

} // namespace gg::data
