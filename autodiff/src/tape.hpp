// The tape (internal): each thread records nodes into 256 KiB segments, appended in execution
// order, so (segment sequence, index) is a topological order and backward is one reverse sweep.
// Nodes are reference-counted, so a graph frees itself when its last Var goes away.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "node.hpp"

namespace gg::detail {

/// A block of nodes, aligned to its size so a node finds its segment by masking its address.
struct Segment {
  Tape* tape;
  Segment* prev;                ///< older live segment
  Segment* next;                ///< newer live segment
  std::uint64_t seq;            ///< creation order among the tape's segments
  std::uint32_t size;           ///< slots handed out
  std::uint32_t live;           ///< nodes not yet freed
  std::uint32_t exts;           ///< its live nodes with an Ext (freeing the whole tape recycles them)
  std::uint64_t uid;            ///< unique over the process and the segment's reuses (Node::tag_)
  Node* mru[2];                 ///< last heap nodes referenced (see add_heap_ref)
  std::vector<Node*> heap_refs; ///< heap nodes this segment keeps alive (one ref each)
  /// (slot, change clock) when the clock had moved since the previous stamp: a node using a leaf
  /// was recorded at the clock of the last stamp at or before its slot (see recorded_at).
  std::vector<std::pair<std::uint32_t, std::uint64_t>> stamps;
  std::uint64_t last_stamp = 0;

  Node* slots();
  void add_heap_ref(Node* h);
  void drop_heap_refs() noexcept;
};

/// The segment header occupies the first node-sized slots of the block; nodes fill the rest.
inline constexpr std::size_t k_header_slots = (sizeof(Segment) + sizeof(Node) - 1) / sizeof(Node);
inline constexpr std::uint32_t k_segment_capacity = k_segment_bytes / sizeof(Node) - k_header_slots;
// node.hpp's tape_of() reads a segment's tape as the first word of its block. (Emscripten's libc++
// containers are not standard-layout, so there the check cannot be written; the layout is the same.)
#if !defined(__EMSCRIPTEN__)
static_assert(std::is_standard_layout_v<Segment> && offsetof(Segment, tape) == 0);
#endif
inline Node* Segment::slots() {
  return reinterpret_cast<Node*>(this) + k_header_slots;
}

inline Segment* segment_of(const Node* n) {
  return reinterpret_cast<Segment*>(reinterpret_cast<std::uintptr_t>(n) & ~(k_segment_bytes - 1));
}

/// Asks for the memory `bytes` below n: sweeps of the tape run downwards (backward, freeing), and
/// this measured faster than leaving it to the hardware prefetcher. (Integer arithmetic: the address
/// may lie outside n's segment, which a prefetch does not mind.)
inline void prefetch_below(const Node* n, std::uintptr_t bytes) {
  __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<std::uintptr_t>(n) - bytes));
}

struct Tape {
  Segment* head = nullptr; ///< oldest live segment
  Segment* tail = nullptr; ///< newest: recording appends here
  std::vector<Segment*> pool;
  std::uint64_t next_seq = 1;
  std::size_t live_segments = 0;
  /// Its thread has exited: segments free themselves, and every thread changes its nodes' counts
  /// under foreign_mutex(). Written and read by other threads under that lock.
  bool closed = false;
  /// Other threads' copies (+1) and releases (-1) of Vars of this tape, per node, waiting for this
  /// tape's thread to apply them (drain_foreign); under foreign_mutex().
  std::unordered_map<Node*, std::int64_t> foreign;
  std::atomic<bool> has_foreign{false};
  /// Nodes recorded on segments that are no longer the tail, or before the tail was rewound.
  std::uint64_t born = 0;

  /// The Var handles left to this tape's nodes (on its thread): one per node recorded, plus copies,
  /// minus releases. Counted without a write per recorded op (the bench's chain: +0.45 ns an op
  /// when recording incremented a counter).
  std::uint64_t handles() const { return born + (tail ? tail->size : 0) + t_handle_balance; }

  /// A fresh node slot on the tail segment (a new segment when it is full).
  Node* alloc() {
    Segment* s = tail;
    if (s && s->size < k_segment_capacity) [[likely]] {
      ++s->live;
      return s->slots() + s->size++;
    }
    return alloc_in_new_segment();
  }
  Node* alloc_in_new_segment();
  /// Called when a segment's last node died.
  void segment_empty(Segment* s) noexcept;
  /// Frees every node (no handle is left to any of them): segment by segment, recycling the Exts
  /// of those that have one, without visiting the others.
  void free_all() noexcept;
  Segment* new_segment();
  void unlink(Segment* s) noexcept;
  /// On the tape's thread: applies the counts other threads queued (frees what they released last).
  void drain_foreign() {
    if (has_foreign.load(std::memory_order_acquire)) [[unlikely]]
      apply_foreign();
  }
  void apply_foreign() noexcept;
  ~Tape();
};

