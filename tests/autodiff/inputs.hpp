// Reproducible inputs for the gradient checks of tests/autodiff: uniform values, and values kept
// away from 0 (the kinks of abs, relu, leaky_relu, ...); the functions gradcheck takes.
#pragma once

#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
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

/// The tensors of a reference file under tests/autodiff/data by name: one a line, written by the
/// PyTorch script next to it as `name dim0 dim1 ... : v0 v1 ...` (empty when the file is missing).
inline std::map<std::string, Tensor> read_reference(const std::string& file) {
  std::map<std::string, Tensor> tensors;
  std::ifstream in(std::string(GG_TEST_DATA) + "/" + file);
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string name, word;
    fields >> name;
    std::vector<std::int64_t> dims;
    while (fields >> word && word != ":") dims.push_back(std::stoll(word));
    std::vector<double> values;
    for (std::string v; fields >> v;) values.push_back(std::stod(v)); // also "nan", "inf"
    tensors.emplace(name, Tensor(values, Shape(dims)));
  }
  return tensors;
}

} // namespace gg::test
