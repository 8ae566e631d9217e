// The transformer's layers written with autodiff's ops, so that backward comes for free: LayerNorm
// as the fused layer_norm op, attention as projections and the fused scaled_dot_product_attention op
// (written out as products and softmax when the weights are wanted), and the encoder blocks.
#include <nn/init.hpp>
#include <nn/transformer.hpp>

#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace gg::nn {

LayerNorm::LayerNorm(std::vector<std::int64_t> normalized_shape, double eps, bool affine, DType dtype)
    : shape_(std::move(normalized_shape)), eps_(eps) {
  if (shape_.empty() || shape_.size() > static_cast<std::size_t>(Shape::max_rank))
    throw ValueError(fmt::format("LayerNorm: normalized_shape must have 1 to {} dimensions, got {}",
                                 Shape::max_rank, shape_.size()));
  for (std::int64_t d : shape_)
    if (d <= 0)
      throw ValueError(
          fmt::format("LayerNorm: normalized_shape [{}] must be positive", fmt::join(shape_, ", ")));
  if (!(eps >= 0)) throw ValueError(fmt::format("LayerNorm: eps must be >= 0, got {}", eps));
  if (affine) {
    weight = register_parameter("weight", Tensor::ones(Shape(shape_), dtype));
    bias = register_parameter("bias", Tensor::zeros(Shape(shape_), dtype));
  }
}

LayerNorm::LayerNorm(std::int64_t normalized_shape, double eps, bool affine, DType dtype)
    : LayerNorm(std::vector<std::int64_t>{normalized_shape}, eps, affine, dtype) {}

Var LayerNorm::forward(const Var& x) {
  const Shape s = x.shape();
  const int k = static_cast<int>(shape_.size());
  bool fits = s.rank() >= k;
  for (int i = 0; fits && i < k; ++i) fits = s[s.rank() - k + i] == shape_[static_cast<std::size_t>(i)];
  if (!fits)
    throw ShapeError(fmt::format("{}: expected input [*, {}], got shape {}", describe(),
                                 fmt::join(shape_, ", "), s.str()));
  return layer_norm(x, shape_, weight, bias, eps_);
}

std::string LayerNorm::describe() const {
  return fmt::format("LayerNorm([{}], eps={}{})", fmt::join(shape_, ", "), eps_,
                     weight.defined() ? "" : ", elementwise_affine=false");
}

namespace {

/// [rows, cols] with 1 where j > i: causal attention's boolean mask, top-left aligned as
/// torch.nn.functional.scaled_dot_product_attention's is_causal.
Tensor causal_values(std::int64_t rows, std::int64_t cols, DType dtype) {
  Tensor m = Tensor::zeros({rows, cols}, dtype);
  for (std::int64_t i = 0; i < rows; ++i)
    for (std::int64_t j = i + 1; j < cols; ++j) m.set_flat(i * cols + j, 1);
  return m;
}

} // namespace

Mask causal_mask(std::int64_t length) {
  if (length < 0) throw ValueError(fmt::format("causal_mask: length must be >= 0, got {}", length));
  return Mask::boolean(causal_values(length, length, f64));
}

MultiheadAttention::MultiheadAttention(std::int64_t embed_dim, std::int64_t num_heads, double dropout,
                                       bool bias, bool batch_first, DType dtype, std::uint64_t seed)
    : embed_dim(embed_dim), num_heads(num_heads), dropout_(dropout), batch_first_(batch_first), rng_(seed) {
  if (embed_dim <= 0 || num_heads <= 0)
    throw ValueError(fmt::format(
        "MultiheadAttention: embed_dim and num_heads must be positive, got {} and {}", embed_dim, num_heads));
  if (embed_dim % num_heads != 0)
    throw ValueError(fmt::format("MultiheadAttention: embed_dim {} is not divisible by num_heads {}",
                                 embed_dim, num_heads));
  if (!(dropout >= 0 && dropout <= 1))
    throw ValueError(fmt::format("MultiheadAttention: dropout must be in [0, 1], got {}", dropout));
  // PyTorch's order of drawing: out_proj as a Linear, then in_proj_weight by xavier_uniform; both
  // biases start at zero.
  auto out = std::make_shared<Linear>(embed_dim, embed_dim, bias, dtype);
  Tensor w = Tensor::empty({3 * embed_dim, embed_dim}, dtype);
  init::xavier_uniform(w);
  in_proj_weight = register_parameter("in_proj_weight", w);
  if (bias) {
    in_proj_bias = register_parameter("in_proj_bias", Tensor::zeros({3 * embed_dim}, dtype));
    out->bias.value().fill(0);
  }
  out_proj = register_module("out_proj", out);
}

