// The transformer's layers: LayerNorm's and MultiheadAttention's outputs and gradients against PyTorch
// (tests/nn/data/make_seq_reference.py -> transformer_reference.safetensors, weights loaded by name)
// in float64 and float32 and against finite differences; names, defaults and bad input.
#include "seq_reference.hpp"

#include <nn/nn.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;
using namespace gg::test;

namespace {

const gg::safetensors::File& transformer_reference() {
  return reference_file("transformer_reference.safetensors");
}

/// The reference cases of a kind.
std::vector<Case> cases_of(const std::string& kind) {
  std::vector<Case> out;
  for (const auto& [name, options] : transformer_reference().metadata) {
    Case c(transformer_reference(), name);
    if (c.text("kind") == kind) out.push_back(std::move(c));
  }
  return out;
}

std::shared_ptr<nn::LayerNorm> make_layer_norm(const Case& c, gg::DType dtype) {
  std::vector<std::int64_t> shape;
  std::istringstream in(c.text("shape"));
  for (std::string d; std::getline(in, d, ',');) shape.push_back(std::stoll(d));
  return std::make_shared<nn::LayerNorm>(shape, c.number("eps"), c.flag("affine"), dtype);
}

} // namespace

TEST_CASE("transformer: LayerNorm equals PyTorch's output and gradients in float64 and float32, and finite "
          "differences") {
  const std::vector<Case> cases = cases_of("layer_norm");
  REQUIRE(cases.size() == 4);
  for (const Case& c : cases)
    for (auto [dtype, tolerance] : {std::pair{gg::f64, 1e-10}, std::pair{gg::f32, 1e-4}}) {
      INFO("case " << c.name << " (" << c.options << ") in " << gg::dtype_name(dtype));
      auto m = make_layer_norm(c, dtype);
      m->load_state_dict(c.state_dict(dtype));
      Var x(c.tensor("x").to(dtype));
      const Var y = (*m)(x);
      CHECK(max_relative_error(y.value(), c.tensor("y")) < tolerance);
      gg::sum(y * Var::constant(c.tensor("r_y").to(dtype))).backward();
      CHECK(max_relative_error(x.grad(), c.tensor("g.x")) < tolerance);
      for (const auto& [k, p] : m->named_parameters()) {
        INFO("gradient of " << k);
        CHECK(max_relative_error(p.grad(), c.tensor("g." + k)) < tolerance);
      }
      if (dtype == gg::f64) {
        std::vector<std::pair<std::string, Var>> leaves{{"x", x}};
        for (auto& named : m->named_parameters()) leaves.push_back(named);
        check_gradients([&] { return gg::sum((*m)(x)*Var::constant(c.tensor("r_y"))); }, leaves);
      }
    }
}

TEST_CASE("transformer: LayerNorm's defaults, names and bad input") {
  nn::LayerNorm ln(4);
  const auto named = ln.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "weight");
  CHECK(named[0].second.value().to_vector() == std::vector<double>{1, 1, 1, 1});
  CHECK(named[1].first == "bias");
  CHECK(named[1].second.value().to_vector() == std::vector<double>{0, 0, 0, 0});
  CHECK(ln.describe() == "LayerNorm([4], eps=1e-05)");
  CHECK(nn::LayerNorm({2, 3}, 1e-3, false).describe() ==
        "LayerNorm([2, 3], eps=0.001, elementwise_affine=false)");
  CHECK(nn::LayerNorm({2, 3}, 1e-3, false).named_parameters().empty());
  // Each row comes out with mean 0, divided by sqrt(biased variance + eps).
  const Tensor y = ln(Var::constant(Tensor({1, 2, 3, 4, -1, 0, 0, 1}, {2, 4}))).value();
  CHECK(y.flat(0) + y.flat(1) + y.flat(2) + y.flat(3) == Approx(0).margin(1e-12));
  CHECK(y.flat(4) == Approx(-1 / std::sqrt(0.5 + 1e-5)));
  CHECK_THROWS_WITH(ln(Var::constant(Tensor::zeros({2, 3}))),
                    "LayerNorm([4], eps=1e-05): expected input [*, 4], got shape [2, 3]");
  CHECK_THROWS_WITH(nn::LayerNorm({2, 3})(Var::constant(Tensor::zeros({3}))),
                    "LayerNorm([2, 3], eps=1e-05): expected input [*, 2, 3], got shape [3]");
  CHECK_THROWS_WITH(nn::LayerNorm(0), "LayerNorm: normalized_shape [0] must be positive");
  CHECK_THROWS_WITH(nn::LayerNorm(std::vector<std::int64_t>{}),
                    "LayerNorm: normalized_shape must have 1 to 8 dimensions, got 0");
  CHECK_THROWS_WITH(nn::LayerNorm(3, -1.0), "LayerNorm: eps must be >= 0, got -1");
}

