// gg::AtomicFile on what is not a plain new file: an existing file keeps its permissions and owner,
// a symlink is followed, a read-only file is refused; devices, FIFOs, "-", /dev/stdout and /dev/fd/N
// are written through; temporary files are named so that the next write removes a killed run's.
// Devices are tested on a node made in a temporary folder, never on the machine's /dev/null.
#include "../temp_dir.hpp"

#include <nn/io/atomic_file.hpp>

#include <autodiff/error.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using Catch::Contains;

using gg::test::read_file;
using gg::test::TempDir;

struct stat stat_of(const std::string& p, bool follow = true) {
  struct stat st {};
  REQUIRE((follow ? ::stat(p.c_str(), &st) : ::lstat(p.c_str(), &st)) == 0);
  return st;
}

/// Runs f in a child process (which must not touch Catch) and returns its exit status.
template <class F> int in_child(F&& f) {
  std::cout.flush();
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    int code = 0;
    try {
      f();
    } catch (...) {
      code = 3;
    }
    std::cout.flush();
    ::_exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

} // namespace

TEST_CASE("atomic file: a replaced file keeps its permissions, owner and group") {
  TempDir dir("atomic_file");
  const std::string path = dir / "secret.safetensors";
  gg::write_atomically(path, "old");
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
  gg::write_atomically(path, "new");
  CHECK(read_file(path) == "new");
  CHECK((stat_of(path).st_mode & 07777) == 0600);
  REQUIRE(::chmod(path.c_str(), 0640) == 0);
  gg::write_atomically(path, "newer");
  CHECK((stat_of(path).st_mode & 07777) == 0640);
  if (::geteuid() == 0) { // only root can give a file away
    REQUIRE(::chown(path.c_str(), 65534, 65534) == 0);
    gg::write_atomically(path, "as root");
    CHECK(stat_of(path).st_uid == 65534);
    CHECK(stat_of(path).st_gid == 65534);
    // Root may replace a read-only file, which stays read-only.
    REQUIRE(::chmod(path.c_str(), 0444) == 0);
    gg::write_atomically(path, "still read-only");
    CHECK(read_file(path) == "still read-only");
    CHECK((stat_of(path).st_mode & 07777) == 0444);
  } else { // a read-only file is refused, as a direct write would be
    REQUIRE(::chmod(path.c_str(), 0444) == 0);
    CHECK_THROWS_AS(gg::write_atomically(path, "x"), gg::IOError);
    CHECK_THROWS_WITH(gg::write_atomically(path, "x"), Contains(path) && Contains("Permission denied"));
    CHECK(read_file(path) == "newer");
  }
  CHECK(dir.entries() == std::vector<std::string>{"secret.safetensors"});
}

TEST_CASE("atomic file: a symlink is followed: the file it names is replaced and the link stays") {
  TempDir dir("atomic_file");
  fs::create_directory(dir.path / "real");
  const std::string real = dir / "real/model.safetensors";
  gg::write_atomically(real, "old");
  fs::create_symlink("real/model.safetensors", dir.path / "relative");
  fs::create_symlink(real, dir.path / "absolute");
  fs::create_symlink("relative", dir.path / "chain");
  for (const std::string link : {"relative", "absolute", "chain"}) {
    INFO(link);
    gg::write_atomically(dir / link, "through " + link);
    CHECK(S_ISLNK(stat_of(dir / link, false).st_mode));
    CHECK(read_file(real) == "through " + link);
  }
  // A dangling link: the file it names is made.
  fs::create_symlink("real/new.txt", dir.path / "dangling");
  gg::write_atomically(dir / "dangling", "made");
  CHECK(S_ISLNK(stat_of(dir / "dangling", false).st_mode));
  CHECK(read_file(dir / "real/new.txt") == "made");
  CHECK(dir.entries() == std::vector<std::string>{"absolute", "chain", "dangling", "real", "relative"});
  // A link to a directory is refused as the directory itself is.
  fs::create_symlink("real", dir.path / "to_dir");
  CHECK_THROWS_WITH(gg::write_atomically(dir / "to_dir", "x"),
                    Contains("to_dir") && Contains("Is a directory"));
}

TEST_CASE("atomic file: a FIFO is written through, and a file never written does not open it") {
  TempDir dir("atomic_file");
  const std::string fifo = dir / "pipe";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  { // as `train` checks its outputs before training: made and dropped without a write
    gg::AtomicFile probe(fifo);
    CHECK(probe.writes_through());
    CHECK(probe.temp_path().empty());
  }
  std::string got;
  std::thread reader([&] { got = read_file(fifo); });
  {
    gg::AtomicFile f(fifo, /*keep_unfinished=*/true);
    f.write("line 1\n");
    f.write("line 2\n");
  } // a log: the destructor ends it
  reader.join();
  CHECK(got == "line 1\nline 2\n");
  CHECK(S_ISFIFO(stat_of(fifo).st_mode));
  CHECK(dir.entries() == std::vector<std::string>{"pipe"});
}

