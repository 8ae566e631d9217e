// Subcommand dispatch, --help, and the mapping from gg::Error kinds to exit codes.
#include <cli/cli.hpp>

#include <autodiff/error.hpp>

#include <boost/program_options/errors.hpp>
#include <fmt/ostream.h>

#include <new>
#include <ostream>

namespace gg::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> list{
      {"explain", "differentiate a small program and show every chain-rule step", run_explain},
      {"summary", "an MLP's layers, output shapes and parameter counts (--layers 2,3,2)", run_summary},
      {"train", "train an MLP on a CSV file or a teaching dataset (every PyTorch optimizer)", run_train},
      {"eval", "accuracy and confusion matrix of a saved model on data", run_eval},
      {"dot", "draw an MLP's graph as DOT, one cluster a layer (--backward adds gradients)", run_dot},
  };
  return list;
}

namespace {
void print_help(std::ostream& out) {
  fmt::print(out, "gradgraph — reverse-mode automatic differentiation you can see\n\n"
                  "usage: gradgraph COMMAND [options]     (gradgraph COMMAND --help for its options)\n\n"
                  "commands:\n");
  for (const Command& c : commands()) fmt::print(out, "  {:<10} {}\n", c.name, c.summary);
  fmt::print(out, "\nexit codes:\n"
                  "  0  success\n"
                  "  1  internal error (a bug: please report it)\n"
                  "  2  usage error: bad command line\n"
                  "  3  format error: malformed program or data file\n"
                  "  4  I/O error: a file cannot be read or written\n"
                  "  5  shape error: sizes that do not fit\n"
                  "  6  value error: a value out of range or an unknown name\n"
                  "  7  out of memory: the data or the model does not fit in memory\n"
                  "130  interrupted (Ctrl-C in train): a checkpoint was saved, continue with --resume\n");
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

/// The exit code for an exception that ends a subcommand: one per gg::Error kind.
int exit_code_of(const std::exception& e) {
  if (dynamic_cast<const boost::program_options::error*>(&e) || dynamic_cast<const UsageError*>(&e))
    return usage_error;
  if (dynamic_cast<const FormatError*>(&e)) return format_error;
  if (dynamic_cast<const IOError*>(&e)) return io_error;
  if (dynamic_cast<const ShapeError*>(&e)) return shape_error;
  if (dynamic_cast<const ValueError*>(&e)) return value_error;
  if (dynamic_cast<const std::bad_alloc*>(&e)) return out_of_memory;
  return internal_error;
}
} // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_help(args.empty() ? err : out);
    return args.empty() ? usage_error : ok;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const Command& c : commands()) {
    if (args[0] != c.name) continue;
    try {
      return c.run(rest, out, err);
    } catch (std::exception& e) {
      if (auto* po_error = dynamic_cast<boost::program_options::error_with_option_name*>(&e))
        defuse_placeholders(*po_error);
      const int code = exit_code_of(e);
      if (code == out_of_memory)
        fmt::print(err,
                   "gradgraph {}: out of memory: the data or the model does not fit (try fewer examples, "
                   "a smaller model or --dtype f32)\n",
                   c.name);
      else
        fmt::print(err, "gradgraph {}: {}{}\n", c.name, code == internal_error ? "internal error: " : "",
                   e.what());
      return code;
    }
  }
  fmt::print(err, "gradgraph: unknown command '{}' (gradgraph --help lists them)\n", args[0]);
  return usage_error;
}

} // namespace gg::cli
