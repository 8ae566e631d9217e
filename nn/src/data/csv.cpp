// The CSV dataset reader: one pass over the text, line by line and field by field, with every error
// reported as "FILE:LINE:COLUMN: what" (COLUMN = 1-based field number).
#include <nn/data/csv.hpp>

#include "../io/byte_source.hpp"
#include "text.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>

#include <fmt/format.h>

namespace gg::data {

namespace detail {
namespace {

/// Where in the file we are, for error messages.
struct Where {
  std::string_view file;
  std::int64_t line = 0;
};

[[noreturn]] void fail(const Where& w, std::int64_t column, std::string_view what) {
  throw FormatError(fmt::format("{}:{}:{}: {}", w.file, w.line, column, what));
}

bool is_blank(char c, char delimiter) {
  return (c == ' ' || c == '\t') && c != delimiter;
}

/// Splits a line into fields, RFC 4180 quoting on one line, spaces around fields trimmed. Keeps the
/// first `keep` fields in `out` (reusing its strings) and returns how many fields the line has,
/// counting no further than max_csv_columns + 1 so that a huge row costs no memory.
std::int64_t split_line(std::string_view line, char delim, std::vector<std::string>& out, std::size_t keep,
                        const Where& where) {
  std::int64_t count = 0;
  std::size_t i = 0;
  const std::size_t n = line.size();
  for (;;) {
    ++count;
    if (count > max_csv_columns)
      fail(where, count, fmt::format("too many columns: a row may have at most {}", max_csv_columns));
    const bool kept = static_cast<std::size_t>(count) <= keep;
    std::string* field = nullptr;
    if (kept) {
      if (out.size() < static_cast<std::size_t>(count)) out.emplace_back();
      field = &out[static_cast<std::size_t>(count - 1)];
      field->clear();
    }
    while (i < n && is_blank(line[i], delim)) ++i;
    if (i < n && line[i] == '"') {
      ++i;
      for (;;) {
        if (i >= n)
          fail(where, count, "unterminated quoted field (a quoted field must close on the same line)");
        if (line[i] == '"') {
          if (i + 1 < n && line[i + 1] == '"') {
            if (kept) field->push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (kept) field->push_back(line[i]);
        ++i;
      }
      while (i < n && is_blank(line[i], delim)) ++i;
      if (i < n && line[i] != delim)
        fail(where, count,
             fmt::format("unexpected {} after a closing quote (expected '{}' or the end of the line)",
                         quote_text(line.substr(i, 1)), delim));
    } else {
      const std::size_t start = i;
      while (i < n && line[i] != delim) {
        if (line[i] == '"')
          fail(where, count,
               "quote character inside an unquoted field (quote the whole field: \"a \"\"b\"\"\")");
        ++i;
      }
      std::size_t stop = i;
      while (stop > start && is_blank(line[stop - 1], delim)) --stop;
      if (kept) field->assign(line.substr(start, stop - start));
    }
    if (i >= n) return count;
    ++i; // the delimiter
  }
}

bool is_blank_line(std::string_view line, char delim) {
  return std::all_of(line.begin(), line.end(), [&](char c) { return is_blank(c, delim); });
}

enum class NumberStatus : std::uint8_t { ok, empty, not_a_number, not_finite, overflow };

/// Parses a whole field as a float64 (locale-independent; an optional leading '+').
NumberStatus parse_number(std::string_view s, double& value) {
  // Quoted fields keep their spaces (" 4"); a number may still be padded.
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (s.empty()) return NumberStatus::empty;
  std::string_view body = s;
  if (body.size() > 1 && body[0] == '+' && body[1] != '-' && body[1] != '+') body.remove_prefix(1);
  const char* first = body.data();
  const char* last = body.data() + body.size();
  const auto [ptr, ec] = std::from_chars(first, last, value);
  if (ptr != last) return NumberStatus::not_a_number;
  if (ec == std::errc::invalid_argument) return NumberStatus::not_a_number;
  if (ec == std::errc::result_out_of_range) {
    // from_chars reports underflow (1e-400) as out of range too; strtod tells the two apart.
    const std::string copy(body);
    const double v = std::strtod(copy.c_str(), nullptr);
    if (std::isinf(v)) return NumberStatus::overflow;
    value = v;
    return NumberStatus::ok;
  }
  if (!std::isfinite(value)) return NumberStatus::not_finite;
  return NumberStatus::ok;
}

double number_or_fail(std::string_view s, const Where& where, std::int64_t column) {
  double v = 0;
  switch (parse_number(s, v)) {
  case NumberStatus::ok: return v;
  case NumberStatus::empty: fail(where, column, "empty field (missing value)");
  case NumberStatus::not_a_number: fail(where, column, fmt::format("{} is not a number", quote_text(s)));
  case NumberStatus::not_finite:
    fail(where, column,
         fmt::format("{} is not a finite number (NaN and infinity are refused)", quote_text(s)));
  case NumberStatus::overflow:
    fail(where, column, fmt::format("{} is out of the float64 range", quote_text(s)));
  }
  return v;
}

std::string column_list(const std::vector<std::string>& names) {
  constexpr std::size_t shown = 20;
  std::string out;
  for (std::size_t i = 0; i < std::min(names.size(), shown); ++i)
    out += (i ? ", " : "") + quote_text(names[i]);
  if (names.size() > shown) out += fmt::format(", ... ({} more)", names.size() - shown);
  return out;
}

/// The column called name (0-based), or a failure at the header line naming the columns there are.
std::int64_t named_column(const std::vector<std::string>& names, const std::string& name,
                          const Where& where) {
  std::int64_t found = -1;
  for (std::int64_t j = 0; j < static_cast<std::int64_t>(names.size()); ++j) {
    if (names[static_cast<std::size_t>(j)] != name) continue;
    if (found >= 0)
      fail(where, j + 1,
           fmt::format("target column name {} is ambiguous: columns {} and {} both have it", quote_text(name),
                       found + 1, j + 1));
    found = j;
  }
  if (found < 0)
    fail(where, 1,
         fmt::format("no column named {}; the columns are {}", quote_text(name), column_list(names)));
  return found;
}

/// Resolves the target columns from the options (0-based, in the options' order), or fails at the
/// header line.
std::vector<std::int64_t> target_columns(const std::vector<std::string>& names, const CsvOptions& options,
                                         const Where& where) {
  const auto count = static_cast<std::int64_t>(names.size());
  if (!options.target_names.empty()) {
    std::vector<std::int64_t> columns;
    for (const std::string& name : options.target_names) {
      const std::int64_t j = named_column(names, name, where);
      if (std::find(columns.begin(), columns.end(), j) != columns.end())
        fail(where, j + 1, fmt::format("target column {} is named twice", quote_text(name)));
      columns.push_back(j);
    }
    if (static_cast<std::int64_t>(columns.size()) >= count)
      fail(where, 1, "every column is a target: at least one feature column is needed");
    return columns;
  }
  if (!options.target_name.empty()) return {named_column(names, options.target_name, where)};
  const std::int64_t j = options.target_index < 0 ? count + options.target_index : options.target_index;
  if (j < 0 || j >= count)
    fail(where, 1,
         fmt::format("target column index {} is out of range for {} columns", options.target_index, count));
  return {j};
}

} // namespace
} // namespace detail

Dataset parse_csv(std::string_view text, std::string_view source_name, const CsvOptions& options) {
  using namespace detail;
  const char delim = options.delimiter;
  if (options.target_names.size() > 1 && options.target != Target::values)
    throw ValueError("CsvOptions: several target columns hold values (Target::values), not classes");
  if (delim == '"' || delim == '\n' || delim == '\r')
    throw ValueError(
        fmt::format("CsvOptions: delimiter {} is not allowed", quote_text(std::string_view(&delim, 1))));
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3); // UTF-8 byte-order mark