// Constant-initialised thread-locals: `constinit` tells every user of these declarations that no
// dynamic initialiser exists, so a read is one TLS load. Without it, each read from another source
// file first tests for (and may call) a TLS init wrapper: callgrind counted ~25 instructions per
// recorded scalar op there.
extern thread_local constinit Tape* t_tape;
extern thread_local constinit bool t_grad_mode;
extern thread_local constinit std::uint32_t t_scope; ///< id of the innermost gg::Scope (0: none)
extern thread_local constinit bool t_anomaly;        ///< gg::DetectAnomaly is on
Tape& create_tape();

/// This thread's tape.
inline Tape& tape() {
  return t_tape ? *t_tape : create_tape();
}
/// Whether ops record on this thread (NoGrad clears it).
inline bool& grad_mode_flag() {
  return t_grad_mode;
}

[[noreturn]] void throw_foreign_input();

/// The lock for other threads' use of a tape's nodes: their queued counts, and every use of the nodes
/// of a closed tape (recursive: freeing nodes can run destructors that release Vars).
std::recursive_mutex& foreign_mutex();
/// Runs f() where it may touch tape node n's gradient, marks or count: at once on n's own thread
/// (or for a heap node), under foreign_mutex() when n's thread has exited; else a UsageError saying
/// that `what` (backward, grad, ...) belongs to the thread that recorded the graph.
template <class F> decltype(auto) on_graph(const Node* n, std::string_view what, F&& f);
[[noreturn]] void throw_other_thread(std::string_view what);

/// Counts in-place changes of leaves (set_value, optimizer steps) over all threads. A leaf keeps
/// the count of its last change (Ext::changed_at); a node using a leaf keeps, through its segment's
/// stamps, the count when it was recorded. A leaf changed after a node used it makes that node's
/// gradient stale: backward refuses it, as PyTorch's version counters do.
extern std::atomic<std::uint64_t> g_change_clock;
/// Stamps the segment's newest node (being recorded) when the clock moved since the last stamp.
void add_stamp(Segment* s, std::uint64_t now);
inline void stamp(Segment* s) {
  const std::uint64_t now = g_change_clock.load(std::memory_order_relaxed);
  if (now != s->last_stamp) [[unlikely]]
    add_stamp(s, now); // out of line: recording a scalar op stays small enough to inline
}

/// Throws when x was recorded on another thread's tape (its refcount is not ours to touch).
inline void check_input(const Tape& t, const Node* x) {
  if (x && !x->on_heap() && segment_of(x)->tape != &t) throw_foreign_input();
}

/// Counts n's reference to input x: tape nodes individually, heap nodes once per segment (a heap
/// node's tag names the segment that last took a reference to it).
inline void link_input(Segment* s, Node* x) {
  if (x->on_heap()) {
    if (atomic_ref<std::uint64_t>(x->tag_).load(std::memory_order_relaxed) != s->uid) s->add_heap_ref(x);
    stamp(s);
  } else {
    ++x->refs;
  }
}

/// A scope id's path ("" for 0), label, and enclosing scope's id.
std::string scope_path(std::uint32_t id);
std::string scope_label(std::uint32_t id);
std::uint32_t scope_parent(std::uint32_t id);

/// The node's Ext, created on first use.
Ext& ext_of(Node* n);

/// Records a node on this thread's tape with op, inputs (a, b may be null), value and constant c.
/// The returned node has one reference (for the Var that adopts it) and requires grad.
inline Node* record_scalar(Op op, Node* a, Node* b, double value, double c) {
  Tape& t = tape();
  check_input(t, a);
  check_input(t, b);
  Node* n = t.alloc();
  Segment* s = segment_of(n);
  n->value = value;
  n->grad = 0;
  n->first = a;
  if (b)
    n->second_ = b;
  else
    n->c_ = c;
  n->ext = nullptr;
  n->refs = 1; // the handle of the Var that adopts it (counted by Tape::handles through the tail's size)
  n->op = op;
  n->flags = b ? k_requires_grad : k_requires_grad | k_constant;
  n->marks_ = 0;
  n->hooked_ = 0;
  if (a) link_input(s, a);
  if (b) link_input(s, b);
  if (t_scope) [[unlikely]]
    ext_of(n).scope = t_scope;
  return n;
}
inline Node* record(Op op, Node* a, Node* b = nullptr) {
  return record_scalar(op, a, b, 0, 0);
}

template <class F> decltype(auto) on_graph(const Node* n, std::string_view what, F&& f) {
  if (n->on_heap() || owned_here(n)) return f();
  std::lock_guard lock(foreign_mutex());
  if (!tape_of(n)->closed) throw_other_thread(what);
  return f();
}

/// Adds an input beyond the first two (variadic ops).
void record_more_input(Node* n, Node* x);
/// A node owned by its handles (leaf or constant), with one reference.
Node* new_heap_node(bool requires_grad);

} // namespace gg::detail
