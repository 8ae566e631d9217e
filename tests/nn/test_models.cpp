// Models beyond an MLP written as ordinary C++ classes deriving from Module: a residual block
// (skip connection) and a two-branch network shaped like Rumelhart, Hinton and Williams' (1986)
// family-trees model. Their parameter names nest as PyTorch's do, and their gradients are exact.
#include <nn/nn.hpp>

#include <catch2/catch.hpp>

#include "../dot_reader.hpp"

#include <sstream>

using gg::Tensor;
using gg::Var;
namespace nn = gg::nn;

namespace {

/// y = relu(x + W2 relu(W1 x)): the skip connection adds the input back.
class Residual : public nn::Module {
public:
  explicit Residual(std::int64_t width)
      : fc1(register_module("fc1", std::make_shared<nn::Linear>(width, width))),
        fc2(register_module("fc2", std::make_shared<nn::Linear>(width, width))) {}
  Var forward(const Var& x) override { return gg::relu(x + (*fc2)(gg::relu((*fc1)(x)))); }
  std::shared_ptr<nn::Linear> fc1, fc2;
};

/// Two inputs: person (one-hot of 24) and relation (one-hot of 12), each encoded to 6 units,
/// joined into 12 hidden units, then 6, then 24 outputs.
class FamilyTrees : public nn::Module {
public:
  FamilyTrees()
      : person(register_module("person", std::make_shared<nn::Linear>(24, 6))),
        relation(register_module("relation", std::make_shared<nn::Linear>(12, 6))),
        hidden(register_module("hidden", std::make_shared<nn::Linear>(12, 12))),
        decode(register_module("decode", std::make_shared<nn::Linear>(12, 6))),
        out(register_module("out", std::make_shared<nn::Linear>(6, 24))) {}
  Var operator()(const Var& p, const Var& r) {
    Var h = gg::concat({gg::sigmoid((*person)(p)), gg::sigmoid((*relation)(r))}, 1);
    h = gg::sigmoid((*hidden)(h));
    return gg::sigmoid((*out)(gg::sigmoid((*decode)(h))));
  }
  std::shared_ptr<nn::Linear> person, relation, hidden, decode, out;
};

Tensor one_hot(std::int64_t n, std::int64_t k, std::int64_t width) {
  Tensor t = Tensor::zeros({n, width});
  for (std::int64_t i = 0; i < n; ++i) t.set_flat(i * width + (i * 7 + k) % width, 1);
  return t;
}

} // namespace

