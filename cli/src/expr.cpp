// The expression language of `gradgraph explain`: lexer, recursive-descent parser (recursing only
// into parentheses and calls, whose depth is capped), name checks, and evaluation onto gg::Var ops
// in one loop over the post-order AST.
#include "expr.hpp"

#include "messages.hpp"

#include <autodiff/error.hpp>
#include <autodiff/ops.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <fmt/format.h>

namespace gg::cli::expr {

namespace detail {

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_name_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
  return is_name_start(c) || is_digit(c);
}
bool is_continuation(char c) {
  return (static_cast<unsigned char>(c) & 0xC0) == 0x80;
}
/// Characters (not bytes) in s[begin, end).
std::size_t chars(std::string_view s, std::size_t begin, std::size_t end) {
  return static_cast<std::size_t>(std::count_if(s.begin() + static_cast<std::ptrdiff_t>(begin),
                                                s.begin() + static_cast<std::ptrdiff_t>(end),
                                                [](char c) { return !is_continuation(c); }));
}

/// The line holding offset, shown with a caret under it; a long line is cut to a window around it.
std::string caret(std::string_view text, std::size_t at) {
  at = std::min(at, text.size());
  const std::size_t nl = at == 0 ? std::string_view::npos : text.rfind('\n', at - 1);
  const std::size_t line_begin = nl == std::string_view::npos ? 0 : nl + 1;
  const std::size_t line_end = std::min(text.find('\n', at), text.size());
  constexpr std::size_t k_half = 40;
  std::size_t begin = line_begin, end = line_end;
  if (line_end - line_begin > 2 * k_half + 20) {
    begin = std::max(line_begin, at > k_half ? at - k_half : 0);
    end = std::min(line_end, at + k_half);
    while (begin < at && is_continuation(text[begin])) ++begin;
    while (end < line_end && is_continuation(text[end])) ++end;
  }
  // One column per character; control characters and bytes that are not UTF-8 are shown as one
  // column too (a space, a '?'), so the caret stays under its character.
  std::string line = begin > line_begin ? "…" : "";
  std::size_t column = begin > line_begin ? 1 : 0;
  for (std::size_t i = begin; i < end;) {
    if (i == at) column = chars(line, 0, line.size());
    char32_t cp = 0;
    const std::size_t n = utf8_sequence(text, i, cp);
    line += n == 0 ? "?" : cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0) ? " " : text.substr(i, n);
    i += std::max<std::size_t>(n, 1);
  }
  if (at >= end) column = chars(line, 0, line.size());
  if (end < line_end) line += "…";
  return line + "\n" + std::string(column, ' ') + "^";
}

[[noreturn]] void parse_error(std::string_view text, std::size_t at, const std::string& message) {
  throw FormatError(fmt::format("parse error at {}: {}\n{}", position(text, at), message, caret(text, at)));
}

enum class Tok { number, name, plus, minus, star, slash, caret, lparen, rparen, assign, semi, comma, end };

struct Token {
  Tok type;
  std::size_t begin, end;
  double number = 0;
};

/// A number literal's value; out-of-range literals are errors, underflow gives 0 or a subnormal.
double number_of(std::string_view text, std::size_t begin, std::size_t end) {
  double v = 0;
  const auto r = std::from_chars(text.data() + begin, text.data() + end, v);
  if (r.ec == std::errc::result_out_of_range) {
    const std::string s(text.substr(begin, end - begin));
    v = std::strtod(s.c_str(), nullptr);
    if (std::isinf(v)) parse_error(text, begin, fmt::format("the number '{}' is too large for a double", s));
  }
  return v;
}