namespace {

/// A mask of the reference case (boolean or additive by the case's option), or none.
nn::Mask mask_of(const Case& c, const std::string& what, gg::DType dtype) {
  const std::string kind = c.text(what);
  if (kind == "none") return {};
  if (kind.starts_with("bool")) return nn::Mask::boolean(c.tensor(what));
  return nn::Mask::additive(c.tensor(what).to(dtype));
}

/// Runs a MultiheadAttention reference case in dtype against PyTorch's numbers (tolerance > 0), or
/// checks its gradients against finite differences (tolerance 0, float64).
void check_attention_case(const Case& c, gg::DType dtype, double tolerance) {
  INFO("case " << c.name << " (" << c.options << ") in " << gg::dtype_name(dtype));
  nn::MultiheadAttention m(c.integer("embed_dim"), c.integer("num_heads"), c.number("dropout"),
                           c.flag("bias"), c.flag("batch_first"), dtype);
  m.load_state_dict(c.state_dict(dtype));
  m.train(c.flag("train"));
  const nn::AttentionArgs args{.key_padding_mask = mask_of(c, "key_padding_mask", dtype),
                               .attn_mask = mask_of(c, "attn_mask", dtype),
                               .average_attn_weights = c.flag("average"),
                               .is_causal = c.flag("is_causal")};
  std::vector<std::pair<std::string, Var>> leaves;
  for (const char* k : {"x", "query", "key", "value"})
    if (c.has(k)) leaves.emplace_back(k, Var(c.tensor(k).to(dtype).clone()));
  const auto call = [&] {
    const Var q = leaves[0].second;
    return c.flag("self") ? m(q, q, q, args) : m(q, leaves[1].second, leaves[2].second, args);
  };
  const auto loss = [&](const std::pair<Var, Var>& r) {
    return gg::sum(r.first * Var::constant(c.tensor("r_y").to(dtype))) +
           gg::sum(r.second * Var::constant(c.tensor("r_w").to(dtype)));
  };
  if (tolerance == 0) {
    for (auto& named : m.named_parameters()) leaves.push_back(named);
    check_gradients([&] { return loss(call()); }, leaves);
    return;
  }
  const auto [y, w] = call();
  CHECK(max_relative_error(y.value(), c.tensor("y")) < tolerance);
  CHECK(max_relative_error(w.value(), c.tensor("w")) < tolerance);
  loss({y, w}).backward();
  for (const auto& [k, v] : leaves) {
    INFO("gradient of " << k);
    CHECK(max_relative_error(v.grad(), c.tensor("g." + k)) < tolerance);
  }
  for (const auto& [k, p] : m.named_parameters()) {
    INFO("gradient of " << k);
    CHECK(max_relative_error(p.grad(), c.tensor("g." + k)) < tolerance);
  }
  if (c.flag("self") && !c.flag("is_causal")) { // the one-input call: self-attention's output
    m.zero_grad();
    CHECK(max_relative_error(m(leaves[0].second).value(), c.tensor("y")) < tolerance);
  }
}

} // namespace

TEST_CASE(
    "transformer: MultiheadAttention equals PyTorch's output, weights and gradients in float64 and float32") {
  const std::vector<Case> cases = cases_of("mha");
  REQUIRE(cases.size() == 7);
  for (const Case& c : cases) {
    check_attention_case(c, gg::f64, 1e-10);
    check_attention_case(c, gg::f32, 1e-4);
  }
}

TEST_CASE("transformer: MultiheadAttention's gradients match finite differences") {
  for (const Case& c : cases_of("mha"))
    if (!c.flag("train")) check_attention_case(c, gg::f64, 0);
}

