// Reproducible inputs for the gradient checks of tests/autodiff: uniform values, and values kept
// away from 0 (the kinks of abs, relu, leaky_relu, ...); the functions gradcheck takes.
#pragma once

#include <functional>
#include <vector>

#include <autodiff/var.hpp>

namespace gg::test {

/// A function of Vars, as gg::gradcheck takes it.
using Fn = std::function<Var(const std::vector<Var>&)>;

/// Values uniform in [lo, hi), reproducibly seeded.
inline Tensor rnd(const Shape& shape, std::uint64_t seed, double lo = -1, double hi = 1) {
  Rng rng(seed);
  return Tensor::rand(shape, rng, f64, lo, hi);
}

/// Values of magnitude in [0.15, 1.5), alternating in sign: at least 0.15 away from 0.
inline Tensor away_from_zero(const Shape& shape, std::uint64_t seed) {
  Tensor t = rnd(shape, seed, 0.15, 1.5);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (i % 2 == 1) t.set_flat(i, -t.flat(i));
  return t;
}

} // namespace gg::test
