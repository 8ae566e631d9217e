// Transitional: the rules of the ops whose family has not yet moved into autodiff/src/ops/ — their
// rows and the old switches (vjp() in backward.cpp, vjp_values() in backward_values.cpp). Each
// family's move takes its ops out of GG_LEGACY_OPS; the file goes with the last one.
#include <array>

#include "family.hpp"

namespace gg::detail {

namespace {
constexpr std::array<OpInfo, static_cast<std::size_t>(Op::count_)> k_table{{
    {"leaf", "", 0, "", "", "Var x = 2.0; Var(tensor)", "a value given, not computed"},
    {"add", "a + b", 2, "1", "1", "a + b, add(a, b)", "a + b (broadcasting)"},
    {"sub", "a − b", 2, "1", "-1", "a - b, sub(a, b)", "a - b (broadcasting)"},
    {"mul", "a · b", 2, "b", "a", "a * b, mul(a, b)", "a * b (broadcasting)"},
    {"div", "a / b", 2, "1/b", "-a/b^2", "a / b, div(a, b)", "a / b (broadcasting)"},
    {"pow", "a^b", 2, "b*a^(b-1)", "out*ln(a)", "pow(a, b)", "a ^ b (broadcasting)"},
    {"neg", "−a", 1, "-1", "", "-a, neg(a)", "-a"},
    {"add_c", "a + c", 1, "1", "", "a + c, a - c, c + a", "a + c for a number c"},
    {"mul_c", "c·a", 1, "c", "", "a * c, c * a", "a * c for a number c"},
    {"div_c", "a / c", 1, "1/c", "", "a / c", "a / c for a number c"},
    {"rsub_c", "c − a", 1, "-1", "", "c - a", "c - a for a number c"},
    {"rdiv_c", "c / a", 1, "-c/a^2", "", "c / a", "c / a for a number c"},
    {"pow_c", "a^c", 1, "c*a^(c-1)", "", "pow(a, c)", "a ^ c for a number c"},
    {"rpow_c", "c^a", 1, "out*ln(c)", "", "pow(c, a)", "c ^ a for a number c"},
    {"exp", "exp(a)", 1, "out", "", "exp(a)", "e ^ a"},
    {"log", "log(a)", 1, "1/a", "", "log(a)", "natural logarithm of a"},
    {"sqrt", "sqrt(a)", 1, "1/(2*out)", "", "sqrt(a)", "square root of a"},
    {"abs", "|a|", 1, "sign(a)", "", "abs(a)", "|a|"},
    {"tanh", "tanh(a)", 1, "1-out^2", "", "tanh(a)", "hyperbolic tangent"},
    {"sigmoid", "sigmoid(a)", 1, "out*(1-out)", "", "sigmoid(a)", "1 / (1 + e^-a), computed stably"},
    {"relu", "relu(a)", 1, "(a>0 ? 1 : 0)", "", "relu(a)", "max(a, 0)"},
    {"leaky_relu", "leaky_relu(a, c)", 1, "(a>0 ? 1 : c)", "", "leaky_relu(a, c)", "a if a > 0 else c*a"},
    {"sin", "sin(a)", 1, "cos(a)", "", "sin(a)", "sine"},
    {"cos", "cos(a)", 1, "-sin(a)", "", "cos(a)", "cosine"},
    {"clamp", "clamp(a, lo, hi)", 1, "(lo<=a<=hi ? 1 : 0)", "", "clamp(a, lo, hi)", "min(max(a, lo), hi)"},
    {"sum", "sum(a)", 1, "1", "", "sum(a)", "sum of all elements"},
    {"sum_axis", "", 1, "1", "", "sum(a, axis, keepdim)", "sum along an axis"},
    {"mean", "mean(a)", 1, "1/n", "", "mean(a)", "mean of all elements (n of them)"},
    {"mean_axis", "", 1, "1/n", "", "mean(a, axis, keepdim)", "mean along an axis"},
    {"max", "max(a)", 1, "(a==out ? 1/ties : 0)", "", "max(a)", "largest element; ties share the gradient"},
    {"max_axis", "", 1, "(a==out ? 1/ties : 0)", "", "max(a, axis, keepdim)",
     "largest along an axis; ties share the gradient"},
    {"matmul", "a @ b", 2, "g @ b^T", "a^T @ g", "matmul(a, b)",
     "matrix product: 2-d, batched, 1-d as NumPy"},
    {"linear", "", -1, "g @ w", "g^T @ a (bias: sum of g over rows)", "linear(a, w, bias)",
     "a @ w^T + bias in one op (a Linear layer)"},
    {"conv2d", "", -1, "fold(w^T @ g)", "g @ unfold(a)^T (bias: sum of g)",
     "conv2d(a, w, bias, stride, padding)",
     "2-d convolution in one op (a Conv2d layer): im2col, matrix product, bias"},
    {"max_pool2d", "", 1, "(a==out ? 1/ties : 0) per window", "", "max_pool2d(a, k, stride, padding)",
     "largest of each k x k window of every channel (a MaxPool2d layer); ties share the gradient"},
    {"transpose", "", 1, "transpose(g)", "", "transpose(a, i, j)", "axes i and j swapped"},
    {"reshape", "", 1, "reshape(g, shape(a))", "", "reshape(a, shape)", "same elements, new shape"},
    {"slice", "", 1, "slice_scatter(g)", "", "slice(a, axis, start, stop, step), select(a, axis, i)",
     "every step-th element of [start, stop) along an axis"},
    {"slice_scatter", "", 1, "slice(g)", "", "slice_scatter(g, shape, axis, start, stop, step)",
     "zeros with g at a slice's positions"},
    {"index_select", "", 1, "index_add(g)", "", "index_select(a, axis, indices)",
     "entries at the indices along an axis (gather)"},
    {"index_add", "", 1, "index_select(g)", "", "index_add(g, shape, axis, indices)",
     "zeros with g added at the indices"},
    {"concat", "", -1, "slice of g", "", "concat({a, b, ...}, axis)", "tensors joined along an axis"},
    {"stack", "", -1, "select of g", "", "stack({a, b, ...}, axis)", "tensors joined along a new axis"},
    {"where", "", 2, "(cond ? 1 : 0)", "(cond ? 0 : 1)", "where(cond, a, b)", "a where cond != 0, else b"},
    {"softmax", "", 1, "out*(g - sum(g*out))", "", "softmax(a, axis)", "exp(a) / sum(exp(a)), stable"},
    {"log_softmax", "", 1, "g - exp(out)*sum(g)", "", "log_softmax(a, axis)", "a - logsumexp(a), stable"},
    {"logsumexp", "", 1, "exp(a - out)", "", "logsumexp(a, axis, keepdim)", "log(sum(exp(a))), stable"},
    {"broadcast_to", "", 1, "sum_to(g, shape(a))", "", "broadcast_to(a, shape)",
     "a repeated along broadcast dimensions"},
    {"sum_to", "", 1, "broadcast_to(g, shape(a))", "", "sum_to(a, shape)",
     "sums of the broadcast dimensions, back to shape"},
    {"unfold", "", 1, "fold(g)", "", "unfold(a, kh, kw, stride, padding)",
     "im2col: image windows as columns (Conv2d, pooling)"},
    {"fold", "", 1, "unfold(g)", "", "fold(g, shape, kh, kw, stride, padding)",
     "col2im: columns summed back into an image"},
    {"to", "", 1, "1", "", "to(a, dtype)", "a converted to float32 or float64 (the gradient converted back)"},
    {"custom", "", -1, "user backward", "", "apply(function, inputs)", "a gg::Function's forward"},
}};

bool legacy_values(Node* n, const Tensor& g, InputGrads& out) {
  return vjp_values(n, g, out);
}
} // namespace

#define GG_LEGACY_RULE(name)                                                                                 \
  template <> const OpRule& rule<Op::name>() {                                                               \
    static constexpr OpRule r{k_table[static_cast<std::size_t>(Op::name)], &vjp, &legacy_values};            \
    return r;                                                                                                \
  }
// clang-format off
#define GG_LEGACY_OPS(X)                                                                                \
  X(leaf)                                                                                               \
  X(transpose) X(reshape) X(slice) X(slice_scatter) X(index_select) X(index_add) X(concat) X(stack)     \
  X(where)                                                                                              \
  X(broadcast_to) X(sum_to) X(to)                                                     \
  X(custom)
// clang-format on
GG_LEGACY_OPS(GG_LEGACY_RULE)

} // namespace gg::detail
