// Graph inspection: the Boost.Graph view of a recorded graph, and on it the DOT writer
// (boost::write_graphviz, with a cluster per module call), the chain-rule trace and the
// statistics. Nothing here recurses, and everything is linear in the graph: graphs can be a million
// nodes deep.
#include <autodiff/error.hpp>
#include <autodiff/function.hpp>
#include <autodiff/inspect.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include <boost/graph/graphviz.hpp>
#include <boost/graph/topological_sort.hpp>
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
  if (std::isnan(v)) return "nan";                // not "-nan"
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

/// A DOT ID as Boost's escape_dot_string writes it, without its regular expression: bare when it is
/// a name or a number, else in double quotes (inner quotes escaped; backslashes are dot_line's).
std::string dot_id(std::string_view s) {
  const auto alpha = [](char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; };
  const auto digit = [](char c) { return c >= '0' && c <= '9'; };
  bool bare = !s.empty();
  if (bare && alpha(s[0])) {
    bare = std::all_of(s.begin(), s.end(), [&](char c) { return alpha(c) || digit(c); });
  } else if (bare) { // -?(\.[0-9]*|[0-9]+(\.[0-9]*)?)
    std::size_t i = s[0] == '-' ? 1 : 0;
    const auto digits = [&] {
      const std::size_t from = i;
      while (i < s.size() && digit(s[i])) ++i;
      return i - from;
    };
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits();
    } else if (digits() > 0 && i < s.size() && s[i] == '.') {
      ++i;
      digits();
    }
    bare = i == s.size() && i > (s[0] == '-' ? 1u : 0u) && s.back() != '-';
  }
  if (bare) return std::string(s);
  std::string r = "\"";
  for (const char c : s) r += c == '"' ? std::string("\\\"") : std::string(1, c);
  return r + "\"";
}

