// gg::Var — the differentiable value. Arithmetic on Vars records the graph (on the calling
// thread's tape); backward() sweeps it in reverse and leaves gradients in the leaves.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <autodiff/op.hpp>
#include <autodiff/tensor.hpp>

namespace gg {

namespace detail {
struct Node; // a recorded value (autodiff/src/node.hpp, internal)
/// A Var handle's copy and release: the node's reference count (out of line, so that the node's
/// layout stays internal; the library's own code inlines them).
void retain_handle(Node* n) noexcept;
void release_handle(Node* n) noexcept;
struct HookRecord; // a registered gradient hook (autodiff/src/hooks.hpp, internal)
} // namespace detail

/// A gradient hook registered on a leaf (Var::register_hook): remove() unregisters it, as PyTorch's
/// RemovableHandle. Letting the handle go does not remove the hook; the hook goes with its leaf.
class HookHandle {
public:
  HookHandle() = default;
  /// Unregisters the hook (nothing if it is already gone): no later pass calls it.
  void remove();
  /// Whether the hook is still registered (not removed, and its leaf alive).
  bool active() const;

private:
  friend class Var;
  explicit HookHandle(std::shared_ptr<detail::HookRecord> record) : record_(std::move(record)) {}
  std::shared_ptr<detail::HookRecord> record_;
};

/// Options of Var::backward().
struct BackwardOptions {
  /// Keep the graph for another backward pass through it, as PyTorch's retain_graph. Without it, a
  /// second pass through the same nodes is a UsageError (it would add the same gradients again).
  bool retain_graph = false;
};

class Var {
public:
  /// An undefined Var (no value); defined() is false.
  Var() = default;
  /// A scalar leaf that requires grad, e.g. `gg::Var x = -2;`.
  Var(double value);
  /// A tensor leaf; with requires_grad false, a constant that gradients do not flow into.
  Var(const Tensor& value, bool requires_grad = true);
  /// A constant (requires_grad false), scalar or tensor.
  static Var constant(double value);
  static Var constant(const Tensor& value);

  Var(const Var& o) noexcept : n_(o.n_) {
    if (n_) detail::retain_handle(n_);
  }
  Var(Var&& o) noexcept : n_(o.n_) { o.n_ = nullptr; }
  Var& operator=(const Var& o) noexcept {
    Var(o).swap(*this);
    return *this;
  }
  Var& operator=(Var&& o) noexcept {
    Var(std::move(o)).swap(*this);
    return *this;
  }
  ~Var() {
    if (n_) detail::release_handle(n_);
  }
  void swap(Var& o) noexcept { std::swap(n_, o.n_); }

  bool defined() const { return n_ != nullptr; }
  /// The value (a 0-d tensor for scalars). Tensor leaves share storage with the returned tensor.
  Tensor value() const;
  /// The value of a one-element Var.
  double item() const;
  /// The gradient left by the last backward pass (accumulated over passes for leaves, as in
  /// PyTorch); zeros of the value's shape when there is none.
  Tensor grad() const;
  /// The gradient of a one-element Var as a number (0 when there is none): grad().item() without
  /// making a tensor, the cheap read of a scalar leaf's gradient (Stan Math and Sacado call it adj()).
  double adj() const;
  /// Whether a backward pass has reached this Var (since the last zero_grad, for leaves).
  bool has_grad() const;
  /// Forgets a leaf's accumulated gradient.
  void zero_grad();
  /// Replaces a leaf's gradient (gradient clipping, hand-written updates); shape must match.
  void set_grad(const Tensor& grad);

  /// Reverse sweep from this scalar: d(this)/d(v) for every v it depends on, added to the leaves'
  /// grad(). Once per graph unless options.retain_graph (a UsageError the second time).
  void backward(BackwardOptions options = {}) const;
  /// Reverse sweep seeded with d(loss)/d(this) = seed (any shape equal to this Var's).
  void backward(const Tensor& seed, BackwardOptions options = {}) const;

  /// Calls hook(grad) with the gradient each backward(), grad() or grad(..., create_graph) pass
  /// computes for this leaf, as soon as it is final in the sweep — every op of the graph that uses
  /// the leaf has passed its share — while the pass goes on with the rest of the graph (PyTorch's
  /// Tensor.register_hook; the hook observes, it does not replace the gradient). Not called by a pass
  /// that does not reach the leaf. Hooks run in registration order on the thread running the pass;
  /// one that throws ends the pass with its exception. Leaves that require grad only (UsageError).
  HookHandle register_hook(std::function<void(const Tensor& grad)> hook);
  /// Calls hook(leaf) in each backward() once this leaf's gradient is final and added to its grad(),
  /// while the pass goes on (PyTorch's register_post_accumulate_grad_hook): where data-parallel
  /// training starts averaging a gradient over the processes. The hook may read and set_grad() it.
  HookHandle register_post_accumulate_grad_hook(std::function<void(Var& leaf)> hook);

  /// Gives this value a name shown in DOT, traces and errors; returns *this.
  Var& name(std::string name);
  const Var& name(std::string name) const;
  /// The user-given name, or "".
  std::string name() const;

  Shape shape() const;
  DType dtype() const;
  std::int64_t numel() const;
  /// Whether this is a scalar node (a float64 number, not a tensor): scalar leaves and what scalar
  /// ops on them record.
  bool is_scalar_node() const;
  bool requires_grad() const;
  /// True for values made directly (not by an op).
  bool is_leaf() const;
  Op op() const;
  /// The op's name ("mul", "tanh", a custom Function's name(); "leaf" for leaves).
  std::string op_name() const;
  /// The Vars this one was computed from.
  std::vector<Var> inputs() const;
  /// The op's constant operand, if any (x*c, x^c, ...).
  double op_constant() const;

