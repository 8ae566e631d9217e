// Reads back the DOT gg::write_dot writes, for tests: each node's attributes, the edges, and the
// clusters with the nodes listed directly in each and the clusters nested in it.
#pragma once

#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace gg::test {

struct DotCluster {
  std::string label;
  std::vector<std::string> nodes;    ///< node ids listed directly in it
  std::vector<std::size_t> children; ///< clusters nested in it (indices)
  int parent = -1;
};

struct DotGraph {
  std::map<std::string, std::string> labels;              ///< node id -> its label
  std::map<std::string, std::string> lines;               ///< node id -> its whole statement
  std::vector<std::pair<std::string, std::string>> edges; ///< visible edges, in order
  std::vector<std::pair<std::string, std::string>> invisible;
  std::vector<DotCluster> clusters;
  std::string graph_attributes; ///< the root graph's attribute lines

  /// The id of the node whose label starts with `start` ("" when none).
  std::string id_of(const std::string& start) const {
    for (const auto& [id, label] : labels)
      if (label.rfind(start, 0) == 0) return id;
    return {};
  }
  /// The innermost cluster listing the node, or -1.
  int cluster_of(const std::string& id) const {
    for (std::size_t c = 0; c < clusters.size(); ++c)
      for (const std::string& n : clusters[c].nodes)
        if (n == id) return static_cast<int>(c);
    return -1;
  }
  std::size_t out_degree(const std::string& id) const {
    std::size_t d = 0;
    for (const auto& e : edges) d += e.first == id;
    return d;
  }
};

inline DotGraph read_dot(const std::string& text) {
  DotGraph g;
  const std::regex node(R"re(^(\d+) \[(.*)\];$)re"), label(R"re(label="((?:[^"\\]|\\.)*)")re"),
      edge(R"re(^(\d+)->(\d+) *(\[.*\])?;$)re"), open(R"re(^subgraph (cluster_\d+) \{$)re");
  std::vector<int> stack;
  std::istringstream in(text);
  std::smatch m;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_match(line, m, open)) {
      DotCluster c;
      c.parent = stack.empty() ? -1 : stack.back();
      g.clusters.push_back(c);
      const int index = static_cast<int>(g.clusters.size() - 1);
      if (c.parent >= 0)
        g.clusters[static_cast<std::size_t>(c.parent)].children.push_back(static_cast<std::size_t>(index));
      stack.push_back(index);
    } else if (!stack.empty() && line == "}") {
      stack.pop_back();
    } else if (!stack.empty() && line.rfind("label=", 0) == 0 && std::regex_search(line, m, label)) {
      g.clusters[static_cast<std::size_t>(stack.back())].label = m[1];
    } else if (!stack.empty() && !line.empty() && line.back() == ';' &&
               line.find_first_not_of("0123456789") == line.size() - 1) {
      g.clusters[static_cast<std::size_t>(stack.back())].nodes.push_back(line.substr(0, line.size() - 1));
    } else if (std::regex_match(line, m, node)) {
      g.lines[m[1]] = line;
      const std::string attributes = m[2];
      if (std::smatch l; std::regex_search(attributes, l, label)) g.labels[m[1]] = l[1];
    } else if (std::regex_match(line, m, edge)) {
      (m[3].str().find("invis") != std::string::npos ? g.invisible : g.edges).emplace_back(m[1], m[2]);
    } else if (stack.empty()) {
      g.graph_attributes += line + "\n";
    }
  }
  return g;
}

} // namespace gg::test
