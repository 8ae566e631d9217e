// Helpers of the tests against PyTorch: text reference files; a case of a safetensors reference file
// (its options from the file's metadata, its tensors named "<case>.<what>", its weights as a state
// dict), a relative error, and a finite-difference check of any loss's gradients with respect to
// named leaves.
#pragma once

#include <autodiff/autodiff.hpp>
#include <nn/io/safetensors.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace gg::test {

/// The tensors of a text reference file in tests/nn/data by name: a line each, `name dim0 ... : v0 v1
/// ...`, as the make_*_reference.py scripts write them ("nan" read too).
inline std::map<std::string, Tensor> read_text_reference(const std::string& file) {
  std::map<std::string, Tensor> t;
  std::ifstream in(std::string(GG_TEST_DATA) + "/" + file);
  REQUIRE(in.good());
  for (std::string line; std::getline(in, line);) {
    std::istringstream ls(line);
    std::string name, tok;
    ls >> name;
    std::vector<std::int64_t> shape;
    while (ls >> tok && tok != ":") shape.push_back(std::stoll(tok));
    std::vector<double> v;
    while (ls >> tok) v.push_back(std::stod(tok));
    t.emplace(name, Tensor(v, Shape(shape)));
  }
  return t;
}

/// The reference file of that name in tests/nn/data, read once.
inline const safetensors::File& reference_file(const std::string& name) {
  static std::map<std::string, safetensors::File> files;
  auto it = files.find(name);
  if (it == files.end())
    it = files.emplace(name, safetensors::load(std::string(GG_TEST_DATA) + "/" + name)).first;
  return it->second;
}

/// One case of a reference file: options "key=value ..." from the metadata, tensors by name.
struct Case {
  Case(const safetensors::File& file, const std::string& name)
      : file(file), name(name), options(file.metadata.at(name)) {
    std::istringstream in(options);
    std::string item;
    while (in >> item) {
      const auto eq = item.find('=');
      values[item.substr(0, eq)] = item.substr(eq + 1);
    }
  }
  std::string text(const std::string& key) const {
    INFO("option " << key << " of case " << name);
    REQUIRE(values.count(key) == 1);
    return values.at(key);
  }
  double number(const std::string& key) const { return std::stod(text(key)); }
  std::int64_t integer(const std::string& key) const { return std::stoll(text(key)); }
  bool flag(const std::string& key) const { return integer(key) != 0; }
  bool has(const std::string& what) const { return file.contains(name + "." + what); }
  const Tensor& tensor(const std::string& what) const { return file.at(name + "." + what); }
  /// The tensors named "<case>.p.<name>", as a state dict in dtype.
  std::vector<std::pair<std::string, Tensor>> state_dict(DType dtype) const {
    std::vector<std::pair<std::string, Tensor>> out;
    const std::string prefix = name + ".p.";
    for (const auto& [key, t] : file.tensors)
      if (key.starts_with(prefix)) out.emplace_back(key.substr(prefix.size()), t.to(dtype));
    return out;
  }

  const safetensors::File& file;
  std::string name, options;
  std::map<std::string, std::string> values;
};

/// Largest |a - b| / max(1, |b|) (relative for values above 1, absolute below); shapes must match.
inline double max_relative_error(const Tensor& a, const Tensor& b) {
  INFO("shapes " << a.shape().str() << " and " << b.shape().str());
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i) {
    const double d = std::fabs(a.flat(i) - b.flat(i)) / std::max(1.0, std::fabs(b.flat(i)));
    worst = std::max(worst, std::isnan(d) ? INFINITY : d);
  }
  return worst;
}

/// d loss / d leaf for every element of every leaf (leaves whose values are changed in place through
/// their shared storage) against central differences in float64.
inline void check_gradients(const std::function<Var()>& loss,
                            const std::vector<std::pair<std::string, Var>>& leaves, double tolerance = 1e-6) {
  for (auto [name, leaf] : leaves) leaf.zero_grad();
  loss().backward();
  NoGrad no_grad;
  for (const auto& [name, leaf] : leaves) {
    Tensor v = leaf.value();
    const Tensor g = leaf.grad();
    for (std::int64_t i = 0; i < v.numel(); ++i) {
      const double eps = 1e-6, old = v.flat(i);
      v.set_flat(i, old + eps);
      const double up = loss().item();
      v.set_flat(i, old - eps);
      const double down = loss().item();
      v.set_flat(i, old);
      INFO("gradient of " << name << " element " << i);
      CHECK(g.flat(i) == Approx((up - down) / (2 * eps)).margin(tolerance).epsilon(tolerance));
    }
  }
}

} // namespace gg::test
