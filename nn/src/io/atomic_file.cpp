// gg::AtomicFile. A regular file (or a new one): a temporary file created next to the target with
// O_EXCL and the old file's permissions and owner, locked while in use, written with write(2), then
// fsync, rename and a sync of the folder. Anything else (a device, a FIFO, an open descriptor named
// as /dev/stdout or /dev/fd/N, "-") is written through: replacing it would replace /dev/null with a
// regular file, or cut a pipe from its reader.
#include <nn/io/atomic_file.hpp>

#include <autodiff/error.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <variant>

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace gg {

namespace {

/// What follows ".NAME" in a temporary file's name, before "PID-XXXXXX".
constexpr std::string_view temp_marker = ".gradgraph-tmp-";
constexpr std::size_t random_chars = 6;

std::string folder_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

std::string name_of(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// ".NAME.gradgraph-tmp-PID-XXXXXX" next to path, XXXXXX unlikely to exist already; NAME is cut (at
/// a UTF-8 character boundary) so that the name stays within the 255 bytes a file name may have.
std::string temp_name(const std::string& path) {
  static std::atomic<std::uint64_t> counter{0};
  std::uint64_t x = static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  x ^= static_cast<std::uint64_t>(::getpid()) << 32;
  x += counter.fetch_add(1) * 0x9E3779B97F4A7C15ULL;
  x ^= x >> 31; // splitmix64 finaliser: spread the bits over the suffix
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  static constexpr std::string_view alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::string suffix = fmt::format("{}{}-", temp_marker, ::getpid());
  for (std::size_t i = 0; i < random_chars; ++i, x /= alphabet.size())
    suffix += alphabet[x % alphabet.size()];
  std::string name = name_of(path);
  std::size_t keep = std::min(name.size(), std::size_t{255} - 1 - suffix.size());
  while (keep > 0 && keep < name.size() && (static_cast<unsigned char>(name[keep]) & 0xC0) == 0x80) --keep;
  name.resize(keep);
  const std::string folder = folder_of(path);
  return (path.find('/') == std::string::npos ? ""
          : folder == "/"                     ? "/"
                                              : folder + "/") +
         "." + name + suffix;
}

/// The process id in a name of the form ".NAME.gradgraph-tmp-PID-XXXXXX", if it is one.
std::optional<pid_t> temp_owner(std::string_view name) {
  const std::size_t at = name.rfind(temp_marker);
  if (!name.starts_with('.') || at == std::string_view::npos) return std::nullopt;
  const std::string_view rest = name.substr(at + temp_marker.size());
  pid_t pid = 0;
  const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), pid);
  const std::size_t digits = static_cast<std::size_t>(end - rest.data());
  if (ec != std::errc{} || pid <= 0 || rest.size() != digits + 1 + random_chars || rest[digits] != '-')
    return std::nullopt;
  return pid;
}

/// Removes the temporary files in folder that killed runs left: their process is gone (the PID in
/// the name runs nothing) and nobody holds the lock a writer keeps on its temporary file (so a
/// writer in another PID namespace is safe too). Best effort: what cannot be checked stays.
void remove_stale_temps(const std::string& folder) {
  DIR* dir = ::opendir(folder.c_str());
  if (!dir) return;
  const int dir_fd = ::dirfd(dir);
  while (const dirent* entry = ::readdir(dir)) {
    const std::optional<pid_t> owner = temp_owner(entry->d_name);
    if (!owner || *owner == ::getpid() || ::kill(*owner, 0) == 0 || errno != ESRCH) continue;
    const int fd = ::openat(dir_fd, entry->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) continue;
    struct stat st {};
    if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && ::flock(fd, LOCK_EX | LOCK_NB) == 0)
      ::unlinkat(dir_fd, entry->d_name, 0);
    ::close(fd);
  }
  ::closedir(dir);
}

/// Where writing to a path goes: the file to replace (symlinks followed), or an open descriptor of
/// this process: /dev/stdout and /dev/fd/N are links into /proc that name open files (a pipe, a
/// terminal, a file the shell opened for `> out`), which must be written through that descriptor,
/// sharing its position, not reopened or replaced.
std::variant<std::string, int> follow_links(std::string path) {
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
    char* real = ::realpath(folder_of(path).c_str(), nullptr);
    const std::string folder = real ? real : "";
    std::free(real);
    if (folder.starts_with("/proc/")) {
      int fd = -1;
      const std::string name = name_of(path);
      const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), fd);
      if (folder == fmt::format("/proc/{}/fd", ::getpid()) && ec == std::errc{} &&
          end == name.data() + name.size())
        return fd;
      return path; // another process's descriptor: opened through its link
    }
    std::string link(4096, '\0');
    const ssize_t n = ::readlink(path.c_str(), link.data(), link.size());
    if (n < 0 || static_cast<std::size_t>(n) == link.size()) return path; // open() reports what is wrong
    link.resize(static_cast<std::size_t>(n));
    path = link.starts_with('/') ? link : folder_of(path) + "/" + link;
  }
  return path; // a loop: open() fails with ELOOP
}

