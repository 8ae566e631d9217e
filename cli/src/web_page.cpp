// `explain --html` and `gradgraph serve`: finding the built page, embedding the engine's reply for a
// program into it, and a small static HTTP server (GET and HEAD of the page's folder, on this
// machine by default, one request at a time) so the page can be opened without any other tool.
#include "web_page.hpp"

#include <cli/cli.hpp>

#include <autodiff/error.hpp>
#include <nn/io/atomic_file.hpp>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ostream.h>

#include <web/engine/explorer.hpp>

#include "json.hpp"

namespace gg::cli {

namespace fs = std::filesystem;

namespace {

/// The line every page holds where `explain --html` puts the program it opens at.
constexpr std::string_view k_initial_marker =
    R"(<script type="application/json" id="gg-initial">null</script>)";

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IOError(fmt::format("{}: cannot read it: {}", path.string(), std::strerror(errno)));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

} // namespace

std::string page_folder() {
  std::error_code ec;
  if (const char* env = std::getenv("GRADGRAPH_WEB"); env && *env) { // the one place, when set
    if (fs::is_regular_file(fs::path(env) / "index.html", ec)) return env;
    throw IOError(
        fmt::format("GRADGRAPH_WEB={}: no index.html there (bash scripts/build_web.sh builds the page "
                    "into build-web/page/)",
                    env));
  }
  for (const fs::path dir : {GG_WEB_BUILD_DIR, GG_WEB_INSTALL_DIR})
    if (fs::is_regular_file(dir / "index.html", ec)) return dir.string();
  throw IOError(fmt::format(
      "the browser page is not built: run bash scripts/build_web.sh (it installs emscripten and the npm "
      "packages it needs and writes {}/index.html), or set GRADGRAPH_WEB to a folder holding a built "
      "index.html",
      GG_WEB_BUILD_DIR));
}

void check_html_option(bool given, const std::string& html, const std::string& dot) {
  if (given && html.empty()) throw UsageError("--html: the file name is empty");
  std::error_code ec1, ec2;
  if (!html.empty() && !dot.empty() && fs::weakly_canonical(html, ec1) == fs::weakly_canonical(dot, ec2))
    throw UsageError(fmt::format("--html {} and --dot {} name the same file", html, dot));
}

std::string write_explorer_page(const std::string& file, const std::string& program,
                                const std::vector<std::string>& inputs) {
  const std::string page = read_file(fs::path(page_folder()) / "index.html");
  const std::size_t at = page.find(k_initial_marker);
  if (at == std::string::npos)
    throw IOError(
        fmt::format("{}/index.html is not gradgraph's page (no gg-initial element): rebuild it with "
                    "bash scripts/build_web.sh",
                    page_folder()));
  web::ExplainRequest rq{program, {}, true};
  json::Value given = json::Value::object();
  for (const std::string& arg : inputs) { // already checked by explain as NAME=VALUE
    const std::size_t eq = arg.find('=');
    rq.inputs.emplace_back(arg.substr(0, eq), arg.substr(eq + 1));
    json::append(given, arg.substr(0, eq), arg.substr(eq + 1));
  }
  const json::Value reply = web::explain(rq); // the page's own limits (its node count) throw here
  std::string embedded = json::dump({{"program", program}, {"inputs", given}, {"reply", reply}});
  // Inside <script>, "</script" would end the element: '<' only occurs in strings, as \u003c there.
  for (std::size_t p = 0; (p = embedded.find('<', p)) != std::string::npos;)
    embedded.replace(p, 1, "\\u003c");
  std::string html = page.substr(0, at);
  html += R"(<script type="application/json" id="gg-initial">)" + embedded + "</script>";
  html += page.substr(at + k_initial_marker.size());
  write_atomically(file, html);
  return fmt::format("page: wrote {} (open it in a browser; {}#end opens it after the last backward step)",
                     file, file);
}

namespace {

/// Content types of the files a built page folder holds.
std::string content_type(const fs::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json") return "application/json";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".wasm") return "application/wasm";
  return "application/octet-stream";
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void respond(int fd, int status, const char* reason, const std::string& type, const std::string& body,
             bool head) {
  const std::string headers =
      fmt::format("HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n"
                  "X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n",
                  status, reason, type, body.size());
  if (send_all(fd, headers) && !head) send_all(fd, body);
}

/// The decoded path of a request target ("/a%20b?x" -> "/a b"), or nothing when malformed.
std::optional<std::string> decode_target(std::string_view target) {
  target = target.substr(0, target.find_first_of("?#"));
  std::string out;
  for (std::size_t i = 0; i < target.size(); ++i) {
    if (target[i] != '%') {
      out += target[i];
      continue;
    }
    if (i + 2 >= target.size() || !std::isxdigit(static_cast<unsigned char>(target[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(target[i + 2])))
      return std::nullopt;
    out += static_cast<char>(std::stoi(std::string(target.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  if (out.empty() || out[0] != '/' || out.find('\0') != std::string::npos) return std::nullopt;
  return out;
}

/// Answers one request on fd from the files under root; returns a log line.
std::string serve_one(int fd, const fs::path& root) {
  timeval timeout{5, 0}; // a client that sends nothing does not hold the server
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  std::string request;
  char buffer[4096];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    request.append(buffer, static_cast<std::size_t>(n));
  }
  std::istringstream line(request.substr(0, request.find("\r\n")));
  std::string method, target, version;
  line >> method >> target >> version;
  const bool head = method == "HEAD";
  if (method.empty() || !version.starts_with("HTTP/")) {
    respond(fd, 400, "Bad Request", "text/plain", "bad request\n", false);
    return "400 (malformed request)";
  }
  if (method != "GET" && !head) {
    respond(fd, 405, "Method Not Allowed", "text/plain", "only GET and HEAD\n", false);
    return fmt::format("405 {} {}", method, target);
  }
  std::optional<std::string> path = decode_target(target);
  bool found = false;
  fs::path file;
  if (path) {
    if (path->back() == '/') *path += "index.html";
    bool climbs = false;
    for (const fs::path& part : fs::path(*path)) climbs = climbs || part == "..";
    std::error_code ec;
    file = fs::weakly_canonical(root / fs::path(*path).relative_path(), ec);
    const auto [end, _] = std::mismatch(root.begin(), root.end(), file.begin(), file.end());
    found = !climbs && !ec && end == root.end() && fs::is_regular_file(file, ec);
  }
  if (!found) {
    respond(fd, 404, "Not Found", "text/plain", "not found\n", head);
    return fmt::format("404 {} {}", method, target);
  }
  try {
    respond(fd, 200, "OK", content_type(file), read_file(file), head);
  } catch (const IOError&) {
    respond(fd, 404, "Not Found", "text/plain", "not found\n", head);
    return fmt::format("404 {} {}", method, target);
  }
  return fmt::format("200 {} {}", method, target);
}

constexpr const char* k_serve_usage = R"(usage: gradgraph serve [options]

Serves the browser page (the expression explorer and the model playground, built by
bash scripts/build_web.sh) over HTTP on this machine, and prints its address. Any static file
server on the page's folder does the same; so does opening its index.html from disk.
)";

} // namespace

int run_serve(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  namespace po = boost::program_options;
  int port = 8000;
  long max_requests = 0;
  std::string host, dir;
  po::options_description visible("options", 100, 50);
  visible.add_options()("help,h",
                        "show this help")("port", po::value(&port)->value_name("N")->default_value(8000),
                                          "the port (0: any free one; the address printed says which)")(
      "host", po::value(&host)->value_name("ADDRESS")->default_value("127.0.0.1"),
      "the address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)")(
      "dir", po::value(&dir)->value_name("FOLDER"),
      "serve this folder (default: the built page, as explain --html finds it)");
  po::options_description hidden;
  hidden.add_options()("max-requests", po::value(&max_requests), "testing: stop after N requests");
  po::options_description all;
  all.add(visible).add(hidden);
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(all).run(), vm);
  if (vm.count("help")) {
    fmt::print(out, "{}\n", k_serve_usage);
    out << visible;
    fmt::print(out, "\nexit codes: 0 (stopped after --max-requests), 2 usage error, 4 the page is not built "
                    "or the port cannot be opened\n");
    return ok;
  }
  po::notify(vm);
  if (port < 0 || port > 65535) throw UsageError(fmt::format("--port {}: use 0 to 65535", port));
  in_addr address{};
  if (::inet_pton(AF_INET, host.c_str(), &address) != 1)
    throw UsageError(fmt::format("--host '{}': give an IPv4 address such as 127.0.0.1", host));
  if (dir.empty()) dir = page_folder();
  std::error_code ec;
  const fs::path root = fs::canonical(dir, ec);
  if (ec || !fs::is_directory(root)) throw IOError(fmt::format("--dir {}: not a folder", dir));

  const int server = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (server < 0) throw IOError(fmt::format("cannot open a socket: {}", std::strerror(errno)));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{server};
  const int yes = 1;
  ::setsockopt(server, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr = address;
  if (::bind(server, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(server, 16) != 0)
    throw IOError(fmt::format("cannot listen on {}:{}: {}", host, port, std::strerror(errno)));
  socklen_t len = sizeof sa;
  ::getsockname(server, reinterpret_cast<sockaddr*>(&sa), &len);
  fmt::print(out, "serving {} at http://{}:{}/ (Ctrl-C stops)\n", root.string(), host, ntohs(sa.sin_port));
  out.flush();
  for (long served = 0; max_requests == 0 || served < max_requests; ++served) {
    const int client = ::accept4(server, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      throw IOError(fmt::format("accept failed: {}", std::strerror(errno)));
    }
    const std::string log = serve_one(client, root);
    ::close(client);
    fmt::print(err, "{}\n", log);
  }
  return ok;
}

} // namespace gg::cli
