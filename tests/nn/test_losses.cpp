// Losses against PyTorch beyond the basic cases of test_layers.cpp: cross_entropy and nll_loss on
// [N, C, d1, ...], [N, C] and [C] inputs with ignore_index, label_smoothing and class weights, each
// reduction, probabilities as targets, integer class ids; binary_cross_entropy's gradient at 0 and 1;
// mse_loss broadcasting, with a target that requires grad and second derivatives, as one node
// (tests/nn/data/make_loss_reference.py -> loss_reference.txt); bad input named.
#include <nn/nn.hpp>

#include "seq_reference.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <sstream>

using gg::Tensor;
using gg::Var;
using gg::test::max_relative_error;
namespace nn = gg::nn;

namespace {

/// The tensors of loss_reference.txt by name.
const Tensor& loss_ref(const std::string& name) {
  static const std::map<std::string, Tensor> table = gg::test::read_text_reference("loss_reference.txt");
  INFO("reference " << name);
  REQUIRE(table.count(name) == 1);
  return table.at(name);
}

using LossFn = std::function<Var(const Var&, nn::Reduction)>;

/// The loss of each reduction and the gradient of sum(loss * w) against PyTorch's, to 1e-10.
void check_case(const std::string& name, const Tensor& x, const LossFn& fn) {
  for (auto [red, r] : {std::pair<std::string, nn::Reduction>{"mean", nn::Reduction::mean},
                        {"sum", nn::Reduction::sum},
                        {"none", nn::Reduction::none}}) {
    INFO(name << " reduction " << red);
    const Var v(x.clone());
    const Var loss = fn(v, r);
    CHECK(max_relative_error(loss.value(), loss_ref(name + "." + red)) < 1e-10);
    const Var w = r == nn::Reduction::none ? Var::constant(loss_ref(name + ".none.w")) : Var::constant(1.0);
    gg::sum(loss * w).backward();
    CHECK(max_relative_error(v.grad(), loss_ref(name + "." + red + ".grad")) < 1e-10);
  }
}

std::string fmt_ls(double ls) {
  return ls == 0 ? "0.0" : "0.2";
}

} // namespace

TEST_CASE("losses: cross_entropy and nll_loss on [N, C, d1, d2], [N, C] and [C] with ignore_index, "
          "label_smoothing and weights match PyTorch") {
  for (const std::string key : {"nd", "2d", "1d"}) {
    const Tensor& x = loss_ref(key + ".x");
    const int cd = x.rank() == 1 ? 0 : 1;
    for (const std::int64_t ii : {-100, 1}) {
      const Tensor& target = loss_ref(key + ".target.ii" + std::to_string(ii));
      for (const int use_w : {0, 1}) {
        const Tensor weight = use_w ? loss_ref(key + ".weight") : Tensor();
        const std::string tail = ".ii" + std::to_string(ii) + ".w" + std::to_string(use_w);
        for (const double ls : {0.0, 0.2})
          check_case(key + ".ce" + tail + ".ls" + fmt_ls(ls), x, [&](const Var& v, nn::Reduction r) {
            return nn::cross_entropy(
                v, target, {.reduction = r, .ignore_index = ii, .label_smoothing = ls, .weight = weight});
          });
        check_case(key + ".nll" + tail, x, [&](const Var& v, nn::Reduction r) {
          return nn::nll_loss(gg::log_softmax(v, cd), target,
                              {.reduction = r, .ignore_index = ii, .weight = weight});
        });
        // Integer class ids give the same numbers.
        std::vector<std::int64_t> ids;
        for (const double t : target.to_vector()) ids.push_back(static_cast<std::int64_t>(t));
        check_case(key + ".ce" + tail + ".ls0.2", x, [&](const Var& v, nn::Reduction r) {
          return nn::cross_entropy(
              v, ids, {.reduction = r, .ignore_index = ii, .label_smoothing = 0.2, .weight = weight});
        });
        check_case(key + ".nll" + tail, x, [&](const Var& v, nn::Reduction r) {
          return nn::nll_loss(gg::log_softmax(v, cd), ids,
                              {.reduction = r, .ignore_index = ii, .weight = weight});
        });
      }
    }
  }
  // Every target ignored: the mean is 0/0, NaN, as PyTorch's.
  CHECK(std::isnan(loss_ref("all_ignored.ce.mean").item()));
  CHECK(std::isnan(nn::cross_entropy(Var(loss_ref("all_ignored.x")), Tensor::full({3}, -100)).item()));
  CHECK(
      nn::cross_entropy(Var(loss_ref("all_ignored.x")), Tensor::full({3}, -100), nn::Reduction::sum).item() ==
      0);
}

