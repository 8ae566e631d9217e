// Keeps a tutorial (docs/tutorial*.md) true: runs each ```sh block as a shell script from a scratch
// folder where build/ leads to the build tree, fails when one exits non-zero, and compares what it
// prints with the ```text block that follows it ("..." lines stand for any lines left out). Two more
// checks keep the prose true: a node named in the text as `op#N` must be in the picture shown last
// before it (docs/img/...), and a ```cpp block preceded by "<!-- excerpt of PATH -->" must be found,
// line for line, in that file of the repository (an example program).
//
// usage: tutorial_check BUILD_DIR WORK_DIR TUTORIAL.md [TWIN.md]
//   TWIN.md: a translation whose ```sh blocks and pictures (img/...) must be the same as TUTORIAL's.
// A text block preceded by a line "<!-- output not compared: REASON -->" is not compared (timings).
// Exit codes: 0 all true, 1 something is not, 2 bad usage, 77 skipped (no Graphviz's dot on PATH).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace fs = std::filesystem;

namespace {

/// One ```sh block, and the text block showing its output when there is one.
struct Block {
  int line = 0; ///< where the sh block starts in the file (1-based)
  std::string script;
  bool has_output = false, compared = false;
  std::string output;
};

/// Lines starting with these are not run: the setup lines (they build and test the project itself),
/// the optimizers example (~10 s) and the Fashion-MNIST training (minutes), which CTest runs anyway in
/// short versions (example_optimizers, example_fashion_mnist_cnn). docs/make_pictures.sh skips the
/// same lines but the optimizers example, whose pictures the tutorial shows.
const std::vector<std::string> k_not_run{"bash scripts/", "build/examples/optimizers",
                                         "build/examples/fashion_mnist_"};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) lines.push_back(l);
  return lines;
}

std::string rstrip(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  return s;
}

/// The ```sh blocks of a Markdown file, each with the ```text block right after it, if any.
std::vector<Block> parse(const std::string& markdown) {
  const std::vector<std::string> lines = split_lines(markdown);
  std::vector<Block> blocks;
  bool after_sh = false, not_compared = false; // between an sh block and the next text
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string l = rstrip(lines[i]);
    if (l == "```sh" || l == "```text") {
      std::string body;
      std::size_t j = i + 1;
      for (; j < lines.size() && rstrip(lines[j]) != "```"; ++j) body += lines[j] + "\n";
      if (j == lines.size())
        throw std::runtime_error("line " + std::to_string(i + 1) + ": unclosed ``` block");
      if (l == "```sh") {
        blocks.push_back({static_cast<int>(i + 1), body, false, false, ""});
        after_sh = true, not_compared = false;
      } else if (after_sh) {
        blocks.back().has_output = true;
        blocks.back().compared = !not_compared;
        blocks.back().output = body;
        after_sh = false;
      }
      i = j;
    } else if (l.rfind("<!-- output not compared:", 0) == 0) {
      not_compared = true;
    } else if (!l.empty()) {
      after_sh = false;
    }
  }
  return blocks;
}

/// The script without the lines that are not run.
std::string runnable(const std::string& script) {
  std::string out;
  for (const std::string& l : split_lines(script)) {
    bool skip = false;
    for (const std::string& p : k_not_run) skip = skip || l.rfind(p, 0) == 0;
    if (!skip) out += l + "\n";
  }
  return out;
}

/// A shell word: single-quoted.
std::string quote(const std::string& s) {
  std::string r = "'";
  for (const char c : s) r += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return r + "'";
}

