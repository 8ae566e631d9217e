// The recurrent layers and cells: outputs, final states and every gradient against PyTorch
// (tests/nn/data/make_seq_reference.py -> recurrent_reference.safetensors, weights loaded by name) in
// float64 and float32, against finite differences, PyTorch's names and initialisation, bad input,
// one op per layer and direction (and the unrolled graph, as DOT draws it, with the same numbers).
#include "seq_reference.hpp"

#include <nn/nn.hpp>

#include <catch2/catch.hpp>

#include "../autodiff/inputs.hpp"
#include "../dot_reader.hpp"

#include <sstream>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;
using namespace gg::test;

namespace {

const gg::safetensors::File& recurrent_reference() {
  return reference_file("recurrent_reference.safetensors");
}

std::shared_ptr<nn::Module> make_module(const Case& c, gg::DType dtype) {
  const std::string kind = c.text("kind");
  const std::int64_t in = c.integer("input"), hidden = c.integer("hidden");
  const bool bias = c.flag("bias");
  if (kind.ends_with("_cell")) {
    if (kind == "rnn_tanh_cell") return std::make_shared<nn::RNNCell>(in, hidden, bias, "tanh", dtype);
    if (kind == "rnn_relu_cell") return std::make_shared<nn::RNNCell>(in, hidden, bias, "relu", dtype);
    if (kind == "lstm_cell") return std::make_shared<nn::LSTMCell>(in, hidden, bias, dtype);
    return std::make_shared<nn::GRUCell>(in, hidden, bias, dtype);
  }
  const nn::RecurrentOptions o{.num_layers = c.integer("num_layers"),
                               .nonlinearity = kind == "rnn_relu" ? "relu" : "tanh",
                               .bias = bias,
                               .batch_first = c.flag("batch_first"),
                               .dropout = c.number("dropout"),
                               .bidirectional = c.flag("bidirectional"),
                               .dtype = dtype};
  if (kind == "lstm") return std::make_shared<nn::LSTM>(in, hidden, o);
  if (kind == "gru") return std::make_shared<nn::GRU>(in, hidden, o);
  return std::make_shared<nn::RNN>(in, hidden, o);
}

/// The module's results by the reference's names: y, h_n (layers), c_n (LSTMs).
std::map<std::string, Var> run(nn::Module& m, const std::map<std::string, Var>& in) {
  const auto at = [&](const char* k) { return in.count(k) ? in.at(k) : Var(); };
  const Var x = at("x"), h0 = at("h0"), c0 = at("c0");
  if (auto* l = dynamic_cast<nn::LSTM*>(&m)) {
    auto [y, s] = (*l)(x, {h0, c0});
    return {{"y", y}, {"h_n", s.h}, {"c_n", s.c}};
  }
  if (auto* l = dynamic_cast<nn::RNN*>(&m)) {
    auto [y, h] = (*l)(x, h0);
    return {{"y", y}, {"h_n", h}};
  }
  if (auto* l = dynamic_cast<nn::GRU*>(&m)) {
    auto [y, h] = (*l)(x, h0);
    return {{"y", y}, {"h_n", h}};
  }
  if (auto* l = dynamic_cast<nn::LSTMCell*>(&m)) {
    const nn::LSTMState s = (*l)(x, {h0, c0});
    return {{"y", s.h}, {"c_n", s.c}};
  }
  if (auto* l = dynamic_cast<nn::RNNCell*>(&m)) return {{"y", (*l)(x, h0)}};
  return {{"y", dynamic_cast<nn::GRUCell&>(m)(x, h0)}};
}

const std::vector<std::string>& case_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (const auto& [name, options] : recurrent_reference().metadata) n.push_back(name);
    return n;
  }();
  return names;
}

