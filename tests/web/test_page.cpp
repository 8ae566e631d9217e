// `gradgraph explain --html` and `gradgraph serve` on a stand-in page folder (GRADGRAPH_WEB): the
// written file embeds the engine's reply for the program where the page reads it, a missing page
// says how to build it, and serve answers GET and HEAD inside its folder only.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cli/src/json.hpp>

#include "../cli/cli_test.hpp"
#include "../temp_dir.hpp"

using gg::cli::json::Value;

namespace {

constexpr const char* k_marker = R"(<script type="application/json" id="gg-initial">)";

/// A stand-in for the built page: the one line explain --html fills in.
void write_page(const gg::test::TempDir& dir) {
  std::ofstream(dir / "index.html") << "<!doctype html><p>page</p>\n"
                                    << k_marker << "null</script>\n<p>end</p>\n";
}

/// Sets an environment variable for one scope.
struct Env {
  Env(const char* name, const std::string& value) : name_(name) { ::setenv(name, value.c_str(), 1); }
  ~Env() { ::unsetenv(name_); }
  const char* name_;
};

/// One HTTP request to 127.0.0.1:port; the whole response.
std::string request(int port, const std::string& text) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0);
  REQUIRE(::send(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()));
  std::string response;
  char buffer[4096];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;)
    response.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  return response;
}

} // namespace

TEST_CASE("explain --html writes the page opened at the program, with the engine's reply embedded") {
  gg::test::TempDir dir("web_html");
  write_page(dir);
  const Env env("GRADGRAPH_WEB", dir.path.string());
  const std::string out = dir / "cs231n.html";
  const auto r =
      gg::cli::test::run({"explain", "--html", out, "q = x + y; f = q * z", "x=-2", "y=5", "z=-4"});
  REQUIRE(r.code == 0);
  CHECK(r.out.find("page: wrote " + out) != std::string::npos);
  CHECK(r.out.find("df/dx = -4") != std::string::npos); // the text output as without --html
  const std::string html = gg::test::read_file(out);
  const std::size_t at = html.find(k_marker);
  REQUIRE(at != std::string::npos);
  CHECK(html.starts_with("<!doctype html><p>page</p>\n"));
  CHECK(html.ends_with("</script>\n<p>end</p>\n"));
  const std::size_t begin = at + std::string(k_marker).size();
  const Value embedded = Value::parse(html.substr(begin, html.find("</script>", begin) - begin));
  CHECK(embedded["program"] == "q = x + y; f = q * z");
  CHECK(embedded["inputs"]["x"] == "-2");
  const Value& reply = embedded["reply"];
  CHECK(reply["output"] == "f");
  for (const Value& n : reply["names"])
    if (reply["nodes"][n["node"].get<std::size_t>()]["name"] == "x") CHECK(n["grad"][0] == "-4");

  // --json: the JSON on standard output, the note on standard error
  const auto j = gg::cli::test::run({"explain", "--json", "--html", out, "f = x * x", "x=3"});
  CHECK(j.code == 0);
  CHECK(Value::parse(j.out)["grads"]["x"] == 6);
  CHECK(j.err.find("page: wrote") != std::string::npos);
}

TEST_CASE("explain --html: a missing page says how to build it, a bad program writes nothing") {
  gg::test::TempDir dir("web_html_bad");
  const std::string out = dir / "page.html";
  {
    const Env env("GRADGRAPH_WEB", (dir.path / "nothing").string());
    const auto r = gg::cli::test::run({"explain", "--html", out, "f = x", "x=1"});
    CHECK(r.code == 4);
    CHECK(r.err.find("scripts/build_web.sh") != std::string::npos);
  }
  write_page(dir);
  const Env env("GRADGRAPH_WEB", dir.path.string());
  CHECK(gg::cli::test::run({"explain", "--html", out, "f = x +", "x=1"}).code == 3);
  CHECK(gg::cli::test::run({"explain", "--html", "", "f = x", "x=1"}).code == 2);
  CHECK(gg::cli::test::run({"explain", "--html", out, "--dot", out, "f = x", "x=1"}).code == 2);
  std::string big = "f = x";
  for (int i = 0; i < 6000; ++i) big += " + x";
  const auto r = gg::cli::test::run({"explain", "--html", out, big, "x=1"});
  CHECK(r.code == 6);
  CHECK(r.err.find("the page shows at most") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(out));
}

TEST_CASE("serve answers GET and HEAD for the page's folder, and nothing outside it") {
  gg::test::TempDir dir("web_serve");
  write_page(dir);
  std::ofstream(dir / "secret.txt") << "outside\n";
  std::filesystem::create_directories(dir.path / "page");
  std::ofstream(dir / "page/index.html") << "<p>the page</p>\n";
  const std::string command = std::string("'") + GG_CLI_BINARY + "' serve --port 0 --max-requests 5 --dir '" +
                              (dir.path / "page").string() + "' 2>/dev/null";
  FILE* server = ::popen(command.c_str(), "r");
  REQUIRE(server);
  char line[512] = {};
  REQUIRE(std::fgets(line, sizeof line, server));
  const std::string first = line; // serving DIR at http://127.0.0.1:PORT/ (Ctrl-C stops)
  const std::size_t colon = first.rfind(':');
  REQUIRE(colon != std::string::npos);
  const int port = std::atoi(first.c_str() + colon + 1);
  REQUIRE(port > 0);

  const std::string page = request(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(page.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(page.find("Content-Type: text/html; charset=utf-8") != std::string::npos);
  CHECK(page.ends_with("\r\n\r\n<p>the page</p>\n"));
  const std::string head = request(port, "HEAD /index.html HTTP/1.1\r\n\r\n");
  CHECK(head.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(head.ends_with("\r\n\r\n"));
  CHECK(request(port, "GET /../secret.txt HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
  CHECK(request(port, "GET /%2e%2e/secret.txt HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
  CHECK(request(port, "POST / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 405"));
  CHECK(::pclose(server) == 0); // stopped after its 5 requests
}

TEST_CASE("serve: bad options and a missing page") {
  CHECK(gg::cli::test::run({"serve", "--port", "70000"}).code == 2);
  CHECK(gg::cli::test::run({"serve", "--host", "localhost"}).code == 2);
  const Env env("GRADGRAPH_WEB", "/nonexistent/gradgraph-page");
  const auto r = gg::cli::test::run({"serve"});
  CHECK(r.code == 4);
  CHECK(r.err.find("GRADGRAPH_WEB") != std::string::npos);
}
