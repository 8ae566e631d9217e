// gg::detail::Node — one recorded value of the graph: its op, inputs, value and gradient, in 48
// bytes for scalars. Internal; public code uses gg::Var. docs/design.md explains the layout.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <autodiff/op.hpp>
#include <autodiff/tensor.hpp>

namespace gg {
class Function;
namespace detail {

struct Node;

/// What a scalar node does not need: tensor value and gradient, inputs beyond two, attributes,
/// a user-given name, a custom op. Allocated only for nodes that need one of these.
struct Ext {
  Tensor value;                             ///< tensor nodes' value
  Tensor grad;                              ///< tensor nodes' gradient (undefined until set)
  Tensor aux;                               ///< a constant operand (where's condition)
  std::string name;                         ///< user name, v.name("q")
  std::uint32_t scope = 0;                  ///< the gg::Scope it was recorded in (0: none)
  std::vector<Node*> more;                  ///< inputs after the first two
  std::vector<std::int64_t> ints;           ///< attributes: axis, keepdim, shape, ranges, indices
  std::vector<double> reals;                ///< real attributes beyond the node's constant
  std::shared_ptr<const Function> function; ///< custom ops
  std::uint64_t changed_at = 0; ///< leaves: the change clock when last changed in place (0: never)
};

enum NodeFlags : std::uint8_t {
  k_tensor = 1,        ///< value lives in ext->value (else Node::value, a float64 scalar)
  k_requires_grad = 2, ///< gradients flow to it
  k_heap = 4,          ///< a leaf or constant owned by its handles (not on a tape); atomic refs
  k_constant = 8,      ///< no second input: that slot holds the op's constant (Node::c_)
  k_has_grad = 16,     ///< grad holds a gradient from a backward pass (tape nodes; heap nodes: leaf_grad_)
  k_reached = 32,      ///< reached by the running backward sweep and not yet processed
};

struct Node {
  double value; ///< scalar nodes' value
  double grad;  ///< scalar nodes' gradient, valid when has_grad_mark(node)
  Node* first;  ///< first input (null when absent)
  // The second input and the op's constant share a slot: ops with a constant (x*c, x^c, leaky_relu's
  // slope, clamp's low bound) have one input. Read them with in1() and constant().
  union {
    Node* second_; ///< second input (null when absent), unless k_constant
    double c_;     ///< with k_constant: the op's constant (0 when it has none)
  };
  Ext* ext;           ///< null for plain scalar nodes
  std::uint32_t refs; ///< handles + dependents; atomic (std::atomic_ref) for heap nodes
  Op op;
  std::uint8_t flags;
  // A heap leaf's "has a gradient" mark lives in its own byte, written under the leaf-gradient lock:
  // other threads read `flags` (is_tensor, requires_grad) without a lock while recording.
  std::uint8_t leaf_grad_;
  std::uint8_t pad_;

  bool is_tensor() const { return flags & k_tensor; }
  bool requires_grad() const { return flags & k_requires_grad; }
  bool on_heap() const { return flags & k_heap; }
  /// The second input, null when absent.
  Node* in1() const { return flags & k_constant ? nullptr : second_; }
  /// The op's constant (0 for ops without one).
  double constant() const { return flags & k_constant ? c_ : 0; }
  /// Sets the op's constant of a node with at most one input.
  void set_constant(double c) {
    c_ = c;
    flags |= k_constant;
  }
  int num_inputs() const {
    return first == nullptr ? 0 : in1() == nullptr ? 1 : 2 + (ext ? static_cast<int>(ext->more.size()) : 0);
  }
  Node* input(int i) const {
    return i == 0 ? first : i == 1 ? in1() : ext->more[static_cast<std::size_t>(i - 2)];
  }
};
// 48 bytes: the tape's memory per recorded scalar op (docs/design.md has the measurements).
static_assert(sizeof(Node) == 48, "a recorded op is 48 bytes");

/// Whether n's gradient field holds a gradient from a backward pass (scalar nodes).
inline bool has_grad_mark(const Node* n) {
  return n->on_heap() ? n->leaf_grad_ != 0 : (n->flags & k_has_grad) != 0;
}
inline void set_grad_mark(Node* n, bool on) {
  if (n->on_heap())
    n->leaf_grad_ = on;
  else
    n->flags = static_cast<std::uint8_t>(on ? n->flags | k_has_grad : n->flags & ~k_has_grad);
}

/// Frees a tape node whose last reference went away, and what only it kept alive (iteratively).
void free_tape_node(Node* n) noexcept;
/// Frees a heap node (leaf or constant) whose last handle went away.
void free_heap_node(Node* n) noexcept;

inline void retain(Node* n) noexcept {
  if (n->on_heap())
    std::atomic_ref<std::uint32_t>(n->refs).fetch_add(1, std::memory_order_relaxed);
  else
    ++n->refs;
}
inline void release(Node* n) noexcept {
  if (n->on_heap()) {
    if (std::atomic_ref<std::uint32_t>(n->refs).fetch_sub(1, std::memory_order_acq_rel) == 1)
      free_heap_node(n);
  } else if (--n->refs == 0) {
    free_tape_node(n);
  }
}

} // namespace detail
} // namespace gg
