// The explorer's engine: parses and evaluates an explain program with the CLI's own code
// (cli/src/expr.hpp), runs backward, and writes the graph, the forward steps (formula, numbers
// substituted, value), the backward steps (trace_backward's edges grouped by node) and the named
// values with their finite-difference checks as JSON, with a DOT text for the page's layout.
// GCC's -Wmaybe-uninitialized misfires on Boost.Graph's edge iterators (boost::optional storage)
// after inlining, as in autodiff/src/inspect.cpp, so the whole file needs it off.
#if !defined(__clang__) // clang has no such warning (and warns about the unknown name)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "explorer.hpp"

#include "common.hpp"

#include <autodiff/error.hpp>
#include <autodiff/inspect.hpp>
#include <autodiff/ops.hpp>

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/graphviz.hpp>
#include <boost/property_map/function_property_map.hpp>
#include <fmt/format.h>

#include <cli/src/expr.hpp>
#include <cli/src/messages.hpp>

namespace gg::web {

namespace {

using cli::json::Value;
namespace expr = cli::expr;

/// The names a program uses but never assigns: its inputs, in the order they first appear.
std::vector<std::string> free_names(const expr::Program& p) {
  std::unordered_set<std::string> assigned, seen;
  for (const expr::Statement& s : p.statements) assigned.insert(s.name);
  std::vector<std::string> names;
  for (const expr::Node& n : p.nodes)
    if (n.kind == expr::Kind::name && !assigned.count(n.name) && seen.insert(n.name).second)
      names.push_back(n.name);
  return names;
}

/// Op nodes evaluating the program can record, at most: one per operator, call and statement.
std::size_t op_count(const expr::Program& p) {
  const auto ops = std::count_if(p.nodes.begin(), p.nodes.end(), [](const expr::Node& n) {
    return n.kind != expr::Kind::number && n.kind != expr::Kind::name;
  });
  return static_cast<std::size_t>(ops) + p.statements.size();
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

/// The definition with each operand's name replaced by its value ("q * z" -> "3 * (-4)"), longest
/// name first and only where it stands as a whole (the x of "exp(x)", not of "exp"); a negative
/// value is parenthesized unless it opens the formula or a parenthesis.
std::string substituted(std::string definition, std::vector<std::pair<std::string, double>> operands) {
  std::sort(operands.begin(), operands.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  std::vector<bool> replaced(definition.size(), false); // characters already written as numbers
  for (const auto& [name, value] : operands) {
    for (std::size_t at = definition.find(name); at != std::string::npos;
         at = definition.find(name, at + 1)) {
      const std::size_t end = at + name.size();
      if (std::any_of(replaced.begin() + static_cast<std::ptrdiff_t>(at),
                      replaced.begin() + static_cast<std::ptrdiff_t>(end), [](bool b) { return b; }))
        continue;
      if ((is_name_char(name.front()) && at > 0 && is_name_char(definition[at - 1])) ||
          (is_name_char(name.back()) && end < definition.size() && is_name_char(definition[end])))
        continue;
      std::string number = short_text(value);
      if (number.front() == '-' && at > 0 && definition[at - 1] != '(') number = "(" + number + ")";
      definition.replace(at, name.size(), number);
      replaced.erase(replaced.begin() + static_cast<std::ptrdiff_t>(at),
                     replaced.begin() + static_cast<std::ptrdiff_t>(end));
      replaced.insert(replaced.begin() + static_cast<std::ptrdiff_t>(at), number.size(), true);
      break; // the same name again ("x * x") is found by the next pass over this operand
    }
  }
  return definition;
}

/// A value typed into an input's field, read as the CLI reads NAME=VALUE (the same messages).
double parse_value(const std::string& name, const std::string& text) {
  std::string_view t = text;
  while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
  while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
  return cli::parse_value(fmt::format("{}={}", name, text), t);
}

/// Nodes beyond which the layout is tuned for speed and shared inputs are drawn as copies (dot_text).
constexpr std::size_t k_large_graph = 60;
/// Uses beyond which an input of a large graph is drawn beside each node that uses it (dot_text).
constexpr std::size_t k_shared_input_uses = 3;

struct GraphNode {
  std::string key, id, label, shape, klass; ///< key: the DOT node name; id: the SVG element's id
  std::string group;                        ///< dot keeps the edges within a group straight
};
struct GraphEdge {
  std::string id, label;
};
using DotGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS, GraphNode, GraphEdge>;

class Explorer {
public:
  explicit Explorer(const ExplainRequest& rq) : rq_(rq) {}

  Value run() {
    if (rq_.program.size() > expr::k_max_bytes)
      throw UsageError(fmt::format("the program is {} bytes: at most {} (1 MB) are accepted",
                                   rq_.program.size(), expr::k_max_bytes));
    program_ = expr::parse(rq_.program);
    if (const std::size_t ops = op_count(program_); ops > k_max_page_nodes)
      throw ValueError(fmt::format("the program has {} operations: the page shows at most {} "
                                   "(gradgraph explain on the command line takes larger ones)",
                                   ops, k_max_page_nodes));
    std::map<std::string, std::string> texts(rq_.inputs.begin(), rq_.inputs.end());
    std::vector<std::pair<std::string, double>> given;
    Value inputs = Value::array();
    for (const std::string& name : free_names(program_)) {
      const auto it = texts.find(name);
      const std::string text = it == texts.end() ? "1" : it->second;
      inputs.push_back({{"name", name}, {"text", text}});
      given.emplace_back(name, parse_value(name, text));
    }
    // the CLI's checks and messages (a name used before its statement), and its order of the inputs
    const std::map<std::string, double> by_name(given.begin(), given.end());
    for (const std::string& name : expr::resolve(program_, given))
      values_.emplace_back(name, by_name.at(name));
    ev_ = expr::evaluate(program_, values_);
    const std::vector<TraceStep> trace = trace_backward(ev_.output);
    ev_.output.backward();

    add_nodes();
    Value out{{"output", ev_.statements.back().name}, {"inputs", std::move(inputs)}};
    Value edges = add_edges(trace);
    out["nodes"] = nodes_json();
    out["edges"] = std::move(edges);
    out["backward"] = backward_json(trace);
    out["names"] = names_json();
    out["nonfinite"] = nonfinite_json();
    out["dot"] = dot_text();
    return out;
  }

private:
  struct Node {
    std::string name, kind, definition;
    Var var;
    long statement = -1;
    bool named = false;
    std::vector<std::size_t> inputs;
  };

  std::size_t add(Node n) {
    index_.emplace(n.var.node(), nodes_.size());
    by_name_.emplace(n.name, nodes_.size());
    nodes_.push_back(std::move(n));
    return nodes_.size() - 1;
  }

  void add_nodes() {
    for (const expr::Named& in : ev_.inputs) add({in.name, "input", "", in.var, -1, true, {}});
    std::size_t next = 0;
    for (std::size_t s = 0; s < ev_.statements.size(); ++s) {
      for (; next < ev_.steps.size() && ev_.steps[next].statement == s; ++next) {
        const expr::Step& st = ev_.steps[next];
        if (!index_.count(st.var.node()))
          add({st.name, "op", st.definition, st.var, static_cast<long>(s), st.is_statement, {}});
      }
      const expr::Named& named = ev_.statements[s];
      if (const auto it = index_.find(named.var.node()); it == index_.end())
        add({named.name,
             "constant",
             short_text(named.var.item()),
             named.var,
             static_cast<long>(s),
             true,
             {}});
      else
        nodes_[it->second].named = true;
    }
    for (Node& n : nodes_)
      for (const Var& in : n.var.inputs())
        if (const auto it = index_.find(in.node()); it != index_.end()) n.inputs.push_back(it->second);
  }

  Value nodes_json() const {
    Value out = Value::array();
    for (const Node& n : nodes_) {
      Value j{{"name", n.name},           {"kind", n.kind},   {"op", n.var.op_name()},
              {"statement", n.statement}, {"named", n.named}, {"value", number(n.var.item())}};
      j["grad"] = n.var.has_grad() ? number(n.var.grad().item()) : Value();
      j["inputs"] = n.inputs;
      if (n.kind == "op") {
        j["definition"] = n.definition;
        std::vector<std::pair<std::string, double>> operands;
        for (std::size_t i : n.inputs) operands.emplace_back(nodes_[i].name, nodes_[i].var.item());
        j["substituted"] = substituted(n.definition, std::move(operands));
      }
      out.push_back(std::move(j));
    }
    return out;
  }

  /// Every input -> node edge; trace_backward's steps give the local derivatives of those backward
  /// reaches (in order, so x * x's two edges get one step each).
  Value add_edges(const std::vector<TraceStep>& trace) {
    std::map<std::pair<std::string, std::string>, std::deque<std::size_t>> steps_of;
    for (std::size_t k = 0; k < trace.size(); ++k) steps_of[{trace[k].node, trace[k].input}].push_back(k);
    Value out = Value::array();
    edge_of_step_.assign(trace.size(), 0);
    for (std::size_t to = 0; to < nodes_.size(); ++to)
      for (std::size_t from : nodes_[to].inputs) {
        Value e{{"from", from}, {"to", to}, {"local", Value()}, {"formula", Value()}};
        auto& queue = steps_of[{nodes_[to].name, nodes_[from].name}];
        if (!queue.empty()) {
          const TraceStep& s = trace[queue.front()];
          e["local"] = number(s.local);
          e["formula"] = s.formula;
          edge_of_step_[queue.front()] = edges_.size();
          queue.pop_front();
        }
        edges_.push_back({from, to, e["local"].is_null() ? "" : e["local"][1].get<std::string>()});
        out.push_back(std::move(e));
      }
    return out;
  }

  /// The chain rule node by node, in backward's order: each node's upstream gradient, then one entry
  /// per edge into its inputs with the running sum of the input's gradient.
  Value backward_json(const std::vector<TraceStep>& trace) {
    std::unordered_map<std::string, std::size_t> uses, seen;
    std::unordered_map<std::string, double> sum;
    for (const TraceStep& s : trace) ++uses[s.input];
    Value out = Value::array();
    for (std::size_t k = 0; k < trace.size(); ++k) {
      const TraceStep& s = trace[k];
      if (k == 0 || trace[k - 1].node != s.node)
        out.push_back(
            {{"node", node_named(s.node)}, {"upstream", number(s.upstream)}, {"edges", Value::array()}});
      const std::size_t input = node_named(s.input);
      out.back()["edges"].push_back({{"edge", edge_of_step_[k]},
                                     {"input", input},
                                     {"formula", s.formula},
                                     {"local", number(s.local)},
                                     {"upstream", number(s.upstream)},
                                     {"product", number(s.product)},
                                     {"previous", number(sum[s.input])},
                                     {"accumulated", number(s.accumulated)},
                                     {"contribution", ++seen[s.input]},
                                     {"contributions", uses[s.input]}});
      if (!first_nonfinite_grad_ && !std::isfinite(s.accumulated))
        first_nonfinite_grad_ = Value{{"step", out.size() - 1}, {"node", input}};
      sum[s.input] = s.accumulated;
    }
    return out;
  }

  /// Inputs, then statements (the order of --json), with their finite-difference checks.
  Value names_json() const {
    // the differences of explain --check: the inputs in resolve's order, then the statements
    const std::vector<expr::Difference> differences =
        rq_.check ? expr::Numeric(program_, values_).differences() : std::vector<expr::Difference>();
    Value out = Value::array();
    std::size_t i = 0;
    for (const auto* group : {&ev_.inputs, &ev_.statements})
      for (const expr::Named& n : *group) {
        // value and grad as --json writes them (a gradient backward never reached is 0)
        Value j{{"node", index_.at(n.var.node())},
                {"source", n.source},
                {"flag", n.flag},
                {"value", number(n.var.item())},
                {"grad", number(n.var.has_grad() ? n.var.grad().item() : 0.0)}};
        if (rq_.check) {
          const double d = differences[i].value;
          const double a = n.var.has_grad() ? n.var.grad().item() : 0.0;
          j["check"] = number(d);
          j["agrees"] = std::abs(a - d) <= 1e-5 * std::max({1.0, std::abs(a), std::abs(d)}) ||
                        (!std::isfinite(a) && !std::isfinite(d));
        }
        out.push_back(std::move(j));
        ++i;
      }
    return out;
  }

  /// The first value that is not finite, in evaluation order, with why (its statement's flag), and
  /// the first gradient that is not, in backward's order.
  Value nonfinite_json() const {
    Value out{{"value", Value()}, {"grad", first_nonfinite_grad_ ? *first_nonfinite_grad_ : Value()}};
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      if (std::isfinite(nodes_[i].var.item())) continue;
      const long s = nodes_[i].statement;
      out["value"] = {{"node", i}, {"reason", s < 0 ? "" : ev_.statements[static_cast<std::size_t>(s)].flag}};
      break;
    }
    return out;
  }

  /// The graph for the page's layout, written by Boost.Graph: node ids n0, n1, ... and edge ids e0,
  /// e1, ... (kept by Graphviz in its SVG), labels with the widest text each line will hold. In a
  /// large graph an input used by many nodes (a weight every unit reads) is drawn as one copy beside
  /// each node that uses it (ids n4c0, n4c1, ...; the page links them), as TensorBoard draws
  /// high-degree nodes: its edges no longer cross the whole drawing, and dot lays it out as a chain.
  std::string dot_text() const {
    const bool large = nodes_.size() > k_large_graph;
    std::vector<std::size_t> uses(nodes_.size(), 0);
    for (const EdgeRef& e : edges_) ++uses[e.from];
    const auto copied = [&](std::size_t i) {
      return large && nodes_[i].kind == "input" && uses[i] > k_shared_input_uses;
    };
    DotGraph g;
    std::vector<std::size_t> vertex(nodes_.size());
    const auto add_vertex = [&](std::size_t i, const std::string& id, const std::string& klass) {
      const Node& n = nodes_[i];
      const std::string grad = n.var.has_grad() ? short_text(n.var.grad().item()) : "0";
      return boost::add_vertex(
          GraphNode{id, id, fmt::format("{}\\nvalue {}\\ngrad {}", n.name, short_text(n.var.item()), grad),
                    n.kind == "op" ? "ellipse" : "box", klass, klass == "input copy" ? "" : "main"},
          g);
    };
    for (std::size_t i = 0; i < nodes_.size(); ++i)
      if (!copied(i))
        vertex[i] = add_vertex(i, fmt::format("n{}", i), i + 1 == nodes_.size() ? "output" : nodes_[i].kind);
    std::vector<std::size_t> copies(nodes_.size(), 0);
    for (std::size_t k = 0; k < edges_.size(); ++k) {
      const EdgeRef& e = edges_[k];
      const std::size_t from =
          copied(e.from) ? add_vertex(e.from, fmt::format("n{}c{}", e.from, copies[e.from]++), "input copy")
                         : vertex[e.from];
      boost::add_edge(from, vertex[e.to], GraphEdge{fmt::format("e{}", k), e.label}, g);
    }
    boost::dynamic_properties dp;
    dp.property("rankdir", boost::make_constant_property<DotGraph*>(std::string("LR")));
    dp.property("node_id", boost::get(&GraphNode::key, g));
    dp.property("id", boost::get(&GraphNode::id, g));
    dp.property("label", boost::get(&GraphNode::label, g));
    dp.property("shape", boost::get(&GraphNode::shape, g));
    dp.property("class", boost::get(&GraphNode::klass, g));
    dp.property("id", boost::get(&GraphEdge::id, g));
    // dot ranks a label as a node of its own and then minimises crossings at length: a 1,001-node
    // chain took it 9 s (19 s the first time). In a large graph the labels are placed after the
    // layout (xlabel), the crossing and ranking passes are cut short (the chain: 1.9 s), and the
    // nodes but the copies are one group, whose edges dot keeps straight: the 200-node program of
    // docs/web.md is then a straight line with the copies beside it, not a diagonal 35 times as high.
    dp.property(large ? "xlabel" : "label", boost::get(&GraphEdge::label, g));
    if (large) {
      dp.property("group", boost::get(&GraphNode::group, g));
      for (const auto& [key, value] : {std::pair{"mclimit", "0.01"},
                                       {"nslimit", "0.2"},
                                       {"nslimit1", "0.2"},
                                       {"searchsize", "5"},
                                       {"remincross", "false"}})
        dp.property(key, boost::make_constant_property<DotGraph*>(std::string(value)));
    }
    std::ostringstream os;
    boost::write_graphviz_dp(os, g, dp, "node_id");
    return os.str();
  }

  std::size_t node_named(const std::string& name) const {
    const auto it = by_name_.find(name);
    if (it == by_name_.end()) throw std::logic_error(fmt::format("explorer: no node named '{}'", name));
    return it->second;
  }

  struct EdgeRef {
    std::size_t from, to;
    std::string label;
  };

  const ExplainRequest& rq_;
  expr::Program program_;
  std::vector<std::pair<std::string, double>> values_;
  expr::Evaluation ev_;
  std::vector<Node> nodes_;
  std::unordered_map<const void*, std::size_t> index_;
  std::unordered_map<std::string, std::size_t> by_name_;
  std::vector<EdgeRef> edges_;
  std::vector<std::size_t> edge_of_step_;
  std::optional<Value> first_nonfinite_grad_;
};

} // namespace

Value explain(const ExplainRequest& request) {
  return Explorer(request).run();
}

std::string explain_json(const ExplainRequest& request) {
  return guarded([&] { return explain(request); });
}

ExplainRequest parse_explain_request(std::string_view json) {
  const Value j = parse_object(json, "the explain request");
  ExplainRequest r;
  r.program = string_member(j, "program");
  if (j.contains("inputs")) {
    if (!j["inputs"].is_object()) throw FormatError("the explain request: 'inputs' is not an object");
    for (const auto& [name, v] : j["inputs"].items()) {
      if (!v.is_string())
        throw FormatError(fmt::format("the explain request: input '{}' is not a string", name));
      r.inputs.emplace_back(name, v.get<std::string>());
    }
  }
  if (j.contains("check")) r.check = j["check"].is_boolean() && j["check"].get<bool>();
  return r;
}

} // namespace gg::web