/// Runs every reference case whose kind starts with prefix in dtype, against PyTorch's numbers.
void check_against_pytorch(const std::string& prefix, gg::DType dtype, double tolerance) {
  int cases = 0;
  for (const std::string& name : case_names()) {
    const Case c(recurrent_reference(), name);
    if (!c.text("kind").starts_with(prefix)) continue;
    ++cases;
    INFO("case " << name << " (" << c.options << ") in " << gg::dtype_name(dtype));
    std::shared_ptr<nn::Module> m = make_module(c, dtype);
    m->load_state_dict(c.state_dict(dtype));
    m->train(c.flag("train"));
    std::map<std::string, Var> inputs;
    for (const char* k : {"x", "h0", "c0"})
      if (c.has(k)) inputs[k] = Var(c.tensor(k).to(dtype));
    const std::map<std::string, Var> out = run(*m, inputs);
    Var loss;
    for (const auto& [k, v] : out) {
      if (!v.defined()) continue;
      INFO("output " << k);
      CHECK(max_relative_error(v.value(), c.tensor(k)) < tolerance);
      const Var term = gg::sum(v * Var::constant(c.tensor("r_" + k.substr(0, 1)).to(dtype)));
      loss = loss.defined() ? loss + term : term;
    }
    if (!c.has("h0")) { // the one-argument call is the same computation
      const Var y = (*m)(inputs.at("x"));
      CHECK(max_relative_error(y.value(), c.tensor("y")) < tolerance);
    }
    loss.backward();
    for (const auto& [k, v] : inputs) {
      INFO("gradient of " << k);
      CHECK(max_relative_error(v.grad(), c.tensor("g." + k)) < tolerance);
    }
    for (const auto& [k, p] : m->named_parameters()) {
      INFO("gradient of " << k);
      CHECK(max_relative_error(p.grad(), c.tensor("g." + k)) < tolerance);
    }
  }
  CHECK(cases >= 2);
}

/// The same cases' gradients (input, initial states, parameters) against central differences.
void check_finite_differences(const std::string& prefix) {
  for (const std::string& name : case_names()) {
    const Case c(recurrent_reference(), name);
    if (!c.text("kind").starts_with(prefix)) continue;
    INFO("case " << name << " (" << c.options << ")");
    std::shared_ptr<nn::Module> m = make_module(c, gg::f64);
    m->load_state_dict(c.state_dict(gg::f64));
    m->train(c.flag("train"));
    std::vector<std::pair<std::string, Var>> leaves;
    std::map<std::string, Var> inputs;
    for (const char* k : {"x", "h0", "c0"})
      if (c.has(k)) leaves.emplace_back(k, inputs[k] = Var(c.tensor(k).clone()));
    for (auto& named : m->named_parameters()) leaves.push_back(named);
    check_gradients(
        [&] {
          Var loss;
          for (const auto& [k, v] : run(*m, inputs))
            if (v.defined()) {
              const Var term = gg::sum(v * Var::constant(c.tensor("r_" + k.substr(0, 1))));
              loss = loss.defined() ? loss + term : term;
            }
          return loss;
        },
        leaves);
  }
}

} // namespace

TEST_CASE("recurrent: RNN (tanh and relu) and RNNCell equal PyTorch's outputs and gradients in float64 and "
          "float32") {
  check_against_pytorch("rnn_", gg::f64, 1e-10);
  check_against_pytorch("rnn_", gg::f32, 1e-4);
}

TEST_CASE("recurrent: LSTM and LSTMCell equal PyTorch's outputs, final states and gradients in float64 and "
          "float32") {
  check_against_pytorch("lstm", gg::f64, 1e-10);
  check_against_pytorch("lstm", gg::f32, 1e-4);
}

TEST_CASE("recurrent: GRU and GRUCell equal PyTorch's outputs and gradients in float64 and float32") {
  check_against_pytorch("gru", gg::f64, 1e-10);
  check_against_pytorch("gru", gg::f32, 1e-4);
}

TEST_CASE("recurrent: gradients of RNN, LSTM, GRU and the cells match finite differences") {
  check_finite_differences("rnn_");
  check_finite_differences("lstm");
  check_finite_differences("gru");
}

