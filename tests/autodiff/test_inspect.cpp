// Graph inspection: DOT output (names, values, gradients, local derivatives, styles, escaping),
// the chain-rule trace of backward, and graph statistics, including a million-node chain.
#include <autodiff/autodiff.hpp>

#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <string>

#include "../dot_reader.hpp"

using gg::Tensor;
using gg::Var;

namespace {

std::string dot_of(const Var& root, const gg::DotOptions& options = {}) {
  std::ostringstream os;
  gg::write_dot(os, root, options);
  return os.str();
}

/// The DOT statement starting with `prefix` ("0 [", "2->4 "), or "" when there is none.
std::string statement(const std::string& dot, const std::string& prefix) {
  std::istringstream is(dot);
  for (std::string line; std::getline(is, line);)
    if (line.rfind(prefix, 0) == 0) return line;
  return {};
}

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("inspect: DOT of the cs231n graph shows names and values and gradients and local derivatives") {
  Var x = -2.0, y = 5.0, z = -4.0;
  x.name("x"), y.name("y"), z.name("z");
  Var q = (x + y).name("q");
  Var f = (q * z).name("f");
  f.backward();
  const std::string dot = dot_of(f);
  INFO(dot);
  CHECK(has(dot, "digraph"));
  CHECK(has(dot, "rankdir=LR"));
  // Vertices are numbered inputs first: x 0, y 1, q 2, z 3, f 4.
  CHECK(has(statement(dot, "0 ["), R"(label="x\nleaf\nvalue -2\ngrad -4")"));
  CHECK(has(statement(dot, "2 ["), R"(label="q\nadd\nvalue 3\ngrad -4")"));
  CHECK(has(statement(dot, "3 ["), R"(label="z\nleaf\nvalue -4\ngrad 3")"));
  CHECK(has(statement(dot, "4 ["), R"(label="f\nmul\nvalue -12\ngrad 1")"));
  CHECK(has(statement(dot, "2->4 "), "label=-4"));
  CHECK(has(statement(dot, "3->4 "), "label=3"));
  CHECK(has(statement(dot, "0->2 "), "label=1"));
  CHECK(has(statement(dot, "1->2 "), "label=1"));
  // Leaves that require grad: filled boxes; op results: ellipses.
  CHECK(has(statement(dot, "0 ["), "shape=box"));
  CHECK(has(statement(dot, "0 ["), "fillcolor=lightblue"));
  CHECK(has(statement(dot, "2 ["), "shape=ellipse"));
  CHECK(has(statement(dot, "4 ["), "style=bold"));
}

TEST_CASE("inspect: DOT options and constants and escaped names") {
  Var x = 2.0;
  x.name(R"(say "hi" \o/)");
  Var y = x * Var::constant(5.0) + x * 3.0;
  const std::string dot = dot_of(y, {.rankdir = "TB", .show_grad = false, .edge_derivatives = false});
  INFO(dot);
  CHECK(has(dot, "rankdir=TB"));
  CHECK(has(dot, R"(label="say \"hi\" \\o/\nleaf\nvalue 2")")); // no gradient before backward
  CHECK(has(dot, "style=dashed"));                              // the constant 5
  CHECK(has(dot, R"(label="const#1\nvalue 5")"));
  CHECK(has(dot, R"(label="mul_c#3\n3·say \"hi\" \\o/\nvalue 6")")); // x * 3 drawn as written
  REQUIRE_FALSE(statement(dot, "0->3").empty());
  CHECK_FALSE(has(statement(dot, "0->3"), "label")); // no edge labels asked for
  y.backward();
  CHECK_FALSE(has(dot_of(y, {.show_grad = false}), "\\ngrad"));
  CHECK(has(dot_of(y), R"(\ngrad 8")"));
  CHECK(has(dot_of(y), "label=3")); // d(x*3)/dx (the node shows its constant)
}

TEST_CASE("inspect: DOT draws an op with a number as the learner wrote it: x − 3, 2·d, e^3") {
  Var x = 2.0;
  x.name("x");
  const Var d = (x - 3.0).name("d"); // recorded as add_c with c = -3
  const Var e = (2.0 * d).name("e");
  const Var f = gg::pow(e, 3.0).name("f");
  f.backward();
  const std::string dot = dot_of(f);
  INFO(dot);
  CHECK(has(dot, R"(label="d\nx − 3\nvalue -1)"));
  CHECK(has(dot, R"(label="e\n2·d\nvalue -2)"));
  CHECK(has(dot, R"(label="f\ne^3\nvalue -8)"));
  CHECK_FALSE(has(dot, "add_c"));
  CHECK_FALSE(has(dot, "c = "));
  CHECK(has(statement(dot, "0->1"), "label=1")); // dd/dx, without "(c = -3)"
}

TEST_CASE("inspect: a tensor graph's DOT shows shapes and the first entries") {
  Var w(Tensor({1, 2, 3, 4, 5, 6}, {2, 3}));
  w.name("w");
  Var loss = gg::sum(w * w);
  loss.backward();
  const std::string dot = dot_of(loss);
  INFO(dot);
  CHECK(has(dot, "shape [2, 3]"));
  CHECK(has(dot, R"([1, 2, 3, 4, …])"));
  CHECK(has(dot, R"(grad [2, 4, 6, 8, …])"));
  CHECK(has(dot_of(loss, {.max_entries = 6}), R"([1, 2, 3, 4, 5, 6]\n)"));
  CHECK_THROWS_AS(gg::trace_backward(loss), gg::UsageError);
}

TEST_CASE("inspect: trace of the cs231n graph without a backward pass") {
  Var x = -2.0, y = 5.0, z = -4.0;
  x.name("x"), y.name("y"), z.name("z");
  Var q = (x + y).name("q");
  Var f = (q * z).name("f");
  const std::vector<gg::TraceStep> steps = gg::trace_backward(f);
  CHECK_FALSE(x.has_grad()); // a pure function of the graph

  REQUIRE(steps.size() == 4);
  struct Expected {
    const char *node, *input, *op, *formula;
    double local, upstream, product, accumulated;
  };
  const Expected expected[] = {{"f", "q", "mul", "z", -4, 1, -4, -4},
                               {"f", "z", "mul", "q", 3, 1, 3, 3},
                               {"q", "x", "add", "1", 1, -4, -4, -4},
                               {"q", "y", "add", "1", 1, -4, -4, -4}};
  for (std::size_t i = 0; i < steps.size(); ++i) {
    INFO("step " << i);
    CHECK(steps[i].node == expected[i].node);
    CHECK(steps[i].input == expected[i].input);
    CHECK(steps[i].op == expected[i].op);
    CHECK(steps[i].formula == expected[i].formula);
    CHECK(steps[i].local == expected[i].local);
    CHECK(steps[i].upstream == expected[i].upstream);
    CHECK(steps[i].product == expected[i].product);
    CHECK(steps[i].accumulated == expected[i].accumulated);
    CHECK_FALSE(steps[i].fan_in);
  }
  CHECK(steps[0].expr == "mul(q, z)");

  const std::string text = gg::format_trace(steps);
  INFO(text);
  CHECK(has(text, "seed: df/df = 1"));
  CHECK(has(text, "f = mul(q, z)   df/dq = z = -4   upstream 1 × local -4 = -4   → dq = -4\n"));
  CHECK(has(text, "q = add(x, y)   dq/dy = 1        upstream -4 × local 1 = -4   → dy = -4\n"));
}

TEST_CASE("inspect: trace of c = b + b with b = a + a shows gradients accumulating") {
  Var a = 1.0;
  a.name("a");
  Var b = (a + a).name("b");
  Var c = (b + b).name("c");
  const std::vector<gg::TraceStep> steps = gg::trace_backward(c);
  REQUIRE(steps.size() == 4);
  // c passes 1 to b along each of its two edges; then b, complete at 2, passes 2 to a twice.
  CHECK(steps[0].input == "b");
  CHECK(steps[0].accumulated == 1);
  CHECK(steps[1].input == "b");
  CHECK(steps[1].accumulated == 2);
  CHECK(steps[2].input == "a");
  CHECK(steps[2].upstream == 2);
  CHECK(steps[2].accumulated == 2);
  CHECK(steps[3].input == "a");
  CHECK(steps[3].accumulated == 4);
  for (const gg::TraceStep& s : steps) CHECK(s.fan_in);
  CHECK(has(gg::format_trace(steps), "→ da = 4 (running sum)"));

  // Each step says which of its input's contributions it is, and the sum before it.
  CHECK(steps[1].contribution == 2);
  CHECK(steps[1].contributions == 2);
  CHECK(steps[1].previous == 1);
  CHECK(steps[2].contribution == 1);
  CHECK(steps[2].previous == 0);

  // The visiting form hands over the same steps one at a time.
  std::size_t i = 0;
  gg::trace_backward(c, [&](const gg::TraceStep& s) {
    REQUIRE(i < steps.size());
    CHECK(s.node == steps[i].node);
    CHECK(s.input == steps[i].input);
    CHECK(s.accumulated == steps[i].accumulated);
    CHECK(s.contribution == steps[i].contribution);
    ++i;
  });
  CHECK(i == steps.size());

  c.backward(); // the trace agrees with backward
  CHECK(b.grad().item() == steps[1].accumulated);
  CHECK(a.grad().item() == steps[3].accumulated);
}

TEST_CASE("inspect: trace formulas use the graph's names and constants and skip constant inputs") {
  Var x = 3.0;
  Var y = gg::pow(x, 2.0) * Var::constant(4.0);
  const std::vector<gg::TraceStep> steps = gg::trace_backward(y);
  REQUIRE(steps.size() == 2); // mul -> pow_c (not mul -> the constant), pow_c -> x
  CHECK(steps[0].node == "mul#3");
  CHECK(steps[0].input == "pow_c#1");
  CHECK(steps[0].formula == "const#2");
  CHECK(steps[1].formula == "2*leaf#0^(2-1)");
  CHECK(steps[1].local == 6);
  CHECK(steps[1].accumulated == 24);
  CHECK(gg::trace_backward(x).empty());
}

TEST_CASE("inspect: graph_stats of small graphs") {
  Var x = -2.0, y = 5.0, z = -4.0;
  Var f = (x + y) * z;
  const gg::GraphStats s = gg::graph_stats(f);
  CHECK(s.nodes == 5);
  CHECK(s.edges == 4);
  CHECK(s.leaves == 3);
  CHECK(s.depth == 2);
  CHECK(s.max_fan_out == 1);

  Var a = 1.0;
  Var b = a + a;
  Var c = b * b + a; // a feeds b and c
  const gg::GraphStats t = gg::graph_stats(c);
  CHECK(t.nodes == 4);
  CHECK(t.edges == 6);
  CHECK(t.leaves == 1);
  CHECK(t.depth == 3);
  CHECK(t.max_fan_out == 2);
}

TEST_CASE("inspect: graph_stats of a million-op chain does not recurse") {
  constexpr std::size_t n = 1'000'000;
  Var x = 1.0;
  Var y = x;
  for (std::size_t i = 0; i < n; ++i) y = y * 1.0;
  const gg::GraphStats s = gg::graph_stats(y);
  CHECK(s.nodes == n + 1);
  CHECK(s.edges == n);
  CHECK(s.leaves == 1);
  CHECK(s.depth == n);
  CHECK(s.max_fan_out == 1);
}

TEST_CASE("inspect: DOT draws NaN as nan and highlights values and gradients that are not finite") {
  Var x = -1.0, a = 0.0;
  x.name("x"), a.name("a");
  Var y = gg::log(x).name("y");  // NaN (the sign bit set: printf writes "-nan")
  Var s = gg::sqrt(x).name("s"); // NaN, and its local derivative 0.5/sqrt(x) too
  Var l = gg::log(a).name("l");  // -inf
  Var f = (y * 2.0 + s + l).name("f");
  f.backward();
  const std::string dot = dot_of(f);
  const gg::test::DotGraph g = gg::test::read_dot(dot);
  INFO(dot);
  CHECK(has(g.labels.at(g.id_of("y\\n")), "value nan"));
  CHECK_FALSE(has(dot, "-nan"));
  CHECK(has(g.labels.at(g.id_of("l\\n")), "value -inf"));
  for (const char* name : {"y\\n", "s\\n", "l\\n", "f\\n", "a\\n"}) { // a: its gradient is 1/0 = inf
    INFO(name);
    CHECK(has(g.lines.at(g.id_of(name)), "color=red"));
    CHECK(has(g.lines.at(g.id_of(name)), "penwidth=2"));
  }
  CHECK(has(g.labels.at(g.id_of("x\\n")), "grad nan")); // through sqrt's NaN derivative: red too
  CHECK(has(g.lines.at(g.id_of("x\\n")), "color=red"));
  CHECK(has(g.graph_attributes, "red: a value or gradient that is NaN or infinite"));
  // The edge x -> s carries the NaN local derivative: red.
  CHECK(has(statement(dot, g.id_of("x\\n") + "->" + g.id_of("s\\n")), "color=red"));
}

TEST_CASE("inspect: DOT has a legend saying what edge labels mean, and options to leave it out") {
  Var x = 2.0;
  x.name("x");
  Var y = (x * x).name("y");
  y.backward();
  std::string dot = dot_of(y);
  CHECK(has(dot, "edge label: the local derivative d(node)/d(input) at these values"));
  CHECK(has(dot, "grad: d(output)/d(this node), from backward"));
  CHECK(has(dot, "labelloc=b"));
  CHECK_FALSE(has(dot, "tensors:")); // only what the picture shows
  dot = dot_of(y, {.edge_derivatives = false});
  CHECK_FALSE(has(dot, "edge label"));
  CHECK_FALSE(has(dot_of(y, {.legend = false}), "boxes:"));
  Var w(Tensor({1, 2, 3, 4, 5, 6, 7, 8}, {8}));
  Var loss = gg::sum(w * w);
  CHECK(has(dot_of(loss, {.max_entries = 6}), "tensors: their shape and first 6 entries"));
  CHECK(has(dot_of(loss, {.max_entries = 8}), "[1, 2, 3, 4, 5, 6, 7, 8]"));
}

TEST_CASE("inspect: DOT draws a cluster per call of a scope, and a parameter shared by calls with "
          "its full name") {
  Var w = 0.5, u = 0.25, v = 2.0;
  w.name("w"), u.name("u"), v.name("v");
  Var h = Var::constant(1.0).name("h0");
  constexpr std::size_t steps = 3;
  {
    const gg::Scope rnn("rnn", "RNN");
    for (std::size_t t = 0; t < steps; ++t) {
      Var a, b;
      {
        const gg::Scope cell("cell", "Cell");
        a = w * h;
      }
      {
        const gg::Scope input("input", "Input");
        b = u * Var::constant(static_cast<double>(t));
      }
      h = gg::tanh(a + b);
    }
  }
  Var out;
  {
    const gg::Scope head("head", "Head"); // one call: its parameter stays inside, short name
    out = h * v;
  }
  out.backward();
  const std::string dot = dot_of(out);
  const gg::test::DotGraph g = gg::test::read_dot(dot);
  INFO(dot);
  std::map<std::string, int> calls;
  for (const auto& c : g.clusters) ++calls[c.label];
  CHECK(calls == std::map<std::string, int>{
                     {"rnn: RNN", 1}, {"rnn/cell: Cell", 3}, {"rnn/input: Input", 3}, {"head: Head", 1}});
  const std::string shared = g.id_of("rnn.cell.w\\n");
  REQUIRE(!shared.empty());
  CHECK(g.clusters[static_cast<std::size_t>(g.cluster_of(shared))].label == "rnn: RNN");
  CHECK(g.out_degree(shared) == steps);
  CHECK(!g.id_of("rnn.input.u\\n").empty());
  const std::string alone = g.id_of("v\\n");
  REQUIRE(!alone.empty());
  CHECK(g.clusters[static_cast<std::size_t>(g.cluster_of(alone))].label == "head: Head");
  // Each step's input projection (from leaves alone) is tied to its step by an invisible edge.
  CHECK(g.invisible.size() == steps - 1);
}

TEST_CASE("inspect: DOT of 5,000 calls of a scope writes 5,000 clusters") {
  Var w = 1.0;
  w.name("w");
  Var h = w;
  for (int i = 0; i < 5'000; ++i) {
    Var a;
    {
      const gg::Scope layer("layer");
      a = h * 1.0;
    }
    h = a + 0.0; // outside the scope: each call its own cluster
  }
  const std::string dot = dot_of(h, {.edge_derivatives = false, .legend = false});
  std::size_t clusters = 0;
  for (std::size_t at = 0; (at = dot.find("subgraph cluster_", at)) != std::string::npos; ++at) ++clusters;
  CHECK(clusters == 5'000);
}
