// Reading datasets from CSV files: a header row of column names, numeric feature columns and one
// target column (class ids, class names or regression values). Every malformed input is a
// gg::FormatError "FILE:LINE:COLUMN: what", where COLUMN is the 1-based field number.
#pragma once

#include <nn/data/datasets.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace gg::data {

/// What the target column holds.
enum class Target : std::uint8_t {
  /// Non-negative integer class ids (0, 1, 2, ...); num_classes = largest id + 1.
  class_ids,
  /// Class names ("setosa", ...), numbered in sorted order as sklearn's LabelEncoder does; the
  /// names are kept in Dataset::class_names.
  class_names,
  /// Real numbers (regression); num_classes = 0.
  values,
};

/// Options of read_csv / parse_csv.
struct CsvOptions {
  /// Name of the target column; when empty, target_index chooses it.
  std::string target_name{};
  /// Index of the target column; negative values count from the end (-1: the last column).
  std::int64_t target_index = -1;
  Target target = Target::class_ids;
  char delimiter = ',';
  /// Several target columns by name (regression with several outputs: Target::values only); y is
  /// then [n, k] in this order. When set, target_name and target_index are not used.
  std::vector<std::string> target_names{};
};

/// Largest number of columns a CSV row may have; a longer row is refused before allocation.
inline constexpr std::int64_t max_csv_columns = 1'000'000;
/// Largest number of classes a CSV target column may hold (class ids below this, distinct names).
inline constexpr std::int64_t max_csv_classes = 1'000'000;

/// Reads a CSV dataset: features as a float64 [n, d] tensor (x.to(gg::f32) converts), targets as
/// [n] ([n, k] for k target_names). A missing or unreadable file is a gg::IOError naming the file and the
/// OS's reason.
///
/// Accepted: a UTF-8 byte-order mark, LF or CRLF line endings, a missing or extra final newline,
/// blank lines (skipped), spaces around fields, RFC 4180 quoted fields ("a,b", "say ""hi""") on one
/// line. Refused: empty fields, text in a numeric column, NaN and infinite values, quoted fields
/// spanning lines, rows whose field count differs from the header's.
Dataset read_csv(const std::string& path, const CsvOptions& options = {});

/// Parses CSV text already in memory; `source_name` is the file name used in error messages.
Dataset parse_csv(std::string_view text, std::string_view source_name, const CsvOptions& options = {});

} // namespace gg::data
