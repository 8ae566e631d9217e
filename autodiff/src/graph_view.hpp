// The Boost.Graph view of a recorded graph (internal): everything a root depends on, as a
// boost::adjacency_list with edges input -> output, built on demand for DOT, traces and statistics.
// The tape stays the engine; this copy only points at its nodes (valid while the root is alive).
#pragma once

#include <cstddef>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include "node.hpp"

namespace gg::detail {

struct ViewVertex {
  const Node* node = nullptr;
};
struct ViewEdge {
  int slot = 0; ///< which input of the target node this edge feeds (0, 1, ...)
};

/// Vertices are numbered in topological order (inputs before the nodes computed from them), so a
/// vertex's index is also its position in that order; parallel edges (x * x) are kept. The edge list
/// is a vector, not Boost's default std::list: one allocation per edge fewer (~145 MB per million
/// nodes instead of ~170).
using GraphView = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, ViewVertex, ViewEdge,
                                        boost::no_property, boost::vecS>;
using ViewVertexId = boost::graph_traits<GraphView>::vertex_descriptor;

/// The graph of everything root depends on; root is the last vertex. Iterative (no recursion), so
/// graphs a million nodes deep are fine.
GraphView build_graph_view(const Node* root);

} // namespace gg::detail
