// Subcommand dispatch, --help, the mapping from gg::Error kinds to exit codes, and the check that
// standard output was really written.
#include <cli/cli.hpp>

#include <autodiff/error.hpp>

#include <boost/program_options/errors.hpp>
#include <fmt/ostream.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <new>
#include <ostream>
#include <streambuf>

#include <unistd.h>

#include "json.hpp"
#include "messages.hpp"

namespace gg::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> list{
      {"explain", "differentiate a small program and show every chain-rule step", run_explain, true, true},
      {"summary", "an MLP's layers, output shapes and parameter counts (--layers 2,3,2)", run_summary},
      {"train", "train an MLP on a CSV file or a teaching dataset (every PyTorch optimizer)", run_train},
      {"eval", "accuracy and confusion matrix (regression: MSE, MAE, R²) of a saved model on data", run_eval},
      {"dot", "draw an MLP's graph as DOT, one cluster a layer (--backward adds gradients)", run_dot},
      {"lm", "a character-level language model: lm train on a UTF-8 text, lm sample, lm dot", run_lm},
      {"serve", "serve the browser page (expression explorer, model playground) on this machine", run_serve},
  };
  return list;
}

namespace {
void print_help(std::ostream& out) {
  fmt::print(out, "gradgraph — reverse-mode automatic differentiation you can see\n\n"
                  "usage: gradgraph COMMAND [options]     (gradgraph COMMAND --help for its options)\n\n"
                  "commands:\n");
  for (const Command& c : commands()) fmt::print(out, "  {:<10} {}\n", c.name, c.summary);
  fmt::print(out,
             "\nexit codes:\n"
             "  0  success\n"
             "  1  internal error (a bug: please report it)\n"
             "  2  usage error: bad command line\n"
             "  3  format error: malformed program or data file\n"
             "  4  I/O error: a file cannot be read or written, or standard output cannot be written\n"
             "  5  shape error: sizes that do not fit\n"
             "  6  value error: a value out of range or an unknown name\n"
             "  7  out of memory: the data or the model does not fit in memory\n"
             "  8  training diverged: a loss or weight became NaN or infinite (no model saved)\n"
             "130  interrupted (Ctrl-C in train): a checkpoint was saved, continue with --resume\n"
             "143  terminated (SIGTERM in train), 129 hung up (SIGHUP): the same as 130\n"
             "\nA command takes at most {} arguments (explain's NAME=VALUE inputs are not counted).\n",
             max_arguments);
}
/// Boost.Program_options 1.74 loops forever formatting an error whose value holds its own placeholder
/// (`gradgraph train --samples %value%`: found by fuzzing), so every '%' in the values it fills in
/// becomes a full-width '％' before what() runs.
void defuse_placeholders(boost::program_options::error_with_option_name& e) {
  struct Access : boost::program_options::error_with_option_name {
    static auto substitutions() { return &Access::m_substitutions; }
  };
  for (auto& [name, value] : e.*Access::substitutions())
    for (std::size_t at; (at = value.find('%')) != std::string::npos;) value.replace(at, 1, "％");
}

/// Standard output as write(2) on a file descriptor, buffered as C's stdout is (8 KiB, and line by
/// line on a terminal), remembering the errno of the first failed write (std::cout's own buffer
/// reports a failure, not its reason). After a failure every write fails, so the stream stays bad.
class FdOutput : public std::streambuf {
public:
  explicit FdOutput(int fd) : fd_(fd), line_buffered_(::isatty(fd) == 1) {
    setp(buffer_.data(), buffer_.data() + buffer_.size());
  }
  FdOutput(const FdOutput&) = delete;
  FdOutput& operator=(const FdOutput&) = delete;
  ~FdOutput() override { drain(); }
  /// errno of the first write that failed; 0 when none did.
  int error() const { return error_; }

protected:
  int_type overflow(int_type c) override {
    if (!drain()) return traits_type::eof();
    if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
    *pptr() = traits_type::to_char_type(c);
    pbump(1);
    if (line_buffered_ && traits_type::to_char_type(c) == '\n' && !drain()) return traits_type::eof();
    return c;
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    const std::streamsize written = std::streambuf::xsputn(s, n);
    if (line_buffered_ && std::memchr(s, '\n', static_cast<std::size_t>(written)) && !drain()) return 0;
    return written;
  }
  int sync() override { return drain() ? 0 : -1; }

private:
  /// Writes out the buffer; false (and error_ set) when the descriptor refuses it.
  bool drain() {
    for (const char* p = pbase(); p < pptr() && error_ == 0;) {
      const ssize_t n = ::write(fd_, p, static_cast<std::size_t>(pptr() - p));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0)
        error_ = n < 0 ? errno : EIO;
      else
        p += n;
    }
    setp(buffer_.data(), buffer_.data() + buffer_.size());
    return error_ == 0;
  }