/// Flushes the folder holding path so the rename itself survives a crash (best effort: some file
/// systems do not support it, and the data is already safe under one of the two names).
void sync_directory(const std::string& path) {
  const int fd = ::open(folder_of(path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

[[noreturn]] void cannot_write(const std::string& path, int err) {
  throw IOError(fmt::format("cannot write '{}': {}", path, std::strerror(err)));
}

} // namespace

AtomicFile::AtomicFile(std::string path, bool keep_unfinished)
    : path_(std::move(path)), keep_unfinished_(keep_unfinished) {
  if (path_.empty()) throw IOError("cannot write a file to an empty path");
  const auto followed = path_ == "-" ? std::variant<std::string, int>(STDOUT_FILENO) : follow_links(path_);
  if (const int* descriptor = std::get_if<int>(&followed)) {
    mode_ = Mode::descriptor;
    descriptor_ = *descriptor;
    target_ = path_;
    fd_ = ::fcntl(descriptor_, F_DUPFD_CLOEXEC, 0); // closed by commit(); the process's stays open
    if (fd_ < 0) cannot_write(path_, errno);
    return;
  }
  target_ = std::get<std::string>(followed);
  struct stat st {};
  const bool exists = ::stat(target_.c_str(), &st) == 0;
  if (exists && S_ISDIR(st.st_mode)) cannot_write(path_, EISDIR);
  // A read-only file stays unwritten, as a direct write would leave it.
  if (exists && ::faccessat(AT_FDCWD, target_.c_str(), W_OK, AT_EACCESS) != 0) cannot_write(path_, errno);
  if (exists && !S_ISREG(st.st_mode)) { // a device or a FIFO: opened at the first write
    mode_ = Mode::through;
    return;
  }
  remove_stale_temps(folder_of(target_));
  for (int attempt = 0; attempt < 100 && fd_ < 0; ++attempt) {
    temp_ = temp_name(target_);
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, exists ? st.st_mode & 0777 : 0666);
    if (fd_ < 0 && errno != EEXIST) break;
  }
  if (fd_ < 0) // the temporary file's random name would only confuse here
    throw IOError(fmt::format("cannot write '{}': cannot create a file in its folder: {}", path_,
                              std::strerror(errno)));
  ::flock(fd_, LOCK_EX); // "in use" for remove_stale_temps; the kernel drops it when the process ends
  if (exists) {          // the old file's permissions (not less the umask), owner and group, where allowed
    ::fchmod(fd_, st.st_mode & 07777);
    if ((st.st_uid != ::geteuid() || st.st_gid != ::getegid()) && ::fchown(fd_, st.st_uid, st.st_gid) != 0 &&
        ::fchown(fd_, static_cast<uid_t>(-1), st.st_gid) != 0) {
      // Another user's file, replaced by one of ours: what `sed -i` and editors do too.
    }
  }
}

AtomicFile::~AtomicFile() {
  if (done_) return;
  if (keep_unfinished_ && (mode_ == Mode::atomic || fd_ >= 0)) {
    try {
      commit();
    } catch (const Error&) { // the temporary file is removed, path keeps its old content
    }
    return;
  }
  if (fd_ >= 0) ::close(fd_);
  if (mode_ == Mode::atomic) ::unlink(temp_.c_str());
}

void AtomicFile::fail(int err, std::string_view step) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  done_ = true;
  if (mode_ != Mode::atomic)
    throw IOError(fmt::format("cannot write '{}': {} failed: {}", path_, step, std::strerror(err)));
  ::unlink(temp_.c_str());
  throw IOError(fmt::format("cannot write '{}': {} the temporary file '{}' failed: {}", path_, step, temp_,
                            std::strerror(err)));
}

int AtomicFile::output() {
  if (mode_ == Mode::through && fd_ < 0) {
    do fd_ = ::open(target_.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
    while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) fail(errno, "opening");
  }
  if (mode_ == Mode::descriptor && descriptor_ == STDOUT_FILENO) {
    std::cout.flush(); // what the program printed before comes first
    std::fflush(stdout);
  }
  return fd_;
}

void AtomicFile::write(std::string_view bytes) {
  write(bytes.data(), bytes.size());
}

void AtomicFile::write(const void* data, std::size_t size) {
  if (done_) throw UsageError(fmt::format("AtomicFile '{}': written after commit() or a failure", path_));
  const int fd = output();
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t w = ::write(fd, p, std::min<std::size_t>(size, std::size_t{1} << 30));
    if (w < 0) {
      if (errno == EINTR) continue;
      fail(errno, "writing");
    }
    p += w;
    size -= static_cast<std::size_t>(w);
  }
}

void AtomicFile::commit() {
  if (done_) throw UsageError(fmt::format("AtomicFile '{}': committed twice or after a failure", path_));
  const int fd = output();
  // A pipe, a terminal or /dev/null cannot be synced (EINVAL): nothing is lost by that.
  if (::fsync(fd) != 0 && (mode_ == Mode::atomic || (errno != EINVAL && errno != EROFS)))
    fail(errno, "flushing");
  const int closed = ::close(fd);
  fd_ = -1;
  if (closed != 0) fail(errno, "closing");
  if (mode_ == Mode::atomic) {
    if (::rename(temp_.c_str(), target_.c_str()) != 0) fail(errno, "renaming");
    sync_directory(target_);
  }
  done_ = true;
}

void write_atomically(const std::string& path, std::string_view content) {
  AtomicFile f(path);
  f.write(content);
  f.commit();
}

} // namespace gg
