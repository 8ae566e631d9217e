// Text laid out for a terminal of a given width: paragraphs wrapped at word boundaries, and tables
// of aligned columns that fall back to narrower layouts when a row does not fit. Tables are
// generated twice (once to measure, once to print), so a table of a million rows is printed as it
// is generated and never held in memory.
#pragma once

#include <cstddef>
#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace gg::cli {

/// Columns a UTF-8 string takes (continuation bytes take none).
std::size_t display_width(std::string_view s);

class Layout {
public:
  /// Printed as a space that never breaks a line: "x = 2" written with it stays on one line.
  static constexpr char glue = '\x1f';

  using Row = std::vector<std::string>;
  /// Calls its argument once per row, in order, the same rows each time it is called.
  using Rows = std::function<void(const std::function<void(const Row&)>&)>;

  /// width: the columns lines may take; 0 for no limit.
  Layout(std::ostream& out, std::size_t width) : out_(out), width_(width) {}

  /// Prose, words wrapped at the width (at 100 columns at most, also without a limit).
  void paragraph(std::string_view text);
  /// Rows of cells as aligned columns, `indent` spaces in; cells wider than 60 columns do not widen
  /// their column. When a row does not fit the width: its last cell wraps under itself; when that
  /// leaves it less than 24 columns, the last cells of rows of three or more cells move to a line
  /// of their own under the second column; when even that does not fit, every cell gets a line of
  /// its own. A word too long for any line is cut with "…".
  void table(const Rows& rows, std::size_t indent);

private:
  /// Writes text from the current column, wrapping at limit with continuation lines at column hang.
  void wrap(std::string_view text, std::size_t hang, std::size_t limit);
  void put(std::string_view text);
  void pad_to(std::size_t column);
  /// Three spaces at least, then on to column.
  void gap_to(std::size_t column);
  void end_line();

  std::ostream& out_;
  std::size_t width_;
  std::size_t column_ = 0;
};

} // namespace gg::cli
