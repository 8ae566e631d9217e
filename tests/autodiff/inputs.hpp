// Reproducible inputs for the gradient checks of tests/autodiff: uniform values, and values kept
// away from 0 (the kinks of abs, relu, leaky_relu, ...); the functions gradcheck takes.
#pragma once

#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <autodiff/function.hpp>
#include <autodiff/kernel.hpp>
#include <autodiff/var.hpp>

namespace gg::test {

/// A function of Vars, as gg::gradcheck takes it.
using Fn = std::function<Var(const std::vector<Var>&)>;

/// Values uniform in [lo, hi), reproducibly seeded.
inline Tensor rnd(const Shape& shape, std::uint64_t seed, double lo = -1, double hi = 1) {
  Rng rng(seed);
  return Tensor::rand(shape, rng, f64, lo, hi);
}
/// Values uniform in [-1, 1) of dtype, reproducibly seeded.
inline Tensor rnd(const Shape& shape, std::uint64_t seed, DType dtype) {
  Rng rng(seed);
  return Tensor::rand(shape, rng, dtype, -1, 1);
}

/// Values of magnitude in [0.15, 1.5), alternating in sign: at least 0.15 away from 0.
inline Tensor away_from_zero(const Shape& shape, std::uint64_t seed) {
  Tensor t = rnd(shape, seed, 0.15, 1.5);
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (i % 2 == 1) t.set_flat(i, -t.flat(i));
  return t;
}

/// A Var's values, flattened.
inline std::vector<double> values(const Var& v) {
  return v.value().to_vector();
}

/// x³ with its own backward rule (3x²): a user-written op (gg::Function).
struct Cube : Function {
  std::string name() const override { return "cube"; }
  Tensor forward(const std::vector<Tensor>& in) const override {
    return kernel::binary(kernel::Binary::mul, in[0], kernel::unary(kernel::Unary::square, in[0]));
  }
  std::vector<Var> backward(const std::vector<Var>& in, const Var&, const Var& g) const override {
    return {g * 3.0 * in[0] * in[0]};
  }
};

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
