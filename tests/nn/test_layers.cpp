// Modules, layers and losses: PyTorch's parameter names and counts, every layer's gradient
// checked numerically by one shared helper, and outputs, gradients and losses against numbers
// PyTorch computed (tests/nn/data/make_nn_reference.py -> nn_reference.txt).
#include <nn/nn.hpp>

#include "seq_reference.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;

namespace {

/// The tensors of nn_reference.txt by name.
const std::map<std::string, Tensor>& ref() {
  static const std::map<std::string, Tensor> table = gg::test::read_text_reference("nn_reference.txt");
  return table;
}
const Tensor& R(const std::string& name) {
  INFO("reference " << name);
  REQUIRE(ref().count(name) == 1);
  return ref().at(name);
}

/// Largest |a - b| / max(1, |b|) over all elements; shapes must match.
double max_error(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (std::int64_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::fabs(a.flat(i) - b.flat(i)) / std::max(1.0, std::fabs(b.flat(i))));
  return worst;
}

/// The one helper that checks any module's gradients: loss = sum(m(x) * w) for fixed random w;
/// d loss / d x and / d every parameter against central differences (parameters perturbed in
/// place through their shared storage).
void check_module_gradients(nn::Module& m, const Tensor& x0, double tol = 1e-6) {
  gg::Rng rng(99);
  Tensor w;
  auto loss_of = [&](const Var& x) {
    Var y = m(x);
    if (!w.defined()) w = Tensor::rand(y.shape(), rng, gg::f64, 0.5, 1.5);
    return gg::sum(y * Var::constant(w));
  };
  Var x(x0.clone());
  m.zero_grad();
  loss_of(x).backward();
  auto numeric = [&](Tensor& t, std::int64_t i) {
    const double eps = 1e-6, old = t.flat(i);
    gg::NoGrad no_grad;
    t.set_flat(i, old + eps);
    const double up = loss_of(Var::constant(x.value())).item(); // x.value() shares xv's storage
    t.set_flat(i, old - eps);
    const double down = loss_of(Var::constant(x.value())).item();
    t.set_flat(i, old);
    return (up - down) / (2 * eps);
  };
  Tensor xv = x.value();
  for (std::int64_t i = 0; i < xv.numel(); ++i) {
    INFO(m.describe() << " input element " << i);
    CHECK(x.grad().flat(i) == Approx(numeric(xv, i)).margin(tol).epsilon(tol));
  }
  for (auto& [name, p] : m.named_parameters()) {
    Tensor pv = p.value();
    for (std::int64_t i = 0; i < pv.numel(); ++i) {
      INFO(m.describe() << " parameter " << name << " element " << i);
      CHECK(p.grad().flat(i) == Approx(numeric(pv, i)).margin(tol).epsilon(tol));
    }
  }
}

/// Copies a reference tensor into a parameter.
void set(Var& p, const Tensor& t) {
  p.set_value(t);
}

/// y = module(x); loss = sum(y * r); returns y, leaves gradients in x and the parameters.
Var run_weighted(nn::Module& m, Var& x, const std::string& name) {
  Var y = m(x);
  gg::sum(y * Var::constant(R(name + ".r"))).backward();
  return y;
}

} // namespace

TEST_CASE("layers: a Sequential has PyTorch's parameter names, shapes and the course's count of 17") {
  nn::Sequential mlp(nn::Linear(2, 3), nn::Sigmoid(), nn::Linear(3, 2));
  const auto named = mlp.named_parameters();
  REQUIRE(named.size() == 4);
  CHECK(named[0].first == "0.weight");
  CHECK(named[0].second.shape() == gg::Shape{3, 2});
  CHECK(named[1].first == "0.bias");
  CHECK(named[2].first == "2.weight");
  CHECK(named[2].second.shape() == gg::Shape{2, 3});
  CHECK(named[3].first == "2.bias");
  CHECK(nn::parameter_count(mlp) == 2 * 3 + 3 + 3 * 2 + 2);
  const std::string s = nn::summary(mlp, {1, 2});
  CHECK_THAT(s, Catch::Contains("Linear(in=2, out=3)") && Catch::Contains("[1, 3]") &&
                    Catch::Contains("total parameters: 17"));
}

