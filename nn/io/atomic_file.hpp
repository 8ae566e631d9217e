// gg::AtomicFile: writing a file so that readers, crashes and interrupted runs see either the old
// file or the whole new one, never half of it: bytes go to a temporary file in the same folder,
// which commit() flushes to disk and renames over the target. Every file gradgraph writes goes
// through it (weights, checkpoints, logs, charts, DOT).
#pragma once

#include <string>
#include <string_view>

namespace gg {

class AtomicFile {
public:
  /// Creates the temporary file "path.tmp-XXXXXXXX" next to path (IOError naming path and the
  /// reason when it cannot). Nothing happens to path itself until commit(). With keep_unfinished
  /// (a log), the destructor commits what was written instead of discarding it.
  explicit AtomicFile(std::string path, bool keep_unfinished = false);
  /// Without a commit(), the temporary file is removed and path keeps its old content (with
  /// keep_unfinished: committed, errors ignored). A killed process leaves path as it was.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  /// Appends bytes to the temporary file; they reach the operating system at once (a reader of the
  /// temporary file sees every whole write). IOError naming path and the reason on failure.
  void write(std::string_view bytes);
  void write(const void* data, std::size_t size);
  /// Flushes the temporary file to disk and renames it over path; IOError (and the temporary file
  /// removed, path untouched) on failure. Writing after a commit is a UsageError.
  void commit();

  const std::string& path() const { return path_; }
  /// The temporary file's name (where an uncommitted run's bytes are).
  const std::string& temp_path() const { return temp_; }

private:
  [[noreturn]] void fail(int err, std::string_view step);
  std::string path_, temp_;
  int fd_ = -1;
  bool keep_unfinished_ = false;
};

/// Writes content to path atomically (an AtomicFile written once and committed).
void write_atomically(const std::string& path, std::string_view content);

} // namespace gg