  Where where{source_name, 0};
  std::size_t pos = 0;
  // The next non-blank line (without its line ending), or false at the end of the text.
  auto next_line = [&](std::string_view& line) {
    while (pos < text.size()) {
      const std::size_t nl = text.find('\n', pos);
      const std::size_t stop = nl == std::string_view::npos ? text.size() : nl;
      line = text.substr(pos, stop - pos);
      pos = nl == std::string_view::npos ? text.size() : nl + 1;
      ++where.line;
      if (line.ends_with('\r')) line.remove_suffix(1);
      if (!is_blank_line(line, delim)) return true;
    }
    return false;
  };

  std::string_view line;
  if (!next_line(line)) {
    where.line = 1;
    fail(where, 1, "empty file: expected a header row of column names");
  }
  // Count the columns first, storing nothing: a row of 10^7 columns is refused before allocation.
  std::vector<std::string> names;
  const std::int64_t columns = split_line(line, delim, names, 0, where);
  split_line(line, delim, names, static_cast<std::size_t>(columns), where);
  if (columns < 2)
    fail(where, 1, fmt::format("need at least 2 columns (features and a target), found {}", columns));
  if (std::all_of(names.begin(), names.end(), [](const std::string& s) {
        double v = 0;
        return parse_number(s, v) == NumberStatus::ok;
      }))
    fail(where, 1,
         fmt::format("missing header row: found numbers ({}, ...) where column names were expected",
                     quote_text(names[0])));
  const std::vector<std::int64_t> target_list = target_columns(names, options, where);
  // slot[j]: which target column j is (0, 1, ...), or -1 for a feature.
  std::vector<std::int64_t> slot(names.size(), -1);
  for (std::size_t k = 0; k < target_list.size(); ++k)
    slot[static_cast<std::size_t>(target_list[k])] = static_cast<std::int64_t>(k);
  const auto k_targets = static_cast<std::int64_t>(target_list.size());