/// Name, op (with its constants), value and gradient, one per line.
std::string vertex_label(const GraphView& g, ViewVertexId v, const DotOptions& o, const std::string& shown) {
  const Node* n = g[v].node;
  std::vector<std::string> lines{shown.empty() ? name_of(g, v) : shown};
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

/// Whether a tensor holds a NaN or an infinity.
bool has_nonfinite(const Tensor& t) {
  for (std::int64_t i = 0; i < t.numel(); ++i)
    if (!std::isfinite(t.flat(i))) return true;
  return false;
}

/// Whether a node's value, or its gradient when shown, holds a NaN or an infinity.
bool nonfinite(const Node* n, const DotOptions& o) {
  if (!n->is_tensor())
    return !std::isfinite(n->value) || (o.show_grad && has_grad_mark(n) && !std::isfinite(n->grad));
  return has_nonfinite(n->ext->value) ||
         (o.show_grad && n->ext->grad.defined() && has_nonfinite(n->ext->grad));
}

/// Looks of a node: parameters and inputs (leaves that require grad), constants, op results; red
/// where a value or gradient is not finite.
std::map<std::string, std::string> look_of(const GraphView& g, ViewVertexId v, const DotOptions& o) {
  const Node* n = g[v].node;
  std::map<std::string, std::string> a;
  if (n->op == Op::leaf && n->requires_grad())
    a = {{"shape", "box"}, {"style", "filled"}, {"fillcolor", "lightblue"}, {"color", "black"}};
  else if (n->op == Op::leaf)
    a = {{"shape", "box"}, {"style", "dashed"}, {"fillcolor", "white"}, {"color", "grey50"}};
  else
    a = {{"shape", "ellipse"},
         {"style", v + 1 == boost::num_vertices(g) ? "bold" : "solid"},
         {"fillcolor", "white"},
         {"color", "black"}};
  if (nonfinite(n, o)) {
    a["color"] = "red";
    a["fillcolor"] = n->op == Op::leaf && n->requires_grad() ? "lightpink" : "mistyrose";
    if (a["style"] != "filled") a["style"] += ",filled";
    a["penwidth"] = "2";
  }
  a["fontcolor"] = a["color"];
  return a;
}

/// The legend under the picture: what the shapes, the lines of a label and the edge labels mean
/// (only what this picture shows).
std::string legend_of(const GraphView& g, const DotOptions& o, bool edge_labels, bool any_nonfinite) {
  bool tensors = false, grads = false;
  for (std::size_t v = 0; v < boost::num_vertices(g); ++v) {
    const Node* n = g[v].node;
    tensors = tensors || (n->is_tensor() && n->ext->value.rank() > 0);
    grads = grads || has_grad_mark(n) || (n->is_tensor() && n->ext->grad.defined());
  }
  std::string r = "boxes: inputs and parameters (filled: gradients flow to them; dashed: constants)\\l"
                  "ellipses: operations (bold: the output)\\l";
  if (o.show_grad && grads) r += "grad: d(output)/d(this node), from backward\\l";
  if (tensors) r += fmt::format("tensors: their shape and first {} entries\\l", std::max(o.max_entries, 0));
  if (edge_labels)
    r += "edge label: the local derivative d(node)/d(input) at these values;\\l"
         "  backward multiplies the gradient by it along the edge\\l";
  if (any_nonfinite) r += "red: a value or gradient that is NaN or infinite\\l";
  return r;
}

/// Clusters of the picture: one per call of a scope (a module's forward), nested as the calls are.
/// Nodes recorded in one scope belong to one call when they are connected through nodes of that
/// scope; an RNN cell called at every step so gets a cluster per step instead of one cluster for
/// all steps. A parameter goes into the one call that uses it, else into the innermost cluster
/// holding all its uses, named in full ("rnn.hh.weight") when its uses are in several calls.
struct Clusters {
  struct Cluster {
    std::uint32_t scope;
    std::int64_t parent; ///< enclosing cluster, -1 for none
    std::vector<ViewVertexId> vertices;
  };
  std::vector<Cluster> clusters;
  std::unordered_map<ViewVertexId, std::string> full_names; ///< parameters shared by several calls
};

/// A disjoint-set forest with path halving.
struct DisjointSets {
  std::vector<std::size_t> up;
  explicit DisjointSets(std::size_t n) : up(n) {
    for (std::size_t i = 0; i < n; ++i) up[i] = i;
  }
  std::size_t find(std::size_t x) {
    while (up[x] != x) x = up[x] = up[up[x]];
    return x;
  }
  void unite(std::size_t a, std::size_t b) { up[find(a)] = find(b); }
};

Clusters clusters_of(const GraphView& g) {
  const std::size_t n = boost::num_vertices(g);
  // Each scope's chain of scopes from the outermost, and each op vertex's place in the forest.
  std::unordered_map<std::uint32_t, std::vector<std::uint32_t>> chains;
  const auto chain = [&](std::uint32_t scope) -> const std::vector<std::uint32_t>& {
    auto [it, fresh] = chains.try_emplace(scope);
    if (fresh)
      for (std::uint32_t s = scope; s != 0; s = scope_parent(s)) it->second.insert(it->second.begin(), s);
    return it->second;
  };
  const auto scope_of = [&](ViewVertexId v) -> std::uint32_t {
    const Node* node = g[v].node;
    return node->op != Op::leaf && node->ext ? node->ext->scope : 0;
  };
  std::vector<std::size_t> first(n + 1, 0); // vertex v's levels are [first[v], first[v + 1])
  for (std::size_t v = 0; v < n; ++v) first[v + 1] = first[v] + chain(scope_of(v)).size();
  DisjointSets sets(first[n]);
  for (auto [e, end] = boost::edges(g); e != end; ++e) {
    const ViewVertexId u = boost::source(*e, g), v = boost::target(*e, g);
    const auto &cu = chain(scope_of(u)), &cv = chain(scope_of(v));
    for (std::size_t l = 0; l < std::min(cu.size(), cv.size()) && cu[l] == cv[l]; ++l)
      sets.unite(first[u] + l, first[v] + l);
  }
  Clusters r;
  std::unordered_map<std::size_t, std::size_t> cluster_of_set;
  std::vector<std::int64_t> innermost(n, -1); // each op vertex's innermost cluster
  for (std::size_t v = 0; v < n; ++v) {
    const auto& c = chain(scope_of(v));
    std::int64_t parent = -1;
    for (std::size_t l = 0; l < c.size(); ++l) {
      const auto [it, fresh] = cluster_of_set.try_emplace(sets.find(first[v] + l), r.clusters.size());
      if (fresh) r.clusters.push_back({c[l], parent, {}});
      parent = static_cast<std::int64_t>(it->second);
    }
    innermost[v] = parent;
    if (parent >= 0) r.clusters[static_cast<std::size_t>(parent)].vertices.push_back(v);
  }
  // Parameters: named leaves that require grad.
  const auto depth = [&](std::int64_t c) {
    std::size_t d = 0;
    for (; c >= 0; c = r.clusters[static_cast<std::size_t>(c)].parent) ++d;
    return d;
  };
  const auto common = [&](std::int64_t a, std::int64_t b) {
    std::size_t da = depth(a), db = depth(b);
    for (; da > db; --da) a = r.clusters[static_cast<std::size_t>(a)].parent;
    for (; db > da; --db) b = r.clusters[static_cast<std::size_t>(b)].parent;
    while (a != b)
      a = r.clusters[static_cast<std::size_t>(a)].parent, b = r.clusters[static_cast<std::size_t>(b)].parent;
    return a;
  };
  for (std::size_t v = 0; v < n; ++v) {
    const Node* node = g[v].node;
    if (node->op != Op::leaf || !node->requires_grad() || !node->ext || node->ext->name.empty()) continue;
    std::int64_t home = -2;            // -2: no use seen yet
    std::vector<std::uint32_t> scopes; // the scopes common to all uses, from the outermost
    bool shared = false;
    for (auto [e, end] = boost::out_edges(v, g); e != end; ++e) {
      const ViewVertexId user = boost::target(*e, g);
      const std::int64_t c = innermost[user];
      shared = shared || (home != -2 && c != home);
      home = home == -2 ? c : common(home, c);
      const auto& uc = chain(scope_of(user));
      if (e == boost::out_edges(v, g).first) {
        scopes = uc;
      } else {
        std::size_t l = 0;
        while (l < scopes.size() && l < uc.size() && scopes[l] == uc[l]) ++l;
        scopes.resize(l);
      }
    }
    if (home >= 0) r.clusters[static_cast<std::size_t>(home)].vertices.push_back(v);
    if (shared && !scopes.empty()) {
      std::string path = scope_path(scopes.back());
      std::replace(path.begin(), path.end(), '/', '.');
      r.full_names.emplace(v, path + "." + node->ext->name);
    }
  }
  return r;
}

} // namespace
} // namespace gg::detail

