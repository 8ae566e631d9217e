// Layout: word wrapping and the table layouts, on display widths of UTF-8 text.
#include "layout.hpp"

#include <algorithm>
#include <map>
#include <ostream>

namespace gg::cli {

std::size_t display_width(std::string_view s) {
  return static_cast<std::size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

namespace {

/// The longest prefix of s that takes at most `columns` columns, cut at a character boundary.
std::string_view prefix_of_width(std::string_view s, std::size_t columns) {
  std::size_t taken = 0, i = 0;
  for (; i < s.size(); ++i) {
    if ((s[i] & 0xC0) == 0x80) continue;
    if (taken == columns) break;
    ++taken;
  }
  return s.substr(0, i);
}

std::size_t leading_spaces(std::string_view s) {
  return std::min(s.find_first_not_of(' '), s.size());
}

} // namespace

void Layout::put(std::string_view text) {
  if (text.find(glue) == std::string_view::npos) {
    out_ << text;
  } else {
    std::string spaced(text);
    std::replace(spaced.begin(), spaced.end(), glue, ' ');
    out_ << spaced;
  }
  column_ += display_width(text);
}

void Layout::pad_to(std::size_t column) {
  if (column_ < column) out_ << std::string(column - column_, ' ');
  column_ = std::max(column_, column);
}

void Layout::gap_to(std::size_t column) {
  if (column_ + 3 > column)
    put("   "); // a cell wider than its column pushes the next one along
  else
    pad_to(column);
}

void Layout::end_line() {
  out_ << '\n';
  column_ = 0;
}

void Layout::wrap(std::string_view text, std::size_t hang, std::size_t limit) {
  const std::size_t line_start = column_;
  const auto at_line_start = [&] { return column_ == line_start || column_ == hang; };
  const auto new_line = [&] {
    end_line();
    pad_to(hang);
  };
  // One word: on this line if it fits, else on the next; cut with "…" if it fits on none.
  const auto word = [&](std::string_view spaces, std::string_view w) {
    const std::size_t n = display_width(w);
    if (!at_line_start() && column_ + spaces.size() + n > limit)
      new_line();
    else
      put(spaces);
    if (column_ + n > limit && n > 1) {
      put(prefix_of_width(w, limit > column_ + 1 ? limit - column_ - 1 : 0));
      put("…");
    } else {
      put(w);
    }
  };
  // Phrases are separated by two spaces or more ("df/dx = 3   (2 of 2: complete)"): a phrase that
  // does not fit on this line but fits on one moves whole; a longer one wraps word by word.
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t begin = std::min(text.find_first_not_of(' ', at), text.size());
    const std::size_t end = std::min(text.find("  ", begin), text.size());
    const std::string_view spaces = text.substr(at, begin - at), phrase = text.substr(begin, end - begin);
    at = end;
    const std::size_t n = display_width(phrase);
    if (limit == 0 || column_ + spaces.size() + n <= limit) {
      put(spaces);
      put(phrase);
      continue;
    }
    if (hang + n <= limit && !at_line_start()) {
      new_line();
      put(phrase);
      continue;
    }
    for (std::size_t w = 0; w < phrase.size();) {
      const std::size_t w_begin = std::min(phrase.find_first_not_of(' ', w), phrase.size());
      const std::size_t w_end = std::min(phrase.find(' ', w_begin), phrase.size());
      word(w == 0 ? spaces : phrase.substr(w, w_begin - w), phrase.substr(w_begin, w_end - w_begin));
      w = w_end;
    }
  }
}

void Layout::paragraph(std::string_view text) {
  wrap(text, 0, std::min<std::size_t>(width_ == 0 ? 100 : width_, 100));
  end_line();
}

void Layout::table(const Rows& rows, std::size_t indent) {
  // Measure: column widths, and the widest last cell of rows of each length.
  std::vector<std::size_t> widths;
  std::map<std::size_t, std::size_t> last_widths; // cells in the row -> widest last cell
  rows([&](const Row& row) {
    if (row.empty()) return;
    for (std::size_t c = 0; c + 1 < row.size(); ++c) {
      if (widths.size() <= c) widths.resize(c + 1, 0);
      if (const std::size_t w = display_width(row[c]); w <= 60) widths[c] = std::max(widths[c], w);
    }
    std::size_t& last = last_widths[row.size()];
    last = std::max(last, display_width(row.back()));
  });
  std::vector<std::size_t> start{indent};
  for (const std::size_t w : widths) start.push_back(start.back() + w + 3);
  std::size_t natural = 0, most_cells = 0;
  for (const auto& [cells, w] : last_widths) {
    natural = std::max(natural, start[cells - 1] + w);
    most_cells = std::max(most_cells, cells);
  }
  enum { one_line, hang_last, last_below, stacked } mode = one_line;
  if (width_ > 0 && natural > width_ && most_cells > 0) {
    if (start[most_cells - 1] + 24 <= width_)
      mode = hang_last;
    else if (most_cells >= 3 && start[most_cells - 2] + widths[most_cells - 2] <= width_ &&
             start[1] + std::min<std::size_t>(last_widths[most_cells], 24) <= width_)
      mode = last_below;
    else
      mode = stacked;
  }

  rows([&](const Row& row) {
    if (row.empty()) return;
    if (mode == stacked) {
      const std::size_t hang = indent + leading_spaces(row[0]) + 4;
      for (std::size_t c = 0; c < row.size(); ++c) {
        if (row[c].empty()) continue;
        if (c > 0 && column_ > indent) end_line();
        pad_to(c > 0 ? hang : indent);
        wrap(row[c], hang, width_);
      }
      end_line();
      return;
    }
    pad_to(indent);
    for (std::size_t c = 0; c + 1 < row.size(); ++c) {
      if (c > 0) gap_to(start[c]);
      put(row[c]);
    }
    const std::size_t last = row.size() - 1;
    if (last > 0 && row[last].empty()) {
      // nothing: no trailing spaces
    } else if (last > 0 && mode == last_below && row.size() >= 3) {
      end_line();
      pad_to(start[1]);
      wrap(row[last], start[1], width_);
    } else if (last > 0) {
      gap_to(start[last]);
      wrap(row[last], column_, width_);
    } else {
      wrap(row[0], indent + leading_spaces(row[0]) + 4, width_);
    }
    end_line();
  });
}

} // namespace gg::cli