  Dataset ds;
  for (std::size_t j = 0; j < names.size(); ++j)
    if (slot[j] < 0) ds.feature_names.push_back(names[j]);
  const std::int64_t d = columns - k_targets;

  std::vector<double> features;
  std::vector<double> targets;
  std::map<std::string, std::int64_t, std::less<>> label_ids; // class name -> first-appearance id
  std::vector<std::string> fields;
  const std::int64_t header_line = where.line;
  while (next_line(line)) {
    const std::int64_t found = split_line(line, delim, fields, static_cast<std::size_t>(columns), where);
    if (found != columns)
      fail(where, std::min(found, columns) + 1, fmt::format("expected {} fields, found {}", columns, found));
    const std::size_t row_start = targets.size();
    targets.resize(row_start + static_cast<std::size_t>(k_targets));
    for (std::int64_t j = 0; j < columns; ++j) {
      const std::string& f = fields[static_cast<std::size_t>(j)];
      const std::int64_t k = slot[static_cast<std::size_t>(j)];
      if (k < 0) {
        features.push_back(number_or_fail(f, where, j + 1));
        continue;
      }
      double& target = targets[row_start + static_cast<std::size_t>(k)];
      switch (options.target) {
      case Target::values: target = number_or_fail(f, where, j + 1); break;
      case Target::class_ids: {
        const double v = number_or_fail(f, where, j + 1);
        if (v != std::floor(v))
          fail(where, j + 1, fmt::format("{} is not an integer class id", quote_text(f)));
        if (v < 0)
          fail(where, j + 1,
               fmt::format("{} is a negative class id (class ids are 0, 1, 2, ...)", quote_text(f)));
        if (v >= static_cast<double>(max_csv_classes))
          fail(where, j + 1,
               fmt::format("class id {} is too large (at most {} classes)", quote_text(f), max_csv_classes));
        target = v;
        break;
      }
      case Target::class_names: {
        if (f.empty()) fail(where, j + 1, "empty field (missing class name)");
        auto it = label_ids.find(f);
        if (it == label_ids.end()) {
          if (static_cast<std::int64_t>(label_ids.size()) >= max_csv_classes)
            fail(where, j + 1, fmt::format("too many distinct class names (at most {})", max_csv_classes));
          it = label_ids.emplace(f, static_cast<std::int64_t>(label_ids.size())).first;
        }
        target = static_cast<double>(it->second);
        break;
      }
      }
    }
  }
  if (targets.empty()) {
    where.line = header_line + 1;
    fail(where, 1, "no data rows after the header");
  }

  const auto n = static_cast<std::int64_t>(targets.size()) / k_targets;
  ds.x = Tensor::empty(Shape{n, d}, f64);
  std::copy(features.begin(), features.end(), ds.x.data<double>());
  if (options.target == Target::class_names) {
    // Renumber first-appearance ids into sorted-name order, as sklearn's LabelEncoder.
    std::vector<double> rank(label_ids.size());
    std::int64_t k = 0;
    for (const auto& [name, id] : label_ids) {
      rank[static_cast<std::size_t>(id)] = static_cast<double>(k++);
      ds.class_names.push_back(name);
    }
    for (double& v : targets) v = rank[static_cast<std::size_t>(v)];
    ds.num_classes = k;
  } else if (options.target == Target::class_ids) {
    ds.num_classes = static_cast<std::int64_t>(*std::max_element(targets.begin(), targets.end())) + 1;
  }
  ds.y = Tensor::empty(k_targets > 1 ? Shape{n, k_targets} : Shape{n}, f64);
  std::copy(targets.begin(), targets.end(), ds.y.data<double>());
  return ds;
}

Dataset read_csv(const std::string& path, const CsvOptions& options) {
  return parse_csv(gg::detail::ByteSource::file(path).read_rest(), path, options);
}

} // namespace gg::data
