// Whole-file reading for the data readers, with the OS's reason in every gg::IOError.
#include "file.hpp"

#include <autodiff/error.hpp>

#include <cerrno>
#include <cstring>
#include <memory>

#include <unistd.h>

#include <fmt/format.h>

namespace gg::data::detail {

std::FILE* open_file(const std::string& path) {
  errno = 0;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw IOError(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  return f;
}

std::string read_file(const std::string& path) {
  std::unique_ptr<std::FILE, FileCloser> f(open_file(path));
  std::string text;
  char chunk[1 << 16];
  for (;;) {
    errno = 0;
    const std::size_t got = std::fread(chunk, 1, sizeof chunk, f.get());
    text.append(chunk, got);
    if (got < sizeof chunk) {
      if (std::ferror(f.get()))
        throw IOError(fmt::format("cannot read '{}': {}", path, std::strerror(errno)));
      break;
    }
  }
  return text;
}

std::uint64_t physical_memory() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page)
                               : std::uint64_t{1} << 62; // unknown: no limit
}

} // namespace gg::data::detail
