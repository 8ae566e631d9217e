// Custom operations: subclass gg::Function with a forward on tensors and a backward written with
// differentiable ops, then gg::apply() it. It records, prints, draws and differentiates (to any
// order) like a built-in op.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <autodiff/var.hpp>

namespace gg {

class Function {
public:
  virtual ~Function() = default;
  /// The op's name in DOT, traces and errors.
  virtual std::string name() const = 0;
  /// The output's value from the inputs' values. Throw gg::ShapeError for inputs it cannot take.
  virtual Tensor forward(const std::vector<Tensor>& inputs) const = 0;
  /// The vector-Jacobian product: for each input, d(loss)/d(input) given grad_output =
  /// d(loss)/d(output). Written with gg ops on Vars so that it can itself be differentiated; each
  /// result must have its input's shape (or be undefined for "no gradient").
  virtual std::vector<Var> backward(const std::vector<Var>& inputs, const Var& output,
                                    const Var& grad_output) const = 0;
};

/// Records fn applied to inputs.
Var apply(std::shared_ptr<const Function> fn, const std::vector<Var>& inputs);

} // namespace gg