TEST_CASE("losses: cross_entropy with probabilities as targets, [N, C, d] and [N, C], smoothed and "
          "weighted, matches PyTorch") {
  for (const std::string key : {"pnd", "p2d"})
    for (const int use_w : {0, 1})
      for (const double ls : {0.0, 0.2})
        check_case(key + ".ce.w" + std::to_string(use_w) + ".ls" + fmt_ls(ls), loss_ref(key + ".x"),
                   [&](const Var& v, nn::Reduction r) {
                     return nn::cross_entropy(v, loss_ref(key + ".target"),
                                              {.reduction = r,
                                               .label_smoothing = ls,
                                               .weight = use_w ? loss_ref(key + ".weight") : Tensor()});
                   });
}

TEST_CASE("losses: binary_cross_entropy's gradient at probabilities 0 and 1 is PyTorch's, one op") {
  check_case("bce", loss_ref("bce.x"), [](const Var& v, nn::Reduction r) {
    return nn::binary_cross_entropy(v, loss_ref("bce.target"), r);
  });
  const Var p(Tensor({0.0, 1.0, 0.4}, {3}));
  const Var loss = nn::binary_cross_entropy(p, Tensor({1.0, 1.0, 0.0}, {3}), nn::Reduction::none);
  CHECK(loss.op_name() == "binary_cross_entropy");
  CHECK(loss.value().flat(0) == 100); // -log(0) clamped
}

TEST_CASE("losses: mse_loss broadcasts input and target as PyTorch") {
  for (const std::string key : {"mse_a", "mse_b"})
    check_case(key, loss_ref(key + ".x"), [&](const Var& v, nn::Reduction r) {
      return nn::mse_loss(v, Var::constant(loss_ref(key + ".target")), r);
    });
}

namespace {
/// The library's warnings while it lives, each one a string; the previous handler back at its end.
struct CapturedWarnings {
  std::vector<std::string> seen;
  gg::WarningHandler previous = gg::set_warning_handler([this](std::string_view m) { seen.emplace_back(m); });
  ~CapturedWarnings() { gg::set_warning_handler(previous); }
};
} // namespace

TEST_CASE("losses: mse_loss warns once, as PyTorch, when target and input broadcast, naming the shapes") {
  const Var x(Tensor::zeros({3, 1}));
  {
    CapturedWarnings w;
    nn::mse_loss(x, Var::constant(Tensor::zeros({3, 1})));
    CHECK(w.seen.empty()); // equal shapes: nothing to say
    nn::mse_loss(x, Var::constant(Tensor::zeros({3})));
    REQUIRE(w.seen.size() == 1);
    CHECK(w.seen[0] == "mse_loss: Using a target size ([3]) that is different to the input size ([3, 1]). "
                       "This will likely lead to incorrect results due to broadcasting (to [3, 3]). "
                       "Please ensure they have the same size.");
    nn::mse_loss(x, Var::constant(Tensor::zeros({3})));
    nn::mse_loss(Var(Tensor::zeros({2})), Var::constant(Tensor::zeros({4, 1})));
    CHECK(w.seen.size() == 1); // once
  }
  // The default handler: standard error, with the prefix, once again after the handler changed.
  std::ostringstream err;
  std::streambuf* const old = std::cerr.rdbuf(err.rdbuf());
  const gg::WarningHandler previous = gg::set_warning_handler({});
  nn::mse_loss(x, Var::constant(Tensor::zeros({1, 3})));
  nn::mse_loss(x, Var::constant(Tensor::zeros({1, 3})));
  nn::mse_loss(x, x);
  gg::set_warning_handler(previous);
  std::cerr.rdbuf(old);
  CHECK(err.str() == "gradgraph warning: mse_loss: Using a target size ([1, 3]) that is different to the "
                     "input size ([3, 1]). This will likely lead to incorrect results due to broadcasting "
                     "(to [3, 3]). Please ensure they have the same size.\n");
}

