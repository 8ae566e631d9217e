// `gradgraph explain`: differentiates a small program given on the command line and shows the
// forward pass, every chain-rule step of the backward pass, and the gradients (text or JSON), with
// optional finite-difference checks and a DOT picture of the graph.
#include <cli/cli.hpp>

#include <autodiff/error.hpp>
#include <autodiff/inspect.hpp>
#include <autodiff/ops.hpp>
#include <nn/train/progress.hpp>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>
#include <sstream>
#include <unordered_map>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ostream.h>

#include "expr.hpp"
#include "files.hpp"
#include "json.hpp"
#include "layout.hpp"
#include "messages.hpp"
#include "web_page.hpp"

namespace gg::cli {
namespace {
namespace po = boost::program_options;

constexpr const char* k_usage = R"(usage: gradgraph explain [options] "PROGRAM" NAME=VALUE...

Differentiates a small program and shows every step: the forward pass, the backward pass edge by
edge (local derivative, upstream gradient, their product, running sums), and the gradient of the
output with respect to every input and every statement.

  gradgraph explain "q = x + y; f = q * z" x=-2 y=5 z=-4

The program is statements NAME = EXPRESSION separated by ';'; the last statement is the output.
Expressions have numbers (2, 0.5, 1e-3, .5), names, + - * /, ^ (power: right-associative and
binding tighter than unary minus, so 2^3^2 is 512 and -x^2 is -(x^2)), unary -, parentheses and
the functions exp log sqrt abs tanh sigmoid relu sin cos (one argument each). A name is an input,
given as NAME=VALUE after the program (inf and nan are accepted), or an earlier statement.
Non-finite values follow IEEE arithmetic and are flagged.

Names are listed (and --json keys ordered) inputs first, in the order they first appear in the
program, then statements in order. The text wraps at the terminal's width (--width).

--check puts a central finite difference next to each gradient; where it differs because of a kink
(relu or abs at 0) it says so and which subgradient backward used. A gradient that flows through a
value that is not finite (log(x - 3) at x = 1) is flagged.

limits (beyond them, a message instead of a long wait):
  the program and the inputs: 1 MB each; nesting: 256 levels; options: 1000 (inputs not counted)
  --check: each name re-evaluates the ops after its first use, eight names at a time; a chain of
    n statements takes about n^2/8 op evaluations (10,000 statements: 0.3 s); refused beyond 10^8
  the text output is written as it is made: a 1 MB program (f=x*x*...*x, 5*10^5 ops, 10^6 steps of
    the chain rule) takes about 0.7 GB of memory, nearly all of it the recorded graph (--json: 0.5 GB)
  --render: graphs of at most 2000 nodes (Graphviz's time grows much faster than the graph), and
    Graphviz is stopped after 30 s (many long edges with labels can take it hours)
)";

constexpr const char* k_exit_codes = R"(
exit codes:
  0  success (also when --render finds no Graphviz: a note says so)
  2  usage error: bad option, malformed NAME=VALUE, an input missing, given twice or unused,
     a program or inputs over 1 MB, more than 1000 options, a --check over its limit,
     --render of a graph over 2000 nodes (nothing is written)
  3  format error: the program does not parse (shown with a caret), or nests deeper than 256
  4  I/O error: the --dot file or standard output cannot be written, or Graphviz's dot fails or
     runs over 30 s
  6  value error: an unknown name or function, a wrong argument count, a name assigned twice,
     a statement assigning an input, or with --detect-anomaly a NaN or an infinity
)";

/// Numbers as the text output shows them: 6 significant digits, no "-0".
std::string num(double v) {
  if (std::isnan(v)) return "nan"; // not "-nan"
  return fmt::format("{:.6g}", v == 0 ? 0.0 : v);
}

bool is_name(std::string_view s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

/// NAME=VALUE arguments, in the order given.
std::vector<std::pair<std::string, double>> parse_inputs(const std::vector<std::string>& args) {
  std::vector<std::pair<std::string, double>> inputs;
  std::unordered_map<std::string, std::string> given;
  for (const std::string& arg : args) {
    const std::size_t eq = arg.find('=');
    if (eq == std::string::npos) throw UsageError(fmt::format("'{}': expected NAME=VALUE, like x=-2", arg));
    const std::string name = arg.substr(0, eq);
    if (!is_name(name))
      throw UsageError(fmt::format(
          "'{}': '{}' is not a name (letters, digits and _, not starting with a digit)", arg, name));
    const auto& functions = expr::function_names();
    if (std::find(functions.begin(), functions.end(), name) != functions.end())
      throw UsageError(fmt::format("'{}': '{}' is a function, not an input", arg, name));
    const double value = parse_value(arg, std::string_view(arg).substr(eq + 1));
    if (const auto [it, fresh] = given.emplace(name, arg); !fresh)
      throw UsageError(fmt::format("input '{}' is given twice ({} and {})", name, it->second, arg));
    inputs.emplace_back(name, value);
  }
  return inputs;
}

/// A name as a derivative's denominator: "dq", "d(2*x)", "d(relu(z))".
std::string d_of(const std::string& name) {
  return is_name(name) || name.front() == '(' ? name : "(" + name + ")";
}

struct Report {
  std::string output;
  std::vector<std::string> names; ///< inputs, then statements
  std::vector<double> values, grads;
  std::vector<bool> reached;      ///< whether backward reached the name (the output depends on it)
  std::vector<std::string> flags; ///< why a value is not finite, or ""
  std::vector<std::string> sources;
  std::size_t inputs = 0;
  std::optional<std::vector<double>> check;
  std::vector<std::string> notes; ///< per name: a kink the check stepped on, a non-finite way to the output
};

/// Most op evaluations --check may take (Numeric::cost, each of 16 lanes): about 2 s of work, a
/// chain of 28,000 statements.
constexpr double k_max_check_cost = 1e8;

/// What the gradient of a name needs said: a kink its finite difference stepped on (the first),
/// or that backward's gradient came through a value that is not finite; "" when neither.
std::string note_of(const expr::Program& p, const std::vector<const expr::Step*>& step_of,
                    const std::vector<expr::Kink>& kinks, std::int64_t nonfinite) {
  const auto shown = [&](std::size_t node) {
    const expr::Step* s = step_of[node];
    return !s ? p.nodes[node].name : s->is_statement ? s->name + " = " + s->definition : s->name;
  };
  if (!kinks.empty()) {
    const expr::Kink& k = kinks.front();
    const std::string slopes =
        fmt::format("slope {} to the left, {} to the right", num(k.left), num(k.right));
    const std::string more = kinks.size() > 1 ? fmt::format(" (and {} more kinks)", kinks.size() - 1) : "";
    if (k.input == 0)
      return fmt::format("{} has a kink here (its input is 0): {}; backward used the subgradient {}{}",
                         shown(k.node), slopes, num(expr::local_derivative(p.nodes[k.node].name, 0)), more);
    return fmt::format("{} has a kink within h of here (its input is {}): {}; the difference straddles it{}",
                       shown(k.node), num(k.input), slopes, more);
  }
  if (nonfinite >= 0) {
    const auto node = static_cast<std::size_t>(nonfinite);
    return fmt::format("through a value that is not finite, {} = {}: not a meaningful gradient", shown(node),
                       step_of[node] ? num(step_of[node]->var.item()) : "?");
  }
  return {};
}

void print_forward(Layout& out, const Report& r, const expr::Evaluation& ev) {
  out.paragraph("forward pass (inputs, then each statement in order):");
  // Each statement's op nodes are consecutive in ev.steps: where they begin.
  std::vector<std::size_t> begin(ev.statements.size() + 1);
  for (std::size_t s = 0, k = 0; s <= ev.statements.size(); ++s) {
    while (k < ev.steps.size() && ev.steps[k].statement < s) ++k;
    begin[s] = k;
  }
  out.table(
      [&](const auto& emit) {
        for (std::size_t i = 0; i < r.names.size(); ++i) {
          std::vector<std::string> notes;
          if (i < r.inputs) notes.emplace_back("input");
          if (i + 1 == r.names.size()) notes.emplace_back("output");
          if (!std::isfinite(r.values[i]))
            notes.push_back(r.flags[i].empty() ? "not finite" : "not finite: " + r.flags[i]);
          emit({r.sources[i], "= " + num(r.values[i]), fmt::format("{}", fmt::join(notes, ", "))});
          if (i < r.inputs) continue;
          // The statement's unnamed op nodes (their names appear in the backward pass).
          constexpr std::size_t k_shown = 8;
          const std::size_t s = i - r.inputs;
          std::vector<std::string> parts;
          std::size_t count = 0;
          for (std::size_t k = begin[s]; k < begin[s + 1]; ++k)
            if (!ev.steps[k].is_statement && count++ < k_shown)
              parts.push_back(fmt::format("{}{}={}{}", ev.steps[k].name, Layout::glue, Layout::glue,
                                          num(ev.steps[k].var.item())));
          if (count > k_shown) parts.push_back(fmt::format("… ({} more)", count - k_shown));
          if (!parts.empty()) emit({fmt::format("    where {}", fmt::join(parts, ", "))});
        }
      },
      2);
}

void print_backward(Layout& out, const Report& r, const expr::Evaluation& ev) {
  const std::string& f = r.output;
  if (ev.output.op_name() == "leaf") {
    out.paragraph(
        fmt::format("backward pass: {} depends on no input, so there is no chain rule to apply", f));
    return;
  }
  out.paragraph(
      "backward pass (the chain rule, in the order backprop visits the graph): each node passes its "
      "gradient back along its edges; an edge adds upstream × local derivative to its input's "
      "gradient.");
  std::unordered_map<std::string_view, const expr::Step*> defs;
  for (const expr::Step& s : ev.steps) defs.emplace(s.name, &s);
  // The trace is walked twice, to measure and to print, and never stored: a million steps print in
  // the memory of the graph alone.
  out.table(
      [&](const auto& emit) {
        emit({"", "upstream × local = product", "input's gradient"});
        std::string node;
        bool first = true;
        trace_backward(ev.output, [&](const TraceStep& s) {
          if (first || s.node != node) {
            const auto it = defs.find(s.node);
            const std::string def = it != defs.end() ? it->second->definition : s.expr;
            emit({def == s.node ? def : fmt::format("{} = {}", s.node, def),
                  fmt::format("d{}/d{} = {}{}", f, d_of(s.node), num(s.upstream),
                              first ? " (the seed)" : "")});
            node = s.node;
            first = false;
          }
          std::string local = fmt::format("∂{}/∂{} = {}", d_of(s.node), d_of(s.input), s.formula);
          if (s.formula != num(s.local) && s.formula != fmt::format("{:.4g}", s.local))
            local += " = " + num(s.local);
          const std::string grad = fmt::format("d{}/d{} = ", f, d_of(s.input));
          const std::size_t n = s.contributions, k = s.contribution;
          std::string total;
          if (n == 1)
            total = grad + num(s.accumulated);
          else if (k == 1)
            total = fmt::format("{}{}   (1 of {} contributions)", grad, num(s.accumulated), n);
          else
            total = fmt::format("{}{} + {} = {}   ({} of {}{})", grad, num(s.previous),
                                num(s.product).front() == '-' ? "(" + num(s.product) + ")" : num(s.product),
                                num(s.accumulated), k, n, k == n ? ": complete" : "");
          emit({"  " + local, fmt::format("{} × {} = {}", num(s.upstream), num(s.local), num(s.product)),
                total});
        });
      },
      2);
}

void print_gradients(Layout& out, const Report& r) {
  out.paragraph(fmt::format("gradients of {}{}:", r.output,
                            r.check ? " (and central finite differences, h = 1e-6·max(1, |value|))" : ""));
  out.table(
      [&](const auto& emit) {
        for (std::size_t i = 0; i < r.names.size(); ++i) {
          std::vector<std::string> row{fmt::format("d{}/d{} = {}", r.output, r.names[i], num(r.grads[i]))};
          if (r.check) {
            const double a = r.grads[i], n = (*r.check)[i];
            const bool agree = std::abs(a - n) <= 1e-5 * std::max({1.0, std::abs(a), std::abs(n)}) ||
                               (!std::isfinite(a) && !std::isfinite(n));
            row.push_back("finite difference " + num(n));
            row.emplace_back(agree ? "agrees" : "differs");
          }
          std::string note;
          if (!r.reached[i]) note = fmt::format("({} does not depend on {})", r.output, r.names[i]);
          if (!std::isfinite(r.grads[i])) note = "(not finite)";
          if (!r.notes[i].empty() && r.check)
            row.back() += ": " + r.notes[i];
          else if (!r.notes[i].empty())
            note = "(" + r.notes[i] + ")";
          if (!note.empty()) row.push_back(note);
          emit(row);
        }
      },
      2);
}

std::string json_text(const Report& r) {
  const auto object = [&](const std::vector<double>& v) {
    json::Value o = json::Value::object();
    for (std::size_t i = 0; i < r.names.size(); ++i) json::append(o, r.names[i], v[i]);
    return o;
  };
  json::Value j{{"output", r.output}, {"values", object(r.values)}, {"grads", object(r.grads)}};
  if (r.check) j["check"] = object(*r.check);
  json::Value notes = json::Value::object();
  for (std::size_t i = 0; i < r.names.size(); ++i)
    if (!r.notes[i].empty()) json::append(notes, r.names[i], r.notes[i]);
  if (!notes.empty()) j["notes"] = std::move(notes);
  return json::dump(j) + "\n";
}

/// Boost.Program_options takes each parsed argument off the front of a vector, so a command line
/// of n NAME=VALUE inputs took time in n^2 (130k inputs: 20 s before a trivial error). Tried before
/// Boost's own parsers, this one takes a whole run of arguments that are not options at once.
std::vector<po::option> take_positionals(std::vector<std::string>& args) {
  std::size_t n = 0;
  while (n < args.size() && (args[n].size() < 2 || args[n][0] != '-')) ++n;
  std::vector<po::option> taken(n);
  for (std::size_t i = 0; i < n; ++i) {
    taken[i].original_tokens.push_back(args[i]);
    taken[i].value.push_back(std::move(args[i]));
  }
  args.erase(args.begin(), args.begin() + static_cast<std::ptrdiff_t>(n));
  return taken;
}

} // namespace

int run_explain(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  bool as_json = false, check = false, detect_anomaly = false;
  std::size_t width = 80;
  std::string program, dot, format, rankdir, html;
  std::vector<std::string> input_args;
  po::options_description visible("options", 100, 50);
  visible.add_options()("help,h", "show this help")(
      "json", po::bool_switch(&as_json),
      "print one JSON object: output, values, grads (and check); an error is also printed as "
      "{\"error\": {\"kind\": ..., \"exit_code\": ..., \"message\": ...}}")(
      "check", po::bool_switch(&check),
      "add a central finite-difference gradient next to each analytic one (h = 1e-6·max(1, |value|))")(
      "dot", po::value(&dot)->value_name("FILE"),
      "write the graph as Graphviz DOT (values, gradients, local derivatives on the edges)")(
      "render", po::value(&format)->value_name("svg|png"),
      "also run Graphviz's dot on FILE to make the picture (g.dot -> g.svg), written whole or not at all")(
      "rankdir", po::value(&rankdir)->value_name("LR|TB")->default_value("LR"),
      "the picture's direction: LR (inputs on the left) or TB (inputs on top)")(
      "html", po::value(&html)->value_name("FILE"), k_html_help)(
      "width", po::value(&width)->value_name("N"),
      "wrap the text at N columns (default: the terminal's width, 80 when the output is not a terminal; 0: "
      "no limit)")("detect-anomaly", po::bool_switch(&detect_anomaly),
                   "stop with an error (exit 6) at the first op whose value or gradient is NaN or infinite");
  po::options_description hidden;
  hidden.add_options()("program", po::value(&program))("input", po::value(&input_args));
  po::options_description all;
  all.add(visible).add(hidden);
  po::positional_options_description positional;
  positional.add("program", 1).add("input", -1);
  po::variables_map vm;
  po::store(po::command_line_parser(args)
                .options(all)
                .positional(positional)
                .extra_style_parser(take_positionals)
                .run(),
            vm);
  if (vm.count("help")) {
    fmt::print(out, "{}\n", k_usage);
    out << visible;
    fmt::print(out, "{}", k_exit_codes);
    return ok;
  }
  po::notify(vm);

  if (!vm.count("program"))
    throw UsageError(
        "no program given: try gradgraph explain \"q = x + y; f = q * z\" x=-2 y=5 z=-4 (--help for more)");
  if (!format.empty() && format != "svg" && format != "png")
    throw UsageError(fmt::format("--render: '{}' is not svg or png", format));
  if (!format.empty() && dot.empty()) throw UsageError("--render needs --dot FILE, the DOT file to render");
  if (vm.count("dot") && dot.empty()) throw UsageError("--dot: the file name is empty");
  check_html_option(vm.count("html") > 0, html, dot);
  check_rankdir(rankdir);
  if (program.size() > expr::k_max_bytes)
    throw UsageError(fmt::format("the program is {} bytes: at most {} (1 MB) are accepted", program.size(),
                                 expr::k_max_bytes));
  std::size_t input_bytes = 0;
  for (const std::string& a : input_args) input_bytes += a.size();
  if (input_bytes > expr::k_max_bytes)
    throw UsageError(fmt::format("the inputs are {} bytes: at most {} (1 MB) are accepted", input_bytes,
                                 expr::k_max_bytes));

  const std::vector<std::pair<std::string, double>> given = parse_inputs(input_args);
  const expr::Program p = expr::parse(program);
  const std::vector<std::string> order = expr::resolve(p, given);
  const std::unordered_map<std::string, double> values(given.begin(), given.end());
  std::vector<std::pair<std::string, double>> inputs;
  for (const std::string& name : order) inputs.emplace_back(name, values.at(name));

  expr::Numeric numeric(p, inputs);
  if (check && numeric.cost() > k_max_check_cost)
    throw UsageError(fmt::format(
        "--check: finite differences of all {} names would take {:.0f} op evaluations (each name "
        "re-evaluates the ops after its first use: n statements in a chain take about n²/8), more than "
        "the 10^8 allowed: check a shorter program",
        inputs.size() + p.statements.size(), numeric.cost()));

  std::optional<DetectAnomaly> anomaly;
  if (detect_anomaly) anomaly.emplace();
  const expr::Evaluation ev = expr::evaluate(p, inputs);
  ev.output.backward();

  Report r;
  r.output = ev.statements.back().name;
  r.inputs = ev.inputs.size();
  for (const auto* group : {&ev.inputs, &ev.statements})
    for (const expr::Named& n : *group) {
      r.names.push_back(n.name);
      r.values.push_back(n.var.item());
      r.reached.push_back(n.var.has_grad());
      r.grads.push_back(n.var.has_grad() ? n.var.grad().item() : 0.0);
      r.flags.push_back(n.flag);
      r.sources.push_back(n.source);
    }
  std::vector<const expr::Step*> step_of(p.nodes.size(), nullptr);
  for (const expr::Step& s : ev.steps) step_of[s.node] = &s;
  const std::vector<std::int64_t> nonfinite = numeric.through_nonfinite();
  std::vector<expr::Difference> differences;
  if (check) {
    differences = numeric.differences();
    r.check.emplace();
    for (const expr::Difference& d : differences) r.check->push_back(d.value);
  }
  for (std::size_t i = 0; i < r.names.size(); ++i) {
    const std::vector<expr::Kink> kinks = check ? differences[i].kinks : std::vector<expr::Kink>();
    r.notes.push_back(
        note_of(p, step_of, kinks, std::isfinite(r.grads[i]) && r.reached[i] ? nonfinite[i] : -1));
  }

  const std::string page_note = html.empty() ? "" : write_explorer_page(html, program, input_args);
  std::string graph_note;
  if (!dot.empty()) {
    check_render_size(format, graph_stats(ev.output).nodes);
    std::ostringstream os;
    write_dot(os, ev.output, DotOptions{.rankdir = rankdir});
    graph_note = save_graph("explain", dot, os.str(), format, err);
  }

  if (as_json) {
    fmt::print(out, "{}", json_text(r));
    for (const std::string& note : {graph_note, page_note})
      if (!note.empty()) fmt::print(err, "gradgraph explain: {}\n", note);
    return ok;
  }
  if (!vm.count("width"))
    width = &out == &std::cout && train::stdout_is_terminal()
                ? static_cast<std::size_t>(train::terminal_width())
                : 80;
  Layout text(out, width);
  print_forward(text, r, ev);
  text.paragraph("");
  print_backward(text, r, ev);
  text.paragraph("");
  print_gradients(text, r);
  if (!graph_note.empty()) fmt::print(out, "\n{}\n", graph_note); // not wrapped: paths are copied from it
  if (!page_note.empty()) fmt::print(out, "{}{}\n", graph_note.empty() ? "\n" : "", page_note);
  return ok;
}

} // namespace gg::cli