TEST_CASE("atomic file: a device is written through, never replaced (a node like /dev/null, made here)") {
  TempDir dir("atomic_file");
  const std::string null = dir / "null";
  if (::mknod(null.c_str(), S_IFCHR | 0666, ::makedev(1, 3)) != 0) {
    WARN("cannot make a device node here (not root, or a nodev file system): part skipped");
    return;
  }
  fs::create_symlink("null", dir.path / "link");
  for (const std::string name : {"null", "link"}) {
    INFO(name);
    gg::write_atomically(dir / name, std::string(10000, 'x'));
    gg::AtomicFile log(dir / name, true);
    log.write("a log line\n");
    log.commit();
    CHECK(S_ISCHR(stat_of(null).st_mode));
    CHECK(::major(stat_of(null).st_rdev) == 1);
    CHECK(::minor(stat_of(null).st_rdev) == 3);
  }
  CHECK(dir.entries() == std::vector<std::string>{"link", "null"});
}

TEST_CASE("atomic file: '-', /dev/stdout and /dev/fd/1 write to standard output, in order") {
  TempDir dir("atomic_file");
  const std::string out = dir / "out.txt";
  for (const std::string name : {"-", "/dev/stdout", "/dev/fd/1"}) {
    INFO(name);
    const int code = in_child([&] {
      // Standard output is a file the "shell" opened: it must be written through that descriptor,
      // at its position, not reopened or replaced.
      const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || ::dup2(fd, STDOUT_FILENO) < 0) ::_exit(2);
      ::close(fd);
      std::cout << "printed before; "; // still in std::cout's buffer
      gg::AtomicFile f(name);
      if (!f.writes_through()) ::_exit(4);
      f.write("written; ");
      f.commit();
      std::cout << "printed after" << std::flush;
    });
    CHECK(code == 0);
    CHECK(read_file(out) == "printed before; written; printed after");
  }
  CHECK(dir.entries() == std::vector<std::string>{"out.txt"});
}

TEST_CASE(
    "atomic file: temporary files are hidden and named for their process; a gone process's are removed") {
  TempDir dir("atomic_file");
  const std::string path = dir / "model.safetensors";
  {
    gg::AtomicFile f(path);
    const std::string name = fs::path(f.temp_path()).filename().string();
    CHECK(name.rfind(".model.safetensors.gradgraph-tmp-" + std::to_string(::getpid()) + "-", 0) == 0);
    CHECK(name.size() == std::string(".model.safetensors.gradgraph-tmp-").size() +
                             std::to_string(::getpid()).size() + 1 + 6);
  }
  // A name near the 255-byte limit is cut (at a character boundary) so the temporary name fits.
  std::string long_name;
  for (int i = 0; i < 120; ++i) long_name += "\xc3\xa9"; // 'é', two bytes
  long_name += ".txt";
  {
    gg::AtomicFile f(dir / long_name);
    const std::string name = fs::path(f.temp_path()).filename().string();
    CHECK(name.size() <= 255);
    const std::string kept = name.substr(1, name.find(".gradgraph-tmp-") - 1);
    CHECK(kept.size() % 2 == 0);
    CHECK(long_name.rfind(kept, 0) == 0);
    f.write("long");
    f.commit();
  }
  CHECK(read_file(dir / long_name) == "long");

  // A process still writing keeps its temporary file; a gone one's is removed by the next write.
  int ready[2], go[2];
  REQUIRE(::pipe(ready) == 0);
  REQUIRE(::pipe(go) == 0);
  std::cout.flush();
  const pid_t writer = ::fork();
  REQUIRE(writer >= 0);
  if (writer == 0) {
    gg::AtomicFile f(path);
    f.write("from the child");
    char c = 0;
    if (::write(ready[1], "r", 1) != 1 || ::read(go[0], &c, 1) != 1) ::_exit(2);
    f.commit();
    ::_exit(0);
  }
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  gg::write_atomically(dir / "other.txt", "x"); // the child's temporary file is in use: it stays
  const auto temps = [&] {
    std::vector<std::string> t;
    for (const std::string& n : dir.entries())
      if (n.find(".gradgraph-tmp-") != std::string::npos) t.push_back(n);
    return t;
  };
  CHECK(temps().size() == 1);
  REQUIRE(::write(go[1], "g", 1) == 1);
  int status = 0;
  REQUIRE(::waitpid(writer, &status, 0) == writer);
  CHECK(read_file(path) == "from the child");
  CHECK(temps().empty());
  for (int fd : {ready[0], ready[1], go[0], go[1]}) ::close(fd);

  // Left by a process that is gone (a reaped child's PID): removed; names that only look alike stay.
  const pid_t gone = ::fork();
  REQUIRE(gone >= 0);
  if (gone == 0) ::_exit(0);
  REQUIRE(::waitpid(gone, &status, 0) == gone);
  const std::string stale =
      "." + std::string("model.safetensors.gradgraph-tmp-") + std::to_string(gone) + "-abc123";
  const std::string not_ours = ".model.safetensors.gradgraph-tmp-" + std::to_string(gone) + "-abc";
  gg::write_atomically(dir / stale, "stale");
  gg::write_atomically(dir / not_ours, "not ours");
  gg::write_atomically(dir / "other.txt", "y");
  const std::vector<std::string> names = dir.entries();
  CHECK(std::find(names.begin(), names.end(), stale) == names.end());
  CHECK(std::find(names.begin(), names.end(), not_ours) != names.end());
}