TEST_CASE("recurrent: PyTorch's parameter names, shapes, order and initialisation") {
  nn::manual_seed(3);
  nn::LSTM lstm(3, 5, {.num_layers = 2, .bidirectional = true});
  std::vector<std::string> names;
  for (const auto& [name, p] : lstm.named_parameters()) {
    names.push_back(name + " " + p.shape().str());
    const double bound = 1 / std::sqrt(5.0);
    const Tensor v = p.value();
    double lo = 1, hi = -1;
    for (std::int64_t i = 0; i < v.numel(); ++i) lo = std::min(lo, v.flat(i)), hi = std::max(hi, v.flat(i));
    INFO(name);
    CHECK(lo >= -bound);
    CHECK(hi <= bound);
    CHECK(hi - lo > bound); // spread over the range, not constant
  }
  CHECK(names == std::vector<std::string>{"weight_ih_l0 [20, 3]", "weight_hh_l0 [20, 5]", "bias_ih_l0 [20]",
                                          "bias_hh_l0 [20]", "weight_ih_l0_reverse [20, 3]",
                                          "weight_hh_l0_reverse [20, 5]", "bias_ih_l0_reverse [20]",
                                          "bias_hh_l0_reverse [20]", "weight_ih_l1 [20, 10]",
                                          "weight_hh_l1 [20, 5]", "bias_ih_l1 [20]", "bias_hh_l1 [20]",
                                          "weight_ih_l1_reverse [20, 10]", "weight_hh_l1_reverse [20, 5]",
                                          "bias_ih_l1_reverse [20]", "bias_hh_l1_reverse [20]"});
  CHECK(lstm.describe() == "LSTM(3, 5, num_layers=2, bidirectional=true)");
  CHECK(nn::GRU(2, 4, 1, false).named_parameters().size() == 2);
  CHECK(nn::GRU(2, 4).named_parameters()[0].second.shape() == gg::Shape{12, 2});
  CHECK(nn::RNN(2, 4, 1, "relu").describe() == "RNN(2, 4, nonlinearity=relu)");
  nn::GRUCell cell(2, 4);
  CHECK(cell.weight_ih.shape() == gg::Shape{12, 2});
  CHECK(cell.named_parameters()[3].first == "bias_hh");
  CHECK(nn::LSTMCell(2, 4, false).describe() == "LSTMCell(2, 4, bias=false)");
  // The positional constructors follow PyTorch's argument order.
  const nn::LSTM positional(3, 5, 2, true, true, 0.25, true);
  CHECK(positional.options().batch_first);
  CHECK(positional.options().dropout == 0.25);
  CHECK(positional.options().bidirectional);
}

TEST_CASE("recurrent: output and state shapes for batched, batch-first and unbatched input") {
  nn::LSTM lstm(2, 3, {.num_layers = 2, .batch_first = true, .bidirectional = true});
  auto [y, s] = lstm(Var::constant(Tensor::zeros({5, 7, 2})), {});
  CHECK(y.shape() == gg::Shape{5, 7, 6});
  CHECK(s.h.shape() == gg::Shape{4, 5, 3});
  CHECK(s.c.shape() == gg::Shape{4, 5, 3});
  auto [yu, su] = lstm(Var::constant(Tensor::zeros({7, 2})), {}); // unbatched: batch_first does not apply
  CHECK(yu.shape() == gg::Shape{7, 6});
  CHECK(su.h.shape() == gg::Shape{4, 3});
  nn::GRUCell cell(2, 3);
  CHECK(cell(Var::constant(Tensor::zeros({2}))).shape() == gg::Shape{3});
}

TEST_CASE("recurrent: dropout between layers only in training, from the layer's own generator") {
  nn::GRU gru(2, 4, {.num_layers = 2, .dropout = 0.5, .seed = 11});
  gg::Rng rng(5);
  const Var x = Var::constant(Tensor::randn({6, 3, 2}, rng));
  gru.eval();
  const Tensor a = gru(x).value(), b = gru(x).value();
  CHECK(max_relative_error(a, b) == 0);
  gru.train();
  const Tensor c = gru(x).value(), d = gru(x).value();
  CHECK(max_relative_error(c, a) > 1e-3); // dropped units change the second layer's input
  CHECK(max_relative_error(c, d) > 1e-3); // a new mask each call
  // A single layer has no dropout to apply (PyTorch applies it between layers only).
  nn::RNN one(2, 4, {.dropout = 0.5});
  CHECK(max_relative_error(one(x).value(), (one.eval(), one(x).value())) == 0);
}

