// The tape's memory: segments, node allocation and the reference counting that frees a graph
// when its last Var goes away (iteratively, so a chain of a million ops cannot overflow the stack).
#include "tape.hpp"

#include "hooks.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <utility>

#include <autodiff/var.hpp>

#include <fmt/format.h>

namespace gg::detail {

namespace {
// Freed segments kept for the next graph: a training loop then records into warm memory instead of
// page-faulting fresh mmap blocks (measured: 4.5x -> see docs/design.md). 256 segments = 64 MiB.
constexpr std::size_t k_max_pooled = 256;

struct TapeHolder {
  Tape* tape = nullptr;
  ~TapeHolder() {
    if (!tape) return;
    // From now on other threads change this tape's counts themselves, under the lock; what they
    // queued until now is applied first, as this thread's own releases.
    std::lock_guard lock(foreign_mutex());
    tape->apply_foreign();
    t_tape = nullptr;
    tape->closed = true;
    // Segments still referenced free themselves later; the last one to go deletes the tape.
    if (tape->tail && tape->tail->live == 0)
      tape->segment_empty(tape->tail); // may delete the tape
    else if (tape->live_segments == 0)
      delete tape;
  }
};
// The hot path reads the trivial pointer t_tape (no TLS init guard); the holder, whose destructor
// closes the tape at thread exit, is touched only when the tape is created.
thread_local TapeHolder t_holder;

} // namespace

std::atomic<std::uint64_t> g_change_clock{0};

namespace {
std::atomic<std::uint64_t> g_segment_uids{0};
/// A segment id never used before (Segment::uid), from 1: a heap node's tag 0 names no segment.
std::uint64_t new_segment_uid() {
  return g_segment_uids.fetch_add(1, std::memory_order_relaxed) + 1;
}
} // namespace
constinit thread_local Tape* t_tape = nullptr;
constinit thread_local std::uint64_t t_handle_balance = 0;
constinit thread_local bool t_grad_mode = true;
constinit thread_local std::uint32_t t_scope = 0;
constinit thread_local bool t_anomaly = false;

Tape& create_tape() {
  t_tape = new Tape;
  t_holder.tape = t_tape;
  return *t_tape;
}

void throw_foreign_input() {
  throw UsageError("a Var recorded on another thread's graph was used as an input here: detach() it, "
                   "or make it a leaf, to share it between threads");
}

void throw_other_thread(std::string_view what) {
  throw UsageError(fmt::format(
      "{}: this Var was recorded by another thread, which is still running: only that thread may run "
      "backward or grad through its graph, read or change its gradients or name it (other threads may "
      "copy, release and read values); detach() it to use its value here",
      what));
}

std::recursive_mutex& foreign_mutex() {
  static std::recursive_mutex m;
  return m;
}

Tape::~Tape() {
  for (Segment* s : pool) {
    s->~Segment();
    ::operator delete (s, std::align_val_t{k_segment_bytes});
  }
}

void add_stamp(Segment* s, std::uint64_t now) {
  s->stamps.emplace_back(s->size - 1, now);
  s->last_stamp = now;
}

Segment* Tape::new_segment() {
  Segment* s;
  if (!pool.empty()) {
    s = pool.back();
    pool.pop_back();
  } else {
    void* mem = ::operator new (k_segment_bytes, std::align_val_t{k_segment_bytes});
    s = new (mem) Segment{};
    s->tape = this;
  }
  s->seq = next_seq++;
  s->uid = new_segment_uid();
  s->size = 0;
  s->live = 0;
  s->exts = 0;
  s->mru[0] = s->mru[1] = nullptr;
  s->stamps.clear();
  s->last_stamp = 0;
  s->prev = tail;
  s->next = nullptr;
  if (tail) born += tail->size;
  if (tail)
    tail->next = s;
  else
    head = s;
  tail = s;
  ++live_segments;
  return s;
}

void Tape::unlink(Segment* s) noexcept {
  (s->prev ? s->prev->next : head) = s->next;
  (s->next ? s->next->prev : tail) = s->prev;
  --live_segments;
}

Node* Tape::alloc_in_new_segment() {
  drain_foreign(); // a segment's worth of ops: time to free what other threads released
  if (tail && tail->size < k_segment_capacity) { // that emptied the recording segment
    ++tail->live;
    return tail->slots() + tail->size++;
  }
  Segment* s = new_segment();
  ++s->live;
  return s->slots() + s->size++;
}

void Tape::segment_empty(Segment* s) noexcept {
  s->drop_heap_refs();
  if (s == tail && !closed) {
    born += s->size;
    s->size = 0; // the recording segment is simply rewound: a new segment for the heap nodes' tags
    s->exts = 0;
    s->uid = new_segment_uid();
    s->stamps.clear();
    s->last_stamp = 0;
    return;
  }
  unlink(s);
  if (!closed && pool.size() < k_max_pooled) {
    pool.push_back(s);
    return;
  }
  s->~Segment();
  ::operator delete (s, std::align_val_t{k_segment_bytes});
  if (closed && live_segments == 0) delete this;
}

void Segment::add_heap_ref(Node* h) {
  // h's tag named another segment. Of this thread's, only the recording one (this) takes references,
  // so h is new here, unless another thread's segment took h since (a leaf shared between threads):
  // the two heap nodes last referenced catch most of those repeats, and the rest cost a duplicate
  // entry (its own reference, released with the others). A set of the entries, before the tags,
  // cost ADBenchmark's sum_iter 5-6 allocations per input.
  if (h != mru[0] && h != mru[1]) {
    heap_refs.push_back(h);
    retain(h);
  }
  atomic_ref<std::uint64_t>(h->tag_).store(uid, std::memory_order_relaxed);
  mru[1] = mru[0];
  mru[0] = h;
}

void Segment::drop_heap_refs() noexcept {
  std::vector<Node*> refs;
  refs.swap(heap_refs); // release() may run arbitrary destructors; leave this segment consistent
  mru[0] = mru[1] = nullptr;
  for (Node* h : refs) release(h);
  refs.clear();
  if (heap_refs.empty()) heap_refs.swap(refs); // its capacity serves the next graph
}

void record_more_input(Node* n, Node* x) {
  Segment* s = segment_of(n);
  check_input(*s->tape, x);
  ext_of(n).more.push_back(x);
  link_input(s, x);
}

namespace {
/// Freed heap nodes (leaves, constants) kept per thread for the next ones, a list threaded through
/// `first`: a loop making many scalar leaves (ADBenchmark's sum_iter makes one per input) spent a
/// third of its time in malloc and free (glibc consolidating its fast bins). Trivially initialised;
/// the holder deletes them at thread exit, after which (`closed`) a node is simply deleted.
struct NodeCache {
  static constexpr std::size_t capacity = std::size_t{1} << 17; // 6 MiB of nodes
  Node* head;
  std::size_t count;
  bool active, closed;
};
constinit thread_local NodeCache t_nodes{};
struct NodeCacheHolder {
  bool registered = false;
  ~NodeCacheHolder() {
    for (Node* n = t_nodes.head; n;) delete std::exchange(n, n->first);
    t_nodes = {};
    t_nodes.closed = true;
  }
};
thread_local NodeCacheHolder t_node_holder;
} // namespace

Node* new_heap_node(bool requires_grad) {
  NodeCache& c = t_nodes;
  Node* n;
  if (c.head) {
    n = c.head;
    c.head = n->first;
    --c.count;
    *n = Node{};
  } else {
    n = new Node{};
  }
  n->flags = static_cast<std::uint8_t>(k_heap | (requires_grad ? k_requires_grad : 0));
  n->refs = 1;
  n->op = Op::leaf;
  return n;
}

namespace {
/// Freed Ext objects kept per thread for the next tensor node: every tensor op of a training step
/// needs one. Trivially initialised and destroyed; the holder drains it at thread exit, after which
/// (`closed`) an Ext is simply deleted.
struct ExtCache {
  static constexpr std::size_t capacity = 256;
  Ext* items[capacity];
  std::size_t count;
  bool active, closed;
};
thread_local ExtCache t_exts;
struct ExtCacheHolder {
  bool registered = false;
  ~ExtCacheHolder() {
    for (std::size_t i = 0; i < t_exts.count; ++i) delete t_exts.items[i];
    t_exts = {};
    t_exts.closed = true;
  }
};
thread_local ExtCacheHolder t_ext_holder;

/// Empties a vector, keeping a small buffer for the next node that needs one (a large one goes).
template <class T> void empty_vector(std::vector<T>& v) noexcept {
  if (v.capacity() > 64)
    std::vector<T>().swap(v);
  else
    v.clear();
}

// recycle() empties an Ext field by field: a new field of Ext needs its line there (then update this).
// (value, grad, aux; name; scope, padded to 8 bytes; more, ints, reals; function; changed_at). Checked on
// 64-bit builds only: on wasm32 (the browser engine) scope takes no padding.
static_assert(sizeof(void*) != 8 ||
                  sizeof(Ext) == 3 * sizeof(Tensor) + sizeof(std::string) + sizeof(std::uint64_t) +
                                     sizeof(std::vector<Node*>) + sizeof(std::vector<std::int64_t>) +
                                     sizeof(std::vector<double>) + sizeof(std::shared_ptr<const Function>) +
                                     sizeof(std::uint64_t),
              "Ext changed: empty the new field in recycle()");

/// Destroys e's contents and keeps it for reuse (or deletes it). Field by field, each only when set:
/// `*e = Ext{}` built a whole Ext and moved it in, ~210 instructions an Ext where a training step's
/// tensor node has only its value and gradient set (callgrind, 2-3-2 MLP step: 7 Exts a step).
/// The cache is checked after emptying: a custom op's destructor (function.reset()) may release a
/// Var and so recycle another Ext first, taking the last free slot.
void recycle(Ext* e) noexcept {
  // A tensor's storage released by moving it out (as any moved-from tensor, it is left undefined):
  // `= Tensor()` built a zeroed tensor and swapped it in, ~45 instructions a tensor, two an Ext.
  const auto drop = [](Tensor& t) {
    if (t.defined()) const Tensor gone = std::move(t);
  };
  drop(e->value);
  drop(e->grad);
  drop(e->aux);
  if (!e->name.empty()) std::string().swap(e->name);
  e->scope = 0;
  empty_vector(e->more);
  empty_vector(e->ints);
  empty_vector(e->reals);
  if (e->function) e->function.reset();
  e->changed_at = 0;
  ExtCache& c = t_exts;
  if (c.closed || c.count == ExtCache::capacity) return delete e;
  if (!c.active) [[unlikely]] {
    c.active = true;
    t_ext_holder.registered = true;
  }
  c.items[c.count++] = e;
}
} // namespace

Ext& ext_of(Node* n) {
  if (!n->ext) {
    ExtCache& c = t_exts;
    n->ext = c.count > 0 ? c.items[--c.count] : new Ext;
    if (!n->on_heap()) ++segment_of(n)->exts;
  }
  return *n->ext;
}

void free_heap_node(Node* n) noexcept {
  if (n->hooked_) drop_hooks(n);
  if (n->ext) recycle(n->ext);
  NodeCache& c = t_nodes;
  if (c.closed || c.count == NodeCache::capacity) return delete n;
  if (!c.active) [[unlikely]] {
    c.active = true;
    t_node_holder.registered = true;
  }
  n->first = c.head;
  c.head = n;
  ++c.count;
}

namespace {
// Dying nodes waiting to be freed, as a list threaded through their (no longer needed) grad field:
// trivially destructible thread-locals, so a Var released during program exit, after this
// thread's destructors ran, still frees safely.
thread_local Node* t_dying = nullptr;
thread_local bool t_freeing = false;

void push_dying(Node* x) {
  std::memcpy(&x->grad, &t_dying, sizeof(Node*));
  t_dying = x;
}
Node* pop_dying() {
  Node* x = t_dying;
  if (x) std::memcpy(&t_dying, &x->grad, sizeof(Node*));
  return x;
}
} // namespace

void free_tape_node(Node* n) noexcept {
  // No recursion: a dying chain is followed in a loop (`next`), other dying inputs are queued; a
  // release from a destructor run here (a custom op holding Vars) queues too.
  if (t_freeing) {
    push_dying(n);
    return;
  }
  Tape* const t = tape_of(n);
  if (t == t_tape) {
    if (t->has_foreign.load(std::memory_order_acquire)) [[unlikely]] {
      // Other threads' copies may be queued, of n among others: counted first, n is freed only if
      // none is left (before, a copy queued there survived its node).
      ++n->refs;
      t->apply_foreign();
      if (--n->refs != 0) return;
    }
    // No Var is left to any node of this tape, here or queued by other threads: nothing can reach
    // them, so all die, and the tape is freed without following their inputs (walking a graph of a
    // million scalar ops read its 48 MB once more: 2-3 ns an op).
    if (t->handles() == 0 && !t->has_foreign.load(std::memory_order_acquire)) {
      t->free_all();
      return;
    }
  }
  t_freeing = true;
  // Nodes freed from one segment are counted here and taken off its live count once, when the
  // walk leaves the segment: a decrement per node would chain every step on the same memory word.
  Segment* seg = segment_of(n);
  std::uint32_t freed = 0;
  for (Node* m = n; m;) {
    Node* next = nullptr;
    auto drop = [&](Node* x) {
      if (x->on_heap()) return;
      // A dying node's count is not written back: its memory is not touched again before reuse,
      // so freeing a long chain reads the tape without dirtying it.
      if (x->refs != 1) {
        --x->refs;
        return;
      }
      if (next)
        push_dying(x);
      else
        next = x;
    };
    prefetch_below(m, 2048);
    if (m->first) drop(m->first);
    if (Node* b = m->in1()) drop(b);
    if (m->ext) {
      for (Node* x : m->ext->more) drop(x);
      Ext* e = m->ext;
      m->ext = nullptr;
      --segment_of(m)->exts;
      recycle(e);
    }
    if (segment_of(m) != seg) {
      if ((seg->live -= freed) == 0) seg->tape->segment_empty(seg);
      seg = segment_of(m);
      freed = 0;
    }
    ++freed;
    m = next ? next : pop_dying();
  }
  if ((seg->live -= freed) == 0) seg->tape->segment_empty(seg);
  t_freeing = false;
}

void Tape::free_all() noexcept {
  t_freeing = true; // as in a walk (no Var of this tape is left for a destructor to release)
  for (Segment* s = tail; s;) {
    Segment* const below = s->prev;
    // Top down, as the walk frees them (tensor buffers go back to their cache in the same order).
    for (Node* m = s->slots() + s->size; s->exts > 0 && m-- != s->slots();)
      if (Ext* e = m->ext) {
        m->ext = nullptr;
        --s->exts;
        recycle(e);
      }
    s->live = 0;
    segment_empty(s);
    s = below;
  }
  t_freeing = false;
}

namespace {
/// Frees n, of a closed tape, completely before returning (under foreign_mutex()), even when this
/// thread is inside free_tape_node already (a custom op's destructor releasing such a Var): that
/// outer walk runs without the lock.
void free_closed(Node* n) noexcept {
  Node* const dying = t_dying;
  const bool freeing = t_freeing;
  t_dying = nullptr, t_freeing = false;
  free_tape_node(n);
  t_dying = dying, t_freeing = freeing;
}
} // namespace

void retain_foreign(Node* n) noexcept {
  std::lock_guard lock(foreign_mutex());
  Tape* t = tape_of(n);
  if (t->closed) {
    ++n->refs;
    return;
  }
  if (++t->foreign[n] == 0) t->foreign.erase(n);
  t->has_foreign.store(true, std::memory_order_release);
}

void release_foreign(Node* n) noexcept {
  std::lock_guard lock(foreign_mutex());
  Tape* t = tape_of(n);
  if (t->closed) {
    if (--n->refs == 0) free_closed(n); // may delete the tape
    return;
  }
  if (--t->foreign[n] == 0) t->foreign.erase(n);
  t->has_foreign.store(true, std::memory_order_release);
}

void Tape::apply_foreign() noexcept {
  std::unordered_map<Node*, std::int64_t> batch;
  {
    std::lock_guard lock(foreign_mutex());
    batch.swap(foreign);
    has_foreign.store(false, std::memory_order_relaxed);
  }
  // Copies first: a node another thread copied and released may be freed only once both are counted
  // (a Var copied there holds the node through the release of the Var it was copied from).
  for (const auto& [n, delta] : batch)
    if (delta > 0)
      n->refs += static_cast<std::uint32_t>(delta), t_handle_balance += static_cast<std::uint64_t>(delta);
  for (const auto& [n, delta] : batch)
    if (delta < 0) {
      t_handle_balance -= static_cast<std::uint64_t>(-delta);
      if ((n->refs -= static_cast<std::uint32_t>(-delta)) == 0) free_tape_node(n);
    }
}

} // namespace gg::detail

