// Graph inspection: the Boost.Graph view of a recorded graph, and on it the DOT writer
// (boost::write_graphviz_dp), the chain-rule trace and the statistics. Nothing here recurses: graphs
// can be a million nodes deep.
// GCC 12 reports false -Wmaybe-uninitialized inside boost::subgraph's edge iterators (boost::optional
// storage); they surface after inlining, so the whole file needs it.
#if !defined(__clang__) // clang has no such warning (and warns about the unknown name)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <autodiff/error.hpp>
#include <autodiff/function.hpp>
#include <autodiff/inspect.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <map>
#include <unordered_map>

#include <boost/graph/graphviz.hpp>
#include <boost/graph/subgraph.hpp>
#include <boost/graph/topological_sort.hpp>
#include <boost/property_map/function_property_map.hpp>
#include <fmt/format.h>

#include "graph_view.hpp"
#include "internal.hpp"

namespace gg::detail {

GraphView build_graph_view(const Node* root) {
  // Iterative DFS over inputs; a node is numbered when its inputs are done (post-order), which is a
  // topological order. "Discovered" is enough to skip a node: the graph has no cycles.
  constexpr std::size_t k_open = static_cast<std::size_t>(-1);
  std::unordered_map<const Node*, std::size_t> index{{root, k_open}};
  std::vector<const Node*> order;
  struct Frame {
    const Node* n;
    int next;
  };
  std::vector<Frame> stack{{root, 0}};
  while (!stack.empty()) {
    Frame& f = stack.back();
    if (f.next < f.n->num_inputs()) {
      const Node* m = f.n->input(f.next++);
      if (index.emplace(m, k_open).second) stack.push_back({m, 0});
    } else {
      index[f.n] = order.size();
      order.push_back(f.n);
      stack.pop_back();
    }
  }

  GraphView g(order.size());
  for (std::size_t v = 0; v < order.size(); ++v) {
    g[v].node = order[v];
    // Edges are added target by target in index order, each target's in slot order: in_edges(v)
    // lists v's inputs in order, and a node's out-edges come sorted by target.
    for (int slot = 0; slot < order[v]->num_inputs(); ++slot)
      boost::add_edge(index.at(order[v]->input(slot)), v, ViewEdge{slot}, g);
  }
  return g;
}

namespace {

std::string num(double v) {
  return fmt::format("{:.4g}", v == 0 ? 0.0 : v); // no "-0"
}

/// The op's name, "const" for constants.
std::string kind_of(const Node* n) {
  if (n->op == Op::leaf) return n->requires_grad() ? "leaf" : "const";
  if (n->op == Op::custom) return n->ext->function->name();
  return std::string(op_name(n->op));
}

/// The user name, or op#index with the vertex index of the view (the DOT node id).
std::string name_of(const GraphView& g, ViewVertexId v) {
  const Node* n = g[v].node;
  if (n->ext && !n->ext->name.empty()) return n->ext->name;
  return fmt::format("{}#{}", kind_of(n), v);
}

/// The op's constant operands, named ("c = 2", "lo = 0, hi = 1") or bare ("2", "0, 1"); empty when
/// it has none.
std::string constants_of(const Node* n, bool named) {
  const auto one = [&](const char* name, double v) {
    return named ? fmt::format("{} = {}", name, num(v)) : num(v);
  };
  switch (n->op) {
  case Op::add_c:
  case Op::mul_c:
  case Op::div_c:
  case Op::rsub_c:
  case Op::rdiv_c:
  case Op::pow_c:
  case Op::rpow_c: return one("c", n->constant());
  case Op::leaky_relu: return one("slope", n->constant());
  case Op::clamp: return one("lo", n->constant()) + ", " + one("hi", n->ext->reals[0]);
  default: return {};
  }
}

/// "mul(q, z)", "mul_c(x, 2)".
std::string expr_of(const GraphView& g, ViewVertexId v) {
  std::vector<std::string> args;
  for (const auto e : boost::make_iterator_range(boost::in_edges(v, g)))
    args.push_back(name_of(g, boost::source(e, g)));
  if (std::string c = constants_of(g[v].node, false); !c.empty()) args.push_back(std::move(c));
  return fmt::format("{}({})", kind_of(g[v].node), fmt::join(args, ", "));
}

/// Text of the op table (a formula, a display) with a, b, out, c (lo, hi) replaced by the graph's
/// names and constants: mul's "b" becomes "z".
std::string substituted(const GraphView& g, ViewVertexId v, std::string_view f) {
  const Node* n = g[v].node;
  std::vector<std::string> in;
  for (const auto e : boost::make_iterator_range(boost::in_edges(v, g)))
    in.push_back(name_of(g, boost::source(e, g)));
  std::string r;
  for (std::size_t i = 0; i < f.size();) {
    if (!std::isalpha(static_cast<unsigned char>(f[i]))) {
      r += f[i++];
      continue;
    }
    std::size_t j = i;
    while (j < f.size() && std::isalnum(static_cast<unsigned char>(f[j]))) ++j;
    const std::string_view word = f.substr(i, j - i);
    if (word == "a" && !in.empty())
      r += in[0];
    else if (word == "b" && in.size() > 1)
      r += in[1];
    else if (word == "out")
      r += name_of(g, v);
    else if (word == "c" || word == "lo")
      r += num(n->constant());
    else if (word == "hi" && n->op == Op::clamp)
      r += num(n->ext->reals[0]);
    else
      r += word;
    i = j;
  }
  return r;
}

/// The op table's formula for d(node)/d(input slot), in the graph's names and constants.
std::string formula_of(const GraphView& g, ViewVertexId v, int slot) {
  const OpInfo& info = op_info(g[v].node->op);
  return substituted(g, v, slot == 0 ? info.d0 : info.d1);
}

/// A node with constants as the learner wrote it, from its row's display text: "x − 3" for x - 3
/// (add_c, c = -3), "2·x", "x^3", "clamp(x, 0, 1)".
std::string display_of(const GraphView& g, ViewVertexId v) {
  std::string r = substituted(g, v, op_info(g[v].node->op).display);
  for (const auto& [from, to] : {std::pair{"+ -", "− "}, std::pair{"− -", "+ "}})
    if (const std::size_t at = r.find(from); at != std::string::npos) r.replace(at, std::strlen(from), to);
  return r;
}

/// "[1, 2, 3, …]": the first max entries.
std::string entries_of(const Tensor& t, int max) {
  const std::int64_t shown = std::min<std::int64_t>(t.numel(), std::max(max, 0));
  std::vector<std::string> xs;
  for (std::int64_t i = 0; i < shown; ++i) xs.push_back(num(t.flat(i)));
  if (shown < t.numel()) xs.emplace_back("…");
  return fmt::format("[{}]", fmt::join(xs, ", "));
}

/// A line of label text for Graphviz: Boost escapes double quotes but not backslashes, and "\n"
/// (backslash, n) is Graphviz's line break.
std::string dot_line(std::string_view s) {
  std::string r;
  for (const char ch : s) {
    if (ch == '\\')
      r += "\\\\";
    else if (ch == '\n')
      r += "\\n";
    else
      r += ch;
  }
  return r;
}

/// Name, op (with its constants), value and gradient, one per line.
std::string vertex_label(const GraphView& g, ViewVertexId v, const DotOptions& o) {
  const Node* n = g[v].node;
  std::vector<std::string> lines{name_of(g, v)};
  const bool constants = !constants_of(n, false).empty(); // drawn as written: "x − 3", "2·x"
  if (constants)
    lines.push_back(display_of(g, v));
  else if (n->ext && !n->ext->name.empty()) // a generated name already starts with the op
    lines.push_back(kind_of(n));
  if (!n->is_tensor()) {
    lines.push_back("value " + num(n->value));
    if (o.show_grad && detail::has_grad_mark(n)) lines.push_back("grad " + num(n->grad));
  } else if (n->ext->value.rank() == 0) {
    lines.push_back("value " + num(n->ext->value.item()));
    if (o.show_grad && n->ext->grad.defined()) lines.push_back("grad " + num(n->ext->grad.item()));
  } else {
    const Tensor& t = n->ext->value;
    lines.push_back(fmt::format("shape {}{}", t.shape().str(),
                                t.dtype() == f64 ? "" : " " + std::string(dtype_name(t.dtype()))));
    lines.push_back(entries_of(t, o.max_entries));
    if (o.show_grad && n->ext->grad.defined())
      lines.push_back("grad " + entries_of(n->ext->grad, o.max_entries));
  }
  std::string r;
  for (const std::string& line : lines) r += (r.empty() ? "" : "\\n") + dot_line(line);
  return r;
}

/// Looks of a node: parameters and inputs (leaves that require grad), constants, op results.
struct Look {
  const char *shape, *style, *fillcolor, *color;
};
Look look_of(const GraphView& g, ViewVertexId v) {
  const Node* n = g[v].node;
  if (n->op == Op::leaf)
    return n->requires_grad() ? Look{"box", "filled", "lightblue", "black"}
                              : Look{"box", "dashed", "white", "grey50"};
  return Look{"ellipse", v + 1 == boost::num_vertices(g) ? "bold" : "solid", "white", "black"};
}

} // namespace
} // namespace gg::detail