std::vector<Token> lex(std::string_view text) {
  std::vector<Token> toks;
  std::size_t i = 0;
  const std::size_t n = text.size();
  while (i < n) {
    const char c = text[i];
    if (is_space(c)) {
      ++i;
      continue;
    }
    const std::size_t begin = i;
    if (is_digit(c) || (c == '.' && i + 1 < n && is_digit(text[i + 1]))) {
      while (i < n && is_digit(text[i])) ++i;
      if (i < n && text[i] == '.') {
        ++i;
        while (i < n && is_digit(text[i])) ++i;
      }
      if (i < n && (text[i] == 'e' || text[i] == 'E')) {
        std::size_t k = i + 1;
        if (k < n && (text[k] == '+' || text[k] == '-')) ++k;
        if (k >= n || !is_digit(text[k]))
          parse_error(text, begin,
                      fmt::format("the number '{}' has no exponent digits after '{}'",
                                  text.substr(begin, k - begin), text[i]));
        i = k;
        while (i < n && is_digit(text[i])) ++i;
      }
      toks.push_back({Tok::number, begin, i, number_of(text, begin, i)});
      continue;
    }
    if (is_name_start(c)) {
      while (i < n && is_name_char(text[i])) ++i;
      toks.push_back({Tok::name, begin, i});
      continue;
    }
    Tok t;
    switch (c) {
    case '+': t = Tok::plus; break;
    case '-': t = Tok::minus; break;
    case '*': t = Tok::star; break;
    case '/': t = Tok::slash; break;
    case '^': t = Tok::caret; break;
    case '(': t = Tok::lparen; break;
    case ')': t = Tok::rparen; break;
    case '=': t = Tok::assign; break;
    case ';': t = Tok::semi; break;
    case ',': t = Tok::comma; break;
    default: {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
        parse_error(text, i,
                    fmt::format("unexpected control character (byte 0x{:02x})", static_cast<int>(c)));
      std::size_t j = i + 1;
      while (j < n && is_continuation(text[j])) ++j;
      const std::string_view ch = text.substr(i, j - i);
      char32_t cp = 0;
      if (utf8_sequence(text, i, cp) != ch.size()) // not UTF-8: the byte alone
        parse_error(text, i, fmt::format("unexpected byte 0x{:02x}", static_cast<unsigned char>(c)));
      std::string hint;
      if (!number_hint(ch).empty()) hint = ": write the ASCII '-' for minus";
      if (ch == "×" || ch == "·" || ch == "∙") hint = ": write * for a product";
      if (ch == "÷") hint = ": write / for a division";
      if (cp == 0xA0 || cp == 0x202F || cp == 0x2009)
        hint = ": a special space (copied from a document?): write an ordinary space";
      const std::string code = cp < 0x80 ? "" : fmt::format(" (U+{:04X})", static_cast<unsigned>(cp));
      parse_error(text, i, fmt::format("unexpected character '{}'{}{}", ch, code, hint));
    }
    }
    if (t == Tok::star && i + 1 < n && text[i + 1] == '*')
      parse_error(text, i, "'**' is not an operator here: write x^2 for a power");
    toks.push_back({t, i, i + 1});
    ++i;
  }
  toks.push_back({Tok::end, n, n});
  return toks;
}

enum class Func { exp, log, sqrt, abs, tanh, sigmoid, relu, sin, cos };
constexpr std::pair<std::string_view, Func> k_functions[] = {
    {"exp", Func::exp},   {"log", Func::log},   {"sqrt", Func::sqrt},
    {"abs", Func::abs},   {"tanh", Func::tanh}, {"sigmoid", Func::sigmoid},
    {"relu", Func::relu}, {"sin", Func::sin},   {"cos", Func::cos},
};
bool is_function(std::string_view name) {
  return std::any_of(std::begin(k_functions), std::end(k_functions),
                     [&](const auto& f) { return f.first == name; });
}
Var call_function(std::string_view fn, const Var& x) {
  Func f = Func::exp;
  for (const auto& [name, func] : k_functions)
    if (name == fn) f = func;
  switch (f) {
  case Func::exp: return gg::exp(x);
  case Func::log: return gg::log(x);
  case Func::sqrt: return gg::sqrt(x);
  case Func::abs: return gg::abs(x);
  case Func::tanh: return gg::tanh(x);
  case Func::sigmoid: return gg::sigmoid(x);
  case Func::relu: return gg::relu(x);
  case Func::sin: return gg::sin(x);
  case Func::cos: return gg::cos(x);
  }
  return x;
}

class Parser {
public:
  explicit Parser(std::string_view text) : text_(text), toks_(lex(text)) { p_.text = std::string(text); }

  Program run() {
    for (;;) {
      const Token& t = peek();
      if (t.type == Tok::end) break;
      if (t.type == Tok::semi) { // empty statements (a trailing ';') are allowed
        ++pos_;
        continue;
      }
      statement();
      const Token& after = peek();
      if (after.type == Tok::semi || after.type == Tok::end) continue;
      unexpected_after_expression(after);
    }
    if (p_.statements.empty())
      parse_error(text_, text_.size(),
                  "the program has no statements: write statements like 'f = x * y', separated by ';'");
    return std::move(p_);
  }

private:
  /// An operand as written: its node and its source span, enclosing parentheses included.
  struct Operand {
    int node;
    std::size_t begin, end;
  };

  const Token& peek() const { return toks_[pos_]; }
  /// For a comma at toks_[at] between two numbers written as one ("0,5"): "'0,5': use a dot for
  /// decimals: 0.5"; else "".
  std::string decimal_comma_hint(std::size_t at) const {
    if (at == 0 || at + 1 >= toks_.size() || toks_[at].type != Tok::comma) return {};
    const Token &a = toks_[at - 1], &b = toks_[at + 1];
    if (a.type != Tok::number || b.type != Tok::number || a.end != toks_[at].begin ||
        b.begin != toks_[at].end)
      return {};
    const std::string_view written = text_.substr(a.begin, b.end - a.begin);
    return fmt::format("'{}': {}", written, number_hint(written));
  }
  std::string_view text_of(const Token& t) const { return text_.substr(t.begin, t.end - t.begin); }
  std::string describe(const Token& t) const {
    return t.type == Tok::end ? "the end of the program" : fmt::format("'{}'", text_of(t));
  }