namespace gg {

NoGrad::NoGrad() : prev_(detail::grad_mode_flag()) {
  detail::grad_mode_flag() = false;
}
NoGrad::~NoGrad() {
  detail::grad_mode_flag() = prev_;
}
bool grad_enabled() {
  return detail::grad_mode_flag();
}

DetectAnomaly::DetectAnomaly(bool on) : prev_(detail::t_anomaly) {
  detail::t_anomaly = on;
}
DetectAnomaly::~DetectAnomaly() {
  detail::t_anomaly = prev_;
}
bool anomaly_detection_enabled() {
  return detail::t_anomaly;
}

TapeStats tape_stats() {
  detail::Tape& t = detail::tape();
  t.drain_foreign();
  TapeStats st{0, t.live_segments, t.pool.size(), 0};
  for (detail::Segment* s = t.head; s; s = s->next) st.live_nodes += s->live;
  st.bytes = (st.segments + st.pooled_segments) * detail::k_segment_bytes;
  return st;
}

namespace {
/// Scopes by id (id 0 is "no scope"); ids are never reused, so nodes can keep them. A scope is
/// identified by its parent, its name and its label: two models both with a layer "0" get two.
struct ScopeNames {
  struct Entry {
    std::string path, label;
    std::uint32_t parent;
  };
  std::mutex mutex;
  std::vector<Entry> entries{Entry{"", "", 0}};
  std::map<std::string, std::uint32_t, std::less<>> ids;