TEST_CASE("recurrent: bad input names the layer and the shapes") {
  nn::LSTM lstm(2, 3, {.num_layers = 2});
  const Var x = Var::constant(Tensor::zeros({4, 5, 2}));
  CHECK_THROWS_WITH(
      lstm(Var::constant(Tensor::zeros({4, 5, 3}))),
      "LSTM(2, 3, num_layers=2): expected input [L, N, 2] (or [L, 2] unbatched), got shape [4, 5, 3]");
  CHECK_THROWS_AS(lstm(Var::constant(Tensor::zeros({4}))), gg::ShapeError);
  CHECK_THROWS_WITH(lstm(x, {Var::constant(Tensor::zeros({1, 5, 3})), {}}),
                    "LSTM(2, 3, num_layers=2): expected h_0 of shape [2, 5, 3] for input of shape [4, 5, 2], "
                    "got [1, 5, 3]");
  CHECK_THROWS_WITH(
      lstm(x, {{}, Var::constant(Tensor::zeros({2, 3}))}),
      "LSTM(2, 3, num_layers=2): expected c_0 of shape [2, 5, 3] for input of shape [4, 5, 2], got [2, 3]");
  CHECK_THROWS_WITH(lstm(Var::constant(Tensor::zeros({4, 5, 2}, gg::f32))),
                    "LSTM(2, 3, num_layers=2): the input is float32 but the parameters are float64");
  nn::GRU bf(2, 3, {.batch_first = true});
  CHECK_THROWS_WITH(
      bf(Var::constant(Tensor::zeros({4, 5, 1}))),
      "GRU(2, 3, batch_first=true): expected input [N, L, 2] (or [L, 2] unbatched), got shape [4, 5, 1]");
  nn::LSTMCell cell(2, 3);
  CHECK_THROWS_WITH(cell(Var::constant(Tensor::zeros({4, 3}))),
                    "LSTMCell(2, 3): expected input [N, 2] (or [2] unbatched), got shape [4, 3]");
  CHECK_THROWS_WITH(cell(Var::constant(Tensor::zeros({4, 2})), {Var::constant(Tensor::zeros({3})), {}}),
                    "LSTMCell(2, 3): expected h of shape [4, 3] for input of shape [4, 2], got [3]");
  CHECK_THROWS_WITH(nn::RNN(2, 3, 1, "sigmoid"), "RNN: unknown nonlinearity 'sigmoid' (tanh or relu)");
  CHECK_THROWS_WITH(nn::RNNCell(2, 3, true, "gelu"), "RNNCell: unknown nonlinearity 'gelu' (tanh or relu)");
  CHECK_THROWS_WITH(nn::LSTM(2, 3, {.nonlinearity = "relu"}),
                    "LSTM: nonlinearity 'relu' applies to RNN only");
  CHECK_THROWS_WITH(nn::GRU(2, 3, 1, true, false, 1.5), "GRU: dropout must be in [0, 1], got 1.5");
  CHECK_THROWS_WITH(nn::GRU(2, 0), "GRU: hidden_size must be positive, got 0");
  CHECK_THROWS_WITH(nn::LSTM(2, 3, 0), "LSTM: num_layers must be positive, got 0");
  CHECK_THROWS_AS(nn::GRUCell(0, 3), gg::ValueError);
}

TEST_CASE("recurrent: an empty sequence is refused, an empty batch gives empty outputs") {
  nn::GRU gru(2, 3, {.bidirectional = true});
  CHECK_THROWS_WITH(gru(Var::constant(Tensor::zeros({0, 4, 2}))),
                    "GRU(2, 3, bidirectional=true): the input sequence of shape [0, 4, 2] has no steps");
  CHECK_THROWS_AS(gru(Var::constant(Tensor::zeros({0, 2}))), gg::ShapeError);
  nn::LSTM lstm(2, 3);
  auto [y, s] = lstm(Var(Tensor::zeros({5, 0, 2})), {});
  CHECK(y.shape() == gg::Shape{5, 0, 3});
  CHECK(s.c.shape() == gg::Shape{1, 0, 3});
  gg::sum(y).backward();
  CHECK(lstm.named_parameters()[0].second.grad().to_vector() == std::vector<double>(24, 0.0));
}

TEST_CASE("recurrent: unrolled, the DOT picture shows the steps, each weight one node feeding every step") {
  nn::Sequential model;
  model.push_back(std::make_shared<nn::RNN>(2, 3, nn::RecurrentOptions{.unrolled = true}));
  const Var y = model(Var::constant(Tensor::ones({4, 1, 2}))); // 4 steps
  std::ostringstream dot;
  gg::write_dot(dot, gg::sum(y));
  const std::string text = dot.str();
  CHECK_THAT(text, Catch::Contains("label=\"0: RNN(2, 3)\"")); // the layer is a cluster
  const gg::test::DotGraph g = gg::test::read_dot(text);
  for (const std::string name : {"weight_ih_l0", "weight_hh_l0", "bias_hh_l0"}) {
    INFO(name);
    const auto at = text.find("label=\"" + name + "\\n");
    REQUIRE(at != std::string::npos);
    CHECK(text.find("label=\"" + name + "\\n", at + 1) == std::string::npos); // one node
    CHECK(g.out_degree(g.id_of(name + "\\n")) == 4);                          // one use per step
  }
}

TEST_CASE(
    "recurrent: an LSTM layer is one lstm_layer node over the sequence with each weight feeding it once") {
  nn::Sequential model;
  model.push_back(std::make_shared<nn::LSTM>(2, 3, nn::RecurrentOptions{.num_layers = 2}));
  const Var y = model(Var::constant(Tensor::ones({4, 1, 2})));
  std::ostringstream dot;
  gg::write_dot(dot, gg::sum(y));
  const std::string text = dot.str();
  const gg::test::DotGraph g = gg::test::read_dot(text);
  for (const std::string name : {"weight_ih_l0", "weight_hh_l1", "bias_ih_l1"}) {
    INFO(name);
    CHECK(g.out_degree(g.id_of(name + "\\n")) == 1);
  }
  std::size_t layers = 0;
  for (auto at = text.find("lstm_layer"); at != std::string::npos; at = text.find("lstm_layer", at + 1))
    ++layers;
  CHECK(layers >= 2);
}