  int add(Node n) {
    p_.nodes.push_back(std::move(n));
    return static_cast<int>(p_.nodes.size() - 1);
  }
  Operand binary(Kind k, const Operand& a, const Operand& b) {
    Node n;
    n.kind = k;
    n.a = a.node;
    n.b = b.node;
    n.begin = a.begin;
    n.end = b.end;
    return {add(std::move(n)), a.begin, b.end};
  }
  Operand negate(std::size_t minus_at, const Operand& x) {
    Node n;
    n.kind = Kind::neg;
    n.a = x.node;
    n.begin = minus_at;
    n.end = x.end;
    return {add(std::move(n)), minus_at, x.end};
  }

  void statement() {
    const Token& t = peek();
    if (t.type != Tok::name)
      parse_error(text_, t.begin,
                  fmt::format("expected a statement 'name = expression', found {}: a program is statements "
                              "like 'f = x * y', separated by ';'",
                              describe(t)));
    const std::string name(text_of(t));
    if (is_function(name))
      parse_error(text_, t.begin, fmt::format("cannot assign to '{}': it is a function", name));
    ++pos_;
    if (peek().type != Tok::assign)
      parse_error(
          text_, peek().begin,
          fmt::format("expected '=' after '{}': a program is statements like 'f = x * y', separated by ';'",
                      name));
    ++pos_;
    const std::size_t first = p_.nodes.size();
    const Operand e = expression();
    p_.statements.push_back({name, t.begin, e.end, first, static_cast<std::size_t>(e.node)});
  }

  [[noreturn]] void unexpected_after_expression(const Token& t) const {
    if (t.type == Tok::rparen) parse_error(text_, t.begin, "unmatched ')'");
    if (t.type == Tok::assign) parse_error(text_, t.begin, "unexpected '=': separate statements with ';'");
    const Token& prev = toks_[pos_ - 1];
    if (const std::string hint = decimal_comma_hint(pos_); !hint.empty())
      parse_error(text_, prev.begin, hint);
    if (prev.type == Tok::number && (t.type == Tok::name || t.type == Tok::lparen))
      parse_error(text_, t.begin,
                  fmt::format("expected an operator before {}: write {}*{} for a product", describe(t),
                              text_of(prev), text_of(t)));
    parse_error(text_, t.begin, fmt::format("expected an operator or ';' before {}", describe(t)));
  }

  Operand expression() {
    Operand lhs = term();
    while (peek().type == Tok::plus || peek().type == Tok::minus) {
      const Kind k = peek().type == Tok::plus ? Kind::add : Kind::sub;
      ++pos_;
      lhs = binary(k, lhs, term());
    }
    return lhs;
  }

  Operand term() {
    Operand lhs = unary();
    while (peek().type == Tok::star || peek().type == Tok::slash) {
      const Kind k = peek().type == Tok::star ? Kind::mul : Kind::div;
      ++pos_;
      lhs = binary(k, lhs, unary());
    }
    return lhs;
  }

  std::vector<std::size_t> minuses() {
    std::vector<std::size_t> at;
    while (peek().type == Tok::minus) at.push_back(toks_[pos_++].begin);
    return at;
  }
  Operand negated(const std::vector<std::size_t>& minus_at, Operand x) {
    for (auto it = minus_at.rbegin(); it != minus_at.rend(); ++it) x = negate(*it, x);
    return x;
  }

  /// unary := '-'* power. Unary minus binds looser than '^': -x^2 is -(x^2).
  Operand unary() {
    const std::vector<std::size_t> minus_at = minuses();
    return negated(minus_at, power());
  }

  /// power := primary ('^' '-'* primary)*, folded from the right (2^3^2 is 2^(3^2)); an
  /// exponent's minus applies to the rest of the chain (2^-x^2 is 2^(-(x^2))), as in Python.
  Operand power() {
    std::vector<Operand> operands{primary()};
    std::vector<std::vector<std::size_t>> minus_at{{}};
    while (peek().type == Tok::caret) {
      ++pos_;
      minus_at.push_back(minuses());
      operands.push_back(primary());
    }
    Operand acc = negated(minus_at.back(), operands.back());
    for (std::size_t k = operands.size() - 1; k-- > 0;) {
      acc = binary(Kind::pow, operands[k], acc);
      if (k > 0) acc = negated(minus_at[k], acc);
    }
    return acc;
  }

  void enter(const Token& open) {
    if (++depth_ > k_max_depth)
      parse_error(text_, open.begin,
                  fmt::format("parentheses and function calls nest deeper than {} levels", k_max_depth));
  }

  /// Consumes the ')' closing `open`, returning the offset just past it.
  std::size_t close(const Token& open) {
    const Token& t = peek();
    if (t.type != Tok::rparen)
      parse_error(text_, t.begin,
                  fmt::format("expected ')' to close the '(' at {}, found {}", position(text_, open.begin),
                              describe(t)));
    ++pos_;
    --depth_;
    return t.end;
  }