namespace {
/// A small CNN written as a Module class (not a Sequential): features, a flatten by hand, a head;
/// `spare` is never called, `cell` is called three times (as an RNN's cell).
struct SmallCnn : nn::Module {
  std::shared_ptr<nn::Sequential> features = register_module(
      "features", std::make_shared<nn::Sequential>(nn::Conv2d(1, 4, 3), nn::ReLU(), nn::MaxPool2d(2)));
  std::shared_ptr<nn::Linear> cell = register_module("cell", std::make_shared<nn::Linear>(36, 36));
  std::shared_ptr<nn::Linear> head = register_module("head", std::make_shared<nn::Linear>(36, 10));
  std::shared_ptr<nn::Linear> spare = register_module("spare", std::make_shared<nn::Linear>(2, 2));
  Var forward(const Var& x) override {
    Var h = gg::reshape((*features)(x), {x.shape()[0], -1});
    for (int i = 0; i < 3; ++i) h = gg::tanh((*cell)(h));
    return (*head)(h);
  }
  std::string describe() const override { return "SmallCnn"; }
};
/// A module whose forward takes two inputs.
struct TwoInputs : nn::Module {
  std::shared_ptr<nn::Linear> a = register_module("a", std::make_shared<nn::Linear>(2, 3));
  Var operator()(const Var& x, const Var& y) { return (*a)(x) + (*a)(y); }
};
} // namespace

TEST_CASE("layers: summary of a custom Module shows each submodule's output shape, recorded as it runs") {
  SmallCnn net;
  CHECK(nn::summary(net, {2, 1, 8, 8}) ==
        "layer      module                                        output shape         params\n"
        "           input                                         [2, 1, 8, 8]\n"
        "features   Sequential                                    [2, 4, 3, 3]             40\n"
        "features.0   Conv2d(1, 4, kernel=3, stride=1, padding=0) [2, 4, 6, 6]             40\n"
        "features.1   ReLU                                        [2, 4, 6, 6]              0\n"
        "features.2   MaxPool2d(kernel=2, stride=2, padding=0)    [2, 4, 3, 3]              0\n"
        "cell       Linear(in=36, out=36)                         [2, 36] x3             1332\n"
        "head       Linear(in=36, out=10)                         [2, 10]                 370\n"
        "spare      Linear(in=2, out=2)                                                     6\n"
        "           output                                        [2, 10]\n"
        "total parameters: 1748\n");
  // depth 1: the direct children only.
  const std::string top = nn::summary(net, {1, 1, 8, 8}, gg::f64, 1);
  CHECK_THAT(top, Catch::Contains("features Sequential                         [1, 4, 3, 3]"));
  CHECK_THAT(top, !Catch::Contains("features.0"));
  CHECK_THROWS_AS(nn::summary(net, {1, 1, 8, 8}, gg::f64, 0), gg::ValueError);
  // A wrong input shape is the run's error, named.
  CHECK_THROWS_AS(nn::summary(net, {1, 2, 8, 8}), gg::ShapeError);
  // Recording stops with the summary: a later call records nothing (and nothing leaks into a
  // second summary).
  CHECK(nn::summary(net, {2, 1, 8, 8}).find("x3") != std::string::npos);
  CHECK(nn::summary(net, {2, 1, 8, 8}).find("x6") == std::string::npos);

  // A module shared in a Sequential takes its calls' shapes in turn.
  auto shared = std::make_shared<nn::Linear>(3, 3);
  nn::Sequential twice{std::make_shared<nn::Linear>(2, 3), shared, std::make_shared<nn::Tanh>(), shared};
  CHECK(nn::summary(twice, {5, 2}) ==
        "layer    module                             output shape         params\n"
        "         input                              [5, 2]\n"
        "0        Linear(in=2, out=3)                [5, 3]                    9\n"
        "1        Linear(in=3, out=3)                [5, 3]                   12\n"
        "2        Tanh                               [5, 3]                    0\n"
        "3        Linear(in=3, out=3)                [5, 3]                   12\n"
        "total parameters: 21\n");

  // A model of two inputs cannot be run on one: listed without shapes.
  TwoInputs two;
  CHECK(nn::summary(two, {1, 2}) ==
        "layer    module                             output shape         params\n"
        "         input                              [1, 2]\n"
        "a        Linear(in=2, out=3)                                          9\n"
        "(no output shapes: the model's forward takes more than one input)\n"
        "total parameters: 9\n");
}

