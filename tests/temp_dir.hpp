// Shared by the tests: names under the system's temp dir unique to the process and the call, a fresh
// folder there removed with everything in it at scope exit, and reading and writing a whole file.
// Every test that writes under the temp dir takes its names from here.
#pragma once

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace gg::test {

/// gg_<tag>_<pid>_<n> under the system's temp dir, n counting this process's calls: a name no other
/// test process or call has (nothing is created; the caller removes what it makes there).
inline std::filesystem::path unique_temp_path(const std::string& tag) {
  static std::atomic<unsigned> calls{0};
  return std::filesystem::temp_directory_path() /
         ("gg_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(calls++));
}

struct TempDir {
  std::filesystem::path path;
  /// tag names the test in the folder's name (unique_temp_path's).
  explicit TempDir(const std::string& tag) : path(unique_temp_path(tag)) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec; // (a test may have taken the write permission away)
    std::filesystem::permissions(path, std::filesystem::perms::owner_all, std::filesystem::perm_options::add,
                                 ec);
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string operator/(const std::string& name) const { return (path / name).string(); }
  /// The names in the folder, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(path))
      names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }
};

/// The whole content of a file (empty when it cannot be read).
inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Writes bytes as the whole content of a file (false when it cannot be written).
inline bool write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return static_cast<bool>(out);
}

} // namespace gg::test