  Operand primary() {
    const Token& t = peek();
    switch (t.type) {
    case Tok::number: {
      ++pos_;
      Node n;
      n.kind = Kind::number;
      n.number = t.number;
      n.begin = t.begin;
      n.end = t.end;
      return {add(std::move(n)), t.begin, t.end};
    }
    case Tok::name: {
      ++pos_;
      const std::string name(text_of(t));
      if (peek().type == Tok::lparen) return call(t, name);
      if (is_function(name))
        parse_error(text_, t.end,
                    fmt::format("expected '(' after the function '{}': write {}(x)", name, name));
      Node n;
      n.kind = Kind::name;
      n.name = name;
      n.begin = t.begin;
      n.end = t.end;
      return {add(std::move(n)), t.begin, t.end};
    }
    case Tok::lparen: {
      ++pos_;
      enter(t);
      const Operand inner = expression();
      const std::size_t end = close(t);
      return {inner.node, t.begin, end};
    }
    default: {
      const Token& prev = toks_[pos_ - 1];
      if (t.type == Tok::rparen && prev.type == Tok::lparen)
        parse_error(text_, t.begin, "expected an expression inside '()'");
      parse_error(text_, t.begin, fmt::format("expected an expression after '{}'", text_of(prev)));
    }
    }
  }

  Operand call(const Token& name_tok, const std::string& name) {
    const Token& open = peek();
    if (!is_function(name))
      throw ValueError(fmt::format("unknown function '{}' at {} (the functions are {})", name,
                                   position(text_, name_tok.begin), fmt::join(function_names(), " ")));
    ++pos_;
    enter(open);
    std::vector<Operand> args;
    if (peek().type != Tok::rparen) {
      args.push_back(expression());
      while (peek().type == Tok::comma) {
        ++pos_;
        args.push_back(expression());
      }
    }
    const std::size_t rparen = pos_; // f(0,5): the comma is two tokens before the ')'
    const std::size_t end = close(open);
    if (const std::string hint = args.size() == 2 ? decimal_comma_hint(rparen - 2) : ""; !hint.empty())
      throw ValueError(fmt::format("{}() takes one argument, got 2 at {} ({})", name,
                                   position(text_, name_tok.begin), hint));
    if (args.size() != 1)
      throw ValueError(fmt::format("{}() takes one argument, got {} at {}", name, args.size(),
                                   position(text_, name_tok.begin)));
    Node n;
    n.kind = Kind::call;
    n.name = name;
    n.a = args[0].node;
    n.begin = name_tok.begin;
    n.end = end;
    return {add(std::move(n)), name_tok.begin, end};
  }

  std::string_view text_;
  std::vector<Token> toks_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  Program p_;
};

/// s with whitespace runs collapsed to one space, trimmed; at most `limit` characters are kept.
std::string collapse(std::string_view s, std::size_t limit = std::string::npos) {
  std::string r;
  bool space = false;
  for (const char c : s) {
    if (is_space(c)) {
      space = !r.empty();
      continue;
    }
    if (r.size() + (space ? 2 : 1) > limit) break;
    if (space) r += ' ';
    space = false;
    r += c;
  }
  return r;
}

/// Whether s reads as one operand: "f(...)" or "(...)" whose first '(' closes at the end.
bool is_atomic(std::string_view s) {
  const std::size_t open = s.find('(');
  if (open == std::string_view::npos || s.back() != ')') return false;
  if (!std::all_of(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(open), is_name_char)) return false;
  int depth = 0;
  for (std::size_t i = open; i < s.size(); ++i) {
    depth += s[i] == '(' ? 1 : s[i] == ')' ? -1 : 0;
    if (depth == 0) return i + 1 == s.size();
  }
  return false;
}

/// The name of an unnamed op node: its source text, parenthesized unless it already reads as one
/// operand, cut at 40 characters (reading no further: chains of 100k terms stay linear).
std::string text_name(std::string_view source, const Node& n) {
  constexpr std::size_t k_max = 40;
  const std::string s = collapse(source.substr(n.begin, n.end - n.begin), k_max + 1);
  if (s.size() > k_max) return "(" + s.substr(0, k_max - 2) + "…)";
  return is_atomic(s) ? s : "(" + s + ")";
}

/// A value during evaluation: a constant (kept out of the graph) or a Var.
struct Value {
  bool is_const = true;
  double c = 0;
  Var v;
  std::string label; ///< how a definition shows it: the Var's name, or the constant
  std::string why;   ///< not finite: the reason where it became so ("division by zero") ...
  std::string at;    ///< ... and at which name ("" when finite)
  double number() const { return is_const ? c : v.item(); }
};

Value constant(double c) {
  Value r;
  r.c = c;
  r.label = std::isnan(c) ? "nan" : fmt::format("{}", c);
  return r;
}

/// The op's result on constants and Vars: double overloads keep constants out of the graph.
Var compute(Kind k, const Value& a, const Value& b) {
  const auto binary_op = [&](auto op) -> Var {
    if (a.is_const && b.is_const) return op(Var::constant(a.c), Var::constant(b.c));
    if (a.is_const) return op(a.c, b.v);
    if (b.is_const) return op(a.v, b.c);
    return op(a.v, b.v);
  };
  switch (k) {
  case Kind::add: return binary_op([](const auto& x, const auto& y) { return x + y; });
  case Kind::sub: return binary_op([](const auto& x, const auto& y) { return x - y; });
  case Kind::mul: return binary_op([](const auto& x, const auto& y) { return x * y; });
  case Kind::div: return binary_op([](const auto& x, const auto& y) { return x / y; });
  case Kind::pow: return binary_op([](const auto& x, const auto& y) { return gg::pow(x, y); });
  default: return a.is_const ? -Var::constant(a.c) : -a.v; // neg
  }
}

