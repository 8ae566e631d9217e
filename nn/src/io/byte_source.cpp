// The readers' byte source: a file read with read(2) and pread(2), or a piece of memory.
#include "byte_source.hpp"

#include <autodiff/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace gg::detail {

namespace {

/// One system call moves at most this much (Linux moves at most ~2 GiB per call anyway).
constexpr std::size_t max_chunk = std::size_t{1} << 30;

std::string described(std::string_view kind, std::string_view path) {
  return kind.empty() ? fmt::format("'{}'", path) : fmt::format("{} '{}'", kind, path);
}

} // namespace

ByteSource ByteSource::file(const std::string& path, Access access, std::string_view kind) {
  ByteSource s(path, std::string(kind));
  // O_NONBLOCK: opening a FIFO for random access must not wait for a writer (it is refused below).
  const int flags = O_RDONLY | O_CLOEXEC | (access == Access::random ? O_NONBLOCK : 0);
  do s.fd_ = ::open(path.c_str(), flags);
  while (s.fd_ < 0 && errno == EINTR);
  if (s.fd_ < 0)
    throw IOError(fmt::format("cannot open {}: {}", described(kind, path), std::strerror(errno)));
  struct stat st {};
  if (::fstat(s.fd_, &st) != 0) s.fail_read(errno);
  if (S_ISDIR(st.st_mode)) s.fail_read(EISDIR);
  if (S_ISREG(st.st_mode))
    s.size_ = static_cast<std::uint64_t>(st.st_size);
  else if (access == Access::random)
    throw IOError(fmt::format("cannot read {}: it is not a regular file", described(kind, path)));
  return s;
}

ByteSource ByteSource::memory(std::string_view bytes, std::string name) {
  ByteSource s(std::move(name), {});
  s.memory_ = bytes;
  s.size_ = bytes.size();
  return s;
}

ByteSource::ByteSource(ByteSource&& other) noexcept
    : name_(std::move(other.name_)), kind_(std::move(other.kind_)), fd_(std::exchange(other.fd_, -1)),
      memory_(other.memory_), position_(other.position_), size_(other.size_) {}

ByteSource::~ByteSource() {
  if (fd_ >= 0) ::close(fd_);
}

void ByteSource::fail_read(int err) const {
  throw IOError(fmt::format("cannot read {}: {}", described(kind_, name_), std::strerror(err)));
}

std::size_t ByteSource::read(void* dst, std::size_t n) {
  auto* out = static_cast<char*>(dst);
  if (fd_ < 0) {
    const std::size_t k = std::min<std::uint64_t>(n, memory_.size() - position_);
    if (k) std::memcpy(out, memory_.data() + position_, k);
    position_ += k;
    return k;
  }
  std::size_t got = 0;
  while (got < n) {
    const ssize_t r = ::read(fd_, out + got, std::min(n - got, max_chunk));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_read(errno);
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  position_ += got;
  return got;
}

std::string ByteSource::read_rest() {
  std::string out;
  if (size_ && *size_ > position_) { // a regular file: one read straight into the string
    out.resize(static_cast<std::size_t>(*size_ - position_));
    out.resize(read(out.data(), out.size()));
  }
  char chunk[1 << 16]; // a pipe, or a file that grew
  while (const std::size_t got = read(chunk, sizeof chunk)) out.append(chunk, got);
  return out;
}

void ByteSource::read_at(std::uint64_t offset, std::size_t n, void* dst) const {
  auto* out = static_cast<char*>(dst);
  if (fd_ < 0) {
    if (n) std::memcpy(out, memory_.data() + offset, n);
    return;
  }
  while (n > 0) {
    const ssize_t r = ::pread(fd_, out, std::min(n, max_chunk), static_cast<off_t>(offset));
    if (r < 0) {
      if (errno == EINTR) continue;
      fail_read(errno);
    }
    if (r == 0)
      throw FormatError(
          fmt::format("{}: the file is truncated (it shrank while being read)", described(kind_, name_)));
    out += r;
    n -= static_cast<std::size_t>(r);
    offset += static_cast<std::uint64_t>(r);
  }
}

} // namespace gg::detail
