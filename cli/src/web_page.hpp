// The browser page from the command line: `gradgraph explain --html FILE` (the explorer opened at a
// program, as one self-contained file) and `gradgraph serve` (the built page over HTTP on this
// machine). The page itself is built by scripts/build_web.sh into build-web/page/.
#pragma once

#include <string>
#include <vector>

namespace gg::cli {

/// explain's --html in its --help.
inline constexpr const char* k_html_help =
    "write the browser page opened at this program: one self-contained HTML file (no network) that steps "
    "through it; FILE#end opens it after the last step (the page is built by scripts/build_web.sh)";

/// Throws UsageError for an empty --html FILE, or one naming the --dot file.
void check_html_option(bool given, const std::string& html, const std::string& dot);

/// The built page's folder: $GRADGRAPH_WEB when set, else build-web/page/ of the source tree
/// gradgraph was built from, else the installed share/gradgraph/web/. IOError saying how to build
/// it when that folder (or neither of the two) holds an index.html.
std::string page_folder();

/// Writes the explorer opened at `program` with `inputs` (NAME=VALUE arguments, as explain takes
/// them) to `file`, atomically: the built page with the engine's reply for it embedded, so it
/// shows the steps at once, from file://, with no network. Returns the note explain prints.
std::string write_explorer_page(const std::string& file, const std::string& program,
                                const std::vector<std::string>& inputs);

} // namespace gg::cli