/// Why an op gave a non-finite value from finite operands (or NaN from infinite ones).
std::string reason(const Node& n, double a, double b) {
  if (!std::isfinite(a) || (n.b >= 0 && !std::isfinite(b))) {
    switch (n.kind) {
    case Kind::add:
    case Kind::sub: return "inf - inf";
    case Kind::mul: return "0 × inf";
    case Kind::div: return "inf / inf";
    case Kind::pow: return "an undefined power of inf";
    default: return fmt::format("{} of inf", n.name);
    }
  }
  switch (n.kind) {
  case Kind::div: return a == 0 && b == 0 ? "0/0" : b == 0 ? "division by zero" : "overflow in a division";
  case Kind::pow:
    if (a == 0 && b < 0) return "0 to a negative power";
    if (a < 0 && b != std::trunc(b)) return "a negative number to a fractional power";
    return "overflow in a power";
  case Kind::call:
    if (n.name == "log") return a == 0 ? "log of 0" : "log of a negative number";
    if (n.name == "sqrt") return "square root of a negative number";
    if (n.name == "exp") return "overflow in exp";
    return "overflow";
  default: return "overflow";
  }
}

/// A definition's operand: negative constants parenthesized where a sign would misread.
std::string operand(const Value& x, bool base_of_power) {
  return x.is_const && base_of_power && (x.c < 0 || std::signbit(x.c)) ? "(" + x.label + ")" : x.label;
}

std::string definition(const Node& n, const Value& a, const Value& b) {
  switch (n.kind) {
  case Kind::add: return fmt::format("{} + {}", a.label, b.label);
  case Kind::sub: return fmt::format("{} - {}", a.label, b.label);
  case Kind::mul: return fmt::format("{} * {}", a.label, b.label);
  case Kind::div: return fmt::format("{} / {}", a.label, b.label);
  case Kind::pow: return fmt::format("{}^{}", operand(a, true), b.label);
  case Kind::neg: return fmt::format("-{}", a.label);
  default: // call: relu(z*z), not relu((z*z))
    return a.label.front() == '(' && is_atomic(a.label) ? n.name + a.label
                                                        : fmt::format("{}({})", n.name, a.label);
  }
}

/// Evaluates the program onto named Vars, recording steps and the reasons for non-finite values.
/// The AST is in post-order, so operands are the values most recently computed and not yet used: a
/// stack, which holds only the values still waiting for their user (a statement of a million ops
/// needs no million Values).
void run(const Program& p, const std::vector<std::pair<std::string, double>>& inputs, Evaluation& out) {
  std::unordered_map<std::string, Value> names;
  for (const auto& [name, v] : inputs) {
    Value x;
    x.is_const = false;
    x.v = Var(v);
    x.label = name;
    x.v.name(name);
    out.inputs.push_back({name, x.v, name, ""});
    names.emplace(name, std::move(x));
  }
  std::unordered_map<std::string, int> taken; // temporary names used so far, to number repeats
  std::vector<Value> stack;
  const Value none = constant(0); // the second operand of a one-operand op
  for (std::size_t s = 0; s < p.statements.size(); ++s) {
    const Statement& st = p.statements[s];
    for (std::size_t i = st.first_node; i <= st.root; ++i) {
      const Node& n = p.nodes[i];
      if (n.kind == Kind::number) {
        stack.push_back(constant(n.number));
        continue;
      }
      if (n.kind == Kind::name) {
        Value& r = stack.emplace_back(names.at(n.name));
        r.label = n.name;
        if (!std::isfinite(r.number())) r.why.clear(), r.at = n.name;
        continue;
      }
      const std::size_t operands = n.b >= 0 ? 2 : 1;
      const Value& a = stack[stack.size() - operands];
      const Value& b = n.b >= 0 ? stack.back() : none;
      Value r;
      const Var v = n.kind == Kind::call ? call_function(n.name, a.is_const ? Var::constant(a.c) : a.v)
                                         : compute(n.kind, a, b);
      if (a.is_const && b.is_const) {
        r = constant(v.item());
      } else {
        r.is_const = false;
        r.v = v;
        std::string name;
        if (i == st.root) {
          name = st.name;
        } else {
          name = text_name(p.text, n);
          if (const int k = taken[name]++; k > 0) name += fmt::format("#{}", k + 1);
        }
        r.v.name(name);
        r.label = name;
        out.steps.push_back({name, definition(n, a, b), r.v, s, i == st.root, i});
      }
      if (!std::isfinite(r.number())) {
        // Propagated from a non-finite operand, unless infinities made a NaN here (inf - inf).
        const auto passes = [&](const Value& x) {
          return !std::isfinite(x.number()) && (std::isnan(x.number()) || !std::isnan(r.number()));
        };
        const Value* culprit = passes(a) ? &a : n.b >= 0 && passes(b) ? &b : nullptr;
        if (culprit) {
          r.why = culprit->why, r.at = culprit->at;
        } else {
          r.why = reason(n, a.number(), b.number());
          r.at = r.is_const ? text_name(p.text, n) : r.label;
        }
      }
      stack.resize(stack.size() - operands);
      stack.push_back(std::move(r));
    }
    // The statement's own Var: a fresh op node, or one made for it (b = a, c = 2).
    Value result = std::move(stack.back());
    stack.pop_back();
    if (result.is_const) {
      result.v = Var(result.c);
      result.is_const = false;
      result.v.name(st.name);
    } else if (p.nodes[st.root].kind == Kind::name) {
      const std::string def = result.label;
      result.v = result.v + 0.0;
      result.v.name(st.name);
      out.steps.push_back({st.name, def, result.v, s, true, st.root});
    }
    result.label = st.name;
    std::string flag;
    if (!result.why.empty() || !result.at.empty())
      flag = result.why.empty()                    ? "from " + result.at
             : result.at == st.name                ? result.why
             : result.at == "(" + result.why + ")" ? result.why // "0/0", not "0/0 in (0/0)"
                                                   : fmt::format("{} in {}", result.why, result.at);
    const std::string source = collapse(std::string_view(p.text).substr(st.name_at, st.end - st.name_at));
    out.statements.push_back({st.name, result.v, source, flag});
    out.output = result.v;
    names.insert_or_assign(st.name, std::move(result));
  }
}

} // namespace detail

