// compare_weights A B TOLERANCE: whether two safetensors files (models or checkpoints) hold the same
// tensors by name, equal within TOLERANCE relative to each tensor's largest magnitude; prints the
// largest relative difference. Exit 0 when they agree, 1 when not, 2 on bad input. The data-parallel
// tests compare runs with different numbers of processes with it.
#include <nn/io/safetensors.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: compare_weights A.safetensors B.safetensors TOLERANCE\n");
    return 2;
  }
  try {
    const gg::safetensors::File a = gg::safetensors::load(argv[1]), b = gg::safetensors::load(argv[2]);
    const double tolerance = std::stod(argv[3]);
    double worst = 0;
    std::string where;
    for (const auto& [name, t] : a.tensors) {
      auto it = b.tensors.begin(); // by name, not by a lambda capturing the binding (clang 14 refuses it)
      while (it != b.tensors.end() && it->first != name) ++it;
      if (it == b.tensors.end() || !(it->second.shape() == t.shape())) {
        std::printf("'%s' is missing from %s or has another shape\n", name.c_str(), argv[2]);
        return 1;
      }
      double scale = 0, diff = 0;
      for (std::int64_t i = 0; i < t.numel(); ++i) {
        scale = std::max(scale, std::abs(t.flat(i)));
        diff = std::max(diff, std::abs(t.flat(i) - it->second.flat(i)));
      }
      const double relative = scale > 0 ? diff / scale : diff;
      if (relative >= worst) worst = relative, where = name;
    }
    std::printf("largest relative difference %.3g (%s)\n", worst, where.c_str());
    return worst <= tolerance ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "compare_weights: %s\n", e.what());
    return 2;
  }
}
