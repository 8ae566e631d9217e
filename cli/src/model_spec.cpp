// Parsing --layers / --activation and building the MLP they describe.
#include "model_spec.hpp"

#include <charconv>

#include <fmt/format.h>

namespace gg::cli {

std::vector<std::int64_t> parse_layers(const std::string& text) {
  std::vector<std::int64_t> sizes;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string item = text.substr(start, end - start);
    std::int64_t v = 0;
    const auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size() || v <= 0)
      throw ValueError(fmt::format("--layers '{}': entry {} ('{}') is not a positive whole number", text,
                                   sizes.size() + 1, item));
    sizes.push_back(v);
    start = end + 1;
  }
  if (sizes.size() < 2)
    throw ValueError(
        fmt::format("--layers '{}': give at least an input and an output size, e.g. 2,3,2", text));
  double params = 0; // in double: 10^12 x 10^12 must not overflow before it is refused
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i)
    params +=
        static_cast<double>(sizes[i]) * static_cast<double>(sizes[i + 1]) + static_cast<double>(sizes[i + 1]);
  if (params > static_cast<double>(max_parameters))
    throw ValueError(fmt::format("--layers '{}': {:.3g} parameters is more than this tool builds ({})", text,
                                 params, max_parameters));
  return sizes;
}

nn::Activation::Kind parse_activation(const std::string& name) {
  using Kind = nn::Activation::Kind;
  if (name == "sigmoid") return Kind::sigmoid;
  if (name == "tanh") return Kind::tanh;
  if (name == "relu") return Kind::relu;
  if (name == "leaky-relu") return Kind::leaky_relu;
  throw ValueError(fmt::format("--activation '{}': use sigmoid, tanh, relu or leaky-relu", name));
}

std::shared_ptr<nn::Sequential> build_mlp(const std::vector<std::int64_t>& sizes,
                                          nn::Activation::Kind activation, DType dtype) {
  auto model = std::make_shared<nn::Sequential>();
  for (std::size_t i = 0; i + 1 < sizes.size(); ++i) {
    model->push_back(std::make_shared<nn::Linear>(sizes[i], sizes[i + 1], true, dtype));
    if (i + 2 < sizes.size()) model->push_back(std::make_shared<nn::Activation>(activation));
  }
  return model;
}

} // namespace gg::cli