TEST_CASE("models: a residual block is a Module with nested names and exact gradients") {
  nn::manual_seed(1);
  Residual block(4);
  std::vector<std::string> names;
  for (auto& [n, p] : block.named_parameters()) names.push_back(n);
  CHECK(names == std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"});
  nn::Sequential model;
  model.push_back(std::make_shared<Residual>(4));
  model.push_back(std::make_shared<nn::Linear>(4, 2));
  CHECK(model.named_parameters()[0].first == "0.fc1.weight");
  gg::Rng rng(2);
  const Tensor x = Tensor::randn({3, 4}, rng);
  auto r = gg::gradcheck([&](const std::vector<Var>& v) { return block(v[0]); }, {x});
  INFO(r.message);
  CHECK(r.ok);
  // with zero residual weights the block is relu(x): the skip carries the input through
  for (auto& p : block.parameters()) p.set_value(Tensor::zeros(p.shape()));
  CHECK(block(Var::constant(x)).value().to_vector() ==
        gg::kernel::unary(gg::kernel::Unary::relu, x).to_vector());
}

TEST_CASE("models: a two-input network is called with both branches and trains its parameters") {
  nn::manual_seed(2);
  FamilyTrees net;
  CHECK(nn::parameter_count(net) ==
        (24 * 6 + 6) + (12 * 6 + 6) + (12 * 12 + 12) + (12 * 6 + 6) + (6 * 24 + 24));
  CHECK_THROWS_AS(net.forward(Var::constant(Tensor::zeros({1, 24}))), gg::UsageError);
  const Tensor p = one_hot(5, 1, 24), r = one_hot(5, 2, 12), target = one_hot(5, 3, 24);
  // gradients flow through both branches to both inputs
  auto r1 = gg::gradcheck([&](const std::vector<Var>& v) { return net(v[0], v[1]); }, {p, r});
  INFO(r1.message);
  CHECK(r1.ok);
  CHECK(r1.max_error < 1e-6);
  double first = 0, last = 0;
  for (int step = 0; step < 200; ++step) { // plain gradient descent on the squared error
    net.zero_grad();
    Var loss =
        nn::mse_loss(net(Var::constant(p), Var::constant(r)), Var::constant(target), nn::Reduction::sum);
    loss.backward();
    for (Var& w : net.parameters())
      w.set_value(gg::kernel::binary(gg::kernel::Binary::sub, w.value(),
                                     gg::kernel::binary_scalar(gg::kernel::Binary::mul, w.grad(), 0.5)));
    (step == 0 ? first : last) = loss.item();
  }
  CHECK(last < 0.5 * first);
}

TEST_CASE("models: nodes recorded inside a module carry its scope, nested as the modules are") {
  nn::manual_seed(3);
  nn::Sequential model;
  model.push_back(std::make_shared<Residual>(2));
  model.push_back(std::make_shared<nn::Linear>(2, 1));
  Var y = model(Var::constant(Tensor::ones({1, 2})));
  CHECK(gg::scope_of(y) == "1"); // the last Linear (one linear op)
  Var inner = y.inputs()[0];     // its input: the residual block's output
  CHECK(gg::scope_of(inner) == "0");
  CHECK(gg::scope_of(inner.inputs()[0]) == "0"); // x + fc2(...)
  CHECK(gg::scope_of(inner.inputs()[0].inputs()[1]) == "0/fc2");
  CHECK(gg::Scope::current().empty());
  Var outside = y * 2.0;
  CHECK(gg::scope_of(outside).empty());
}

TEST_CASE("models: write_dot of a model's loss draws each layer as a cluster with its parameters") {
  nn::manual_seed(1);
  nn::Sequential mlp(nn::Linear(2, 3), nn::Sigmoid(), nn::Linear(3, 2));
  Var loss = nn::cross_entropy(mlp(Var::constant(Tensor({0.5, -1.0}, {1, 2}))), Tensor({1}, {1}));
  loss.backward();
  std::ostringstream dot;
  gg::write_dot(dot, loss);
  const std::string s = dot.str();
  const gg::test::DotGraph g = gg::test::read_dot(s);
  std::vector<std::string> labels;
  for (const auto& c : g.clusters) labels.push_back(c.label);
  CHECK(labels == std::vector<std::string>{"0: Linear(in=2, out=3)", "1: Sigmoid", "2: Linear(in=3, out=2)"});
  // Each layer's weight is drawn inside its layer's cluster, under its own short name; the loss
  // is outside the layers.
  const std::string linear = g.id_of("linear#");
  REQUIRE(!linear.empty());
  const int first = g.cluster_of(linear);
  REQUIRE(first >= 0);
  CHECK(g.clusters[static_cast<std::size_t>(first)].label == "0: Linear(in=2, out=3)");
  std::size_t weights = 0;
  for (const auto& [id, label] : g.labels)
    if (label.rfind("weight\\n", 0) == 0) {
      ++weights;
      CHECK(g.cluster_of(id) >= 0);
    }
  CHECK(weights == 2);
  CHECK(g.cluster_of(g.id_of("log_softmax")) == -1);
}

namespace {
/// An Elman RNN unrolled by hand: h_t = tanh(ih(x_t) + hh(h_{t-1})), two Linear layers called at
/// every step.
class UnrolledRNN : public nn::Module {
public:
  UnrolledRNN()
      : ih(register_module("ih", std::make_shared<nn::Linear>(2, 3))),
        hh(register_module("hh", std::make_shared<nn::Linear>(3, 3))) {}
  std::string describe() const override { return "RNN"; }
  Var run(const std::vector<Var>& xs) {
    const gg::Scope scope("rnn", describe());
    Var h = Var::constant(Tensor::zeros({1, 3})).name("h0");
    for (const Var& x : xs) h = gg::tanh((*ih)(x) + (*hh)(h));
    return h;
  }
  std::shared_ptr<nn::Linear> ih, hh;
};
} // namespace

TEST_CASE("models: an RNN unrolled by hand is drawn step by step, each shared weight one node with its "
          "full name") {
  nn::manual_seed(0);
  UnrolledRNN rnn;
  constexpr std::size_t steps = 4;
  std::vector<Var> xs;
  for (std::size_t t = 0; t < steps; ++t)
    xs.push_back(Var::constant(Tensor::full({1, 2}, 0.1 * static_cast<double>(t + 1))));
  Var loss = gg::sum(rnn.run(xs)).name("loss");
  loss.backward();
  std::ostringstream os;
  gg::write_dot(os, loss);
  const gg::test::DotGraph g = gg::test::read_dot(os.str());
  INFO(os.str());
  // One cluster for the RNN's call, and in it one per call of each Linear: a step's calls are not
  // joined into one cluster of all steps.
  std::size_t ih_calls = 0, hh_calls = 0;
  int rnn_cluster = -1;
  for (std::size_t c = 0; c < g.clusters.size(); ++c) {
    const auto& cluster = g.clusters[c];
    if (cluster.label == "rnn: RNN") rnn_cluster = static_cast<int>(c);
    ih_calls += cluster.label == "rnn/ih: Linear(in=2, out=3)";
    hh_calls += cluster.label == "rnn/hh: Linear(in=3, out=3)";
  }
  CHECK(ih_calls == steps);
  CHECK(hh_calls == steps);
  REQUIRE(rnn_cluster >= 0);
  // Each shared parameter: one node named as in the state dict, in the RNN's cluster, fanning out
  // to every step.
  for (const char* name : {"rnn.ih.weight", "rnn.ih.bias", "rnn.hh.weight", "rnn.hh.bias"}) {
    INFO(name);
    const std::string id = g.id_of(std::string(name) + "\\n");
    REQUIRE(!id.empty());
    CHECK(g.cluster_of(id) == rnn_cluster);
    CHECK(g.out_degree(id) == steps);
  }
  CHECK(g.id_of("weight\\n").empty()); // no parameter left with its short name
  // One ranking for the whole picture, and each step's input projection placed beside the step's
  // recurrent one (an invisible edge from the step before).
  CHECK(g.graph_attributes.find("newrank=true") != std::string::npos);
  CHECK(g.invisible.size() == steps - 1);
}