std::string MultiheadAttention::describe() const {
  return fmt::format("MultiheadAttention(embed_dim={}, num_heads={}{}{}{})", embed_dim, num_heads,
                     dropout_ != 0 ? fmt::format(", dropout={}", dropout_) : "",
                     in_proj_bias.defined() ? "" : ", bias=false", batch_first_ ? ", batch_first=true" : "");
}

Var MultiheadAttention::forward(const Var& x) {
  return attend(x, x, x, {.need_weights = false}).first;
}

std::pair<Var, Var> MultiheadAttention::operator()(const Var& query, const Var& key, const Var& value,
                                                   const AttentionArgs& args) {
  return scoped([&] { return attend(query, key, value, args); });
}

namespace {

/// A mask as an additive constant of dtype: boolean 1 -> -inf, 0 -> 0 (its values checked);
/// additive as given (its dtype checked against the query's).
Tensor additive(const Mask& mask, DType dtype, std::string_view what, const std::string& layer) {
  if (mask.kind == Mask::Kind::additive) {
    if (mask.values.dtype() != dtype)
      throw ValueError(fmt::format("{}: {} is an additive {} mask but the query is {} (convert it, or use a "
                                   "boolean mask)",
                                   layer, what, dtype_name(mask.values.dtype()), dtype_name(dtype)));
    return mask.values;
  }
  Tensor out = Tensor::empty(mask.values.shape(), dtype);
  for (std::int64_t i = 0; i < out.numel(); ++i) {
    const double v = mask.values.flat(i);
    if (v != 0 && v != 1)
      throw ValueError(fmt::format("{}: {} is boolean but holds {} at element {} (a boolean mask holds 0 to "
                                   "attend, 1 to mask out)",
                                   layer, what, v, i));
    out.set_flat(i, v != 0 ? -std::numeric_limits<double>::infinity() : 0.0);
  }
  return out;
}

} // namespace