const std::vector<std::string>& function_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> r;
    for (const auto& f : detail::k_functions) r.emplace_back(f.first);
    return r;
  }();
  return names;
}

std::string position(std::string_view text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t last = text.size();
  while (last > 0 && detail::is_space(text[last - 1])) --last;
  const bool multiline = text.substr(0, last).find('\n') != std::string_view::npos;
  const std::size_t nl = offset == 0 ? std::string_view::npos : text.rfind('\n', offset - 1);
  const std::size_t line_begin = nl == std::string_view::npos ? 0 : nl + 1;
  const std::size_t column = detail::chars(text, line_begin, offset) + 1;
  if (!multiline) return fmt::format("column {}", column);
  const auto line = std::count(text.begin(), text.begin() + static_cast<std::ptrdiff_t>(offset), '\n') + 1;
  return fmt::format("line {}, column {}", line, column);
}

Program parse(std::string_view text) {
  return detail::Parser(text).run();
}

std::vector<std::string> resolve(const Program& p, const std::vector<std::pair<std::string, double>>& given) {
  std::unordered_map<std::string, double> values;
  for (const auto& [name, v] : given) values.emplace(name, v);
  std::unordered_map<std::string, std::size_t> assigned; // name -> statement (0-based)
  for (std::size_t s = 0; s < p.statements.size(); ++s) {
    const std::string& name = p.statements[s].name;
    if (const auto it = values.find(name); it != values.end())
      throw ValueError(fmt::format("'{}' is an input (given as {}={}) but statement {} assigns it", name,
                                   name, it->second, s + 1));
    if (const auto [it, fresh] = assigned.emplace(name, s); !fresh)
      throw ValueError(
          fmt::format("'{}' is assigned twice (statements {} and {})", name, it->second + 1, s + 1));
  }
  std::vector<std::string> inputs;
  std::unordered_set<std::string> seen;
  const Node* missing = nullptr;
  for (std::size_t s = 0; s < p.statements.size(); ++s) {
    const Statement& st = p.statements[s];
    for (std::size_t i = st.first_node; i <= st.root; ++i) {
      const Node& n = p.nodes[i];
      if (n.kind != Kind::name) continue;
      if (const auto it = assigned.find(n.name); it != assigned.end()) {
        if (it->second < s) continue;
        throw ValueError(
            it->second == s
                ? fmt::format("unknown name '{}' at {} (a statement cannot use the name it assigns)", n.name,
                              position(p.text, n.begin))
                : fmt::format(
                      "unknown name '{}' at {} (statement {} assigns it, later: use a name only after "
                      "its statement)",
                      n.name, position(p.text, n.begin), it->second + 1));
      }
      if (values.count(n.name)) {
        if (seen.insert(n.name).second) inputs.push_back(n.name);
      } else if (!missing) {
        missing = &n;
      }
    }
  }
  std::vector<std::string> unused;
  for (const auto& [name, v] : given)
    if (!seen.count(name)) unused.push_back(name);
  if (missing) {
    if (!unused.empty())
      throw ValueError(
          fmt::format("unknown name '{}' at {} (no statement assigns it and no value is given for it; "
                      "given but not used: {})",
                      missing->name, position(p.text, missing->begin), fmt::join(unused, ", ")));
    throw UsageError(fmt::format("no value given for input '{}' (used at {}): add {}=VALUE after the program",
                                 missing->name, position(p.text, missing->begin), missing->name));
  }
  if (!unused.empty()) throw UsageError(fmt::format("input '{}' is not used by the program", unused.front()));
  return inputs;
}

Evaluation evaluate(const Program& program, const std::vector<std::pair<std::string, double>>& inputs) {
  Evaluation ev;
  detail::run(program, inputs, ev);
  return ev;
}

