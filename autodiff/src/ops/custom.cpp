// Leaves and custom ops: a leaf has no rule to apply (backward stops there), and a gg::Function
// records a node whose rule is the function's own backward, checked for the right count and shapes.
#include <autodiff/function.hpp>
#include <autodiff/ops.hpp>

#include <fmt/format.h>

#include "family.hpp"

namespace gg {

using detail::Node;
using detail::OpRule;
using detail::ref;

template <> const OpRule& detail::rule<Op::leaf>() {
  static constexpr OpRule r{
      {"leaf", "", 0, "", "", "Var x = 2.0; Var(tensor)", "a value given, not computed"},
      [](Node*, const Var&) -> std::vector<Var> { return {}; }};
  return r;
}

// apply(function, inputs): a gg::Function's forward, recorded.
Var apply(std::shared_ptr<const Function> fn, const std::vector<Var>& inputs) {
  if (!fn) throw UsageError("apply: the Function is null");
  const std::string name = fn->name();
  if (inputs.empty()) throw ValueError(fmt::format("{}: a custom op needs at least one input", name));
  std::vector<Tensor> vs;
  vs.reserve(inputs.size());
  for (const Var& x : inputs) vs.push_back(detail::value_of(detail::need(x, name)));
  Tensor out = fn->forward(vs);
  if (!out.defined()) throw ValueError(fmt::format("{}: forward returned an undefined tensor", name));
  auto e = detail::emit_variadic(Op::custom, inputs, std::move(out));
  if (e.n) e.n->ext->function = std::move(fn);
  return e.var;
}
template <> const OpRule& detail::rule<Op::custom>() {
  static constexpr OpRule r{
      {"custom", "", -1, "user backward", "", "apply(function, inputs)", "a gg::Function's forward"},
      [](Node* n, const Var& g) -> std::vector<Var> {
        std::vector<Var> ins;
        for (int i = 0; i < n->num_inputs(); ++i) ins.push_back(ref(n->input(i)));
        std::vector<Var> r = n->ext->function->backward(ins, ref(n), g);
        const std::string name = n->ext->function->name();
        if (r.size() != ins.size())
          throw ShapeError(
              fmt::format("{}: backward returned {} gradients for {} inputs", name, r.size(), ins.size()));
        for (std::size_t i = 0; i < r.size(); ++i)
          if (r[i].defined() && !(r[i].shape() == ins[i].shape()))
            throw ShapeError(
                fmt::format("{}: backward returned a gradient of shape {} for input {} of shape {}", name,
                            r[i].shape().str(), i, ins[i].shape().str()));
        return r;
      }};
  return r;
}

} // namespace gg