TEST_CASE("layers: state_dict and load_state_dict round-trip, and mismatches are named") {
  nn::Sequential a(nn::Linear(2, 3), nn::Tanh(), nn::BatchNorm1d(3));
  nn::Sequential b(nn::Linear(2, 3), nn::Tanh(), nn::BatchNorm1d(3));
  auto sd = a.state_dict();
  std::vector<std::string> names;
  for (auto& [n, t] : sd) names.push_back(n);
  CHECK(names == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias", "2.running_mean",
                                          "2.running_var", "2.num_batches_tracked"});
  b.load_state_dict(sd);
  CHECK(b.named_parameters()[0].second.value().to_vector() ==
        a.named_parameters()[0].second.value().to_vector());
  sd.pop_back();
  CHECK_THROWS_WITH(b.load_state_dict(sd), Catch::Contains("missing '2.num_batches_tracked'"));
  auto bad = a.state_dict();
  bad[0].second = Tensor::zeros({2, 2});
  CHECK_THROWS_WITH(b.load_state_dict(bad), Catch::Contains("0.weight") && Catch::Contains("[2, 2]"));
}

TEST_CASE("layers: every layer's gradients agree with finite differences") {
  gg::Rng rng(5);
  nn::manual_seed(3);
  SECTION("Linear") {
    nn::Linear m(3, 2);
    check_module_gradients(m, Tensor::randn({4, 3}, rng));
  }
  SECTION("Conv2d with stride and padding") {
    nn::Conv2d m(2, 3, 3, 2, 1);
    check_module_gradients(m, Tensor::randn({2, 2, 5, 5}, rng));
  }
  SECTION("MaxPool2d and AvgPool2d") {
    nn::MaxPool2d mp(3, 2, 1);
    check_module_gradients(mp, Tensor::randn({2, 2, 5, 5}, rng));
    nn::AvgPool2d ap(3, 2, 1);
    check_module_gradients(ap, Tensor::randn({2, 2, 5, 5}, rng));
  }
  SECTION("BatchNorm1d and BatchNorm2d in eval mode") {
    nn::BatchNorm1d b1(3);
    b1.eval();
    check_module_gradients(b1, Tensor::randn({4, 3}, rng));
    nn::BatchNorm2d b2(2);
    b2.eval();
    check_module_gradients(b2, Tensor::randn({3, 2, 3, 3}, rng));
  }
  SECTION("Embedding, Flatten, activations in a Sequential") {
    nn::Sequential m(nn::Flatten(), nn::Linear(6, 4), nn::LeakyReLU(0.1), nn::Linear(4, 3), nn::Tanh());
    check_module_gradients(m, Tensor::randn({2, 2, 3}, rng));
    nn::Embedding e(5, 3);
    Var idx = Var::constant(Tensor({4, 0, 4, 2}, {2, 2}));
    Var y = e(idx);
    CHECK(y.shape() == gg::Shape{2, 2, 3});
    gg::sum(y).backward();
    CHECK(e.weight.grad().to_vector() == std::vector<double>{1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 0, 2, 2, 2});
  }
}

TEST_CASE("layers: Linear and Conv2d match PyTorch's outputs and gradients") {
  nn::Linear lin(3, 2);
  set(lin.weight, R("linear.w"));
  set(lin.bias, R("linear.b"));
  Var x(R("linear.x"));
  CHECK(max_error(run_weighted(lin, x, "linear").value(), R("linear.y")) < 1e-12);
  CHECK(max_error(x.grad(), R("linear.grad.x")) < 1e-12);
  CHECK(max_error(lin.weight.grad(), R("linear.grad.w")) < 1e-12);
  CHECK(max_error(lin.bias.grad(), R("linear.grad.b")) < 1e-12);

  nn::Conv2d conv(3, 4, 3, 2, 1);
  set(conv.weight, R("conv.w"));
  set(conv.bias, R("conv.b"));
  Var xc(R("conv.x"));
  CHECK(max_error(run_weighted(conv, xc, "conv").value(), R("conv.y")) < 1e-12);
  CHECK(max_error(xc.grad(), R("conv.grad.x")) < 1e-12);
  CHECK(max_error(conv.weight.grad(), R("conv.grad.w")) < 1e-12);
  CHECK(max_error(conv.bias.grad(), R("conv.grad.b")) < 1e-12);
}

