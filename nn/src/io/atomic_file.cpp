// gg::AtomicFile: a temporary file created next to the target with O_EXCL (permissions 0666 less
// the umask, as any new file), written with write(2), then fsync, rename and a sync of the folder.
#include <nn/io/atomic_file.hpp>

#include <autodiff/error.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

namespace gg {

namespace {

/// A name for the temporary file next to path that is unlikely to exist already.
std::string temp_name(const std::string& path) {
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t x = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  x ^= static_cast<std::uint64_t>(::getpid()) << 32;
  x += counter.fetch_add(1) * 0x9E3779B97F4A7C15ULL;
  x ^= x >> 31; // splitmix64 finaliser: spread the bits over the suffix
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string name = path + ".tmp-";
  for (int i = 0; i < 8; ++i, x /= alphabet.size()) name += alphabet[x % alphabet.size()];
  return name;
}

/// Flushes the folder holding path so the rename itself survives a crash (best effort: some file
/// systems do not support it, and the data is already safe under one of the two names).
void sync_directory(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

} // namespace

AtomicFile::AtomicFile(std::string path, bool keep_unfinished)
    : path_(std::move(path)), keep_unfinished_(keep_unfinished) {
  if (path_.empty()) throw IOError("cannot write a file to an empty path");
  for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
    temp_ = temp_name(path_);
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0 && errno != EEXIST) break;
  }
  if (fd_ < 0) // the temporary file's random name would only confuse here
    throw IOError(fmt::format("cannot write '{}': cannot create a file in its folder: {}", path_,
                              std::strerror(errno)));
}

AtomicFile::~AtomicFile() {
  if (fd_ < 0) return;
  if (keep_unfinished_) {
    try {
      commit();
    } catch (const Error&) { // the temporary file is removed, path keeps its old content
    }
    return;
  }
  ::close(fd_);
  ::unlink(temp_.c_str());
}

void AtomicFile::fail(int err, std::string_view step) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  ::unlink(temp_.c_str());
  throw IOError(fmt::format("cannot write '{}': {} the temporary file '{}' failed: {}", path_, step, temp_,
                            std::strerror(err)));
}

void AtomicFile::write(std::string_view bytes) {
  write(bytes.data(), bytes.size());
}

void AtomicFile::write(const void* data, std::size_t size) {
  if (fd_ < 0) throw UsageError(fmt::format("AtomicFile '{}': written after commit() or a failure", path_));
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t w = ::write(fd_, p, std::min<std::size_t>(size, std::size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(errno, "writing");
    }
    p += w;
    size -= static_cast<std::size_t>(w);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) throw UsageError(fmt::format("AtomicFile '{}': committed twice or after a failure", path_));
  if (::fsync(fd_) != 0) fail(errno, "flushing");
  const int closed = ::close(fd_);
  fd_ = -1;
  if (closed != 0) fail(errno, "closing");
  if (::rename(temp_.c_str(), path_.c_str()) != 0) fail(errno, "renaming");
  sync_directory(path_);
}

void write_atomically(const std::string& path, std::string_view content) {
  AtomicFile f(path);
  f.write(content);
  f.commit();
}

} // namespace gg
