// Parameter initialisers, as torch.nn.init: Xavier/Glorot, He/Kaiming, uniform, normal, constant.
// Each fills a tensor in place (a parameter's value() shares its storage) from a seeded Rng; the
// overloads without one draw from the default generator, reseeded by manual_seed().
#pragma once

#include <cstdint>
#include <string_view>

#include <autodiff/tensor.hpp>

namespace gg::nn {

/// Reseeds the default generator that layers draw their initial weights from.
void manual_seed(std::uint64_t seed);

namespace init {

enum class FanMode { fan_in, fan_out };

/// fan_in, fan_out of a weight as PyTorch computes them ([out, in] or [out, in, kh, kw]).
std::pair<std::int64_t, std::int64_t> fans(const Tensor& weight);
/// torch.nn.init.calculate_gain for "linear", "sigmoid", "tanh", "relu", "leaky_relu" (param = slope).
double calculate_gain(std::string_view nonlinearity, double param = 0.01);

void uniform(Tensor& t, double a, double b, Rng& rng);
void uniform(Tensor& t, double a = 0, double b = 1);
void normal(Tensor& t, double mean, double std, Rng& rng);
void normal(Tensor& t, double mean = 0, double std = 1);
void constant(Tensor& t, double value);
void zeros(Tensor& t);
void ones(Tensor& t);
/// U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform(Tensor& t, double gain, Rng& rng);
void xavier_uniform(Tensor& t, double gain = 1);
/// N(0, std) with std = gain * sqrt(2 / (fan_in + fan_out)).
void xavier_normal(Tensor& t, double gain, Rng& rng);
void xavier_normal(Tensor& t, double gain = 1);
/// U(-b, b) with b = gain(nonlinearity, a) * sqrt(3 / fan).
void kaiming_uniform(Tensor& t, double a, FanMode mode, std::string_view nonlinearity, Rng& rng);
void kaiming_uniform(Tensor& t, double a = 0, FanMode mode = FanMode::fan_in,
                     std::string_view nonlinearity = "leaky_relu");
/// N(0, std) with std = gain(nonlinearity, a) / sqrt(fan).
void kaiming_normal(Tensor& t, double a, FanMode mode, std::string_view nonlinearity, Rng& rng);
void kaiming_normal(Tensor& t, double a = 0, FanMode mode = FanMode::fan_in,
                    std::string_view nonlinearity = "leaky_relu");

} // namespace init
} // namespace gg::nn