TEST_CASE("layers: pooling matches PyTorch's outputs and gradients") {
  nn::MaxPool2d mp2(2);
  nn::MaxPool2d mp3(3, 2, 1);
  nn::AvgPool2d ap3(3, 2, 1);
  for (auto [name, m] : {std::pair<std::string, nn::Module*>{"maxpool2", &mp2},
                         {"maxpool3s2p1", &mp3},
                         {"avgpool3s2p1", &ap3}}) {
    INFO(name);
    Var x(R(name + ".x"));
    CHECK(max_error(run_weighted(*m, x, name).value(), R(name + ".y")) < 1e-12);
    CHECK(max_error(x.grad(), R(name + ".grad.x")) < 1e-12);
  }
}

TEST_CASE("layers: BatchNorm matches PyTorch in training (with running statistics) and eval") {
  nn::BatchNorm2d bn2(3);
  nn::BatchNorm1d bn1(3);
  for (auto [name, m] : {std::pair<std::string, nn::BatchNorm*>{"bn2d", &bn2}, {"bn1d", &bn1}}) {
    INFO(name);
    set(m->weight, R(name + ".weight"));
    set(m->bias, R(name + ".bias"));
    Var x(R(name + ".x"));
    m->train();
    CHECK(max_error(run_weighted(*m, x, name).value(), R(name + ".y")) < 1e-12);
    CHECK(max_error(x.grad(), R(name + ".grad.x")) < 1e-10);
    CHECK(max_error(m->weight.grad(), R(name + ".grad.weight")) < 1e-12);
    CHECK(max_error(m->bias.grad(), R(name + ".grad.bias")) < 1e-12);
    CHECK(max_error(m->running_mean, R(name + ".running_mean")) < 1e-14);
    CHECK(max_error(m->running_var, R(name + ".running_var")) < 1e-14);
    CHECK(m->num_batches_tracked.item() == 1);
    m->eval();
    CHECK(max_error((*m)(Var(R(name + ".x"))).value(), R(name + ".y_eval")) < 1e-12);
  }
}

TEST_CASE("layers: GELU, exact and tanh-approximated, matches PyTorch in float64 and float32") {
  for (const std::string approximate : {"none", "tanh"}) {
    const std::string name = "gelu_" + approximate;
    nn::GELU gelu(approximate);
    CHECK(gelu.describe() == "GELU(approximate='" + approximate + "')");
    for (auto [dtype, tolerance] : {std::pair{gg::f64, 1e-10}, std::pair{gg::f32, 1e-4}}) {
      INFO(name << " in " << gg::dtype_name(dtype));
      Var x(R(name + ".x").to(dtype));
      const Var y = gelu(x);
      CHECK(y.dtype() == dtype);
      CHECK(max_error(y.value(), R(name + ".y")) < tolerance);
      gg::sum(y * Var::constant(R(name + ".r").to(dtype))).backward();
      CHECK(max_error(x.grad(), R(name + ".grad.x")) < tolerance);
    }
    check_module_gradients(gelu, R(name + ".x"));
  }
  CHECK(nn::GELU().describe() == "GELU(approximate='none')");
  CHECK_THROWS_AS(nn::GELU("erf"), gg::ValueError);
  CHECK_THROWS_WITH(nn::GELU("erf"), "GELU: approximate is \"none\" or \"tanh\", not \"erf\"");
}

TEST_CASE("losses: every loss and reduction matches PyTorch, with its gradient") {
  const Tensor& logits = R("loss.logits");
  const Tensor target = R("loss.target");
  auto run = [&](const std::string& name, const Tensor& input, auto&& fn) {
    INFO(name);
    for (auto [red, r] : {std::pair<std::string, nn::Reduction>{"mean", nn::Reduction::mean},
                          {"sum", nn::Reduction::sum},
                          {"none", nn::Reduction::none}}) {
      INFO(red);
      CHECK(max_error(fn(Var::constant(input), r).value().reshape(R("loss." + name + "." + red).shape()),
                      R("loss." + name + "." + red)) < 1e-13);
    }
    Var x(input.clone());
    fn(x, nn::Reduction::mean).backward();
    CHECK(max_error(x.grad(), R("loss." + name + ".grad")) < 1e-13);
  };
  run("cross_entropy", logits,
      [&](const Var& x, nn::Reduction r) { return nn::cross_entropy(x, target, r); });
  run("cross_entropy_probs", logits,
      [&](const Var& x, nn::Reduction r) { return nn::cross_entropy(x, R("loss.probs_target"), r); });
  run("nll", logits,
      [&](const Var& x, nn::Reduction r) { return nn::nll_loss(gg::log_softmax(x, 1), target, r); });
  run("mse", logits,
      [&](const Var& x, nn::Reduction r) { return nn::mse_loss(x, Var::constant(R("loss.mse_target")), r); });
  run("bce", R("loss.p"),
      [&](const Var& x, nn::Reduction r) { return nn::binary_cross_entropy(x, R("loss.y01"), r); });
  run("bce_logits", logits, [&](const Var& x, nn::Reduction r) {
    return nn::binary_cross_entropy_with_logits(x, R("loss.y01"), r);
  });
}

