// Writes docs/ops.md, the reference of every op and its derivative rule, from the op table
// (autodiff/src/op.cpp), so the page cannot drift from the code. `gen_ops` prints the page;
// `gen_ops --check FILE` exits 1 when FILE differs (a test runs that).
#include <autodiff/op.hpp>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace {
/// s with each '|' escaped: a bare bar would end the table's cell (abs computes |a|).
std::string text(std::string_view s) {
  std::string out;
  for (char ch : s) out += ch == '|' ? std::string("\\|") : std::string(1, ch);
  return out;
}
/// s as code in a cell.
std::string cell(std::string_view s) {
  if (s.empty()) return {};
  std::string out(1, '`');
  out += text(s);
  out += '`';
  return out;
}

std::string page() {
  std::ostringstream os;
  os << "# Operations and their derivative rules\n\n"
        "Generated from the op table (`autodiff/src/op.cpp`) by `docs/gen_ops.cpp`; a test fails when this\n"
        "page and the table disagree. Regenerate with `cmake --build build --target docs_ops`.\n\n"
        "Notation: `a`, `b` are the op's inputs, `c` its number (a constant operand), `out` its value,\n"
        "`g` the gradient arriving from above. Backward applies the chain rule to every edge:\n"
        "gradient(input) += g × (local derivative). For scalars the local derivative is the number the\n"
        "formula gives (what `gradgraph explain` and the DOT edges show); for tensor ops the rule is\n"
        "written as the vector-Jacobian product, in terms of `g`. Every rule is checked against finite\n"
        "differences in `tests/autodiff/test_ops.cpp`.\n\n"
        "| op | C++ | computes | d out / d a | d out / d b |\n| --- | --- | --- | --- | --- |\n";
  for (int i = 0; i < static_cast<int>(gg::Op::count_); ++i) {
    const gg::OpInfo& info = gg::op_info(static_cast<gg::Op>(i));
    os << "| " << info.name << " | " << cell(info.api) << " | " << text(info.value) << " | " << cell(info.d0)
       << " | " << cell(info.d1) << " |\n";
  }
  return os.str();
}
} // namespace

int main(int argc, char** argv) {
  const std::string text = page();
  if (argc == 3 && std::string(argv[1]) == "--check") {
    std::ifstream in(argv[2]);
    std::stringstream committed;
    committed << in.rdbuf();
    if (committed.str() == text) return 0;
    std::cerr << argv[2]
              << " differs from the op table: regenerate it with `cmake --build build --target docs_ops`\n";
    return 1;
  }
  std::cout << text;
  return 0;
}