std::pair<Var, Var> MultiheadAttention::attend(const Var& query, const Var& key, const Var& value,
                                               const AttentionArgs& args) {
  const std::string name = describe();
  const std::int64_t e = embed_dim, heads = num_heads, d = e / heads;
  const Shape qs = query.shape(), ks = key.shape(), vs = value.shape();
  const bool batched = qs.rank() == 3;
  if ((qs.rank() != 2 && qs.rank() != 3) || qs[qs.rank() - 1] != e)
    throw ShapeError(fmt::format("{}: expected query {} (or [L, {}] unbatched), got shape {}", name,
                                 batch_first_ ? fmt::format("[N, L, {}]", e) : fmt::format("[L, N, {}]", e),
                                 e, qs.str()));
  const int b = batch_first_ ? 0 : 1; // the batch axis of batched inputs
  const bool keys_fit =
      ks.rank() == qs.rank() && ks == vs && ks[ks.rank() - 1] == e && (!batched || ks[b] == qs[b]);
  if (!keys_fit)
    throw ShapeError(
        fmt::format("{}: key of shape {} and value of shape {} do not fit query of shape {}: both "
                    "must be {}",
                    name, ks.str(), vs.str(), qs.str(),
                    !batched       ? fmt::format("[S, {}]", e)
                    : batch_first_ ? fmt::format("[{}, S, {}]", qs[0], e)
                                   : fmt::format("[S, {}, {}]", qs[1], e)));
  const DType dtype = in_proj_weight.dtype();
  for (const auto& [v, what] :
       {std::pair{&query, "query"}, std::pair{&key, "key"}, std::pair{&value, "value"}})
    if (v->dtype() != dtype)
      throw ValueError(fmt::format("{}: the {} is {} but the parameters are {}", name, what,
                                   dtype_name(v->dtype()), dtype_name(dtype)));
  const std::int64_t n = batched ? qs[b] : 1, l = qs[batched ? 1 - b : 0], s = ks[batched ? 1 - b : 0];

  // The masks as additive constants that broadcast against the scores [N, heads, L, S].
  std::vector<Tensor> masks;
  const bool causal_only = !args.attn_mask.defined() && args.is_causal && !args.key_padding_mask.defined();
  // The causal triangle as a mask tensor only where it is added to others or the weights are
  // wanted; alone, it is the fused op's flag.
  const Mask attn_mask = args.attn_mask.defined() || !args.is_causal || (causal_only && !args.need_weights)
                             ? args.attn_mask
                             : Mask::boolean(causal_values(l, s, dtype));
  if (attn_mask.defined()) {
    const Shape ms = attn_mask.values.shape();
    const Shape per_head = batched ? Shape{n * heads, l, s} : Shape{heads, l, s};
    if (!(ms == Shape{l, s}) && !(ms == per_head))
      throw ShapeError(
          fmt::format("{}: attn_mask of shape {} does not fit query of shape {} and key of shape {}: "
                      "expected [L, S] = {} or {} = {}",
                      name, ms.str(), qs.str(), ks.str(), Shape{l, s}.str(),
                      batched ? "[N * num_heads, L, S]" : "[num_heads, L, S]", per_head.str()));
    masks.push_back(additive(attn_mask, dtype, "attn_mask", name)
                        .reshape({ms.rank() == 2 ? 1 : n, ms.rank() == 2 ? 1 : heads, l, s}));
  }
  if (args.key_padding_mask.defined()) {
    const Shape ms = args.key_padding_mask.values.shape();
    const Shape want = batched ? Shape{n, s} : Shape{s};
    if (!(ms == want))
      throw ShapeError(
          fmt::format("{}: key_padding_mask of shape {} does not fit key of shape {}: expected {}", name,
                      ms.str(), ks.str(), want.str()));
    masks.push_back(additive(args.key_padding_mask, dtype, "key_padding_mask", name).reshape({n, 1, 1, s}));
  }

  const double p = is_training() ? dropout_ : 0;
  // Self-attention (one input as query, key and value) with no weights wanted, no dropout and no mask
  // but the causal flag: one in-projection [N, L, 3E] and one op reading its heads in place.
  if (query.node() == key.node() && key.node() == value.node() && masks.empty() && !args.need_weights &&
      p == 0 && (batch_first_ || !batched)) {
    const Var qkv = linear(batched ? query : reshape(query, {1, l, e}), in_proj_weight, in_proj_bias);
    const Var out = (*out_proj)(packed_self_attention(qkv, heads, causal_only));
    return {batched ? out : reshape(out, {l, e}), Var()};
  }
  // [N, heads, rows, d] from an input laid out as given: project, split the heads.
  const auto heads_of = [&](const Var& x, std::int64_t rows, std::int64_t part) {
    const Var bm = batched ? (batch_first_ ? x : transpose(x, 0, 1)) : reshape(x, {1, rows, e});
    const Var w = slice(in_proj_weight, 0, part * e, (part + 1) * e);
    const Var bias = in_proj_bias.defined() ? slice(in_proj_bias, 0, part * e, (part + 1) * e) : Var();
    return transpose(reshape(linear(bm, w, bias), {n, rows, heads, d}), 1, 2);
  };
  const Var q = heads_of(query, l, 0), k = heads_of(key, s, 1), v = heads_of(value, s, 2);
  Var attn, attended;
  if (args.need_weights) { // the weights are wanted: written out
    Var scores = matmul(q / std::sqrt(static_cast<double>(d)), transpose(k, -2, -1));
    for (const Tensor& m : masks) scores = scores + Var::constant(m);
    attn = gg::dropout(softmax(scores, -1), p, true, rng_);
    attended = matmul(attn, v);
  } else if (causal_only) { // one fused op, the causal triangle its flag
    attended = scaled_dot_product_attention(q, k, v, {}, p, true, std::nullopt, &rng_);
  } else { // one fused op, the masks added into one constant
    Tensor mask;
    for (const Tensor& m : masks) mask = mask.defined() ? kernel::binary(kernel::Binary::add, mask, m) : m;
    attended = scaled_dot_product_attention(q, k, v,
                                            mask.defined() ? AttentionMask::additive(mask) : AttentionMask{},
                                            p, false, std::nullopt, &rng_);
  }
  const Var context = reshape(transpose(attended, 1, 2), {n, l, e});
  const Var out = (*out_proj)(context);
  const Var output = batched ? (batch_first_ ? out : transpose(out, 0, 1)) : reshape(out, {l, e});
  if (!args.need_weights) return {output, Var()};
  Var weights = args.average_attn_weights ? mean(attn, 1) : attn;
  if (!batched)
    weights = args.average_attn_weights ? reshape(weights, {l, s}) : reshape(weights, {heads, l, s});
  return {output, weights};
}

TransformerEncoderLayer::TransformerEncoderLayer(std::int64_t d_model, std::int64_t nhead,
                                                 std::int64_t dim_feedforward, double dropout_p,
                                                 std::string activation, double layer_norm_eps,
                                                 bool batch_first, bool norm_first, DType dtype,
                                                 std::uint64_t seed)
    : d_model_(d_model), nhead_(nhead), dim_feedforward_(dim_feedforward), dropout_p_(dropout_p),
      eps_(layer_norm_eps), activation_(std::move(activation)), batch_first_(batch_first),
      norm_first_(norm_first), dtype_(dtype), seed_(seed) {
  if (activation_ != "relu" && activation_ != "gelu")
    throw ValueError(
        fmt::format("TransformerEncoderLayer: activation '{}' is not available (relu or gelu)", activation_));
  // PyTorch's order of children (and of drawing initial weights).
  self_attn = register_module("self_attn", std::make_shared<MultiheadAttention>(
                                               d_model, nhead, dropout_p, true, batch_first, dtype, seed));
  linear1 = register_module("linear1", std::make_shared<Linear>(d_model, dim_feedforward, true, dtype));
  dropout = register_module("dropout", std::make_shared<Dropout>(dropout_p, seed + 1));
  linear2 = register_module("linear2", std::make_shared<Linear>(dim_feedforward, d_model, true, dtype));
  norm1 = register_module("norm1", std::make_shared<LayerNorm>(d_model, layer_norm_eps, true, dtype));
  norm2 = register_module("norm2", std::make_shared<LayerNorm>(d_model, layer_norm_eps, true, dtype));
  dropout1 = register_module("dropout1", std::make_shared<Dropout>(dropout_p, seed + 2));
  dropout2 = register_module("dropout2", std::make_shared<Dropout>(dropout_p, seed + 3));
}

