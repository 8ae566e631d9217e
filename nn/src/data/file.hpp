// Internal to the data readers: opening and reading whole files, with gg::IOError naming the file
// and the operating system's reason.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace gg::data::detail {

/// fopen in binary mode, or IOError "cannot open 'path': reason".
std::FILE* open_file(const std::string& path);
/// The whole content of a file, or IOError.
std::string read_file(const std::string& path);
/// The machine's physical memory in bytes (what data may take before it is refused).
std::uint64_t physical_memory();
/// Closes a FILE* when it goes out of scope.
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

} // namespace gg::data::detail
