// Saving and loading models: a file PyTorch wrote (torch.nn.Sequential state dict) loads into the
// same gg model; save -> load round-trips parameters and buffers; a wrong file is a clear error.
#include <nn/nn.hpp>

#include <catch2/catch.hpp>

#include "../temp_dir.hpp"

#include <filesystem>

#include <unistd.h>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;

namespace {
/// name in this process's folder of the tests' files, removed at exit.
std::string temp_path(const std::string& name) {
  static const gg::test::TempDir dir("test_serialize");
  return dir / name;
}
} // namespace

TEST_CASE("serialize: a torch.nn.Sequential state dict loads into the same gg model") {
  for (gg::DType dtype : {gg::f32, gg::f64}) {
    const std::string file = std::string(GG_TEST_DATA) + (dtype == gg::f32 ? "/sequential_f32.safetensors"
                                                                           : "/sequential_f64.safetensors");
    nn::Sequential model(nn::Linear(2, 3, true, dtype), nn::Sigmoid(), nn::Linear(3, 2, true, dtype));
    nn::load(model, file);
    const auto expected = gg::safetensors::load(file);
    for (auto& [name, p] : model.named_parameters()) {
      INFO(name);
      CHECK(p.dtype() == dtype);
      CHECK(p.value().to_vector() == expected.at(name).to_vector());
    }
  }
}

TEST_CASE("serialize: save then load restores parameters and buffers exactly") {
  nn::manual_seed(8);
  nn::Sequential a(nn::Linear(3, 4), nn::BatchNorm1d(4), nn::ReLU(), nn::Linear(4, 2));
  a(Var::constant(Tensor::ones({5, 3}))); // one training step moves BatchNorm's running statistics
  const std::string path = temp_path("roundtrip.safetensors");
  nn::save(a, path, {{"epoch", "3"}});
  nn::manual_seed(9);
  nn::Sequential b(nn::Linear(3, 4), nn::BatchNorm1d(4), nn::ReLU(), nn::Linear(4, 2));
  const auto meta = nn::load(b, path);
  CHECK(meta.at("epoch") == "3");
  const auto sa = a.state_dict(), sb = b.state_dict();
  REQUIRE(sa.size() == sb.size());
  for (std::size_t i = 0; i < sa.size(); ++i) {
    INFO(sa[i].first);
    CHECK(sa[i].second.to_vector() == sb[i].second.to_vector());
  }
  std::filesystem::remove(path);
}

TEST_CASE("serialize: a file for another model is refused without changing the model") {
  const std::string file = std::string(GG_TEST_DATA) + "/sequential_f64.safetensors";
  nn::Sequential wider(nn::Linear(2, 4), nn::Sigmoid(), nn::Linear(4, 2));
  const auto before = wider.state_dict()[0].second.to_vector();
  CHECK_THROWS_WITH(nn::load(wider, file), Catch::Contains("sequential_f64.safetensors") &&
                                               Catch::Contains("0.weight") && Catch::Contains("[3, 2]"));
  CHECK(wider.state_dict()[0].second.to_vector() == before);
  nn::Sequential deeper(nn::Linear(2, 3), nn::Sigmoid(), nn::Linear(3, 2), nn::Sigmoid(), nn::Linear(2, 2));
  CHECK_THROWS_WITH(nn::load(deeper, file), Catch::Contains("missing '4.weight'"));
  CHECK_THROWS_AS(nn::load(deeper, temp_path("does_not_exist.safetensors")), gg::IOError);
}

TEST_CASE("serialize: a checkpoint resumes training exactly where it stopped") {
  const gg::Tensor x({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2}), y({0, 1, 1, 0}, {4});
  auto make = [] {
    nn::manual_seed(4);
    return std::make_shared<nn::Sequential>(nn::Linear(2, 5), nn::Tanh(), nn::Linear(5, 2));
  };
  auto train = [&](nn::Sequential& m, gg::optim::Optimizer& opt, int steps) {
    std::vector<double> losses;
    for (int i = 0; i < steps; ++i) {
      opt.zero_grad();
      Var loss = nn::cross_entropy(m(Var::constant(x)), y);
      loss.backward();
      opt.step();
      losses.push_back(loss.item());
    }
    return losses;
  };
  auto full = make();
  gg::optim::Adam full_opt(full->parameters(), gg::optim::AdamOptions(0.05));
  const std::vector<double> uninterrupted = train(*full, full_opt, 20);

  auto first = make();
  gg::optim::Adam first_opt(first->parameters(), gg::optim::AdamOptions(0.05));
  std::vector<double> resumed = train(*first, first_opt, 12);
  const std::string path = temp_path("checkpoint.safetensors");
  nn::save_checkpoint(path, *first, first_opt, {{"step", "12"}});

  auto second = make();
  gg::optim::Adam second_opt(second->parameters(), gg::optim::AdamOptions(0.05));
  CHECK(nn::load_checkpoint(path, *second, second_opt).at("step") == "12");
  for (double l : train(*second, second_opt, 8)) resumed.push_back(l);
  CHECK(resumed == uninterrupted);
  std::filesystem::remove(path);
}