std::string TransformerEncoderLayer::describe() const {
  return fmt::format("TransformerEncoderLayer(d_model={}, nhead={}, dim_feedforward={}, dropout={}{}{}{})",
                     d_model_, nhead_, dim_feedforward_, dropout_p_,
                     activation_ == "relu" ? "" : ", activation=" + activation_,
                     batch_first_ ? ", batch_first=true" : "", norm_first_ ? ", norm_first=true" : "");
}

std::shared_ptr<TransformerEncoderLayer> TransformerEncoderLayer::clone() const {
  auto copy =
      std::make_shared<TransformerEncoderLayer>(d_model_, nhead_, dim_feedforward_, dropout_p_, activation_,
                                                eps_, batch_first_, norm_first_, dtype_, seed_);
  copy->load_state_dict(state_dict());
  copy->train(is_training());
  return copy;
}

Var TransformerEncoderLayer::forward(const Var& src) {
  return encode(src, {}, {}, false);
}

Var TransformerEncoderLayer::operator()(const Var& src, const Mask& src_mask,
                                        const Mask& src_key_padding_mask, bool is_causal) {
  return scoped([&] { return encode(src, src_mask, src_key_padding_mask, is_causal); });
}

Var TransformerEncoderLayer::encode(const Var& src, const Mask& src_mask, const Mask& src_key_padding_mask,
                                    bool is_causal) {
  const Shape s = src.shape();
  if ((s.rank() != 2 && s.rank() != 3) || s[s.rank() - 1] != d_model_)
    throw ShapeError(
        fmt::format("{}: expected src {} (or [L, {}] unbatched), got shape {}", describe(),
                    batch_first_ ? fmt::format("[N, L, {}]", d_model_) : fmt::format("[L, N, {}]", d_model_),
                    d_model_, s.str()));
  const AttentionArgs args{.key_padding_mask = src_key_padding_mask,
                           .need_weights = false,
                           .attn_mask = src_mask,
                           .is_causal = is_causal};
  const auto attention = [&](const Var& x) { return (*dropout1)((*self_attn)(x, x, x, args).first); };
  const auto feed_forward = [&](const Var& x) {
    const Var h = (*linear1)(x);
    return (*dropout2)((*linear2)((*dropout)(activation_ == "gelu" ? gelu(h) : relu(h))));
  };
  if (norm_first_) {
    const Var x = src + attention((*norm1)(src));
    return x + feed_forward((*norm2)(x));
  }
  const Var x = (*norm1)(src + attention(src));
  return (*norm2)(x + feed_forward(x));
}

TransformerEncoder::TransformerEncoder(const TransformerEncoderLayer& encoder_layer, std::int64_t num_layers,
                                       std::shared_ptr<LayerNorm> final_norm) {
  if (num_layers <= 0)
    throw ValueError(fmt::format("TransformerEncoder: num_layers must be positive, got {}", num_layers));
  layers = register_module("layers", std::make_shared<Sequential>());
  for (std::int64_t i = 0; i < num_layers; ++i) layers->push_back(encoder_layer.clone());
  if (final_norm) norm = register_module("norm", std::move(final_norm));
}

std::string TransformerEncoder::describe() const {
  return fmt::format("TransformerEncoder(num_layers={}{})", layers->size(), norm ? ", norm" : "");
}

Var TransformerEncoder::forward(const Var& src) {
  return encode(src, {}, {}, false);
}

Var TransformerEncoder::operator()(const Var& src, const Mask& mask, const Mask& src_key_padding_mask,
                                   bool is_causal) {
  return scoped([&] { return encode(src, mask, src_key_padding_mask, is_causal); });
}

Var TransformerEncoder::encode(const Var& src, const Mask& mask, const Mask& src_key_padding_mask,
                               bool is_causal) {
  Var x = src;
  for (const auto& [name, layer] : layers->children())
    x = static_cast<TransformerEncoderLayer&>(*layer)(x, mask, src_key_padding_mask, is_causal);
  return norm ? (*norm)(x) : x;
}

} // namespace gg::nn