TEST_CASE("transformer: MultiheadAttention's names, initialisation, shapes and causal mask") {
  nn::manual_seed(1);
  nn::MultiheadAttention mha(8, 2);
  std::vector<std::string> names;
  for (const auto& [name, p] : mha.named_parameters()) names.push_back(name + " " + p.shape().str());
  CHECK(names == std::vector<std::string>{"in_proj_weight [24, 8]", "in_proj_bias [24]",
                                          "out_proj.weight [8, 8]", "out_proj.bias [8]"});
  const Tensor w = mha.in_proj_weight.value();
  const double bound = std::sqrt(6.0 / (8 + 24)); // xavier_uniform of [3E, E]
  double lo = 1, hi = -1;
  for (std::int64_t i = 0; i < w.numel(); ++i) lo = std::min(lo, w.flat(i)), hi = std::max(hi, w.flat(i));
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(hi - lo > bound);
  CHECK(mha.in_proj_bias.value().to_vector() == std::vector<double>(24, 0.0));
  CHECK(mha.out_proj->bias.value().to_vector() == std::vector<double>(8, 0.0));
  CHECK(nn::MultiheadAttention(4, 1, 0, false).named_parameters().size() == 2);
  CHECK(mha.describe() == "MultiheadAttention(embed_dim=8, num_heads=2)");

  gg::Rng rng(3);
  const Var q = Var::constant(Tensor::randn({5, 3, 8}, rng)),
            kv = Var::constant(Tensor::randn({7, 3, 8}, rng));
  auto [out, weights] = mha(q, kv, kv);
  CHECK(out.shape() == gg::Shape{5, 3, 8});
  CHECK(weights.shape() == gg::Shape{3, 5, 7});
  auto [out2, per_head] = mha(q, kv, kv, {.average_attn_weights = false});
  CHECK(per_head.shape() == gg::Shape{3, 2, 5, 7});
  CHECK(!mha(q, kv, kv, {.need_weights = false}).second.defined());
  CHECK(mha(q).shape() == gg::Shape{5, 3, 8});
  // Rows of the weights sum to one; causal attention gives no weight to later positions.
  auto [causal_out, causal] = mha(q, q, q, {.is_causal = true});
  const Tensor cw = causal.value(); // [3, 5, 5]
  for (std::int64_t i = 0; i < 5; ++i) {
    double row = 0;
    for (std::int64_t j = 0; j < 5; ++j) {
      row += cw.flat(i * 5 + j);
      if (j > i) CHECK(cw.flat(i * 5 + j) == 0);
    }
    CHECK(row == Approx(1));
  }
  const Var explicit_mask = mha(q, q, q, {.attn_mask = nn::causal_mask(5)}).first;
  CHECK(max_relative_error(explicit_mask.value(), causal_out.value()) == 0);
  CHECK(nn::causal_mask(3).values.to_vector() == std::vector<double>{0, 1, 1, 0, 0, 1, 0, 0, 0});
  // batch_first and unbatched layouts give the same numbers.
  nn::MultiheadAttention bf(8, 2, 0, true, true);
  bf.load_state_dict(mha.state_dict());
  const Tensor a = mha(q).value(), b = gg::transpose(bf(gg::transpose(q, 0, 1)), 0, 1).value();
  CHECK(max_relative_error(a, b) < 1e-14);
  const Var q0 = gg::select(q, 1, 0);
  CHECK(max_relative_error(mha(q0).value(), gg::select(mha(q), 1, 0).value()) < 1e-14);
}