TEST_CASE(
    "recurrent: a GRU or RNN layer is one gru_layer or rnn_layer node with each weight feeding it once") {
  for (const std::string kind : {"gru", "rnn"}) {
    INFO(kind);
    nn::Sequential model;
    if (kind == "gru")
      model.push_back(std::make_shared<nn::GRU>(2, 3, nn::RecurrentOptions{.num_layers = 2}));
    else
      model.push_back(std::make_shared<nn::RNN>(2, 3, nn::RecurrentOptions{.num_layers = 2}));
    std::ostringstream dot;
    gg::write_dot(dot, gg::sum(model(Var::constant(Tensor::ones({4, 1, 2})))));
    const std::string text = dot.str();
    const gg::test::DotGraph g = gg::test::read_dot(text);
    for (const std::string name : {"weight_ih_l0", "weight_hh_l1", "bias_ih_l1"}) {
      INFO(name);
      CHECK(g.out_degree(g.id_of(name + "\\n")) == 1);
    }
    const std::string op = kind + "_layer";
    std::size_t layers = 0;
    for (auto at = text.find(op); at != std::string::npos; at = text.find(op, at + 1)) ++layers;
    CHECK(layers >= 2);
  }
}

TEST_CASE("recurrent: unrolled layers equal the one-op layers in outputs, final states and gradients") {
  for (const std::string kind : {"rnn_tanh", "rnn_relu", "lstm", "gru"})
    for (const bool bidirectional : {false, true}) {
      INFO(kind << (bidirectional ? " bidirectional" : ""));
      std::vector<std::shared_ptr<nn::RNNBase>> layers;
      for (const bool unrolled : {false, true}) {
        nn::manual_seed(11);
        const nn::RecurrentOptions o{.num_layers = 2,
                                     .nonlinearity = kind == "rnn_relu" ? "relu" : "tanh",
                                     .batch_first = true,
                                     .bidirectional = bidirectional,
                                     .unrolled = unrolled};
        if (kind == "lstm")
          layers.push_back(std::make_shared<nn::LSTM>(3, 4, o));
        else if (kind == "gru")
          layers.push_back(std::make_shared<nn::GRU>(3, 4, o));
        else
          layers.push_back(std::make_shared<nn::RNN>(3, 4, o));
      }
      const Tensor x = gg::test::rnd({2, 5, 3}, 12);
      const std::int64_t states = bidirectional ? 4 : 2;
      std::vector<std::vector<Tensor>> results;
      for (const auto& layer : layers) {
        const Var xv(x.clone(), true), h0(gg::test::rnd({states, 2, 4}, 13), true),
            c0(gg::test::rnd({states, 2, 4}, 14), true);
        Var y, hn, cn;
        if (auto* lstm = dynamic_cast<nn::LSTM*>(layer.get())) {
          auto [out, s] = (*lstm)(xv, {h0, c0});
          y = out, hn = s.h, cn = s.c;
        } else if (auto* gru = dynamic_cast<nn::GRU*>(layer.get())) {
          std::tie(y, hn) = (*gru)(xv, h0);
        } else {
          std::tie(y, hn) = (*dynamic_cast<nn::RNN*>(layer.get()))(xv, h0);
        }
        Var loss = gg::sum(y * Var::constant(gg::test::rnd(y.shape(), 15))) + gg::sum(hn * hn);
        if (cn.defined()) loss = loss + gg::sum(cn * cn * cn);
        std::vector<Var> wrt{xv, h0};
        if (cn.defined()) wrt.push_back(c0);
        for (const auto& [name, p] : layer->named_parameters()) wrt.push_back(p);
        std::vector<Tensor> r{y.value(), hn.value()};
        for (const Var& d : gg::grad({loss}, wrt)) r.push_back(d.value());
        results.push_back(std::move(r));
      }
      REQUIRE(results[0].size() == results[1].size());
      for (std::size_t i = 0; i < results[0].size(); ++i) {
        INFO("result " << i);
        REQUIRE(results[0][i].shape() == results[1][i].shape());
        for (std::int64_t j = 0; j < results[0][i].numel(); ++j)
          CHECK(results[0][i].flat(j) == Approx(results[1][i].flat(j)).epsilon(1e-12).margin(1e-13));
      }
    }
}