TEST_CASE("losses: float32 logits give a float32 loss near the float64 one") {
  const Var x(loss_ref("nd.x").to(gg::f32));
  const Var loss = nn::cross_entropy(x, loss_ref("nd.target.ii-100"),
                                     {.label_smoothing = 0.2, .weight = loss_ref("nd.weight")});
  CHECK(loss.dtype() == gg::f32);
  CHECK(loss.item() == Approx(loss_ref("nd.ce.ii-100.w1.ls0.2.mean").item()).epsilon(1e-5));
}

TEST_CASE("losses: bad targets and options name the loss called and the shapes") {
  const Var x = Var::constant(Tensor::zeros({2, 3, 4}));
  // A check inside the composite names cross_entropy, not nll_loss.
  CHECK_THROWS_WITH(nn::cross_entropy(x, Tensor::full({2, 4}, 3)),
                    Catch::StartsWith("cross_entropy: target 3 at [0, 0] is not a class id in [0, 3)"));
  CHECK_THROWS_WITH(nn::cross_entropy(x, Tensor::zeros({2, 3})),
                    Catch::StartsWith("cross_entropy:") && Catch::Contains("[2, 3, 4]") &&
                        Catch::Contains("[2, 4]") && Catch::Contains("[2, 3]"));
  CHECK_THROWS_AS(nn::cross_entropy(x, Tensor::zeros({2, 3})), gg::ShapeError);
  CHECK_THROWS_WITH(nn::cross_entropy(x, Tensor::full({2, 4}, 0.5)),
                    Catch::StartsWith("cross_entropy: target 0.5 at [0, 0] is not a class id"));
  CHECK_THROWS_WITH(nn::cross_entropy(x, std::vector<std::int64_t>{0, 1}),
                    Catch::StartsWith("cross_entropy:") && Catch::Contains("takes 8 class ids") &&
                        Catch::Contains("got 2"));
  CHECK_THROWS_AS(nn::cross_entropy(x, Tensor::zeros({2, 4}), {.label_smoothing = 1.5}), gg::ValueError);
  CHECK_THROWS_WITH(nn::cross_entropy(x, Tensor::zeros({2, 4}), {.weight = Tensor::ones({4})}),
                    Catch::StartsWith("cross_entropy: weight of shape [4] for 3 classes"));
  CHECK_THROWS_WITH(nn::cross_entropy(x, Tensor::zeros({2, 3, 4}), {.ignore_index = 0}),
                    Catch::StartsWith("cross_entropy: ignore_index (0) is not supported with probabilities"));
  CHECK_THROWS_WITH(nn::cross_entropy(Var(1.0), Tensor::scalar(0)), Catch::StartsWith("cross_entropy:"));
  CHECK_THROWS_WITH(nn::nll_loss(x, Tensor::full({2, 4}, -1)),
                    Catch::StartsWith("nll_loss: target -1 at [0, 0] is not a class id in [0, 3)"));
  CHECK_NOTHROW(nn::nll_loss(x, Tensor::full({2, 4}, -1), {.ignore_index = -1}));
  CHECK_THROWS_WITH(nn::binary_cross_entropy(Var(Tensor({0.5, 1.5}, {2})), Tensor({0.0, 1.0}, {2})),
                    Catch::StartsWith("binary_cross_entropy: input 1.5 at element 1 is not a probability"));
  CHECK_THROWS_WITH(nn::mse_loss(Var(Tensor::zeros({3, 2})), Var::constant(Tensor::zeros({3}))),
                    Catch::StartsWith("mse_loss") && Catch::Contains("[3, 2]") && Catch::Contains("[3]"));
}

