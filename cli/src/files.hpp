// DOT graphs the CLI writes (atomically, through gg::AtomicFile), optionally rendered by Graphviz's
// dot, run without a shell, into a temporary file renamed over the picture when dot succeeds.
#pragma once

#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <string>
#include <utility>
#include <vector>

namespace gg::cli {

/// "g.dot" -> "g.svg"; other names get the extension appended.
std::string rendered_name(const std::string& path, const std::string& format);
/// How long Graphviz's dot may run before it is stopped: an MLP of 3,200 nodes takes it 3 s, but a
/// program of 80 statements each using x (80 labelled edges spanning up to 160 ranks) did not finish
/// in 100 s.
inline constexpr std::chrono::milliseconds render_timeout{30'000};
/// Runs `dot -Tformat in -o out` (an argument vector, no shell). Returns false when no `dot` is on
/// PATH; throws IOError when it runs and fails, or runs longer than timeout (it is then killed).
bool render(const std::string& in, const std::string& out, const std::string& format,
            std::chrono::milliseconds timeout = render_timeout);
/// Throws UsageError unless rankdir is a Graphviz layout direction the CLI offers: "LR" or "TB".
void check_rankdir(const std::string& rankdir);
/// Most nodes --render hands to Graphviz's dot, whose time grows much faster than the graph's size:
/// a 2-2-...-2 MLP of 3,200 nodes renders in 3 s and one of 6,400 in 15 s, a tangled program of
/// 3,000 nodes ran 10 minutes and took 7 GB (measured with Graphviz 2.43). Smaller graphs that
/// still take too long are stopped after render_timeout.
inline constexpr std::size_t max_render_nodes = 2000;
/// Throws UsageError when a graph of `nodes` nodes is to be rendered (a format given) and has more
/// than max_render_nodes: checked before anything is written.
void check_render_size(const std::string& format, std::size_t nodes);
/// Writes a DOT graph to path and, with a format ("svg", "png"), renders it, atomically (the old
/// picture stays when Graphviz fails); returns a note for the user ("graph: wrote g.dot, rendered
/// g.svg"); a missing Graphviz is said on err, not an error.
std::string save_graph(const std::string& command, const std::string& path, const std::string& dot_text,
                       const std::string& format, std::ostream& err,
                       std::chrono::milliseconds timeout = render_timeout);

/// (option, path) pairs of the files a command writes or reads.
using PathList = std::vector<std::pair<std::string, std::string>>;
/// Refuses (UsageError) two outputs on one file, or an output on an input, before any work: the same
/// file after resolving symbolic links and "..", or hard links to one inode; devices (/dev/null) may
/// take several outputs. The output option `resumed.first` may be the file of the input option
/// `resumed.second` (a checkpoint resumed from: it is read first).
void check_paths(const PathList& outputs, const PathList& inputs,
                 const std::pair<std::string, std::string>& resumed = {"--checkpoint", "--resume"});

} // namespace gg::cli
