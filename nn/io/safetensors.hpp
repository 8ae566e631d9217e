// gg::safetensors: reading and writing Hugging Face's safetensors files (the format of
// safetensors.torch.save_file / load_file), so tensors move between gradgraph and PyTorch by name.
// Writes are atomic (temp file, fsync, rename); every malformed file is a FormatError, never a crash.
#pragma once

#include <autodiff/error.hpp>
#include <autodiff/tensor.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gg::safetensors {

/// Largest header load() accepts, in bytes (the official reader's limit).
inline constexpr std::uint64_t max_header_bytes = 100'000'000;

/// The contents of a safetensors file.
///
/// Stored dtypes become gradgraph dtypes as follows: F64 -> float64; F32, F16, BF16 -> float32
/// (exact); I64, I32, I16, I8, U64, U32, U16, U8, BOOL -> float64 (exact, except 64-bit integers of
/// magnitude above 2^53, which round to the nearest double). Other dtypes (F8_*, complex, ...) are
/// rejected with a FormatError naming the tensor and the dtype.
struct File {
  /// Tensors in the order of their data in the file.
  std::vector<std::pair<std::string, gg::Tensor>> tensors;
  /// The "__metadata__" entries (empty when the file has none).
  std::map<std::string, std::string> metadata;
  /// The file it was read from, or the source name given to parse().
  std::string path;

  /// The tensor called name (ValueError naming the file when there is none).
  const gg::Tensor& at(std::string_view name) const;
  /// Whether a tensor called name exists.
  bool contains(std::string_view name) const;
};

/// Writes tensors (F64 or F32, by each tensor's dtype) and metadata to path atomically: the data goes
/// to a temporary file in the same directory, is flushed to disk, then renamed over path, so an
/// interrupted run leaves the old file or the new one. Empty, duplicate or non-UTF-8 names, the name
/// "__metadata__" and undefined tensors are ValueErrors (nothing is written); a failed write is an
/// IOError naming the path and the OS reason (the temporary file is removed).
void save(const std::string& path, const std::vector<std::pair<std::string, gg::Tensor>>& tensors,
          const std::map<std::string, std::string>& metadata = {});

/// The bytes save() writes, as a string: the same layout as the official writer (entries sorted by
/// dtype alignment then name, header padded with spaces to a multiple of 8).
std::string serialize(const std::vector<std::pair<std::string, gg::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

/// Reads a safetensors file. A file that cannot be opened or read is an IOError; a malformed one is a
/// FormatError naming the file and what is wrong. Sizes are checked against the file before anything
/// is allocated.
File load(const std::string& path);

/// Parses safetensors bytes held in memory (as load() does for a file); source names them in errors.
File parse(std::string_view bytes, const std::string& source = "<memory>");

} // namespace gg::safetensors
