// The transformer's layers as torch.nn: LayerNorm and MultiheadAttention (with attention masks as
// PyTorch's, boolean or additive). Constructor arguments, defaults, state-dict names and
// initialisation are PyTorch's.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <nn/layers.hpp>
#include <nn/module.hpp>

namespace gg::nn {

/// Normalisation over the trailing dimensions given by normalized_shape (biased variance, as
/// PyTorch), then weight (ones) and bias (zeros) of that shape when elementwise_affine. Written as
/// the composition mean / subtract / mean of squares / divide by sqrt(var + eps).
class LayerNorm : public Module {
public:
  LayerNorm(std::vector<std::int64_t> normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
            DType dtype = f64);
  /// LayerNorm({2, 3}): the braces pick this constructor.
  LayerNorm(std::initializer_list<std::int64_t> normalized_shape, double eps = 1e-5,
            bool elementwise_affine = true, DType dtype = f64)
      : LayerNorm(std::vector<std::int64_t>(normalized_shape), eps, elementwise_affine, dtype) {}
  /// LayerNorm({features}, ...).
  explicit LayerNorm(std::int64_t normalized_shape, double eps = 1e-5, bool elementwise_affine = true,
                     DType dtype = f64);
  Var forward(const Var& x) override;
  std::string describe() const override;
  Var weight, bias; ///< undefined without elementwise_affine

private:
  std::vector<std::int64_t> shape_;
  double eps_;
};

/// An attention mask as PyTorch takes it. Boolean: nonzero marks a position that may not be
/// attended to (its values must be 0 or 1). Additive: added to the attention scores (-inf forbids);
/// its dtype must be the query's. A default-constructed Mask is no mask.
struct Mask {
  enum class Kind { none, boolean, additive };
  /// No mask.
  Mask() = default;
  Mask(Kind kind, Tensor values) : kind(kind), values(std::move(values)) {}
  /// A boolean mask: 1 (true) = masked out.
  static Mask boolean(const Tensor& values) { return {Kind::boolean, values}; }
  /// A float mask added to the scores.
  static Mask additive(const Tensor& values) { return {Kind::additive, values}; }
  bool defined() const { return kind != Kind::none; }

  Kind kind = Kind::none;
  Tensor values;
};

/// The boolean mask of causal attention over L positions: [L, L], 1 above the diagonal (position i
/// may attend to j <= i), as torch.nn.Transformer.generate_square_subsequent_mask (whose -inf
/// marks the same places).
Mask causal_mask(std::int64_t length);

/// The optional arguments of MultiheadAttention's call, in PyTorch's order:
/// `mha(q, k, v, {.key_padding_mask = nn::Mask::boolean(pad), .need_weights = false})`.
struct AttentionArgs {
  Mask key_padding_mask{};          ///< [N, S] ([S] unbatched): keys to ignore
  bool need_weights = true;         ///< also return the attention weights
  Mask attn_mask{};                 ///< [L, S] or [N * num_heads, L, S] ([num_heads, L, S] unbatched)
  bool average_attn_weights = true; ///< weights averaged over heads [N, L, S], else [N, num_heads, L, S]
  /// Causal attention: without attn_mask, causal_mask(L) is applied; with one, it is a hint that
  /// attn_mask is causal and attn_mask is used as given (as PyTorch 2's MultiheadAttention).
  bool is_causal = false;
};

/// Multi-head scaled dot-product attention: in_proj_weight [3E, E] (xavier_uniform), in_proj_bias
/// [3E] (zeros), out_proj.weight [E, E] (Linear's initialisation), out_proj.bias [E] (zeros).
/// Query [L, N, E], key and value [S, N, E] ([N, L, E] with batch_first; [L, E] unbatched). Dropout
/// (training only) applies to the attention weights. Written as a composition of linear, reshape,
/// transpose, matmul, softmax and a constant additive mask.
class MultiheadAttention : public Module {
public:
  MultiheadAttention(std::int64_t embed_dim, std::int64_t num_heads, double dropout = 0, bool bias = true,
                     bool batch_first = false, DType dtype = f64, std::uint64_t seed = 0);
  using Module::operator();
  /// Self-attention: the output of attention with query = key = value = x.
  Var forward(const Var& x) override;
  /// (output, attention weights): the weights undefined when need_weights is false.
  std::pair<Var, Var> operator()(const Var& query, const Var& key, const Var& value,
                                 const AttentionArgs& args = {});
  std::string describe() const override;

  Var in_proj_weight, in_proj_bias; ///< in_proj_bias undefined without bias
  std::shared_ptr<Linear> out_proj;
  std::int64_t embed_dim, num_heads;

private:
  std::pair<Var, Var> attend(const Var& query, const Var& key, const Var& value, const AttentionArgs& args);
  double dropout_;
  bool batch_first_;
  Rng rng_;
};

} // namespace gg::nn