namespace gg {
using namespace detail;

namespace {

using Attrs = std::map<std::string, std::string>;
/// The Boost.Graph type write_graphviz draws clusters from: one subgraph per scope.
using ClusterGraph = boost::subgraph<boost::adjacency_list<
    boost::vecS, boost::vecS, boost::directedS, boost::property<boost::vertex_attribute_t, Attrs>,
    boost::property<boost::edge_index_t, int, boost::property<boost::edge_attribute_t, Attrs>>,
    boost::property<
        boost::graph_name_t, std::string,
        boost::property<boost::graph_graph_attribute_t, Attrs,
                        boost::property<boost::graph_vertex_attribute_t, Attrs,
                                        boost::property<boost::graph_edge_attribute_t, Attrs>>>>>>;

/// The scope a vertex is drawn in (an id, 0 for none): where it was recorded; a parameter (a named
/// leaf that requires grad) goes with the layer that uses it when all its uses are in one scope.
std::uint32_t cluster_of(const GraphView& g, ViewVertexId v) {
  const Node* n = g[v].node;
  if (n->op != Op::leaf) return n->ext ? n->ext->scope : 0;
  if (!n->requires_grad() || !n->ext || n->ext->name.empty()) return 0;
  std::uint32_t common = 0;
  bool first = true;
  for (auto [e, end] = boost::out_edges(v, g); e != end; ++e) {
    const std::uint32_t s = cluster_of(g, boost::target(*e, g));
    if (!first && s != common) return 0;
    common = s, first = false;
  }
  return common;
}

/// Writes g with one DOT cluster per scope (nested as the scopes are), vertices and edges
/// attributed by the given functions.
template <class VertexAttrs, class EdgeLabel>
void write_clustered(std::ostream& os, const GraphView& g, const DotOptions& o, VertexAttrs vertex_attrs,
                     EdgeLabel edge_label) {
  const std::size_t n = boost::num_vertices(g);
  ClusterGraph root(n);
  boost::get_property(root, boost::graph_name) = "G";
  boost::get_property(root, boost::graph_graph_attribute)["rankdir"] = o.rankdir;
  for (std::size_t v = 0; v < n; ++v) boost::put(boost::vertex_attribute, root, v, vertex_attrs(v));
  for (auto [e, end] = boost::edges(g); e != end; ++e) {
    auto added = boost::add_edge(boost::source(*e, g), boost::target(*e, g), root).first;
    const std::string label = edge_label(*e);
    if (!label.empty()) boost::put(boost::edge_attribute, root, added, Attrs{{"label", label}});
  }
  std::map<std::uint32_t, ClusterGraph*> clusters;
  int next_id = 0;
  // The cluster of a scope, created inside its parent's ("0/fc1" inside "0").
  auto cluster = [&](auto&& self, std::uint32_t id) -> ClusterGraph& {
    if (auto it = clusters.find(id); it != clusters.end()) return *it->second;
    const std::uint32_t up = scope_parent(id);
    ClusterGraph& c = (up ? self(self, up) : root).create_subgraph();
    boost::get_property(c, boost::graph_name) = "cluster_" + std::to_string(next_id++);
    const std::string path = scope_path(id), label = scope_label(id);
    Attrs& a = boost::get_property(c, boost::graph_graph_attribute);
    a["label"] = dot_line(label.empty() ? path : path + ": " + label);
    a["style"] = "rounded";
    a["color"] = "grey50";
    clusters.emplace(id, &c);
    return c;
  };
  for (std::size_t v = 0; v < n; ++v)
    if (const std::uint32_t id = cluster_of(g, v)) boost::add_vertex(v, cluster(cluster, id));
  boost::write_graphviz(os, root);
}

} // namespace

void write_dot(std::ostream& os, const Var& root, const DotOptions& options) {
  GraphView g = build_graph_view(need(root, "write_dot"));
  using Vertex = ViewVertexId;
  using Edge = boost::graph_traits<GraphView>::edge_descriptor;
  const auto attrs = [&](Vertex v) {
    const Look look = look_of(g, v);
    return Attrs{{"label", vertex_label(g, v, options)}, {"shape", look.shape}, {"style", look.style},
                 {"fillcolor", look.fillcolor},          {"color", look.color}, {"fontcolor", look.color}};
  };
  // Edges into scalar nodes carry the local derivative from the backward rules.
  const auto edge_label = [&](Edge e) {
    const Node* out = g[boost::target(e, g)].node;
    if (!options.edge_derivatives || out->is_tensor()) return std::string();
    double d[2];
    local_derivatives(out, d);
    return num(d[g[e].slot]); // the node shows its constants
  };
  bool scoped = false;
  for (std::size_t v = 0; v < boost::num_vertices(g) && !scoped; ++v) scoped = cluster_of(g, v) != 0;
  if (scoped) return write_clustered(os, g, options, attrs, edge_label);

  const auto per_vertex = [&](const char* key) {
    return boost::make_function_property_map<Vertex, std::string>(
        [&, key](Vertex v) { return attrs(v).at(key); });
  };
  boost::dynamic_properties dp;
  dp.property("rankdir", boost::make_constant_property<GraphView*>(options.rankdir));
  for (const char* key : {"label", "shape", "style", "fillcolor", "color", "fontcolor"})
    dp.property(key, per_vertex(key));
  if (options.edge_derivatives)
    dp.property("label", boost::make_function_property_map<Edge, std::string>(edge_label));
  boost::write_graphviz_dp(os, g, dp, "node_id", boost::get(boost::vertex_index, g));
}

void trace_backward(const Var& root, const std::function<void(const TraceStep&)>& visit) {
  const GraphView g = build_graph_view(need(root, "trace_backward"));
  const std::size_t n = boost::num_vertices(g);
  for (std::size_t v = 0; v < n; ++v)
    if (g[v].node->is_tensor())
      throw UsageError(fmt::format("trace_backward: {} is a tensor of shape {}; traces are for scalar graphs "
                                   "(write_dot draws tensor graphs)",
                                   name_of(g, v), g[v].node->ext->value.shape().str()));

  // The steps of the chain rule as backward takes them (backward.cpp), named as the view names them.
  std::unordered_map<const Node*, ViewVertexId> vertex;
  for (std::size_t v = 0; v < n; ++v) vertex.emplace(g[v].node, v);
  std::vector<std::size_t> seen(n, 0); // contributions each vertex received so far
  TraceStep step{};
  const Node* last = nullptr; // the node whose step fields (name, op, expression) are filled
  trace_chain_rule(const_cast<Node*>(g[n - 1].node), [&](const ChainStep& s) {
    const ViewVertexId v = vertex.at(s.node), u = vertex.at(s.input);
    if (s.node != last) {
      step.node = name_of(g, v);
      step.op = kind_of(s.node);
      step.expr = expr_of(g, v);
      last = s.node;
    }
    step.input = name_of(g, u);
    step.formula = formula_of(g, v, s.slot);
    step.local = s.local;
    step.upstream = s.upstream;
    step.product = s.product;
    step.previous = s.previous;
    step.accumulated = s.accumulated;
    step.contributions = boost::out_degree(u, g);
    step.fan_in = step.contributions > 1;
    step.contribution = ++seen[u];
    visit(step);
  });
}

std::vector<TraceStep> trace_backward(const Var& root) {
  std::vector<TraceStep> steps;
  trace_backward(root, [&](const TraceStep& s) { steps.push_back(s); });
  return steps;
}

std::string format_trace(const std::vector<TraceStep>& steps) {
  if (steps.empty()) return {};
  // Display width: UTF-8 continuation bytes take no column.
  const auto width = [](const std::string& s) {
    return static_cast<std::size_t>(
        std::count_if(s.begin(), s.end(), [](char ch) { return (ch & 0xC0) != 0x80; }));
  };
  std::vector<std::array<std::string, 4>> rows;
  for (const TraceStep& s : steps) {
    std::string local = fmt::format("d{}/d{} = {}", s.node, s.input, s.formula);
    if (s.formula != num(s.local)) local += " = " + num(s.local);
    rows.push_back(
        {fmt::format("{} = {}", s.node, s.expr), std::move(local),
         fmt::format("upstream {} × local {} = {}", num(s.upstream), num(s.local), num(s.product)),
         fmt::format("→ d{} = {}{}", s.input, num(s.accumulated), s.fan_in ? " (running sum)" : "")});
  }
  std::array<std::size_t, 4> widths{};
  for (const auto& row : rows)
    for (std::size_t c = 0; c < 3; ++c) widths[c] = std::max(widths[c], width(row[c]));

  const std::string& root = steps.front().node;
  std::string out = fmt::format("seed: d{}/d{} = 1\n", root, root);
  for (const auto& row : rows) {
    for (std::size_t c = 0; c < 3; ++c) out += row[c] + std::string(widths[c] - width(row[c]) + 3, ' ');
    out += row[3] + '\n';
  }
  return out;
}

GraphStats graph_stats(const Var& root) {
  const GraphView g = build_graph_view(need(root, "graph_stats"));
  const std::size_t n = boost::num_vertices(g);
  GraphStats s{n, boost::num_edges(g), 0, 0, 0};

  std::vector<ViewVertexId> reverse_topo;
  reverse_topo.reserve(n);
  boost::topological_sort(g, std::back_inserter(reverse_topo)); // Boost's DFS is iterative
  std::vector<std::size_t> longest(n, 0);                       // longest path from a leaf, in edges
  for (auto it = reverse_topo.rbegin(); it != reverse_topo.rend(); ++it)
    for (const auto e : boost::make_iterator_range(boost::out_edges(*it, g)))
      longest[boost::target(e, g)] = std::max(longest[boost::target(e, g)], longest[*it] + 1);

  for (std::size_t v = 0; v < n; ++v) {
    s.leaves += boost::in_degree(v, g) == 0;
    s.depth = std::max(s.depth, longest[v]);
    std::size_t consumers = 0, last = n; // out-edges come sorted by target: count distinct ones
    for (const auto e : boost::make_iterator_range(boost::out_edges(v, g)))
      if (boost::target(e, g) != last) last = boost::target(e, g), ++consumers;
    s.max_fan_out = std::max(s.max_fan_out, consumers);
  }
  return s;
}

} // namespace gg