TEST_CASE("transformer: MultiheadAttention's bad input names the shapes, the masks and their dtypes") {
  CHECK_THROWS_WITH(nn::MultiheadAttention(10, 3),
                    "MultiheadAttention: embed_dim 10 is not divisible by num_heads 3");
  CHECK_THROWS_AS(nn::MultiheadAttention(0, 1), gg::ValueError);
  CHECK_THROWS_WITH(nn::MultiheadAttention(4, 2, 2.0),
                    "MultiheadAttention: dropout must be in [0, 1], got 2");
  nn::MultiheadAttention mha(4, 2);
  const Var q = Var::constant(Tensor::zeros({3, 2, 4})), kv = Var::constant(Tensor::zeros({5, 2, 4}));
  CHECK_THROWS_WITH(
      mha(Var::constant(Tensor::zeros({3, 2, 5}))),
      "MultiheadAttention(embed_dim=4, num_heads=2): expected query [L, N, 4] (or [L, 4] unbatched), "
      "got shape [3, 2, 5]");
  CHECK_THROWS_WITH(
      mha(q, Var::constant(Tensor::zeros({5, 3, 4})), Var::constant(Tensor::zeros({5, 3, 4}))),
      "MultiheadAttention(embed_dim=4, num_heads=2): key of shape [5, 3, 4] and value of shape [5, 3, 4] "
      "do not fit query of shape [3, 2, 4]: both must be [S, 2, 4]");
  CHECK_THROWS_WITH(
      mha(q, kv, Var::constant(Tensor::zeros({4, 2, 4}))),
      "MultiheadAttention(embed_dim=4, num_heads=2): key of shape [5, 2, 4] and value of shape [4, 2, 4] "
      "do not fit query of shape [3, 2, 4]: both must be [S, 2, 4]");
  CHECK_THROWS_WITH(
      mha(q, kv, kv, {.attn_mask = nn::Mask::boolean(Tensor::zeros({3, 3}))}),
      "MultiheadAttention(embed_dim=4, num_heads=2): attn_mask of shape [3, 3] does not fit query of "
      "shape [3, 2, 4] and key of shape [5, 2, 4]: expected [L, S] = [3, 5] or [N * num_heads, L, S] = "
      "[4, 3, 5]");
  CHECK_THROWS_WITH(
      mha(q, kv, kv, {.key_padding_mask = nn::Mask::boolean(Tensor::zeros({5, 2}))}),
      "MultiheadAttention(embed_dim=4, num_heads=2): key_padding_mask of shape [5, 2] does not fit key "
      "of shape [5, 2, 4]: expected [2, 5]");
  CHECK_THROWS_WITH(
      mha(q, kv, kv, {.attn_mask = nn::Mask::additive(Tensor::zeros({3, 5}, gg::f32))}),
      "MultiheadAttention(embed_dim=4, num_heads=2): attn_mask is an additive float32 mask but the "
      "query is float64 (convert it, or use a boolean mask)");
  CHECK_THROWS_WITH(
      mha(q, kv, kv, {.key_padding_mask = nn::Mask::boolean(Tensor::full({2, 5}, 0.5))}),
      "MultiheadAttention(embed_dim=4, num_heads=2): key_padding_mask is boolean but holds 0.5 at "
      "element 0 (a boolean mask holds 0 to attend, 1 to mask out)");
  CHECK_THROWS_WITH(
      mha(Var::constant(Tensor::zeros({3, 2, 4}, gg::f32))),
      "MultiheadAttention(embed_dim=4, num_heads=2): the query is float32 but the parameters are "
      "float64");
}

namespace {

/// Runs an encoder reference case in dtype against PyTorch's numbers (tolerance > 0), or checks its
/// gradients against finite differences (tolerance 0, float64).
void check_encoder_case(const Case& c, gg::DType dtype, double tolerance) {
  INFO("case " << c.name << " (" << c.options << ") in " << gg::dtype_name(dtype));
  nn::TransformerEncoderLayer layer(c.integer("d_model"), c.integer("nhead"), c.integer("dim_feedforward"),
                                    c.number("dropout"), c.text("activation"), c.number("eps"),
                                    c.flag("batch_first"), c.flag("norm_first"), dtype);
  std::shared_ptr<nn::Module> m;
  std::function<Var(const Var&)> call;
  const nn::Mask mask = mask_of(c, "src_mask", dtype), padding = mask_of(c, "key_padding_mask", dtype);
  if (c.text("kind") == "encoder") {
    auto encoder = std::make_shared<nn::TransformerEncoder>(
        layer, c.integer("num_layers"),
        c.flag("final_norm") ? std::make_shared<nn::LayerNorm>(c.integer("d_model"), 1e-5, true, dtype)
                             : nullptr);
    call = [=, &c](const Var& x) { return (*encoder)(x, mask, padding, c.flag("is_causal")); };
    m = encoder;
  } else {
    auto one = layer.clone();
    call = [=, &c](const Var& x) { return (*one)(x, mask, padding, c.flag("is_causal")); };
    m = one;
  }
  m->load_state_dict(c.state_dict(dtype));
  m->train();
  Var x(c.tensor("x").to(dtype).clone());
  const auto loss = [&] { return gg::sum(call(x) * Var::constant(c.tensor("r_y").to(dtype))); };
  if (tolerance == 0) {
    std::vector<std::pair<std::string, Var>> leaves{{"x", x}};
    for (auto& named : m->named_parameters()) leaves.push_back(named);
    check_gradients(loss, leaves);
    return;
  }
  CHECK(max_relative_error(call(x).value(), c.tensor("y")) < tolerance);
  loss().backward();
  CHECK(max_relative_error(x.grad(), c.tensor("g.x")) < tolerance);
  for (const auto& [k, p] : m->named_parameters()) {
    INFO("gradient of " << k);
    CHECK(max_relative_error(p.grad(), c.tensor("g." + k)) < tolerance);
  }
}

} // namespace