TEST_CASE("losses: the course's cross-entropy table comes out exactly (0, +infinity, ln 2)") {
  const Tensor class0({0}, {1});
  auto ce = [&](std::vector<double> p) {
    return nn::nll_loss(gg::log(Var::constant(Tensor(p, {1, 3}))), class0).item();
  };
  CHECK(ce({1, 0, 0}) == 0);
  CHECK(ce({0, 1, 0}) == INFINITY);
  CHECK(ce({0.5, 0.25, 0.25}) == Approx(std::log(2.0)).epsilon(1e-15));
  // one-hot targets, like the course's [1, 0] labels, give the same as class ids
  const Tensor logits({2.0, -1.0, 0.5, 0.3}, {2, 2});
  CHECK(nn::cross_entropy(Var::constant(logits), Tensor({1, 0, 0, 1}, {2, 2})).item() ==
        Approx(nn::cross_entropy(Var::constant(logits), Tensor({0, 1}, {2})).item()).epsilon(1e-15));
}

TEST_CASE("losses: bad targets and shapes are named") {
  const Var logits = Var::constant(Tensor::zeros({2, 3}));
  CHECK_THROWS_WITH(nn::cross_entropy(logits, Tensor({0, 3}, {2})), Catch::Contains("target 3 at row 1"));
  CHECK_THROWS_WITH(nn::cross_entropy(logits, Tensor({0, 1, 2}, {3})),
                    Catch::Contains("[2, 3]") && Catch::Contains("[3]"));
  CHECK_THROWS_AS(nn::mse_loss(logits, Var::constant(Tensor::zeros({3, 2}))), gg::ShapeError);
  CHECK_THROWS_WITH(nn::Linear(3, 2)(Var::constant(Tensor::zeros({4, 2}))), Catch::Contains("[4, 2]"));
}

TEST_CASE(
    "layers: Dropout drops with probability p and scales the rest in training, and is identity in eval") {
  nn::Dropout drop(0.3, 17);
  Var x(Tensor::ones({100, 100}));
  Var y = drop(x);
  const Tensor v = y.value();
  std::int64_t zeros = 0;
  for (std::int64_t i = 0; i < v.numel(); ++i) {
    if (v.flat(i) == 0)
      ++zeros;
    else
      CHECK(v.flat(i) == Approx(1 / 0.7).epsilon(1e-15));
  }
  CHECK(static_cast<double>(zeros) / 10000 == Approx(0.3).margin(0.02));
  gg::sum(y).backward(); // the gradient is the same mask
  CHECK(x.grad().to_vector() == v.to_vector());
  drop.eval();
  CHECK(drop(x).node() == x.node());
  CHECK_THROWS_WITH(nn::Dropout(1.5), Catch::Contains("1.5"));
}

TEST_CASE("losses: binary_cross_entropy_with_logits has gradient sigmoid(x) - y, also at x = 0") {
  Var x(Tensor({0.0, 0.0, 2.0, -3.0}, {4}));
  const Tensor y({1, 0, 1, 0}, {4});
  nn::binary_cross_entropy_with_logits(x, y, nn::Reduction::sum).backward();
  const std::vector<double> g = x.grad().to_vector();
  CHECK(g[0] == Approx(-0.5).epsilon(1e-15));
  CHECK(g[1] == Approx(0.5).epsilon(1e-15));
  CHECK(g[2] == Approx(1 / (1 + std::exp(-2.0)) - 1).epsilon(1e-14));
  CHECK(g[3] == Approx(1 / (1 + std::exp(3.0))).epsilon(1e-14));
}

