// A GPT and an LSTM saved by `gradgraph lm train` give PyTorch's logits:
// tests/nn/data/ make_lm_reference.py loads the same files into the equivalent
// torch modules (strict=True) and wrote their logits for a fixed input into
// lm_reference.safetensors.
#include <nn/lm.hpp>
#include <nn/nn.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

namespace lm = gg::nn::lm;

TEST_CASE("lm: a saved GPT and LSTM give PyTorch's logits (loaded with "
          "strict=True) to 1e-10") {
  const std::string dir = GG_TEST_DATA;
  const auto reference = gg::safetensors::load(dir + "/lm_reference.safetensors");
  for (const std::string model : {"gpt", "lstm"}) {
    INFO(model);
    lm::Saved saved = lm::load(dir + "/" + reference.metadata.at(model));
    CHECK(saved.model->config().model == model);
    CHECK(saved.model->config().dtype == gg::f64);
    const gg::Tensor x = reference.at(model + ".x"), want = reference.at(model + ".logits");
    saved.model->eval();
    const gg::Tensor got = (*saved.model)(gg::Var::constant(x)).value();
    REQUIRE(got.shape() == want.shape());
    double worst = 0;
    for (std::int64_t i = 0; i < got.numel(); ++i)
      worst = std::max(worst, std::abs(got.flat(i) - want.flat(i)) / std::max(1.0, std::abs(want.flat(i))));
    CHECK(worst < 1e-10);
  }
}