namespace detail {

/// f(x) on doubles for the function with index f in k_functions, as the scalar ops compute it.
double function_value(std::size_t f, double x) {
  switch (k_functions[f].second) {
  case Func::exp: return std::exp(x);
  case Func::log: return std::log(x);
  case Func::sqrt: return std::sqrt(x);
  case Func::abs: return std::fabs(x);
  case Func::tanh: return std::tanh(x);
  case Func::sigmoid: {
    if (x >= 0) return 1 / (1 + std::exp(-x));
    const double e = std::exp(x);
    return e / (1 + e);
  }
  case Func::relu: return x > 0 ? x : 0.0;
  case Func::sin: return std::sin(x);
  case Func::cos: return std::cos(x);
  }
  return x;
}

bool has_kink(std::size_t f) {
  return k_functions[f].second == Func::relu || k_functions[f].second == Func::abs;
}

} // namespace detail

Numeric::Numeric(const Program& p, const std::vector<std::pair<std::string, double>>& inputs) {
  using namespace detail;
  std::unordered_map<std::string_view, std::uint32_t> slot_of_name;
  const auto new_slot = [&](double v) {
    base_.push_back(v);
    return static_cast<std::uint32_t>(base_.size() - 1);
  };
  const auto add_op = [&](Kind kind, std::uint8_t function, std::uint32_t a, std::uint32_t b,
                          std::size_t node) {
    const std::uint32_t out = new_slot(0);
    ops_.push_back({kind, function, a, b, out, static_cast<std::uint32_t>(node)});
    base_[out] = apply(ops_.back(), base_);
    return out;
  };
  for (const auto& [name, v] : inputs) name_slot_.push_back(slot_of_name[name] = new_slot(v));
  std::vector<std::uint32_t> slot(p.nodes.size());
  for (const Statement& st : p.statements) {
    for (std::size_t i = st.first_node; i <= st.root; ++i) {
      const Node& n = p.nodes[i];
      if (n.kind == Kind::number) {
        slot[i] = new_slot(n.number);
      } else if (n.kind == Kind::name) {
        slot[i] = slot_of_name.at(n.name);
      } else {
        std::uint8_t function = 0;
        if (n.kind == Kind::call)
          while (k_functions[function].first != n.name) ++function;
        const std::uint32_t a = slot[static_cast<std::size_t>(n.a)];
        slot[i] = add_op(n.kind, function, a, n.b >= 0 ? slot[static_cast<std::size_t>(n.b)] : a, i);
      }
    }
    // A statement that is a bare name gets a slot of its own, so that it can be changed alone.
    const std::uint32_t root = slot[st.root];
    const std::uint32_t own =
        p.nodes[st.root].kind == Kind::name ? add_op(Kind::name, 0, root, root, st.root) : root;
    name_slot_.push_back(slot_of_name[st.name] = own);
  }
  output_ = name_slot_.back();
  first_use_.assign(base_.size(), static_cast<std::uint32_t>(ops_.size()));
  for (std::size_t k = ops_.size(); k-- > 0;)
    first_use_[ops_[k].a] = first_use_[ops_[k].b] = static_cast<std::uint32_t>(k);
}

double Numeric::apply(const Op& op, const std::vector<double>& v) {
  const double a = v[op.a], b = v[op.b];
  switch (op.kind) {
  case Kind::add: return a + b;
  case Kind::sub: return a - b;
  case Kind::mul: return a * b;
  case Kind::div: return a / b;
  case Kind::pow: return std::pow(a, b);
  case Kind::neg: return -a;
  case Kind::call: return detail::function_value(op.function, a);
  default: return a; // Kind::name: a copy
  }
}

std::vector<std::vector<std::size_t>> Numeric::batches() const {
  std::vector<std::size_t> order(name_slot_.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  // Latest first use first: a batch recomputes every op from its earliest first use, which then
  // also overwrites all that the batches before it changed.
  std::stable_sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) {
    return first_use_[name_slot_[x]] > first_use_[name_slot_[y]];
  });
  std::vector<std::vector<std::size_t>> r;
  for (std::size_t i = 0; i < order.size(); i += k_names)
    r.emplace_back(order.begin() + static_cast<std::ptrdiff_t>(i),
                   order.begin() + static_cast<std::ptrdiff_t>(std::min(i + k_names, order.size())));
  return r;
}

double Numeric::cost() const {
  double total = 0;
  for (const auto& batch : batches())
    total += static_cast<double>(ops_.size() - first_use_[name_slot_[batch.back()]]);
  return total;
}

