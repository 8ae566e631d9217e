// The gradgraph command line as a library: gg::cli::run(args, out, err) runs one invocation and
// returns its exit code, so tests drive every subcommand in-process; cli/main.cpp only calls it.
#pragma once

#include <cstddef>
#include <exception>
#include <iosfwd>
#include <string>
#include <vector>

namespace gg::cli {

/// Exit codes, one per kind of failure (listed in `gradgraph --help`).
enum Exit : int {
  ok = 0,
  internal_error = 1, ///< a bug: an exception that is not a gg::Error
  usage_error = 2,    ///< bad command line (unknown option, missing argument, bad value)
  format_error = 3,   ///< malformed input: a program, a CSV, an IDX or safetensors file
  io_error = 4,       ///< a file that cannot be read or written
  shape_error = 5,    ///< shapes that do not fit (layer sizes vs data, ...)
  value_error = 6,    ///< a value out of range (learning rate < 0, unknown name, ...)
  out_of_memory = 7,  ///< the data or the model does not fit in memory (std::bad_alloc)
  diverged = 8,       ///< training stopped on a NaN or infinite loss or weight; no model was saved
  interrupted = 130,  ///< Ctrl-C during training: a checkpoint was saved (128 + SIGINT, as shells report;
                      ///< SIGTERM gives 143, SIGHUP 129)
};

/// Under an address-space limit (ulimit -v), the gradgraph program restarts itself before any library
/// loads with OPENBLAS_NUM_THREADS=1, so that OpenBLAS starts no worker thread that would spin on a
/// buffer the limit does not leave (cli/src/blas_restart.cpp). main() calls this first: it removes
/// that setting from the environment the program's children get.
void end_blas_restart();

/// Runs `gradgraph args...` (args excludes the program name). Output that cannot be written (a
/// full disk, /dev/full) is an I/O error: `out` is flushed and checked before returning.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

/// The gradgraph program: run() on the command line, with standard output written through a buffer
/// that remembers why a write failed (errno), so the message can say it.
int main(int argc, char** argv);

/// One subcommand: its name, a one-line summary, and its entry point.
struct Command {
  const char* name;
  const char* summary;
  int (*run)(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
  /// It has --json: with it, an error is also printed to `out` as one JSON object
  /// {"error": {"kind": "format", "exit_code": 3, "message": "..."}}.
  bool json_errors = false;
  /// It takes any number of NAME=VALUE arguments, which do not count towards max_arguments.
  bool takes_inputs = false;
};

/// Most arguments a command accepts (options and their values; explain's NAME=VALUE inputs are not
/// counted): Boost.Program_options parses in time quadratic in their number.
inline constexpr std::size_t max_arguments = 1000;

/// The exit code for an exception that ends a subcommand: one per gg::Error kind (messages.cpp).
int exit_code_of(const std::exception& e);
/// What `gradgraph <command>: ` is followed by for that exception (escaped for printing; an option's
/// placeholders in it are defused).
std::string error_message(std::exception& e);

/// The subcommands, in the order --help lists them.
const std::vector<Command>& commands();

/// Subcommand entry points (one file each in cli/src/).
int run_explain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_summary(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_dot(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_serve(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_train(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_eval(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);
int run_lm(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

} // namespace gg::cli