/// Runs script with sh -e in dir; returns its exit status and stdout (stderr passes through).
std::pair<int, std::string> run(const std::string& script, const fs::path& dir) {
  FILE* p = ::popen(("cd " + quote(dir.string()) + " && sh -e -c " + quote(script)).c_str(), "r");
  if (p == nullptr) throw std::runtime_error("cannot run sh");
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  const int status = ::pclose(p);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

/// Whether actual's lines are expected's, where a line "..." in expected stands for any lines
/// (none or more); trailing blanks do not count. On a mismatch, why names the first expected line
/// that no way of matching gets past.
bool matches(const std::string& expected, const std::string& actual, std::string& why) {
  std::vector<std::string> e = split_lines(expected), a = split_lines(actual);
  for (auto* v : {&e, &a})
    for (std::string& l : *v) l = rstrip(l);
  // reach[i][j]: the first i expected lines match the first j actual lines.
  std::vector<std::vector<char>> reach(e.size() + 1, std::vector<char>(a.size() + 1, 0));
  reach[0][0] = 1;
  std::size_t furthest = 0; // the most expected lines any prefix of actual matches
  for (std::size_t i = 0; i <= e.size(); ++i)
    for (std::size_t j = 0; j <= a.size(); ++j) {
      if (i > 0 && j > 0 && e[i - 1] == a[j - 1] && reach[i - 1][j - 1]) reach[i][j] = 1;
      if (i > 0 && e[i - 1] == "..." && (reach[i - 1][j] || (j > 0 && reach[i][j - 1]))) reach[i][j] = 1;
      if (reach[i][j]) furthest = std::max(furthest, i);
    }
  if (reach[e.size()][a.size()]) return true;
  why = furthest < e.size() ? "the tutorial's output line " + std::to_string(furthest + 1) + ", '" +
                                  e[furthest] + "', is not what the command printed"
                            : "the command printed more lines than the tutorial shows";
  return false;
}

/// The pictures a tutorial shows: every "](img/NAME)" in order.
std::vector<std::string> pictures(const std::string& markdown) {
  std::vector<std::string> r;
  const std::regex img(R"(\]\((img/[^)\s]+)\))");
  for (auto it = std::sregex_iterator(markdown.begin(), markdown.end(), img); it != std::sregex_iterator();
       ++it)
    r.push_back((*it)[1]);
  return r;
}

/// Problems of the prose, as (line, message): a node reference `op#N` not in the picture shown last
/// before it, and a ```cpp block after "<!-- excerpt of PATH -->" that is not a run of PATH's lines
/// (PATH from the repository root, the tutorial's folder's parent).
std::vector<std::pair<int, std::string>> prose_problems(const std::string& markdown,
                                                        const fs::path& tutorial) {
  std::vector<std::pair<int, std::string>> problems;
  const fs::path docs = tutorial.parent_path(), root = docs.parent_path();
  const std::regex image(R"(\]\((img/[^)\s]+)\))"), node(R"(`([A-Za-z_][A-Za-z0-9_]*#[0-9]+)`)"),
      excerpt(R"(^<!-- excerpt of (\S+) -->$)");
  const std::vector<std::string> lines = split_lines(markdown);
  std::string picture, excerpt_of; // the last picture shown; the file the next cpp block is from
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const int at = static_cast<int>(i + 1);
    const std::string l = rstrip(lines[i]);
    if (l.rfind("```", 0) == 0) { // a code block: only an excerpt's is read
      std::size_t j = i + 1;
      std::vector<std::string> body;
      for (; j < lines.size() && rstrip(lines[j]) != "```"; ++j) body.push_back(rstrip(lines[j]));
      if (l == "```cpp" && !excerpt_of.empty()) {
        std::vector<std::string> file;
        try {
          file = split_lines(read_file(root / excerpt_of));
        } catch (const std::exception& e) {
          problems.emplace_back(at, e.what());
        }
        for (std::string& f : file) f = rstrip(f);
        const bool found =
            !body.empty() && std::search(file.begin(), file.end(), body.begin(), body.end()) != file.end();
        if (!file.empty() && !found)
          problems.emplace_back(at, "this C++ block is not a run of lines of " + excerpt_of);
      }
      excerpt_of.clear();
      i = j;
      continue;
    }
    std::smatch m;
    if (std::regex_match(l, m, excerpt)) {
      excerpt_of = m[1];
      continue;
    }
    if (!l.empty()) excerpt_of.clear();
    for (auto it = std::sregex_iterator(l.begin(), l.end(), node); it != std::sregex_iterator(); ++it) {
      const std::string name = (*it)[1];
      if (picture.empty()) {
        problems.emplace_back(at, "`" + name + "` names a node, but no picture is shown before it");
        continue;
      }
      std::string svg;
      try {
        svg = read_file(docs / picture);
      } catch (const std::exception&) {
        continue; // a missing picture is reported by check()
      }
      const std::regex whole(name + "(?![0-9])"); // sigmoid#4, not sigmoid#45
      if (!std::regex_search(svg, whole))
        problems.emplace_back(at,
                              "`" + name + "` is not in " + picture + ", the picture shown last before it");
    }
    for (auto it = std::sregex_iterator(l.begin(), l.end(), image); it != std::sregex_iterator(); ++it)
      picture = (*it)[1];
  }
  return problems;
}

