// Graph inspection for learners: the recorded graph as Graphviz DOT, a step-by-step trace of the
// chain rule as backward applies it, and size/depth statistics. All are pure functions of the graph
// a root Var depends on, built through a Boost.Graph view of it.
#pragma once

#include <cstddef>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include <autodiff/var.hpp>

namespace gg {

/// How write_dot draws a graph.
struct DotOptions {
  std::string rankdir = "LR";   ///< Graphviz layout direction: "LR" (inputs left) or "TB"
  bool show_grad = true;        ///< show gradients of nodes a backward pass has reached
  bool edge_derivatives = true; ///< label edges into scalar nodes with d(output)/d(input)
  int max_entries = 4;          ///< tensor entries shown per value before "…"
  bool legend = true;           ///< a legend under the picture: what shapes, lines and edge labels mean
};

/// Writes the graph of everything root depends on as Graphviz DOT (render with `dot -Tsvg`): a
/// cluster per module call, NaN and infinities in red, a legend. Time and memory linear in the graph.
void write_dot(std::ostream& os, const Var& root, const DotOptions& options = {});

/// One application of the chain rule: the gradient flowing along the edge input -> node.
struct TraceStep {
  std::string node;              ///< the node's name: its user name, or a generated one like "mul#3"
  std::string input;             ///< the input's name
  std::string op;                ///< the node's op name ("mul")
  std::string formula;           ///< d(node)/d(input) from the op table, in the graph's names ("z")
  double local;                  ///< d(node)/d(input) at the recorded values
  double upstream;               ///< d(root)/d(node), complete when the node is visited
  double product;                ///< upstream * local: what this edge adds to the input's gradient
  double accumulated;            ///< the input's gradient after adding product (a running sum under fan-in)
  bool fan_in;                   ///< the input receives contributions from more than one edge
  std::string expr;              ///< the node's expression, "mul(q, z)"
  double previous = 0;           ///< the input's gradient before adding product (0 for the first)
  std::size_t contribution = 1;  ///< which of the input's contributions this is, from 1 ...
  std::size_t contributions = 1; ///< ... of how many (its uses in the graph)
};

/// The chain-rule steps backward performs from root, in its order (newest node first, each node's
/// inputs in order); edges into constants are skipped, as backward skips them. Computed from the
/// recorded values alone (no backward() needed). UsageError if the graph holds a tensor.
std::vector<TraceStep> trace_backward(const Var& root);
/// The same steps handed to visit one at a time (the step is reused: copy what you keep), so a
/// trace of a million steps needs no memory of its own beyond the graph's view.
void trace_backward(const Var& root, const std::function<void(const TraceStep&)>& visit);

/// The steps as an aligned table, one line per step:
/// `f = mul(q, z)   df/dq = z = -4   upstream 1 × local -4 = -4   → dq = -4`.
std::string format_trace(const std::vector<TraceStep>& steps);

/// Size and shape of a graph.
struct GraphStats {
  std::size_t nodes;       ///< values the root depends on, itself included
  std::size_t edges;       ///< input uses (x * x counts two)
  std::size_t leaves;      ///< nodes not computed by an op: parameters, inputs, constants
  std::size_t depth;       ///< longest path from a leaf to the root, in edges
  std::size_t max_fan_out; ///< the most distinct nodes computed from one node
};

/// Statistics of the graph of everything root depends on.
GraphStats graph_stats(const Var& root);

} // namespace gg
