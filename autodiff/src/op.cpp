// The op table: names, symbols, arities and local-derivative formulas (a, b: inputs; c: the op's
// constant; out: the op's value). docs/ops.md is generated from this table.
#include <autodiff/op.hpp>

#include <array>

namespace gg {

namespace {
constexpr std::array<OpInfo, static_cast<std::size_t>(Op::count_)> k_table{{
    {"leaf", "", 0, "", ""},
    {"add", "+", 2, "1", "1"},
    {"sub", "-", 2, "1", "-1"},
    {"mul", "*", 2, "b", "a"},
    {"div", "/", 2, "1/b", "-a/b^2"},
    {"pow", "^", 2, "b*a^(b-1)", "out*ln(a)"},
    {"neg", "", 1, "-1", ""},
    {"add_c", "", 1, "1", ""},
    {"mul_c", "", 1, "c", ""},
    {"div_c", "", 1, "1/c", ""},
    {"rsub_c", "", 1, "-1", ""},
    {"rdiv_c", "", 1, "-c/a^2", ""},
    {"pow_c", "", 1, "c*a^(c-1)", ""},
    {"rpow_c", "", 1, "out*ln(c)", ""},
    {"exp", "", 1, "out", ""},
    {"log", "", 1, "1/a", ""},
    {"sqrt", "", 1, "1/(2*out)", ""},
    {"abs", "", 1, "sign(a)", ""},
    {"tanh", "", 1, "1-out^2", ""},
    {"sigmoid", "", 1, "out*(1-out)", ""},
    {"relu", "", 1, "(a>0 ? 1 : 0)", ""},
    {"leaky_relu", "", 1, "(a>0 ? 1 : c)", ""},
    {"sin", "", 1, "cos(a)", ""},
    {"cos", "", 1, "-sin(a)", ""},
    {"clamp", "", 1, "(lo<=a<=hi ? 1 : 0)", ""},
    {"sum", "", 1, "1", ""},
    {"sum_axis", "", 1, "1", ""},
    {"mean", "", 1, "1/n", ""},
    {"mean_axis", "", 1, "1/n", ""},
    {"max", "", 1, "(a==out ? 1/ties : 0)", ""},
    {"max_axis", "", 1, "(a==out ? 1/ties : 0)", ""},
    {"matmul", "@", 2, "g @ b^T", "a^T @ g"},
    {"transpose", "", 1, "transpose(g)", ""},
    {"reshape", "", 1, "reshape(g, shape(a))", ""},
    {"slice", "", 1, "slice_scatter(g)", ""},
    {"slice_scatter", "", 1, "slice(g)", ""},
    {"index_select", "", 1, "index_add(g)", ""},
    {"index_add", "", 1, "index_select(g)", ""},
    {"concat", "", -1, "slice of g", ""},
    {"stack", "", -1, "select of g", ""},
    {"where", "", 2, "(cond ? 1 : 0)", "(cond ? 0 : 1)"},
    {"softmax", "", 1, "out*(g - sum(g*out))", ""},
    {"log_softmax", "", 1, "g - exp(out)*sum(g)", ""},
    {"logsumexp", "", 1, "exp(a - out)", ""},
    {"broadcast_to", "", 1, "sum_to(g, shape(a))", ""},
    {"sum_to", "", 1, "broadcast_to(g, shape(a))", ""},
    {"unfold", "", 1, "fold(g)", ""},
    {"fold", "", 1, "unfold(g)", ""},
    {"custom", "", -1, "user backward", ""},
}};
} // namespace

const OpInfo& op_info(Op op) {
  return k_table[static_cast<std::size_t>(op)];
}

} // namespace gg
