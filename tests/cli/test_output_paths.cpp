// What the command line's outputs (--log, --save, --checkpoint, -o) do to what their paths name:
// a device stays a device (as root, `--log /dev/null` replaced the machine's /dev/null with a
// regular file), a symlink stays a link to the replaced file, a 0600 file stays 0600, and "-" is
// standard output. The device is a node made in a temporary folder, never the machine's /dev/null.
#include "../temp_dir.hpp"
#include "cli_test.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

using gg::test::read_file;
using gg::test::TempDir;

} // namespace

TEST_CASE("output paths: devices are written through, symlinks followed, permissions kept") {
  TempDir dir("output_paths");
  const std::string null = dir / "null";
  const bool have_device = ::mknod(null.c_str(), S_IFCHR | 0666, ::makedev(1, 3)) == 0;
  if (!have_device)
    WARN("cannot make a device node here (not root, or a nodev file system): device part skipped");
  fs::create_directory(dir.path / "models");
  const std::string model = dir / "models/m.safetensors";
  std::ofstream(model) << "old";
  REQUIRE(::chmod(model.c_str(), 0600) == 0);
  fs::create_symlink("models/m.safetensors", dir.path / "latest.safetensors");
  const std::vector<std::string> args{"train",
                                      "--dataset",
                                      "xor",
                                      "--layers",
                                      "2,4,2",
                                      "--epochs",
                                      "2",
                                      "--log",
                                      have_device ? null : dir / "log.jsonl",
                                      "--save",
                                      dir / "latest.safetensors"};
  const auto r = gg::cli::test::run(args);
  INFO(r.err);
  REQUIRE(r.code == gg::cli::ok);
  if (have_device) {
    struct stat st {};
    REQUIRE(::stat(null.c_str(), &st) == 0);
    CHECK(S_ISCHR(st.st_mode));
  }
  struct stat link {
  }, file{};
  REQUIRE(::lstat((dir / "latest.safetensors").c_str(), &link) == 0);
  CHECK(S_ISLNK(link.st_mode));
  REQUIRE(::stat(model.c_str(), &file) == 0);
  CHECK((file.st_mode & 07777) == 0600);
  CHECK(read_file(model).substr(8, 1) == "{"); // a safetensors file now: its JSON header follows the length
  // No temporary file is left anywhere.
  for (const auto& e : fs::recursive_directory_iterator(dir.path))
    CHECK(e.path().filename().string().find("gradgraph-tmp") == std::string::npos);
}

TEST_CASE("output paths: '-' is standard output (the real binary)") {
  TempDir dir("output_paths");
  const std::string out = dir / "out.txt";
  const int status =
      std::system(("'" + std::string(GG_CLI_BINARY) + "' dot --layers 2,3,2 -o - > '" + out + "'").c_str());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == gg::cli::ok);
  const std::string text = read_file(out);
  CHECK(text.find("digraph") != std::string::npos);
  CHECK_FALSE(fs::exists("-"));
}
