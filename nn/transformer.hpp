// The transformer's layers as torch.nn: LayerNorm, MultiheadAttention (with attention masks as
// PyTorch's, boolean or additive), TransformerEncoderLayer and TransformerEncoder. Constructor
// arguments, defaults, state-dict names and initialisation are PyTorch's.
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
/// PyTorch), then weight (ones) and bias (zeros) of that shape when elementwise_affine: one
/// gg::layer_norm node.
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
/// (training only) applies to the attention weights. Projections by linear, then one
/// scaled_dot_product_attention op (its masks added into one constant, or its causal flag); with
/// need_weights the weights are written out as matmul and softmax, as PyTorch's math path.
/// Self-attention (one Var as query, key and value; batch_first or unbatched) with no mask but the
/// causal flag, no weights wanted and no dropout: one linear to [N, L, 3E] and one
/// packed_self_attention op reading the heads in place.
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

/// A transformer encoder block as torch.nn.TransformerEncoderLayer: self-attention then a
/// feed-forward network (linear1, activation, dropout, linear2), each added to its input and
/// normalised after (post-norm, PyTorch's default) or normalised before (norm_first). Children and
/// state-dict names are PyTorch's: self_attn.*, linear1, dropout, linear2, norm1, norm2, dropout1,
/// dropout2. The activation is "relu" or "gelu" (exact, as PyTorch's F.gelu); another is refused.
class TransformerEncoderLayer : public Module {
public:
  TransformerEncoderLayer(std::int64_t d_model, std::int64_t nhead, std::int64_t dim_feedforward = 2048,
                          double dropout = 0.1, std::string activation = "relu", double layer_norm_eps = 1e-5,
                          bool batch_first = false, bool norm_first = false, DType dtype = f64,
                          std::uint64_t seed = 0);
  using Module::operator();
  /// The block applied to src [L, N, d_model] ([N, L, d_model] with batch_first, [L, d_model]
  /// unbatched) without masks.
  Var forward(const Var& src) override;
  /// The block with src_mask (as MultiheadAttention's attn_mask), src_key_padding_mask and is_causal.
  Var operator()(const Var& src, const Mask& src_mask, const Mask& src_key_padding_mask = {},
                 bool is_causal = false);
  std::string describe() const override;
  /// A new layer with the same arguments, weights and mode (PyTorch's copy.deepcopy of a layer).
  std::shared_ptr<TransformerEncoderLayer> clone() const;

  std::shared_ptr<MultiheadAttention> self_attn;
  std::shared_ptr<Linear> linear1, linear2;
  std::shared_ptr<Dropout> dropout, dropout1, dropout2;
  std::shared_ptr<LayerNorm> norm1, norm2;

private:
  Var encode(const Var& src, const Mask& src_mask, const Mask& src_key_padding_mask, bool is_causal);
  std::int64_t d_model_, nhead_, dim_feedforward_;
  double dropout_p_, eps_;
  std::string activation_;
  bool batch_first_, norm_first_;
  DType dtype_;
  std::uint64_t seed_;
};

/// num_layers copies of an encoder layer applied in turn (layers.0.*, layers.1.*, ...: each starts
/// with the given layer's weights, as PyTorch's deep copies), then an optional final norm ("norm").
class TransformerEncoder : public Module {
public:
  TransformerEncoder(const TransformerEncoderLayer& encoder_layer, std::int64_t num_layers,
                     std::shared_ptr<LayerNorm> norm = nullptr);
  using Module::operator();
  Var forward(const Var& src) override;
  /// The layers with a mask, a key padding mask and is_causal, as TransformerEncoderLayer's call.
  Var operator()(const Var& src, const Mask& mask, const Mask& src_key_padding_mask = {},
                 bool is_causal = false);
  std::string describe() const override;

  std::shared_ptr<Sequential> layers; ///< a container here (PyTorch's ModuleList): called with the masks
  std::shared_ptr<LayerNorm> norm;    ///< null without a final norm

private:
  Var encode(const Var& src, const Mask& mask, const Mask& src_key_padding_mask, bool is_causal);
};

} // namespace gg::nn
