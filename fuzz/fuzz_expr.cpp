// Fuzz target: the `gradgraph explain` language. The input is a program; its free names get values
// from a fixed table (0, ±1, 2.5, huge, tiny, inf, nan), then it is parsed, checked, evaluated,
// differentiated, traced and drawn as DOT, and run through `gradgraph explain` in-process (the first
// byte chooses text, --json or --check output). Anything but a gg::Error is a finding.
#include <cli/cli.hpp>
#include <cli/src/expr.hpp>

#include <autodiff/error.hpp>
#include <autodiff/inspect.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

namespace {

/// A value for an input, chosen by its name so that a program sees the same value each run.
double value_for(const std::string& name) {
  static const double table[] = {0.0,
                                 1.0,
                                 -1.0,
                                 2.5,
                                 -0.5,
                                 1e300,
                                 1e-300,
                                 3.0,
                                 -2.0,
                                 std::numeric_limits<double>::infinity(),
                                 std::numeric_limits<double>::quiet_NaN()};
  return table[std::hash<std::string>{}(name) % std::size(table)];
}

/// The program's names that no statement assigns, each once, with their values.
std::vector<std::pair<std::string, double>> free_names(const gg::cli::expr::Program& p) {
  std::unordered_set<std::string> assigned, seen;
  for (const auto& s : p.statements) assigned.insert(s.name);
  std::vector<std::pair<std::string, double>> inputs;
  for (const auto& n : p.nodes)
    if (n.kind == gg::cli::expr::Kind::name && !assigned.count(n.name) && seen.insert(n.name).second)
      inputs.emplace_back(n.name, value_for(n.name));
  return inputs;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t mode = data[0];
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  namespace expr = gg::cli::expr;
  std::vector<std::pair<std::string, double>> inputs;
  try {
    const expr::Program p = expr::parse(text);
    inputs = free_names(p);
    const std::vector<std::string> order = expr::resolve(p, inputs);
    const expr::Evaluation ev = expr::evaluate(p, inputs);
    std::ostringstream dot;
    gg::write_dot(dot, ev.output);
    if (ev.output.requires_grad()) {
      gg::trace_backward(ev.output);
      ev.output.backward();
    }
    expr::Numeric numeric(p, inputs);
    if (numeric.cost() < 1e6) numeric.differences();
    numeric.through_nonfinite();
  } catch (const gg::Error&) {
  }
  // The same program through the command, as a user would type it.
  std::vector<std::string> args{"explain"};
  if (mode % 3 == 1) args.emplace_back("--json");
  if (mode % 3 == 2) args.emplace_back("--check");
  args.push_back(text);
  for (const auto& [name, value] : inputs) args.push_back(name + "=" + fmt::format("{}", value));
  std::ostringstream out, err;
  const int code = gg::cli::run(args, out, err);
  if (code == gg::cli::internal_error) __builtin_trap(); // a std exception escaped the library
  return 0;
}
