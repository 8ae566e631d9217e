// Internal to nn's readers (CSV, IDX, safetensors): one source of bytes, a file or memory, read in
// order or at an offset, with gg::IOError naming the file and the operating system's reason.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gg::detail {

class ByteSource {
public:
  /// How a file is to be read.
  enum class Access : std::uint8_t {
    /// In order (read, read_rest): FIFOs and devices too, whose size is unknown.
    sequential,
    /// At offsets too (read_at): only a regular file; anything else is refused at once, and
    /// opening a FIFO does not wait for a writer.
    random,
  };

  /// Opens path: IOError "cannot open [kind ]'path': reason", or "cannot read [kind ]'path': Is a
  /// directory" (kind, e.g. "safetensors file", names what the caller reads).
  static ByteSource file(const std::string& path, Access access = Access::sequential,
                         std::string_view kind = {});
  /// Bytes in memory (not copied: they must outlive the source), called name in errors.
  static ByteSource memory(std::string_view bytes, std::string name);

  ByteSource(ByteSource&& other) noexcept;
  ByteSource& operator=(ByteSource&&) = delete;
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;
  ~ByteSource();

  /// The file's path or the memory's name.
  const std::string& name() const { return name_; }
  /// The total size in bytes: known for memory and regular files.
  std::optional<std::uint64_t> size() const { return size_; }
  /// Reads up to n bytes from the current position; fewer only at the end.
  std::size_t read(void* dst, std::size_t n);
  /// Everything from the current position to the end.
  std::string read_rest();
  /// Exactly n bytes at offset, for memory and regular files (the caller checked the range against
  /// size()); FormatError when the file shrank since it was opened.
  void read_at(std::uint64_t offset, std::size_t n, void* dst) const;

private:
  ByteSource(std::string name, std::string kind) : name_(std::move(name)), kind_(std::move(kind)) {}
  [[noreturn]] void fail_read(int err) const;

  std::string name_, kind_;
  int fd_ = -1;
  std::string_view memory_;
  std::uint64_t position_ = 0;
  std::optional<std::uint64_t> size_;
};

} // namespace gg::detail
