// DOT graphs the CLI writes (atomically, through gg::write_atomically), optionally rendered by
// Graphviz's dot, run without a shell.
#pragma once

#include <iosfwd>
#include <string>

namespace gg::cli {

/// "g.dot" -> "g.svg"; other names get the extension appended.
std::string rendered_name(const std::string& path, const std::string& format);
/// Runs `dot -Tformat in -o out` (an argument vector, no shell). Returns false when no `dot` is on
/// PATH; throws IOError when it runs and fails.
bool render(const std::string& in, const std::string& out, const std::string& format);
/// Throws UsageError unless rankdir is a Graphviz layout direction the CLI offers: "LR" or "TB".
void check_rankdir(const std::string& rankdir);
/// Writes a DOT graph to path and, with a format ("svg", "png"), renders it; returns a note for
/// the user ("graph: wrote g.dot, rendered g.svg"); a missing Graphviz is said on err, not an error.
std::string save_graph(const std::string& command, const std::string& path, const std::string& dot_text,
                       const std::string& format, std::ostream& err);

} // namespace gg::cli
