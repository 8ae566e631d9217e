// The expression language of `gradgraph explain`: a lexer and recursive-descent parser turning
// "q = x + y; f = q * z" into a flat AST, the checks of its names against the given inputs, and
// its evaluation onto named gg::Var ops (every op node named, so traces and DOT read as the source).
#pragma once

#include <cstddef>
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

/// The output's value with one name's value replaced (an input's, or a statement's result), for
/// finite differences; records nothing.
double evaluate_with(const Program& program, const std::vector<std::pair<std::string, double>>& inputs,
                     std::string_view replaced, double value);

} // namespace gg::cli::expr