TEST_CASE("losses: mse_loss is one node whose first and second derivatives reach input and target as "
          "PyTorch's") {
  CapturedWarnings quiet; // mse_c broadcasts
  for (const std::string key : {"mse_c", "mse_d"})
    for (auto [red, r] : {std::pair<std::string, nn::Reduction>{"mean", nn::Reduction::mean},
                          {"sum", nn::Reduction::sum},
                          {"none", nn::Reduction::none}}) {
      INFO(key << " reduction " << red);
      const std::string c = key + "." + red;
      const Var x(loss_ref(key + ".x").clone()), t(loss_ref(key + ".target").clone());
      const Var loss = nn::mse_loss(x, t, r);
      CHECK(loss.op_name() == "mse_loss");
      CHECK(gg::graph_stats(loss).nodes == 3); // x, t and the loss: no subtract, square or mean
      std::ostringstream dot;
      gg::write_dot(dot, loss);
      CHECK_THAT(dot.str(),
                 Catch::Contains("mse_loss#") && !Catch::Contains("sub#") && !Catch::Contains("mul#"));
      CHECK(max_relative_error(loss.value(), loss_ref(c)) < 1e-12);
      const Var w = r == nn::Reduction::none ? Var::constant(loss_ref(c + ".w")) : Var::constant(1.0);
      const std::vector<Var> g = gg::grad({gg::sum(loss * w)}, {x, t}, {}, {.create_graph = true});
      CHECK(max_relative_error(g[0].value(), loss_ref(c + ".grad.x")) < 1e-12);
      CHECK(max_relative_error(g[1].value(), loss_ref(c + ".grad.target")) < 1e-12);
      (gg::sum(g[0] * Var::constant(loss_ref(c + ".rx"))) +
       gg::sum(g[1] * Var::constant(loss_ref(c + ".rt"))))
          .backward();
      CHECK(max_relative_error(x.grad(), loss_ref(c + ".gg.x")) < 1e-12);
      CHECK(max_relative_error(t.grad(), loss_ref(c + ".gg.target")) < 1e-12);
    }
}

TEST_CASE("losses: mse_loss's one node gives the numbers of subtract, square and mean op by op, in "
          "float32 and float64") {
  CapturedWarnings quiet;
  for (const gg::DType dt : {gg::f32, gg::f64})
    for (const std::string key : {"mse_a", "mse_b", "mse_d"})
      for (const nn::Reduction r : {nn::Reduction::mean, nn::Reduction::sum, nn::Reduction::none}) {
        INFO(key << " " << gg::dtype_name(dt) << " reduction " << static_cast<int>(r));
        const Tensor xv = loss_ref(key + ".x").to(dt), tv = loss_ref(key + ".target").to(dt);
        const Var x(xv.clone()), t(tv.clone()), x2(xv.clone()), t2(tv.clone());
        const Var fused = nn::mse_loss(x, t, r);
        const Var d = x2 - t2;
        const Var by_ops = r == nn::Reduction::mean  ? gg::mean(d * d)
                           : r == nn::Reduction::sum ? gg::sum(d * d)
                                                     : d * d;
        CHECK(fused.dtype() == dt);
        CHECK(max_relative_error(fused.value(), by_ops.value()) == 0);
        const Var w = Var::constant(Tensor::full(fused.shape(), 0.75, dt));
        gg::sum(fused * w).backward();
        gg::sum(by_ops * w).backward();
        CHECK(max_relative_error(x.grad(), x2.grad()) == 0);
        CHECK(max_relative_error(t.grad(), t2.grad()) == 0);
      }
}

TEST_CASE("losses: mse_loss of scalars is a scalar node whose trace shows its local derivatives") {
  const Var x = Var(0.5).name("x"), y = Var(2.0).name("y");
  const Var loss = nn::mse_loss(x, y);
  CHECK(loss.is_scalar_node());
  CHECK(loss.item() == 2.25);
  const std::vector<gg::TraceStep> steps = gg::trace_backward(loss);
  REQUIRE(steps.size() == 2);
  CHECK(steps[0].op == "mse_loss");
  CHECK(steps[0].formula == "2*(x-y)/n");
  CHECK(steps[0].local == -3);
  CHECK(steps[1].formula == "-2*(x-y)/n");
  CHECK(steps[1].local == 3);
  loss.backward();
  CHECK(x.grad().item() == -3);
  CHECK(y.grad().item() == 3);
}
