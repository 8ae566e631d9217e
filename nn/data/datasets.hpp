// gg::data::Dataset (features, targets, names) and the synthetic 2-D teaching datasets: the course's
// triangle, XOR, two moons and concentric circles (as sklearn's make_moons / make_circles) and the
// cs231n spiral. Every generator is seeded (gg::Rng) and gives the same points on every machine.
#pragma once

#include <autodiff/tensor.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace gg::data {

/// A labelled dataset: x is [n, d] (or [n, ...] for images), y is [n] class ids stored as doubles
/// (classification) or [n] values (regression).
struct Dataset {
  Tensor x;
  Tensor y;
  /// Number of classes (largest class id + 1); 0 for regression targets.
  std::int64_t num_classes = 0;
  /// One name per feature column (may be empty when the source has none).
  std::vector<std::string> feature_names;
  /// One name per class when the source has them (string labels in a CSV, Fashion-MNIST).
  std::vector<std::string> class_names;
};

/// Largest n a generator accepts: bigger requests are refused before any allocation.
inline constexpr std::int64_t max_generated_samples = 100'000'000;

/// Vertices of the course's triangle: class 1 is the inside of this triangle.
inline constexpr std::array<std::array<double, 2>, 3> triangle_vertices{
    {{-0.8, -0.6}, {0.8, -0.6}, {0.0, 0.8}}};

/// Whether point (px, py) lies inside (or on the border of) triangle_vertices.
bool in_triangle(double px, double py);

/// n points uniform in [-1, 1]^2, labelled 1 inside triangle_vertices and 0 outside (about 28% are
/// class 1): the course's example of a class that no single line separates.
Dataset triangle(std::int64_t n, std::uint64_t seed = 0);

/// XOR: n points around the four corners (0,0), (0,1), (1,0), (1,1), taken in turn (point i belongs
/// to corner i % 4), with Gaussian noise of standard deviation `noise`; label = a XOR b. With n = 4
/// and noise = 0 this is the truth table itself.
Dataset xor_dataset(std::int64_t n, double noise = 0.1, std::uint64_t seed = 0);

/// Two interleaving half circles, as sklearn's make_moons: n / 2 outer points (class 0), the rest
/// inner (class 1), shuffled, plus Gaussian noise of standard deviation `noise`.
Dataset two_moons(std::int64_t n, double noise = 0.0, std::uint64_t seed = 0);

/// A small circle inside a large one, as sklearn's make_circles: n / 2 points on the unit circle
/// (class 0), the rest on a circle of radius `factor` in [0, 1) (class 1), shuffled, plus noise.
Dataset circles(std::int64_t n, double noise = 0.0, double factor = 0.8, std::uint64_t seed = 0);

/// The cs231n spiral: for class j, r = linspace(0, 1, N), t = linspace(4j, 4(j+1), N) + noise·randn,
/// x = (r sin t, r cos t); points are in class order (N per class).
Dataset spiral(std::int64_t points_per_class = 100, std::int64_t classes = 3, double noise = 0.2,
               std::uint64_t seed = 0);

} // namespace gg::data