int check(const fs::path& build, const fs::path& work, const fs::path& tutorial, const fs::path& twin) {
  const std::string text = read_file(tutorial);
  const std::vector<Block> blocks = parse(text);
  const std::string name = tutorial.filename().string();
  int failures = 0;
  const auto fail = [&](int line, const std::string& message) {
    std::cerr << name << ":" << line << ": " << message << "\n";
    ++failures;
  };
  if (blocks.empty()) fail(1, "no ```sh blocks");

  for (const std::string& p : pictures(text))
    if (!fs::exists(tutorial.parent_path() / p)) fail(1, "the picture " + p + " does not exist");
  for (const auto& [line, message] : prose_problems(text, tutorial)) fail(line, message);
  if (!twin.empty()) { // a translation: the same commands and the same pictures, in the same order
    const std::string other = read_file(twin);
    const std::vector<Block> theirs = parse(other);
    if (theirs.size() != blocks.size())
      fail(1, std::to_string(blocks.size()) + " shell blocks, " + twin.filename().string() + " has " +
                  std::to_string(theirs.size()));
    for (std::size_t i = 0; i < std::min(blocks.size(), theirs.size()); ++i)
      if (blocks[i].script != theirs[i].script || blocks[i].output != theirs[i].output ||
          blocks[i].compared != theirs[i].compared)
        fail(blocks[i].line, "this block, its output or whether it is compared differs from " +
                                 twin.filename().string() + ":" + std::to_string(theirs[i].line));
    if (pictures(text) != pictures(other))
      fail(1, "the pictures differ from " + twin.filename().string() + "'s");
  }

  // A fresh scratch folder where the commands run as from the repository root.
  fs::remove_all(work);
  fs::create_directories(work);
  fs::create_directory_symlink(fs::absolute(build), work / "build");
  std::size_t compared = 0;
  for (const Block& b : blocks) {
    const auto [code, out] = run(runnable(b.script), work);
    if (code != 0) {
      fail(b.line, "exit status " + std::to_string(code) + " from:\n" + b.script);
      continue;
    }
    if (!b.compared) continue;
    ++compared;
    std::string why;
    if (!matches(b.output, out, why))
      fail(b.line,
           why + "\ncommands:\n" + b.script + "printed:\n" + out + "the tutorial shows:\n" + b.output);
  }
  std::cout << name << ": " << blocks.size() << " shell blocks ran, " << compared
            << " outputs compared with the tutorial's, " << failures << " problems\n";
  return failures == 0 ? 0 : 1;
}

} // namespace

int main(int argc, char** argv) {
  if (argc != 4 && argc != 5) {
    std::cerr << "usage: tutorial_check BUILD_DIR WORK_DIR TUTORIAL.md [TWIN.md]\n";
    return 2;
  }
  if (std::system("command -v dot >/dev/null 2>&1") != 0) {
    std::cout << "Graphviz's dot is not on PATH: the tutorial renders pictures with it; skipped\n";
    return 77;
  }
  try {
    return check(argv[1], argv[2], argv[3], argc == 5 ? argv[4] : "");
  } catch (const std::exception& e) {
    std::cerr << "tutorial_check: " << e.what() << "\n";
    return 1;
  }
}