  /// The same value as a constant: the graph stops here.
  Var detach() const;
  /// Replaces a leaf's value in place (the optimizer's update); shape and dtype must match. A graph
  /// recorded before the change no longer differentiates through this leaf (backward throws a
  /// UsageError, as PyTorch does). After writing into value()'s storage, set_value(value()) says so.
  void set_value(const Tensor& value);
  void set_value(double value);

  /// Internal: the recorded node. Identity of a Var's node is the identity of the value.
  detail::Node* node() const { return n_; }
  /// Internal: takes over one reference to n.
  static Var adopt(detail::Node* n) {
    Var v;
    v.n_ = n;
    return v;
  }

private:
  detail::Node* n_ = nullptr;
};

/// Options of a backward sweep.
struct GradOptions {
  /// Record the backward pass itself, so the gradients can be differentiated again.
  bool create_graph = false;
  /// Inputs the outputs do not depend on get a zero gradient (otherwise an undefined Var).
  bool materialize_zeros = true;
  /// Keep the graph for another pass through it (create_graph keeps it anyway), as PyTorch.
  bool retain_graph = false;
};

/// d(sum of outputs[i] * grad_outputs[i])/d(inputs[j]), returned without touching leaves' .grad()
/// (intermediate values' grad() then show this pass, as after backward()).
/// grad_outputs may be empty when every output is a one-element Var (seed 1). With
/// create_graph the results are Vars recorded on the tape: differentiate them again for
/// Hessian-vector products and higher derivatives.
std::vector<Var> grad(const std::vector<Var>& outputs, const std::vector<Var>& inputs,
                      const std::vector<Tensor>& grad_outputs = {}, GradOptions options = {});

/// zero_grad() of each Var, with the leaf-gradient lock taken once for the leaves among them (an
/// optimizer's or a module's parameters).
void zero_grad(std::span<const Var> vars);

namespace detail {
using LeafUpdate = void (*)(void* update, std::size_t i, Tensor& value, const Tensor& grad);
void update_leaves(std::span<const Var> leaves, LeafUpdate call, void* update);
} // namespace detail

/// Changes leaves in place from their gradients, as an optimizer step: for each leaves[i] that has a
/// gradient, calls update(i, value, grad) with the leaf's own value tensor, into whose elements update
/// writes the new value (a tensor sharing them sees it; assigning it another tensor is a UsageError),
/// and its gradient in the value's dtype; a scalar leaf's number goes as a 0-d float64 tensor and back.
/// The updated leaves are then marked changed as by set_value: a graph recorded before the update no
/// longer differentiates through them. Runs under the lock under which backward passes add to leaves'
/// gradients, so it sees all of another thread's pass or none of it: backward, zero_grad, set_grad or
/// update_leaves called from update on its thread would take that lock again (it is not recursive),
/// and throw a UsageError instead (grad() is fine). UsageError, before anything changes, when a Var is
/// undefined or not a leaf.
template <class F> void update_leaves(std::span<const Var> leaves, F&& update) {
  detail::update_leaves(
      leaves,
      [](void* f, std::size_t i, Tensor& value, const Tensor& grad) {
        (*static_cast<std::remove_reference_t<F>*>(f))(i, value, grad);
      },
      const_cast<void*>(static_cast<const void*>(&update)));
}

/// While alive, ops record nothing: results are constants (as torch.no_grad()).
class NoGrad {
public:
  NoGrad();
  ~NoGrad();
  NoGrad(const NoGrad&) = delete;
  NoGrad& operator=(const NoGrad&) = delete;

private:
  bool prev_;
};
/// Whether ops record on this thread now.
bool grad_enabled();

/// While alive, anomaly detection is on for this thread (as torch.autograd.detect_anomaly): the first
/// recorded op whose value holds a NaN or an infinity, and the first backward step whose gradient
/// does, throws an AnomalyError naming the op, the user names on its path through the graph (Vars
/// and module scopes) and its inputs' shapes and values. Off, it costs one flag test per op.
class DetectAnomaly {
public:
  explicit DetectAnomaly(bool on = true);
  ~DetectAnomaly();
  DetectAnomaly(const DetectAnomaly&) = delete;
  DetectAnomaly& operator=(const DetectAnomaly&) = delete;

private:
  bool prev_;
};
/// PyTorch's spelling: `gg::detect_anomaly scope;`.
using detect_anomaly = DetectAnomaly;
/// Whether anomaly detection is on for this thread.
bool anomaly_detection_enabled();

/// While alive, nodes recorded on this thread belong to a named scope, nested in the enclosing
/// one ("0", "encoder/fc1"): modules open one per call, so DOT pictures group nodes by layer.
class Scope {
public:
  /// label: how pictures title the scope (a module's description).
  explicit Scope(std::string_view name, std::string_view label = {});
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;
  /// The full path of the innermost open scope on this thread, or "".
  static std::string current();

private:
  std::uint32_t prev_;
};
/// The scope path a Var was recorded in, or "".
std::string scope_of(const Var& v);

/// Statistics of this thread's tape, for tests and benchmarks.
struct TapeStats {
  std::size_t live_nodes;      ///< recorded nodes still referenced
  std::size_t segments;        ///< segments in use
  std::size_t pooled_segments; ///< freed segments kept for reuse
  std::size_t bytes;           ///< memory held by segments (in use and pooled)
};
TapeStats tape_stats();

/// Prints "Var(value, op=mul, name=q)": the value as Tensor::str(), then what made it.
std::ostream& operator<<(std::ostream& os, const Var& v);

} // namespace gg
