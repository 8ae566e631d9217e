// gg::detail::Node — one recorded value of the graph: its op, inputs, value and gradient, in 48
// bytes for scalars. Internal (not installed); public code uses gg::Var, whose handles count
// references through detail::retain_handle/release_handle. docs/design.md explains the layout.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <autodiff/op.hpp>
#include <autodiff/tensor.hpp>
#include <autodiff/var.hpp>

namespace gg {
class Function;
namespace detail {

#if defined(__cpp_lib_atomic_ref)
template <class T> using atomic_ref = std::atomic_ref<T>;
#else
/// std::atomic_ref's operations used here, on the compiler's __atomic builtins, for a standard
/// library without it (Emscripten's libc++ 14, which builds the WebAssembly engine).
template <class T> class atomic_ref {
public:
  explicit atomic_ref(T& v) noexcept : p_(&v) {}
  T load(std::memory_order o = std::memory_order_seq_cst) const noexcept {
    return __atomic_load_n(p_, int(o));
  }
  void store(T v, std::memory_order o = std::memory_order_seq_cst) const noexcept {
    __atomic_store_n(p_, v, int(o));
  }
  T fetch_add(T v, std::memory_order o = std::memory_order_seq_cst) const noexcept {
    return __atomic_fetch_add(p_, v, int(o));
  }
  T fetch_sub(T v, std::memory_order o = std::memory_order_seq_cst) const noexcept {
    return __atomic_fetch_sub(p_, v, int(o));
  }

private:
  T* p_;
};
#endif

struct Node;

/// What a scalar node does not need: tensor value and gradient, inputs beyond two, attributes,
/// a user-given name, a custom op. Allocated only for nodes that need one of these. (Freed Exts are
/// kept for reuse, emptied field by field: a new field needs its line in tape.cpp's recycle().)
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

/// What a node is, fixed once it is recorded (read without a lock by any thread).
enum NodeFlags : std::uint8_t {
  k_tensor = 1,        ///< value lives in ext->value (else Node::value, a float64 scalar)
  k_requires_grad = 2, ///< gradients flow to it
  k_heap = 4,          ///< a leaf or constant owned by its handles (not on a tape); atomic refs
  k_constant = 8,      ///< no second input: that slot holds the op's constant (Node::c_)
};
/// What backward passes write (Node::marks_): a byte of its own, so a thread reading a node's value
/// or flags while the recording thread runs backward() does not race with it.
enum NodeMarks : std::uint8_t {
  k_has_grad = 1, ///< grad holds a gradient from a backward pass
  k_reached = 2,  ///< reached by the running backward sweep and not yet processed (tape nodes)
  k_spent = 4,    ///< visited by a backward pass that did not retain the graph (tape nodes)
  k_counted = 8,  ///< reached by the count of hooked leaves' consumers before a sweep (hooks only)
};

struct Node {
  double value; ///< scalar nodes' value
  double grad;  ///< scalar nodes' gradient, valid when has_grad_mark(node)
  Node* first;  ///< first input (null when absent)
  // The second input and the op's constant share a slot: ops with a constant (x*c, x^c, leaky_relu's
  // slope, clamp's low bound) have one input. Read them with in1() and constant().
  // Heap nodes (leaves, constants: no inputs) keep there the id of the tape segment that last took a
  // reference to them (Segment::uid; atomic accesses: several threads' segments may).
  union {
    Node* second_;      ///< second input (null when absent), unless k_constant
    double c_;          ///< with k_constant: the op's constant (0 when it has none)
    std::uint64_t tag_; ///< heap nodes: Segment::uid of the segment that last referenced it (0: none)
  };
  Ext* ext;           ///< null for plain scalar nodes
  std::uint32_t refs; ///< handles + dependents; atomic (std::atomic_ref) for heap nodes
  Op op;
  std::uint8_t flags; ///< NodeFlags
  // NodeMarks. Tape nodes: written by the recording thread's backward passes. Heap leaves: the "has a
  // gradient" mark, written under the leaf-gradient lock (several threads' passes add to a leaf).
  std::uint8_t marks_;
  /// Heap leaves: 1 once a gradient hook was registered (hooks.hpp; atomic accesses). Tape nodes: 0.
  std::uint8_t hooked_;

  bool is_tensor() const { return flags & k_tensor; }
  bool requires_grad() const { return flags & k_requires_grad; }
  bool on_heap() const { return flags & k_heap; }
  /// The second input, null when absent.
  Node* in1() const { return flags & (k_constant | k_heap) ? nullptr : second_; }
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
  return (n->marks_ & k_has_grad) != 0;
}
inline void set_grad_mark(Node* n, bool on) {
  n->marks_ = static_cast<std::uint8_t>(on ? n->marks_ | k_has_grad : n->marks_ & ~k_has_grad);
}

/// Frees a tape node whose last reference went away, and what only it kept alive (iteratively).
void free_tape_node(Node* n) noexcept;
/// Frees a heap node (leaf or constant) whose last handle went away.
void free_heap_node(Node* n) noexcept;

// Threads. A recorded node belongs to the thread whose tape holds it; only that thread changes its
// reference count (plain integers: the scalar chain's speed). Other threads' copies and releases of
// a Var are queued on the tape and applied by its thread (retain_foreign, release_foreign), or at
// once under a lock when that thread has exited. docs/design.md, "Threads".
struct Tape;
inline constexpr std::size_t k_segment_bytes = std::size_t{256} * 1024;
extern thread_local constinit Tape* t_tape; ///< this thread's tape (null before its first op)
/// Copies minus releases of Var handles to this thread's tape nodes (other threads' too, once applied:
/// Tape::apply_foreign), modulo 2^64. With the nodes recorded (each with the handle of the Var that
/// adopts it), the handles left: Tape::handles(). A release that leaves none frees the whole tape
/// without visiting its nodes one by one (free_tape_node).
extern thread_local constinit std::uint64_t t_handle_balance;
/// The tape holding a recorded (not heap) node: the first word of its size-aligned segment
/// (Segment::tape; tape.hpp checks the layout).
inline Tape* tape_of(const Node* n) {
  return *reinterpret_cast<Tape* const*>(reinterpret_cast<std::uintptr_t>(n) & ~(k_segment_bytes - 1));
}
/// Whether this thread recorded tape node n (and so may touch its count, marks and gradient).
inline bool owned_here(const Node* n) {
  return tape_of(n) == t_tape;
}
void retain_foreign(Node* n) noexcept;
void release_foreign(Node* n) noexcept;

inline void retain(Node* n) noexcept {
  if (n->on_heap())
    atomic_ref<std::uint32_t>(n->refs).fetch_add(1, std::memory_order_relaxed);
  else if (owned_here(n)) [[likely]]
    ++n->refs, ++t_handle_balance;
  else
    retain_foreign(n);
}
inline void release(Node* n) noexcept {
  if (n->on_heap()) {
    if (atomic_ref<std::uint32_t>(n->refs).fetch_sub(1, std::memory_order_acq_rel) == 1) free_heap_node(n);
  } else if (!owned_here(n)) [[unlikely]] {
    release_foreign(n);
  } else if (--t_handle_balance, --n->refs == 0) {
    free_tape_node(n);
  }
}

} // namespace detail
} // namespace gg
