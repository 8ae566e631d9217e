// gg::Var's members: making leaves and constants, reading values and gradients, names.
#include <autodiff/function.hpp>
#include <autodiff/var.hpp>

#include <fmt/format.h>
#include <ostream>
#include <utility>

#include "internal.hpp"
#include "tape.hpp"

namespace gg {
using namespace detail;

namespace {
Var heap_var(const Tensor& value, bool requires_grad) {
  if (!value.defined()) throw ValueError("Var: the tensor is undefined");
  Node* n = new_heap_node(requires_grad);
  Var v = Var::adopt(n);
  ext_of(n).value = value;
  n->flags |= k_tensor;
  return v;
}
Var heap_scalar(double value, bool requires_grad) {
  Node* n = new_heap_node(requires_grad);
  n->value = value;
  return Var::adopt(n);
}
Node* need_leaf(const Var& v, std::string_view what) {
  Node* n = need(v, what);
  if (!n->on_heap())
    throw UsageError(
        fmt::format("{}: only leaves (values not computed by an op) can be changed in place", what));
  return n;
}

/// A new count of the change clock, for leaves changed in place now.
std::uint64_t tick() {
  return g_change_clock.fetch_add(1, std::memory_order_relaxed) + 1;
}
/// Records that leaf n changed in place at count `now`: graphs recorded before no longer give its gradient.
void mark_changed(Node* n, std::uint64_t now = tick()) {
  detail::atomic_ref<std::uint64_t>(ext_of(n).changed_at).store(now, std::memory_order_relaxed);
}
/// Forgets n's gradient; under the leaf-gradient lock.
void forget_grad(Node* n) {
  n->grad = 0;
  set_grad_mark(n, false);
  if (n->ext) n->ext->grad = Tensor();
}
/// Whether leaf n holds a gradient; under the leaf-gradient lock.
bool leaf_has_grad(const Node* n) {
  return n->is_tensor() ? n->ext->grad.defined() : has_grad_mark(n);
}
} // namespace

namespace detail {
void retain_handle(Node* n) noexcept {
  retain(n);
}
void release_handle(Node* n) noexcept {
  release(n);
}
} // namespace detail

bool Var::is_scalar_node() const {
  return n_ && !n_->is_tensor();
}

Var::Var(double value) : Var(heap_scalar(value, true)) {}
Var::Var(const Tensor& value, bool requires_grad) : Var(heap_var(value, requires_grad)) {}
Var Var::constant(double value) {
  return heap_scalar(value, false);
}
Var Var::constant(const Tensor& value) {
  return heap_var(value, false);
}

Tensor Var::value() const {
  return value_of(need(*this, "value"));
}

double Var::item() const {
  Node* n = need(*this, "item");
  return n->is_tensor() ? n->ext->value.item() : n->value;
}

bool Var::has_grad() const {
  Node* n = need(*this, "has_grad");
  return on_graph(n, "has_grad", [n] {
    if (n->is_tensor()) return n->ext->grad.defined();
    return has_grad_mark(n);
  });
}

Tensor Var::grad() const {
  Node* n = need(*this, "grad");
  return on_graph(n, "grad", [n] {
    if (n->is_tensor()) {
      if (n->ext->grad.defined()) return n->ext->grad;
      return Tensor::zeros(n->ext->value.shape(), n->ext->value.dtype());
    }
    return Tensor::scalar(has_grad_mark(n) ? n->grad : 0.0);
  });
}

double Var::adj() const {
  Node* n = need(*this, "adj");
  return on_graph(n, "adj", [n] {
    if (!n->is_tensor()) return has_grad_mark(n) ? n->grad : 0.0;
    if (n->ext->value.numel() != 1)
      throw UsageError(fmt::format("adj: the Var has shape {}, not one element: read grad() instead",
                                   n->ext->value.shape().str()));
    return n->ext->grad.defined() ? n->ext->grad.item() : 0.0;
  });
}

void Var::zero_grad() {
  Node* n = need(*this, "zero_grad");
  on_graph(n, "zero_grad", [n] {
    std::lock_guard lock(leaf_grad_mutex("zero_grad")); // another thread's backward may be adding to it
    forget_grad(n);
  });
}

void zero_grad(std::span<const Var> vars) {
  for (const Var& v : vars) need(v, "zero_grad");
  std::unique_lock lock(leaf_grad_mutex("zero_grad"), std::defer_lock);
  for (const Var& v : vars) {
    Node* n = v.node();
    if (n->on_heap()) { // leaves: the common case, one lock for all of them
      if (!lock.owns_lock()) lock.lock();
      forget_grad(n);
    } else { // a recorded value: on_graph's lock first, as Var::zero_grad
      if (lock.owns_lock()) lock.unlock();
      Var(v).zero_grad();
    }
  }
}

namespace detail {
void update_leaves(std::span<const Var> leaves, LeafUpdate call, void* update) {
  for (const Var& v : leaves) need_leaf(v, "update_leaves");
  std::lock_guard lock(leaf_grad_mutex("update_leaves"));
  struct Updating { // the update is not to take the lock again (zero_grad, set_grad, backward)
    Updating() { t_updating_leaves = true; }
    ~Updating() { t_updating_leaves = false; }
  } updating;
  // Marks the leaves updated (all of them, or up to one whose update threw), with one count of the
  // clock taken after their values changed.
  struct Mark {
    std::span<const Var> leaves;
    std::size_t done = 0;
    bool any = false;
    ~Mark() {
      if (!any) return;
      const std::uint64_t now = tick();
      for (std::size_t i = 0; i <= done && i < leaves.size(); ++i)
        if (Node* n = leaves[i].node(); leaf_has_grad(n)) mark_changed(n, now);
    }
  } mark{leaves};
  for (; mark.done < leaves.size(); ++mark.done) {
    Node* n = leaves[mark.done].node();
    if (!leaf_has_grad(n)) continue;
    mark.any = true;
    if (!n->is_tensor()) { // the number, as a 0-d tensor and back
      Tensor value = Tensor::scalar(n->value);
      call(update, mark.done, value, Tensor::scalar(n->grad));
      n->value = value.item();
      continue;
    }
    Tensor& value = n->ext->value;
    const Tensor& grad = n->ext->grad;
    const void* storage = value.raw();
    if (grad.dtype() == value.dtype())
      call(update, mark.done, value, grad);
    else
      call(update, mark.done, value, grad.to(value.dtype()));
    if (value.raw() != storage) [[unlikely]]
      throw UsageError("update_leaves: the update gave the leaf another tensor; it must write into the "
                       "value's elements (a tensor sharing them sees the change)");
  }
}
} // namespace detail

void Var::set_grad(const Tensor& grad) {
  Node* n = need_leaf(*this, "set_grad");
  if (!(grad.shape() == shape()))
    throw ShapeError(fmt::format("set_grad: gradient of shape {} for a leaf of shape {}", grad.shape().str(),
                                 shape().str()));
  std::lock_guard lock(leaf_grad_mutex("set_grad"));
  set_grad_mark(n, true);
  if (n->is_tensor())
    n->ext->grad = grad.to(n->ext->value.dtype()).clone();
  else
    n->grad = grad.item();
}

Var& Var::name(std::string name) {
  std::as_const(*this).name(std::move(name));
  return *this;
}
const Var& Var::name(std::string name) const {
  Node* n = need(*this, "name");
  on_graph(n, "name", [&] { ext_of(n).name = std::move(name); });
  return *this;
}
std::string Var::name() const {
  Node* n = need(*this, "name");
  return n->ext ? n->ext->name : std::string();
}

Shape Var::shape() const {
  Node* n = need(*this, "shape");
  return n->is_tensor() ? n->ext->value.shape() : Shape{};
}
DType Var::dtype() const {
  Node* n = need(*this, "dtype");
  return n->is_tensor() ? n->ext->value.dtype() : f64;
}
std::int64_t Var::numel() const {
  return shape().numel();
}
bool Var::requires_grad() const {
  return need(*this, "requires_grad")->requires_grad();
}
bool Var::is_leaf() const {
  return need(*this, "is_leaf")->op == Op::leaf;
}
Op Var::op() const {
  return need(*this, "op")->op;
}
std::string Var::op_name() const {
  Node* n = need(*this, "op_name");
  if (n->op == Op::custom) return n->ext->function->name();
  return std::string(gg::op_name(n->op));
}
double Var::op_constant() const {
  return need(*this, "op_constant")->constant();
}

std::vector<Var> Var::inputs() const {
  Node* n = need(*this, "inputs");
  std::vector<Var> r;
  for (int i = 0; i < n->num_inputs(); ++i) r.push_back(ref(n->input(i)));
  return r;
}

Var Var::detach() const {
  Node* n = need(*this, "detach");
  return n->is_tensor() ? constant(n->ext->value) : constant(n->value);
}

void Var::set_value(const Tensor& value) {
  Node* n = need_leaf(*this, "set_value");
  if (!n->is_tensor()) {
    n->value = value.item();
    mark_changed(n);
    return;
  }
  Tensor& v = n->ext->value;
  if (!(value.shape() == v.shape()))
    throw ShapeError(fmt::format("set_value: new value has shape {} but the leaf has shape {}",
                                 value.shape().str(), v.shape().str()));
  if (value.raw() != v.raw() || value.dtype() != v.dtype()) v.assign(value); // not when written in place
  mark_changed(n);
}

void Var::set_value(double value) {
  Node* n = need_leaf(*this, "set_value");
  if (n->is_tensor())
    n->ext->value.fill(value);
  else
    n->value = value;
  mark_changed(n);
}

std::ostream& operator<<(std::ostream& os, const Var& v) {
  if (!v.defined()) return os << "Var(undefined)";
  os << "Var(" << v.value().str() << ", op=" << v.op_name();
  if (const std::string n = v.name(); !n.empty()) os << ", name=" << n;
  if (v.has_grad()) os << ", grad=" << v.grad().str();
  return os << ")";
}

} // namespace gg
