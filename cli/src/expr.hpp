// The expression language of `gradgraph explain`: a lexer and recursive-descent parser turning
// "q = x + y; f = q * z" into a flat AST, the checks of its names against the given inputs, and
// its evaluation onto named gg::Var ops (every op node named, so traces and DOT read as the source).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <autodiff/var.hpp>

namespace gg::cli::expr {

/// Longest program or total input text accepted (a UsageError beyond it).
inline constexpr std::size_t k_max_bytes = 1 << 20;
/// Deepest nesting of parentheses and function calls (a FormatError beyond it): the parser
/// recurses once per level, so this bounds its stack.
inline constexpr int k_max_depth = 256;

enum class Kind { number, name, neg, add, sub, mul, div, pow, call };

/// One AST node. Nodes live in Program::nodes in the order the parser completes them
/// (post-order: operands before the node), so evaluation is one loop and nothing recurses.
struct Node {
  Kind kind = Kind::number;
  double number = 0; ///< the literal, for Kind::number
  std::string name;  ///< the name (Kind::name) or function (Kind::call)
  int a = -1, b = -1;
  std::size_t begin = 0,
              end = 0; ///< the source text [begin, end) of this node (without enclosing parentheses)
};

/// `name = expression`.
struct Statement {
  std::string name;
  std::size_t name_at = 0;    ///< source offset of the name
  std::size_t end = 0;        ///< source offset just past the expression
  std::size_t first_node = 0; ///< the statement's nodes are [first_node, root]
  std::size_t root = 0;       ///< the expression's top node
};

struct Program {
  std::string text;
  std::vector<Node> nodes;
  std::vector<Statement> statements;
};

/// The functions of the language, in the order --help lists them.
const std::vector<std::string>& function_names();

/// Parses a program. A FormatError's message is the one-line reason, then the program line and a
/// caret under the column; unknown functions and wrong argument counts are ValueErrors.
Program parse(std::string_view text);

/// "column 9", or "line 2, column 4" when the text has several lines (columns count characters).
std::string position(std::string_view text, std::size_t offset);

/// Checks the program's names against the given inputs (name, value) and returns the inputs'
/// names in the order they first appear in the program. Throws ValueError (unknown name, a name
/// assigned twice, assigning an input) or UsageError (no value for an input, an unused input).
std::vector<std::string> resolve(const Program& program,
                                 const std::vector<std::pair<std::string, double>>& given);

/// One op node recorded while evaluating: its name and its definition in terms of its operands.
struct Step {
  std::string name;       ///< the statement's name for its top node, else the source text: "(2*x)"
  std::string definition; ///< "(2*x) + 2", "relu(z)", "-(x^2)"
  gg::Var var;
  std::size_t statement; ///< which statement it belongs to (0-based)
  bool is_statement;     ///< the statement's top node
  std::size_t node;      ///< its AST node in Program::nodes
};

/// A name (input or statement) and its value.
struct Named {
  std::string name;
  gg::Var var;
  std::string source; ///< for statements, their text "q = x + y" (whitespace collapsed)
  std::string flag;   ///< why the value is not finite ("division by zero"), "" when it is
};

struct Evaluation {
  std::vector<Named> inputs, statements;
  std::vector<Step> steps; ///< every op node, in evaluation order
  gg::Var output;          ///< the last statement's Var
};

/// Evaluates the program on scalar leaves gg::Var(value) named as the inputs (given in resolve's
/// order). Constants stay out of the graph (2*x records one mul_c node); a statement that is a
/// bare name gets its own node (b = a records a + 0), one that is constant becomes a leaf.
Evaluation evaluate(const Program& program, const std::vector<std::pair<std::string, double>>& inputs);

/// A kink a finite difference stepped on: a relu or abs whose input is 0 here, or changes sign
/// between v - h and v + h, so the one-sided slopes differ and a central difference averages them.
struct Kink {
  std::size_t node;   ///< the call's AST node in Program::nodes
  double input;       ///< the call's input at the given values
  double left, right; ///< its slopes left and right of the kink
};

/// A central finite difference (f(v + h) - f(v - h)) / 2h of the output, h = 1e-6·max(1, |v|).
struct Difference {
  double value;
  std::vector<Kink> kinks; ///< kinks the two evaluations stepped on, in evaluation order
};

/// The program compiled to plain doubles (no graph) for `explain --check`: central finite
/// differences of the output with respect to every name, and, from the values alone, which names'
/// gradients flow through values that are not finite.
///
/// A difference re-evaluates the ops from the name's first use on. Names are taken eight at a time,
/// both steps of each at once: sixteen lanes per value, which the compiler turns into vector
/// instructions. A chain of n statements still costs about n^2 / 16 lane-op steps: the limit
/// explain puts on cost() bounds it.
class Numeric {
public:
  /// inputs in resolve's order, with their values.
  Numeric(const Program& program, const std::vector<std::pair<std::string, double>>& inputs);
  /// Op evaluations (of all lanes at once) differences() takes.
  double cost() const;
  /// The difference for every name: the inputs in resolve's order, then the statements.
  std::vector<Difference> differences();
  /// For each name: the first op on its way to the output whose value is not finite (its AST node),
  /// or -1 when the way holds none (backward's gradient then flows through finite values only).
  std::vector<std::int64_t> through_nonfinite() const;

private:
  static constexpr std::size_t k_names = 8, k_lanes = 2 * k_names; ///< lane 2i: name i + h; 2i+1: - h
  struct Op {
    Kind kind;             ///< Kind::name copies its operand (a statement `b = a`)
    std::uint8_t function; ///< for Kind::call: the index in function_names()
    std::uint32_t a, b;    ///< operand slots (b = a for one operand)
    std::uint32_t out;     ///< result slot
    std::uint32_t node;    ///< AST node
  };
  static double apply(const Op& op, const std::vector<double>& values);
  /// The names taken together, each batch's names in order of first use, last batch first.
  std::vector<std::vector<std::size_t>> batches() const;
  std::vector<Op> ops_;
  std::vector<double> base_;             ///< slot values at the given inputs
  std::vector<std::uint32_t> name_slot_; ///< inputs, then statements
  std::vector<std::uint32_t> first_use_; ///< per slot: the first op using it (ops_.size(): none)
  std::uint32_t output_ = 0;
};

/// d f(x)/dx as backward computes it for the function named fn at x: at a kink, the subgradient it
/// uses (relu and abs at 0: 0).
double local_derivative(std::string_view fn, double x);

} // namespace gg::cli::expr
