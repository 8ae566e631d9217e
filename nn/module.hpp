// gg::nn::Module — the base of layers and models: named parameters and buffers, child modules,
// train/eval mode — and gg::nn::Sequential. Parameter names follow PyTorch's state_dict
// ("0.weight", "encoder.fc.bias"), so models move between the two with the same numbers.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <autodiff/autodiff.hpp>

namespace gg::nn {

class Module;
std::string summary(Module& model, const Shape& input_shape, DType dtype, int depth);

class Module {
public:
  virtual ~Module() = default;
  Module() = default;
  // A copy would share parameters with the original (Vars are handles): not allowed. A move is.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) = default;
  Module& operator=(Module&&) = default;

  /// The module applied to one input. Modules with other inputs (several branches) define their
  /// own call operators; calling this one on them is a UsageError.
  virtual Var forward(const Var& x);
  /// forward(x) inside a gg::Scope named as this module is in its parent ("0", "fc1"), so the
  /// nodes it records are grouped by layer in DOT pictures.
  Var operator()(const Var& x);
  /// The name this module was registered under in its parent ("" for a top-level model).
  const std::string& scope_name() const { return scope_name_; }

  /// Short description, e.g. "Linear(in=2, out=3)".
  virtual std::string describe() const;

  /// Parameters of this module and its children, depth first in registration order.
  std::vector<Var> parameters() const;
  /// The same with PyTorch's state-dict names.
  std::vector<std::pair<std::string, Var>> named_parameters() const;
  /// Non-trainable state (BatchNorm's running statistics), with state-dict names.
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  /// Parameters' values and buffers, as PyTorch's model.state_dict() (parameters first per module).
  std::vector<std::pair<std::string, Tensor>> state_dict() const;
  /// Copies values from a state dict; every name must be present with the right shape (ValueError).
  void load_state_dict(const std::vector<std::pair<std::string, Tensor>>& state);

  /// Direct children with their names.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

  /// Training mode (Dropout drops, BatchNorm uses batch statistics) for this module and children.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Forgets the accumulated gradients of all parameters.
  void zero_grad();

protected:
  /// f() inside a gg::Scope named as this module is in its parent, as operator() runs forward: for
  /// the call operators of modules with several inputs. The scope's label (pictures' title) is
  /// describe() as it was at the module's first call: formatting it on every call cost a 2-3-2
  /// MLP's training step 550 of its 29k instructions (callgrind).
  template <class F> auto scoped(F&& f) {
    if (scope_name_.empty()) return f();
    if (scope_label_.empty()) scope_label_ = describe();
    Scope scope(scope_name_, scope_label_);
    return f();
  }
  /// Adds a trainable parameter (a leaf requiring grad) and returns it.
  Var register_parameter(std::string name, const Tensor& value);
  /// Adds a buffer (state saved with the model but not trained) and returns it (shared storage).
  Tensor register_buffer(std::string name, const Tensor& value);
  /// Adds a child module under name and returns it.
  template <class M> std::shared_ptr<M> register_module(std::string name, std::shared_ptr<M> module) {
    add_child(std::move(name), module);
    return module;
  }
  void add_child(std::string name, std::shared_ptr<Module> module);

private:
  friend std::string summary(Module& model, const Shape& input_shape, DType dtype,
                             int depth); // restores modes

  void collect_parameters(const std::string& prefix, std::vector<std::pair<std::string, Var>>& out) const;
  void collect_buffers(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;
  void collect_state(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;

  std::vector<std::pair<std::string, Var>> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
  std::string scope_name_;
  std::string scope_label_; // describe() at the first call, see scoped()
};

/// Modules applied one after another; children are named "0", "1", ... as in torch.nn.Sequential.
class Sequential : public Module {
public:
  Sequential() = default;
  Sequential(std::initializer_list<std::shared_ptr<Module>> modules);
  /// Sequential(Linear(2, 3), Sigmoid(), Linear(3, 2)): modules by value.
  template <class... Ms>
  requires(sizeof...(Ms) > 0 &&
           (std::is_base_of_v<Module, std::decay_t<Ms>> && ...)) explicit Sequential(Ms&&... modules) {
    (push_back(std::make_shared<std::decay_t<Ms>>(std::forward<Ms>(modules))), ...);
  }
  /// Appends a module.
  void push_back(std::shared_ptr<Module> module);
  Var forward(const Var& x) override;
  std::string describe() const override { return "Sequential"; }
  std::size_t size() const { return children().size(); }
  Module& operator[](std::size_t i) const { return *children()[i].second; }
};

/// Number of trainable elements (the course's quiz: Linear(2,3), Sigmoid, Linear(3,2) has 17).
std::int64_t parameter_count(const Module& model);

/// A table of the model's modules (children, their children, ... down to `depth` levels, named by
/// their state-dict path): description, output shape and parameter count, then the total. The
/// output shapes are recorded while the model runs once on zeros of input_shape (NoGrad, eval mode;
/// every module's mode is restored after), as torchinfo does: each module's call operator notes
/// what it returned. A module called several times shows its first shape and "xN"; one that does
/// not run (a branch not taken, a call operator of several inputs) shows none. A model whose own
/// forward takes more than one input is listed without shapes. Errors of the run (a wrong
/// input_shape) propagate. ValueError for depth < 1.
std::string summary(Module& model, const Shape& input_shape, DType dtype = f64, int depth = 2);

} // namespace gg::nn