  int fd_;
  bool line_buffered_;
  int error_ = 0;
  std::array<char, 8192> buffer_;
};

/// Flushes out and, when something could not be written, says so and turns success into an I/O
/// error: a cut JSON line or trace must not look like a complete one.
int check_output(const std::string& who, int code, std::ostream& out, std::ostream& err) {
  errno = 0;
  out.flush();
  if (out) return code;
  int e = errno;
  if (const auto* fd = dynamic_cast<const FdOutput*>(out.rdbuf()); fd && fd->error() != 0) e = fd->error();
  fmt::print(err, "{}: cannot write to standard output: {}\n", who,
             e != 0 ? std::strerror(e) : "the write failed");
  return code == ok ? io_error : code;
}

/// A hint for an option's value that did not parse as a number ("--lr 0,5"), or "".
std::string option_value_hint(const boost::program_options::error_with_option_name& e) {
  if (!dynamic_cast<const boost::program_options::invalid_option_value*>(&e)) return {};
  struct Access : boost::program_options::error_with_option_name {
    static auto substitutions() { return &Access::m_substitutions; }
  };
  const auto& values = e.*Access::substitutions();
  const auto it = values.find("value");
  return it == values.end() ? std::string() : number_hint(it->second);
}

/// The exit code for an exception that ends a subcommand: Boost's option errors are usage errors.
int command_exit_code(const std::exception& e) {
  if (dynamic_cast<const boost::program_options::error*>(&e)) return usage_error;
  return exit_code_of(e);
}

} // namespace

std::string error_message(std::exception& e) {
  std::string hint;
  if (auto* po_error = dynamic_cast<boost::program_options::error_with_option_name*>(&e)) {
    defuse_placeholders(*po_error);
    hint = option_value_hint(*po_error);
  }
  const int code = command_exit_code(e);
  std::string message = code == out_of_memory    ? "out of memory: the data or the model does not fit (try "
                                                   "fewer examples, a smaller model or --dtype f32)"
                        : code == internal_error ? fmt::format("internal error: {}", e.what())
                                                 : std::string(e.what());
  if (!hint.empty()) message += " (" + hint + ")";
  // Messages echo what the user typed: escaped and cut here, once for every command.
  return printable(message);
}

namespace {

/// Whether the command line asks for JSON output (--json before any "--").
bool wants_json(const std::vector<std::string>& args) {
  for (const std::string& a : args) {
    if (a == "--") return false;
    if (a == "--json") return true;
  }
  return false;
}
} // namespace

namespace {
/// Refuses more than max_arguments arguments (with explain, more than that many options).
void check_argument_count(const Command& c, const std::vector<std::string>& args) {
  std::size_t counted = 0;
  for (const std::string& a : args) {
    if (c.takes_inputs && a == "--") break;
    counted += !c.takes_inputs || (a.size() > 1 && a[0] == '-');
  }
  if (counted > max_arguments)
    throw UsageError(fmt::format("{} {}: at most {} are accepted", counted,
                                 c.takes_inputs ? "options (arguments starting with '-')" : "arguments",
                                 max_arguments));
}

int run_command(const Command& c, const std::vector<std::string>& args, std::ostream& out,
                std::ostream& err) {
  try {
    check_argument_count(c, args);
    return c.run(args, out, err);
  } catch (std::exception& e) {
    const int code = command_exit_code(e);
    const std::string message = error_message(e);
    fmt::print(err, "gradgraph {}: {}\n", c.name, message);
    if (c.json_errors && wants_json(args))
      fmt::print(
          out, "{}\n",
          json::dump({{"error", {{"kind", kind_of(code)}, {"exit_code", code}, {"message", message}}}}));
    return code;
  }
}
} // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_help(args.empty() ? err : out);
    return check_output("gradgraph", args.empty() ? usage_error : ok, out, err);
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const Command& c : commands())
    if (args[0] == c.name)
      return check_output(fmt::format("gradgraph {}", c.name), run_command(c, rest, out, err), out, err);
  fmt::print(err, "gradgraph: unknown command '{}' (gradgraph --help lists them)\n", args[0]);
  return usage_error;
}

int main(int argc, char** argv) {
  FdOutput stdout_buffer(STDOUT_FILENO);
  std::streambuf* const previous = std::cout.rdbuf(&stdout_buffer); // commands compare &out to &std::cout
  const int code = run(std::vector<std::string>(argv + 1, argv + argc), std::cout, std::cerr);
  std::cout.rdbuf(previous);
  return code;
}

} // namespace gg::cli