std::vector<Difference> Numeric::differences() {
  constexpr std::size_t L = k_lanes;
  // values[slot * L + lane]; every lane starts at the given values.
  std::vector<double> values(base_.size() * L);
  for (std::size_t s = 0; s < base_.size(); ++s)
    std::fill_n(values.begin() + static_cast<std::ptrdiff_t>(s * L), L, base_[s]);
  std::vector<char> pinned(base_.size(), 0); // slots a lane holds at v ± h: ops must not overwrite them
  std::vector<double> steps(L);
  std::vector<Difference> result(name_slot_.size());
  for (const auto& batch : batches()) {
    // Each name's two lanes get v + h and v - h; a slot holding several names of the batch
    // (never: names have their own slots) would need more.
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const std::uint32_t slot = name_slot_[batch[i]];
      const double v = base_[slot], h = 1e-6 * std::max(1.0, std::abs(v));
      steps[2 * i] = steps[2 * i + 1] = h;
      values[slot * L + 2 * i] = v + h;
      values[slot * L + 2 * i + 1] = v - h;
      pinned[slot] = 1;
    }
    const std::size_t begin = first_use_[name_slot_[batch.back()]];
    const auto lane_of_pinned = [&](std::uint32_t slot, std::size_t lane) {
      for (std::size_t i = 0; i < batch.size(); ++i)
        if (name_slot_[batch[i]] == slot) return lane / 2 == i;
      return false;
    };
    for (std::size_t k = begin; k < ops_.size(); ++k) {
      const Op& op = ops_[k];
      double* out = &values[op.out * L];
      const double *a = &values[op.a * L], *b = &values[op.b * L];
      double r[L];
      switch (op.kind) {
      case Kind::add:
        for (std::size_t l = 0; l < L; ++l) r[l] = a[l] + b[l];
        break;
      case Kind::sub:
        for (std::size_t l = 0; l < L; ++l) r[l] = a[l] - b[l];
        break;
      case Kind::mul:
        for (std::size_t l = 0; l < L; ++l) r[l] = a[l] * b[l];
        break;
      case Kind::div:
        for (std::size_t l = 0; l < L; ++l) r[l] = a[l] / b[l];
        break;
      case Kind::neg:
        for (std::size_t l = 0; l < L; ++l) r[l] = -a[l];
        break;
      case Kind::pow:
        for (std::size_t l = 0; l < L; ++l) r[l] = std::pow(a[l], b[l]);
        break;
      case Kind::call:
        for (std::size_t l = 0; l < L; ++l) r[l] = detail::function_value(op.function, a[l]);
        if (detail::has_kink(op.function)) {
          // A lane whose perturbation moved this op's input across relu's or abs's kink at 0, or
          // moved it off the kink, stepped on it.
          const double before = base_[op.a];
          for (std::size_t l = 0; l < L; ++l) {
            const double now = a[l];
            if (now == before || !(before == 0 || (before > 0) != (now > 0) || (before < 0) != (now < 0)))
              continue;
            std::vector<Kink>& kinks = result[batch[l / 2]].kinks;
            if (std::any_of(kinks.begin(), kinks.end(), [&](const Kink& x) { return x.node == op.node; }))
              continue;
            const double f0 = detail::function_value(op.function, 0);
            kinks.push_back({op.node, before, (f0 - detail::function_value(op.function, -1e-6)) / 1e-6,
                             (detail::function_value(op.function, 1e-6) - f0) / 1e-6});
          }
        }
        break;
      default:
        for (std::size_t l = 0; l < L; ++l) r[l] = a[l];
        break; // a copy (b = a)
      }
      if (!pinned[op.out]) {
        std::copy_n(r, L, out);
      } else {
        for (std::size_t l = 0; l < L; ++l)
          if (!lane_of_pinned(op.out, l)) out[l] = r[l];
      }
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const double* f = &values[output_ * L + 2 * i];
      result[batch[i]].value = (f[0] - f[1]) / (2 * steps[2 * i]);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
      const std::uint32_t slot = name_slot_[batch[i]];
      std::fill_n(values.begin() + static_cast<std::ptrdiff_t>(slot * L), L, base_[slot]);
      pinned[slot] = 0;
    }
  }
  return result;
}

std::vector<std::int64_t> Numeric::through_nonfinite() const {
  // Backwards from the output, for each slot on the way: the non-finite op its gradient passes
  // through, preferring one where the values became non-finite (finite operands: log(-2)) to one
  // that only passes a NaN on, and then the nearest.
  struct Via {
    std::int64_t node = -1;
    int rank = 0; ///< 0 none, 1 passes a non-finite value on, 2 made one
  };
  std::vector<Via> via(base_.size());
  std::vector<char> reaches(base_.size(), 0);
  reaches[output_] = 1;
  for (std::size_t k = ops_.size(); k-- > 0;) {
    const Op& op = ops_[k];
    if (!reaches[op.out]) continue;
    Via here = via[op.out];
    if (!std::isfinite(base_[op.out])) {
      const int rank = std::isfinite(base_[op.a]) && std::isfinite(base_[op.b]) ? 2 : 1;
      if (rank >= here.rank) here = {op.node, rank};
    }
    for (const std::uint32_t in : {op.a, op.b}) {
      reaches[in] = 1;
      if (here.rank >= via[in].rank && here.rank > 0) via[in] = here;
    }
  }
  std::vector<std::int64_t> r;
  for (const std::uint32_t slot : name_slot_) r.push_back(slot == output_ ? -1 : via[slot].node);
  return r;
}

double local_derivative(std::string_view fn, double x) {
  Var t(x);
  detail::call_function(fn, t).backward();
  return t.grad().item();
}

} // namespace gg::cli::expr