namespace gg {
using namespace detail;

void write_dot(std::ostream& os, const Var& root, const DotOptions& options) {
  GraphView g = build_graph_view(need(root, "write_dot"));
  using Vertex = ViewVertexId;
  using Edge = boost::graph_traits<GraphView>::edge_descriptor;
  const Clusters clusters = clusters_of(g);
  const std::size_t n = boost::num_vertices(g);
  std::vector<std::map<std::string, std::string>> attrs(n);
  bool any_nonfinite = false;
  for (std::size_t v = 0; v < n; ++v) {
    const auto full = clusters.full_names.find(v);
    attrs[v] = look_of(g, v, options);
    attrs[v]["label"] = vertex_label(g, v, options, full == clusters.full_names.end() ? "" : full->second);
    any_nonfinite = any_nonfinite || attrs[v]["color"] == "red";
  }
  // Edges into scalar nodes carry the local derivative from the backward rules.
  bool edge_labels = false;
  const auto edge_label = [&](Edge e) {
    const Node* out = g[boost::target(e, g)].node;
    if (!options.edge_derivatives || out->is_tensor()) return std::string();
    double d[2];
    local_derivatives(out, d);
    return num(d[g[e].slot]); // the node shows its constants
  };
  for (auto [e, end] = boost::edges(g); e != end && !edge_labels; ++e) edge_labels = !edge_label(*e).empty();
  const auto edge_color = [&](Edge e) {
    const std::string label = edge_label(e);
    return label.find("nan") != std::string::npos || label.find("inf") != std::string::npos ? "red" : "black";
  };

  std::map<std::string, std::string> graph{{"rankdir", options.rankdir},
                                           // One ranking of all nodes, clusters ignored: ranked
                                           // cluster by cluster, dot drew an RNN's later steps above
                                           // its first ones.
                                           {"newrank", "true"}};
  if (options.legend) {
    graph["label"] = legend_of(g, options, edge_labels, any_nonfinite);
    graph["labelloc"] = "b";
    graph["labeljust"] = "l";
    graph["fontsize"] = "10";
  }
  // Boost writes the graph; the attributes are written here, as write_graphviz_dp writes them but
  // without its regular expression per value (three quarters of the time of a large graph).
  const auto write_attributes = [](std::ostream& out, const std::map<std::string, std::string>& a,
                                   const char* separator) {
    bool first = true;
    for (const auto& [key, value] : a) {
      out << (first ? "" : separator) << key << "=" << dot_id(value);
      first = false;
    }
  };
  std::ostringstream flat;
  boost::write_graphviz(
      flat, g,
      [&](std::ostream& out, Vertex v) {
        out << " [";
        write_attributes(out, attrs[v], ", ");
        out << "]";
      },
      [&](std::ostream& out, Edge e) {
        if (!edge_labels) return;
        out << " [";
        write_attributes(out, {{"color", edge_color(e)}, {"label", edge_label(e)}}, ", ");
        out << "]";
      },
      [&](std::ostream& out) {
        write_attributes(out, graph, ";\n");
        out << ";\n";
      },
      boost::get(boost::vertex_index, g));

  // Boost writes clusters only from a boost::subgraph, whose every vertex and edge insertion scans
  // all vertices or all clusters (a 60,000-layer MLP took 94 s): the graph is written flat by
  // Boost, and each cluster is a subgraph naming its nodes, which Graphviz moves into it.
  std::string text = std::move(flat).str();
  const std::size_t close = text.rfind('}');
  os << std::string_view(text).substr(0, close);
  std::vector<std::vector<std::size_t>> children(clusters.clusters.size());
  std::vector<std::size_t> top;
  for (std::size_t c = 0; c < clusters.clusters.size(); ++c) {
    const std::int64_t p = clusters.clusters[c].parent;
    (p < 0 ? top : children[static_cast<std::size_t>(p)]).push_back(c);
  }
  // Depth first without recursion: (cluster, whether its block is open).
  std::vector<std::pair<std::size_t, bool>> stack;
  for (auto it = top.rbegin(); it != top.rend(); ++it) stack.emplace_back(*it, false);
  while (!stack.empty()) {
    auto [c, open] = stack.back();
    stack.pop_back();
    if (open) {
      os << "}\n";
      continue;
    }
    const auto& cluster = clusters.clusters[c];
    const std::string path = scope_path(cluster.scope), label = scope_label(cluster.scope);
    os << "subgraph cluster_" << c << " {\n"
       << "label=" << dot_id(dot_line(label.empty() ? path : path + ": " + label))
       << "; labelloc=t; labeljust=c; style=rounded; color=grey50; fontsize=14;\n";
    for (const ViewVertexId v : cluster.vertices) os << v << ";\n";
    stack.emplace_back(c, true);
    for (auto it = children[c].rbegin(); it != children[c].rend(); ++it) stack.emplace_back(*it, false);
  }
  // An op computed from leaves alone (an RNN's input projection W x_t) would be drawn first, with
  // every step's such ops side by side above the first step; an invisible edge from the node before
  // its sibling operand (h_{t-1}, before W h_{t-1}) puts it beside that sibling, in its step.
  std::vector<std::size_t> depth(n, 0); // longest path from a leaf; vertices are in topological order
  for (std::size_t v = 0; v < n; ++v)
    for (const auto e : boost::make_iterator_range(boost::in_edges(v, g)))
      depth[v] = std::max(depth[v], depth[boost::source(e, g)] + 1);
  for (std::size_t v = 0; v < n; ++v) {
    if (depth[v] != 1 || boost::out_degree(v, g) != 1) continue;
    const ViewVertexId user = boost::target(*boost::out_edges(v, g).first, g);
    ViewVertexId sibling = v;
    for (const auto e : boost::make_iterator_range(boost::in_edges(user, g)))
      if (depth[boost::source(e, g)] > depth[sibling]) sibling = boost::source(e, g);
    if (depth[sibling] < 2) continue;
    for (const auto e : boost::make_iterator_range(boost::in_edges(sibling, g)))
      if (depth[boost::source(e, g)] + 1 == depth[sibling]) {
        os << boost::source(e, g) << "->" << v << " [style=invis];\n";
        break;
      }
  }
  os << std::string_view(text).substr(close);
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