TEST_CASE("transformer: TransformerEncoderLayer and TransformerEncoder equal PyTorch's output and gradients, "
          "and finite differences") {
  std::vector<Case> cases = cases_of("encoder_layer");
  REQUIRE(cases.size() == 6);
  CHECK(std::count_if(cases.begin(), cases.end(),
                      [](const Case& c) { return c.text("activation") == "gelu"; }) == 2);
  cases.push_back(cases_of("encoder").at(0));
  for (const Case& c : cases) {
    check_encoder_case(c, gg::f64, 1e-10);
    check_encoder_case(c, gg::f32, 1e-4);
    if (c.number("dropout") == 0) check_encoder_case(c, gg::f64, 0);
  }
}

TEST_CASE("transformer: TransformerEncoderLayer's and TransformerEncoder's names, copies and bad input") {
  nn::TransformerEncoderLayer layer(8, 2, 16);
  std::vector<std::string> names;
  for (const auto& [name, p] : layer.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"self_attn.in_proj_weight", "self_attn.in_proj_bias",
                                          "self_attn.out_proj.weight", "self_attn.out_proj.bias",
                                          "linear1.weight", "linear1.bias", "linear2.weight", "linear2.bias",
                                          "norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias"});
  CHECK(layer.describe() == "TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.1)");
  nn::TransformerEncoder encoder(layer, 3, std::make_shared<nn::LayerNorm>(8));
  const auto named = encoder.named_parameters();
  CHECK(named.size() == 3 * 12 + 2);
  CHECK(named[0].first == "layers.0.self_attn.in_proj_weight");
  CHECK(named[12].first == "layers.1.self_attn.in_proj_weight");
  CHECK(named.back().first == "norm.bias");
  // Each layer starts as a copy of the given one, with its own storage.
  CHECK(max_relative_error(named[12].second.value(), layer.self_attn->in_proj_weight.value()) == 0);
  CHECK(named[12].second.node() != named[0].second.node());
  gg::Rng rng(2);
  const Var x = Var::constant(Tensor::randn({5, 3, 8}, rng));
  encoder.eval();
  CHECK(encoder(x).shape() == gg::Shape{5, 3, 8});
  CHECK(max_relative_error(encoder(x).value(), encoder(x, {}).value()) == 0);
  CHECK_THROWS_WITH(
      layer(Var::constant(Tensor::zeros({5, 3, 4}))),
      "TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0.1): expected src "
      "[L, N, 8] (or [L, 8] unbatched), got shape [5, 3, 4]");
  CHECK_THROWS_WITH(nn::TransformerEncoderLayer(8, 3),
                    "MultiheadAttention: embed_dim 8 is not divisible by num_heads 3");
  CHECK_THROWS_WITH(nn::TransformerEncoderLayer(8, 2, 16, 0.1, "tanh"),
                    "TransformerEncoderLayer: activation 'tanh' is not available (relu or gelu)");
  const nn::TransformerEncoderLayer with_gelu(8, 2, 16, 0.0, "gelu", 1e-5, false, true);
  CHECK(with_gelu.describe() == "TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16, dropout=0, "
                                "activation=gelu, norm_first=true)");
  CHECK(with_gelu.clone()->describe() == with_gelu.describe());
  CHECK_THROWS_WITH(nn::TransformerEncoder(layer, 0),
                    "TransformerEncoder: num_layers must be positive, got 0");
}

TEST_CASE("transformer: attention over empty sequences gives empty outputs or the output bias, as PyTorch") {
  nn::MultiheadAttention mha(4, 2);
  mha.out_proj->bias.set_value(Tensor({1, 2, 3, 4}, {4}));
  const Var q = Var::constant(Tensor::ones({3, 2, 4}));
  auto [none, w0] = mha(Var::constant(Tensor::zeros({0, 2, 4})), q, q);
  CHECK(none.shape() == gg::Shape{0, 2, 4});
  CHECK(w0.shape() == gg::Shape{2, 0, 3});
  // No keys: nothing to attend to, so the context is zero and the output is out_proj's bias.
  auto [bias_only, w] =
      mha(q, Var::constant(Tensor::zeros({0, 2, 4})), Var::constant(Tensor::zeros({0, 2, 4})));
  CHECK(bias_only.shape() == gg::Shape{3, 2, 4});
  CHECK(bias_only.value().flat(5) == 2);
  CHECK(w.shape() == gg::Shape{2, 3, 0});
  nn::LayerNorm ln(4);
  CHECK(ln(Var::constant(Tensor::zeros({0, 4}))).shape() == gg::Shape{0, 4});
}
