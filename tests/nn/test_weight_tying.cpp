// Weight tying: one parameter used by an Embedding and by the output projection (as GPT ties its
// token embedding and its logits layer) gets the gradients of both uses summed, equal to PyTorch's
// (tests/nn/data/make_tying_reference.py -> weight_tying_reference.safetensors), and is listed once.
#include "seq_reference.hpp"

#include <nn/nn.hpp>

#include <catch2/catch.hpp>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;
using namespace gg::test;

namespace {
/// logits = linear(tanh(mix(wte(tokens))), wte.weight): the embedding's weight is the output layer's.
struct Tied : nn::Module {
  Tied(std::int64_t vocab, std::int64_t dim) {
    wte = register_module("wte", std::make_shared<nn::Embedding>(vocab, dim));
    mix = register_module("mix", std::make_shared<nn::Linear>(dim, dim));
  }
  Var forward(const Var& tokens) override {
    return gg::linear(gg::tanh((*mix)((*wte)(tokens))), wte->weight);
  }
  std::shared_ptr<nn::Embedding> wte;
  std::shared_ptr<nn::Linear> mix;
};
} // namespace

TEST_CASE(
    "weight tying: a weight shared by the embedding and the output layer gets both gradients summed, as "
    "PyTorch") {
  const Case c(reference_file("weight_tying_reference.safetensors"), "tied");
  const std::int64_t vocab = c.integer("vocab");
  Tied model(vocab, c.integer("dim"));
  model.load_state_dict(c.state_dict(gg::f64));
  const auto names = model.named_parameters();
  REQUIRE(names.size() == 3); // wte.weight once, mix.weight, mix.bias
  const Var logits = model(Var::constant(c.tensor("tokens")));
  const Var loss = nn::cross_entropy(gg::reshape(logits, {-1, vocab}), c.tensor("targets").reshape({-1}));
  CHECK(max_relative_error(loss.value(), c.tensor("loss")) < 1e-12);
  loss.backward();
  for (const auto& [name, p] : names) {
    INFO("gradient of " << name);
    CHECK(max_relative_error(p.grad(), c.tensor("g." + name)) < 1e-10);
  }
  // Both uses count: the output layer's share alone is not the gradient.
  CHECK(max_relative_error(model.wte->weight.grad(), c.tensor("g_head.wte")) > 1e-3);
}
