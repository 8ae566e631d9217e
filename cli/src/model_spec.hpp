// The MLP the command line describes with --layers 2,3,2 --activation sigmoid: Linear layers with
// the activation between them (the output layer is linear), named as torch.nn.Sequential names them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nn/layers.hpp>

namespace gg::cli {

/// Largest number of parameters a command-line model may have (checked before allocating): training
/// keeps about four float64 copies of them (weights, gradients, two optimizer moments), 3.2 GB here.
inline constexpr std::int64_t max_parameters = 100'000'000;

/// "2,3,2" -> {2, 3, 2}: at least two positive sizes; ValueError naming the offending entry, and
/// for a model over max_parameters, before any allocation.
std::vector<std::int64_t> parse_layers(const std::string& text);
/// "sigmoid", "tanh", "relu" or "leaky-relu" (ValueError otherwise).
nn::Activation::Kind parse_activation(const std::string& name);
/// Linear(sizes[0], sizes[1]), activation, Linear(sizes[1], sizes[2]), ..., the last one linear.
std::shared_ptr<nn::Sequential> build_mlp(const std::vector<std::int64_t>& sizes,
                                          nn::Activation::Kind activation, DType dtype = f64);

} // namespace gg::cli
