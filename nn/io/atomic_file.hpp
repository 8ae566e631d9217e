// gg::AtomicFile: writing a file so that readers, crashes and interrupted runs see either the old
// file or the whole new one, never half of it: bytes go to a temporary file in the same folder,
// which commit() flushes to disk and renames over the target. Every file gradgraph writes goes
// through it (weights, checkpoints, logs, charts, DOT). What is not a regular file — a device such
// as /dev/null, a FIFO, /dev/stdout, "-" for standard output — is written through instead.
#pragma once

#include <string>
#include <string_view>

namespace gg {

class AtomicFile {
public:
  /// Prepares writing path; nothing happens to path itself until commit(). How:
  ///  - a regular file, or none yet: the temporary file ".NAME.gradgraph-tmp-PID-XXXXXX" is created
  ///    next to it, with the old file's permissions, owner and group (where the OS lets us: root,
  ///    or the owner keeping its group); a new file gets 0666 less the umask. A symlink is followed:
  ///    the file it names is replaced, the link stays. Temporary files of processes that are gone
  ///    (killed runs) are removed from the folder first.
  ///  - a device, a FIFO, /dev/stdout or /dev/fd/N: opened at the first write and written through.
  ///  - "-": standard output (std::cout and stdio are flushed first, so the order holds).
  /// IOError naming path and the reason when it cannot be written (a folder that does not exist, a
  /// read-only file, a directory). With keep_unfinished (a log), the destructor commits what was
  /// written instead of discarding it.
  explicit AtomicFile(std::string path, bool keep_unfinished = false);
  /// Without a commit(), the temporary file is removed and path keeps its old content (with
  /// keep_unfinished: committed, errors ignored). A killed process leaves path as it was.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// Appends bytes; they reach the operating system at once (a reader of the temporary file sees
  /// every whole write). IOError naming path and the reason on failure.
  void write(std::string_view bytes);
  void write(const void* data, std::size_t size);
  /// Flushes the temporary file to disk and renames it over path (written through: flushes and
  /// closes); IOError (and the temporary file removed, path untouched) on failure. Writing after a
  /// commit is a UsageError.
  void commit();

  const std::string& path() const { return path_; }
  /// The temporary file's name (where an uncommitted run's bytes are); empty when written through.
  const std::string& temp_path() const { return temp_; }
  /// Whether bytes go straight to path: a device, a FIFO, standard output.
  bool writes_through() const { return mode_ != Mode::atomic; }

private:
  /// atomic: a temporary file renamed over target_; through: target_ opened at the first write;
  /// descriptor: a copy of an open file descriptor ("-" and /dev/stdout: 1; /dev/fd/N: N).
  enum class Mode : unsigned char { atomic, through, descriptor };
  [[noreturn]] void fail(int err, std::string_view step);
  /// The descriptor writes go to (opening target_ at the first write when written through).
  int output();

  std::string path_;   // as given
  std::string target_; // the file replaced or written: path with symlinks followed
  std::string temp_;
  Mode mode_ = Mode::atomic;
  int fd_ = -1;
  int descriptor_ = -1; // Mode::descriptor: the process's descriptor that fd_ copies
  bool done_ = false;   // committed, or failed
  bool keep_unfinished_ = false;
};

/// Writes content to path atomically (an AtomicFile written once and committed).
void write_atomically(const std::string& path, std::string_view content);

} // namespace gg