  std::uint32_t intern(std::uint32_t parent, std::string_view name, std::string_view label) {
    std::lock_guard lock(mutex);
    std::string key = std::to_string(parent) + '\x1f' + std::string(name) + '\x1f' + std::string(label);
    auto [it, fresh] = ids.try_emplace(std::move(key), static_cast<std::uint32_t>(entries.size()));
    if (fresh) {
      const std::string& up = entries[parent].path;
      entries.push_back(
          Entry{up.empty() ? std::string(name) : up + "/" + std::string(name), std::string(label), parent});
    }
    return it->second;
  }
  Entry entry(std::uint32_t id) {
    std::lock_guard lock(mutex);
    return entries[id];
  }
};
ScopeNames& scope_names() {
  static ScopeNames names;
  return names;
}
} // namespace

namespace {
/// The scopes this thread opened last, so that a training loop entering the same modules every step
/// finds their ids without the registry's lock, key string and map lookup (callgrind: 15% of a
/// 2-3-2 MLP's step went there). Ids never change, so a cached one stays right.
struct RecentScopes {
  struct Entry {
    std::uint32_t parent = 0, id = 0;
    std::string name, label;
  };
  std::array<Entry, 16> entries;
  std::size_t next = 0;

  std::uint32_t find(std::uint32_t parent, std::string_view name, std::string_view label) {
    for (const Entry& e : entries)
      if (e.id != 0 && e.parent == parent && e.name == name && e.label == label) return e.id;
    const std::uint32_t id = scope_names().intern(parent, name, label);
    entries[next] = {parent, id, std::string(name), std::string(label)};
    next = (next + 1) % entries.size();
    return id;
  }
};
} // namespace

Scope::Scope(std::string_view name, std::string_view label) : prev_(detail::t_scope) {
  thread_local RecentScopes recent;
  detail::t_scope = recent.find(prev_, name, label);
}
Scope::~Scope() {
  detail::t_scope = prev_;
}
std::string Scope::current() {
  return scope_names().entry(detail::t_scope).path;
}

std::string detail::scope_path(std::uint32_t id) {
  return scope_names().entry(id).path;
}
std::string detail::scope_label(std::uint32_t id) {
  return scope_names().entry(id).label;
}
std::uint32_t detail::scope_parent(std::uint32_t id) {
  return scope_names().entry(id).parent;
}

std::string scope_of(const Var& v) {
  if (!v.defined()) return {};
  const detail::Node* n = v.node();
  return n->ext ? scope_names().entry(n->ext->scope).path : std::string();
}

} // namespace gg