TEST_CASE("layers: a module used twice lists its parameters once, and summary keeps each module's mode") {
  auto shared = std::make_shared<nn::Linear>(3, 3);
  nn::Sequential twice{shared, std::make_shared<nn::Tanh>(), shared};
  CHECK(twice.parameters().size() == 2);
  CHECK_NOTHROW(gg::optim::SGD(twice.parameters(), gg::optim::SGDOptions(0.1)));
  nn::Sequential model(nn::Linear(2, 3), nn::BatchNorm1d(3));
  model[1].eval(); // frozen BatchNorm in a model in training mode
  nn::summary(model, {4, 2});
  CHECK(model.is_training());
  CHECK_FALSE(model[1].is_training());
}

TEST_CASE("layers: Conv2d, Conv1d, MaxPool2d and AvgPool2d take PyTorch's arguments, and unbatched inputs") {
  gg::Rng rng(5);
  nn::Conv2d conv(4, 6, {3, 2}, {2, 1}, {1, 0}, {1, 2}, 2);
  CHECK(conv.weight.shape() == gg::Shape{6, 2, 3, 2});
  CHECK(conv.describe() ==
        "Conv2d(4, 6, kernel=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2)");
  const Tensor x = Tensor::randn({2, 4, 7, 6}, rng);
  CHECK(conv(Var::constant(x)).shape() == gg::Shape{2, 6, 4, 4});
  CHECK(conv(Var::constant(Tensor::zeros({4, 7, 6}))).shape() == gg::Shape{6, 4, 4});
  check_module_gradients(conv, x);
  // The earlier argument order (bias after padding) still reads as it did.
  CHECK(nn::Conv2d(1, 32, 3, 1, 1, true, gg::f32).describe() ==
        "Conv2d(1, 32, kernel=3, stride=1, padding=1)");
  CHECK_THROWS_WITH(nn::Conv2d(4, 6, 3, 1, 0, 1, 4), Catch::Contains("divisible by groups (4)"));
  CHECK_THROWS_WITH(conv(Var::constant(Tensor::zeros({2, 3, 7, 6}))),
                    Catch::StartsWith("Conv2d(4, 6") && Catch::Contains("[2, 3, 7, 6]"));

  nn::Conv1d conv1(3, 4, 3, 2, 1, 2);
  CHECK(conv1.weight.shape() == gg::Shape{4, 3, 3});
  CHECK(conv1.describe() == "Conv1d(3, 4, kernel=3, stride=2, padding=1, dilation=2)");
  const Tensor s = Tensor::randn({2, 3, 10}, rng);
  CHECK(conv1(Var::constant(s)).shape() == gg::Shape{2, 4, 4});
  CHECK(conv1(Var::constant(Tensor::zeros({3, 10}))).shape() == gg::Shape{4, 4});
  check_module_gradients(conv1, s);
  CHECK_THROWS_WITH(conv1(Var::constant(Tensor::zeros({2, 10}))), Catch::StartsWith("Conv1d(3, 4"));

  nn::MaxPool2d max({3, 2}, {2, 1}, 1, {1, 2}, true);
  CHECK(max.describe() ==
        "MaxPool2d(kernel=(3, 2), stride=(2, 1), padding=1, dilation=(1, 2), ceil_mode=true)");
  const Tensor p = Tensor::randn({2, 3, 7, 8}, rng);
  CHECK(max(Var::constant(p)).shape() == gg::Shape{2, 3, 4, 8});
  check_module_gradients(max, p);
  CHECK(nn::MaxPool2d(2).describe() == "MaxPool2d(kernel=2, stride=2, padding=0)");
  // As PyTorch (and gg::max_pool2d): padding at most half the kernel.
  CHECK_THROWS_WITH(nn::MaxPool2d(3, 1, 2),
                    Catch::StartsWith("MaxPool2d: padding must be in [0, kernel_size/2]"));

  nn::AvgPool2d avg(3, 2, 1, true, false);
  CHECK(avg.describe() ==
        "AvgPool2d(kernel=3, stride=2, padding=1, ceil_mode=true, count_include_pad=false)");
  const Tensor q = Tensor::randn({2, 2, 6, 6}, rng);
  CHECK(avg(Var::constant(q)).shape() == gg::Shape{2, 2, 4, 4});
  CHECK(avg(Var::constant(Tensor::zeros({2, 6, 6}))).shape() == gg::Shape{2, 4, 4});
  check_module_gradients(avg, q);
}
