// The chain rule: one reverse sweep over the tape, chain_rule() below, serves backward(), gg::grad
// (plain and create_graph) and the printed trace. What differs is the Pass: what a gradient is and
// where it is kept (numbers in the nodes, recorded Vars, a trace's steps). Around the sweep, as named
// helpers: the version check of leaves changed in place, anomaly mode, the leaf-gradient cache, the
// leaves' gradient hooks and the refusal of a second pass through a graph. Each op's rule is in its family's
// file (src/ops/).
#include <autodiff/function.hpp>
#include <autodiff/ops.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <iterator>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include <fmt/format.h>

#include "hooks.hpp"
#include "internal.hpp"
#include "kernels/kernels.hpp"
#include "ops/elementwise.hpp"
#include "ops/family.hpp"
#include "tape.hpp"

namespace gg::detail {

namespace {

// ---------------------------------------------------------------------------------------------
// Helpers around the sweep (defined at the end of the file)

/// Visits tape nodes from `top` down in reverse recording order until visit(node) returns false or
/// the tape's oldest node was visited.
template <class F> void for_each_node_down(Node* top, F&& visit);

/// The version check: a UsageError when a leaf that n used was changed in place (set_value, an
/// optimizer step) after n was recorded, as PyTorch's version counters. One load while nothing was.
/// Once anything changed (a training loop's optimizer steps every time), a node recorded since the
/// clock last moved — its segment's last stamp is the clock now and at or before its slot: the step
/// being differentiated — cannot have an input changed after it: no input is read (callgrind, 2-3-2
/// MLP step: ~85 instructions a node).
[[gnu::noinline]] void check_inputs_unchanged_slow(const Node* n);
inline void check_inputs_unchanged(const Node* n) {
  const std::uint64_t now = g_change_clock.load(std::memory_order_relaxed);
  if (now == 0) [[likely]]
    return;
  Segment* s = segment_of(n);
  if (s->last_stamp == now && s->stamps.back().first <= static_cast<std::uint32_t>(n - s->slots())) return;
  check_inputs_unchanged_slow(n);
}

/// Anomaly mode (gg::DetectAnomaly): which node first passed a gradient to each node, for the
/// message's path back to the output, and the checks that every gradient passed on is finite.
struct AnomalyTrail {
  std::unordered_map<const Node*, const Node*> reached_from;
  const Node* visiting = nullptr;
  void reached(const Node* m) { reached_from.emplace(m, visiting); }
  /// Throws the AnomalyError of n passing `share` (not finite) to its input i, from `upstream`.
  void check(const Node* n, int i, double share, double upstream) const;
  void check(const Node* n, int i, const Tensor& share, const Tensor& upstream) const;
};

/// The leaf-gradient cache: the leaves' gradients collected during a pass and added to their .grad()
/// afterwards under one lock (threads share parameters). A scalar leaf is typically hit by many
/// edges: its contributions are summed in a small direct-mapped table first. `used` says whether
/// any slot was filled, so a pass that never reaches a scalar leaf (a tensor model) does not scan
/// the table (callgrind, 2-3-2 MLP step through the Trainer: 340 of its 29k instructions). The table
/// (1 KB) is zeroed by prepare() when the pass first reaches a scalar node, not for every pass: a
/// pass meets scalar nodes only through a tensor add of a scalar node or a seed (ValuePass's
/// add(Node*, Tensor)), so a tensor model's pass never writes it (2-3-2 step: ~130 instructions).
struct LeafGradients {
  std::vector<std::pair<Node*, double>> scalar;
  std::vector<std::pair<Node*, Tensor>> tensor;
  static constexpr std::size_t k_slots = 64;
  std::array<std::pair<Node*, double>, k_slots> cache; ///< valid once `ready`
  bool used = false;
  bool ready = false;

  LeafGradients() noexcept {} // the table left as it is: prepare() zeroes it when needed
  /// Before the first scalar add(): an empty table.
  void prepare() noexcept {
    if (!ready) [[unlikely]] {
      cache.fill({nullptr, 0.0});
      ready = true;
    }
  }

  // The hit inline (the chain's leaves: two adds of every three nodes), the rest out of line: as one
  // function the compiler kept all of it out of the sweep (callgrind, scalar chain: 27 instructions
  // an add).
  [[gnu::always_inline]] void add(Node* m, double v) {
    auto& slot = cache[(reinterpret_cast<std::uintptr_t>(m) >> 6) % k_slots];
    if (slot.first == m) [[likely]] {
      slot.second += v;
      return;
    }
    replace(slot, m, v);
  }
  [[gnu::noinline]] void replace(std::pair<Node*, double>& slot, Node* m, double v) {
    if (slot.first)
      scalar.push_back(slot);
    else
      used = true;
    slot = {m, v};
  }
  void add(Node* m, Tensor v) { tensor.emplace_back(m, std::move(v)); }
  /// Exchanges the collected gradients with other's, not the table (empty between passes): the
  /// table is 1 KB, and std::swap copied it three times each way, twice a pass.
  void swap_buffers(LeafGradients& other) noexcept {
    scalar.swap(other.scalar);
    tensor.swap(other.tensor);
  }
  /// Empties the table into `scalar`: the pass's gradients are complete.
  void flush();
  void clear();
  /// Adds the gradients to the leaves' .grad() (under the leaf-gradient lock).
  void apply();
  /// The sum of the gradients collected for leaf n (undefined if none).
  Tensor total(const Node* n) const;
};

/// dst += src elementwise (same shape), converting src to dst's dtype.
void add_into(Tensor& dst, const Tensor& src) {
  const Tensor s = src.to(dst.dtype());
  const std::int64_t n = dst.numel();
  if (dst.dtype() == f64) {
    double* d = dst.data<double>();
    const double* p = s.data<double>();
    for (std::int64_t i = 0; i < n; ++i) d[i] += p[i];
  } else {
    float* d = dst.data<float>();
    const float* p = s.data<float>();
    for (std::int64_t i = 0; i < n; ++i) d[i] += p[i];
  }
}

/// Adds a pass's gradient to leaf's .grad() (the caller holds the leaf-gradient lock); v may be taken.
inline void accumulate_leaf(Node* leaf, double v) {
  leaf->grad = has_grad_mark(leaf) ? leaf->grad + v : v;
  set_grad_mark(leaf, true);
}
inline void accumulate_leaf(Node* leaf, Tensor& v) {
  Tensor& g = leaf->ext->grad;
  if (g.defined())
    add_into(g, v);
  else if (v.use_count() == 1) // nothing else holds this gradient: it becomes .grad() as it is
    g = std::move(v);
  else
    g = v.clone();
}

/// The gradient hooks of one pass, when some leaf has one (any_hooks()): the hooked leaves the seeds
/// reach; for each, how many reached nodes that use it are still to be visited, and its gradient so
/// far. When a leaf's count reaches zero its gradient is final: its hooks run then, while the sweep
/// goes on (data-parallel training starts averaging it); a leaf whose last consumer passed it
/// nothing, when the sweep ends. Counting needs a sweep before the pass that only marks the nodes a
/// gradient will reach (k_counted): with no hook registered, none of this runs.
struct HookedLeaves {
  struct Leaf {
    Node* node = nullptr;
    HookList hooks;
    std::int64_t consumers = 0; ///< reached nodes that use the leaf, not yet visited
    bool reached = false;       ///< a gradient reached it
    bool done = false;          ///< its hooks ran
    double scalar = 0;          ///< the gradient of a scalar leaf, for value passes
    Tensor tensor;              ///< of a tensor leaf
    void add(double v) {
      scalar += v;
      reached = true;
    }
    void add(Tensor v) {
      tensor = reached ? kernel::binary(kernel::Binary::add, tensor, v) : std::move(v);
      reached = true;
    }
  };
  static constexpr std::size_t k_none = SIZE_MAX; ///< index of a leaf whose hooks were all removed
  std::vector<Leaf> leaves;
  std::unordered_map<const Node*, std::size_t> index;

  Leaf* find(const Node* m) {
    if (!hooked(m)) return nullptr;
    const auto it = index.find(m);
    return it == index.end() || it->second == k_none ? nullptr : &leaves[it->second];
  }
  /// Finds the hooked leaves the seeds reach and counts their consumers.
  void count(const std::vector<std::pair<Node*, Tensor>>& seeds);
  /// After n's rule ran: fire(leaf) for each hooked input of n whose last consumer n was.
  template <class Fire> void visited(const Node* n, Fire&& fire) {
    for (int i = 0; i < n->num_inputs(); ++i) {
      Leaf* l = find(n->input(i));
      if (l && --l->consumers == 0 && l->reached && !l->done) l->done = true, fire(*l);
    }
  }
  /// When the sweep ends: fire(leaf) for each reached leaf whose hooks have not run, in the order found.
  template <class Fire> void finish(Fire&& fire) {
    for (Leaf& l : leaves)
      if (l.reached && !l.done) l.done = true, fire(l);
  }
};

/// Refusing a second pass: a pass that does not retain the graph marks every node it visits spent;
/// a later pass reaching a spent node throws this (a second backward would add the same gradients to
/// the leaves again; PyTorch refuses it too).
[[noreturn]] void throw_second_pass(const Node* n);
/// After a pass failed: takes the spent mark off the nodes it visited (those reachable from the
/// seeds through visited nodes, whose reached mark it had cleared), so that a failed pass leaves the
/// graph as it found it. Nodes spent by an earlier pass stay spent: this pass stopped at them.
void unspend_visited(const std::vector<std::pair<Node*, Tensor>>& seeds);

// ---------------------------------------------------------------------------------------------
// The chain rule

/// Starting from the seeds' gradients (`pending` tape nodes reached), visits the tape newest node
/// first — every use of a node was recorded after it, so its gradient is complete when it is visited —
/// and passes each reached node's gradient on to its inputs: the op's rule gives each input's share,
/// d(root)/d(node) × d(node)/d(input), and it is added to that input's gradient. Stops as soon as
/// every reached node has been visited, so older graphs on the tape cost nothing.
template <class Pass> void chain_rule(Pass& pass, Node* top, std::size_t pending) {
  // add(input, share): gradient(input) += share; 1 when it reached a tape node for the first time.
  const auto add = [&pass](Node* input, auto share) { return pass.add(input, std::move(share)); };
  for_each_node_down(top, [&](Node* n) {
    if (!pass.take(n)) return true;   // no gradient reached n
    check_inputs_unchanged(n);        // a leaf n used changed in place since: refuse
    pending += pass.backward(n, add); // the op's rule: each input's share of n's gradient, added
    pass.visited(n);                  // leaves whose last consumer n was: their hooks (if any) run
    return --pending > 0;
  });
}

// ---------------------------------------------------------------------------------------------
// The passes

/// backward() and grad(): gradients as numbers, kept in the nodes (scalar: Node::grad; tensor:
/// ext->grad), the leaves' in a LeafGradients. Scalar nodes take the inlined local derivatives
/// (ops/elementwise.hpp); tensor nodes the op's fast tensor rule, else its VJP with recording off.
/// Anomaly mode and Retain (the graph may be differentiated again) are template arguments: a node's
/// marks are bytes, and a byte store may alias any member, so a member flag would be reloaded after
/// every node (callgrind, scalar chain: 81 instructions per node, against 64 with the count of
/// pending nodes in chain_rule's local and these flags constant).
/// With Hooks (some leaf the seeds reach has a hook), hooked leaves' gradients are kept in `hooks`,
/// and given to their hooks (and, for backward(), added to their .grad()) as soon as they are final.
template <bool Anomaly, bool Retain, bool Hooks> struct ValuePass {
  LeafGradients leaves; // a member, not a reference: reloading a pointer after every byte store costs
  AnomalyTrail& trail;
  HookedLeaves* hooks; ///< Hooks: the pass's hooked leaves
  bool accumulate;     ///< Hooks: backward() (gradients go to the leaves' .grad()), not grad()
  /// The fast rules' outputs, kept from node to node: each share is moved out (leaving the slot
  /// undefined), so a node pays no construction and no out-of-line destructor call per slot (7 of
  /// them: callgrind, 2-3-2 MLP step, +450 instructions a step of ~29k when made per node). The
  /// thread's t_shares, kept from pass to pass (all undefined between passes), not 616 bytes zeroed
  /// for each.
  InputGrads& shares;

  bool take(Node* n) {
    const std::uint8_t marks = n->marks_;
    if ((marks & (k_reached | k_spent)) != k_reached) { // one test for the usual case
      if (!(marks & k_reached)) return false;
      throw_second_pass(n);
    }
    // Reached and not spent: clear the one, set the other.
    n->marks_ = static_cast<std::uint8_t>(Retain ? marks & ~k_reached : marks ^ (k_reached | k_spent));
    if constexpr (Anomaly) trail.visiting = n;
    return true;
  }

  template <class Add> int backward(Node* n, const Add& add) {
    if (n->is_tensor()) return backward_tensor(n, add);
    double d[2];
    scalar_derivatives(n, d);
    if constexpr (Anomaly)
      for (int i = 0; i < n->num_inputs(); ++i) trail.check(n, i, n->grad * d[i], n->grad);
    int reached = 0;
    if (n->first) reached += add(n->first, n->grad * d[0]);
    if (Node* b = n->in1()) reached += add(b, n->grad * d[1]);
    return reached;
  }
  // Out of line (a scalar node's pass keeps a small frame); `add` by value (by reference, the lambda
  // would live in memory, and chain_rule's count with it: +5 instructions per scalar node).
  template <class Add> [[gnu::noinline]] int backward_tensor(Node* n, Add add) {
    const Tensor& g = n->ext->grad;
    const OpRule& rule = rule_of(n->op);
    int reached = 0;
    InputGrads& out = shares; // in a register: add() stores through pointers, this->shares is reloaded
    if (rule.vjp_values && rule.vjp_values(n, g, out)) { // kernels only, no graph nodes
      // The count once: add() stores through pointers, so the compiler would reload it every round.
      const int inputs = std::min(static_cast<int>(out.size()), n->num_inputs());
      for (int i = 0; i < inputs; ++i) {
        Tensor& share = out[static_cast<std::size_t>(i)];
        if (!share.defined()) continue;
        if constexpr (Anomaly) trail.check(n, i, share, g);
        reached += add(n->input(i), std::move(share));
      }
      return reached;
    }
    out = {}; // a rule that declined may have filled some
    const std::vector<Var> vjps = rule.vjp(n, Var::constant(g));
    for (std::size_t i = 0; i < vjps.size(); ++i) {
      if (!vjps[i].defined()) continue;
      if constexpr (Anomaly) trail.check(n, static_cast<int>(i), vjps[i].value(), g);
      reached += add(n->input(static_cast<int>(i)), vjps[i].value());
    }
    return reached;
  }

  void visited(const Node* n) {
    if constexpr (Hooks) hooks->visited(n, [this](HookedLeaves::Leaf& l) { fire(l); });
  }
  /// Hooked leaf l's gradient is final: its hooks, and for backward() the leaf's .grad() between.
  void fire(HookedLeaves::Leaf& l) {
    Tensor g = l.node->is_tensor() ? std::move(l.tensor) : Tensor::scalar(l.scalar);
    for (const auto& h : l.hooks)
      if (h->on_grad && h->active.load()) h->on_grad(g);
    if (!accumulate) { // grad(): the result
      if (l.node->is_tensor()) {
        leaves.add(l.node, std::move(g));
      } else {
        leaves.prepare();
        leaves.add(l.node, l.scalar);
      }
      return;
    }
    {
      std::lock_guard lock(leaf_grad_mutex("backward"));
      l.node->is_tensor() ? accumulate_leaf(l.node, g) : accumulate_leaf(l.node, l.scalar);
    }
    Var leaf = ref(l.node);
    for (const auto& h : l.hooks)
      if (h->after_accumulate && h->active.load()) h->after_accumulate(leaf);
  }

  /// Adds v to m's gradient; 1 when m is a tape node reached for the first time (now pending).
  int add(Node* m, double v) {
    // Tape nodes always require grad (recorded only when an input does): only heap nodes are tested.
    if (m->on_heap()) {
      if (!m->requires_grad()) return 0;
      if constexpr (Hooks)
        if (HookedLeaves::Leaf* l = hooks->find(m)) {
          l->add(v);
          return 0;
        }
      leaves.add(m, v);
      return 0;
    }
    if (m->marks_ & k_reached) {
      m->grad += v;
      return 0;
    }
    m->marks_ |= k_reached | k_has_grad;
    m->grad = v;
    if constexpr (Anomaly) trail.reached(m);
    return 1;
  }
  int add(Node* m, Tensor v) {
    if (!m->requires_grad()) return 0;
    if (!m->is_tensor()) {
      leaves.prepare(); // a scalar node reached: its inputs' adds may use the table
      return add(m, v.item());
    }
    if (v.dtype() != m->ext->value.dtype()) v = v.to(m->ext->value.dtype());
    if (m->on_heap()) {
      if constexpr (Hooks)
        if (HookedLeaves::Leaf* l = hooks->find(m)) {
          l->add(std::move(v));
          return 0;
        }
      leaves.add(m, std::move(v));
      return 0;
    }
    if (m->marks_ & k_reached) {
      m->ext->grad = kernel::binary(kernel::Binary::add, m->ext->grad, v);
      return 0;
    }
    m->marks_ |= k_reached | k_has_grad;
    m->ext->grad = std::move(v); // may share storage with another gradient: never updated in place
    if constexpr (Anomaly) trail.reached(m);
    return 1;
  }
};

/// grad(..., {.create_graph = true}): gradients as Vars recorded on the tape (through the ops'
/// VJPs), so that they can be differentiated again. Retains the graph, as in PyTorch, and refuses one
/// a backward pass spent.
struct GraphPass {
  std::unordered_map<Node*, Var> grads;
  AnomalyTrail* trail = nullptr; ///< anomaly mode on
  HookedLeaves* hooks = nullptr; ///< hooks registered on leaves the seeds reach
  Var current;                   ///< the gradient of the node being visited

  bool take(Node* n) {
    const auto it = grads.find(n);
    if (it == grads.end()) return false;
    if (n->marks_ & k_spent) throw_second_pass(n); // as PyTorch: a spent graph is not gone through again
    current = it->second;
    if (trail) trail->visiting = n;
    return true;
  }
  template <class Add> int backward(Node* n, const Add& add) {
    const std::vector<Var> shares = rule_of(n->op).vjp(n, current);
    int reached = 0;
    for (std::size_t i = 0; i < shares.size(); ++i) {
      if (!shares[i].defined()) continue;
      if (trail) trail->check(n, static_cast<int>(i), shares[i].value(), current.value());
      reached += add(n->input(static_cast<int>(i)), shares[i]);
    }
    return reached;
  }
  void visited(const Node* n) {
    if (hooks) hooks->visited(n, [this](HookedLeaves::Leaf& l) { fire(l); });
  }
  void fire(const HookedLeaves::Leaf& l) {
    const Tensor g = grads.at(l.node).value();
    for (const auto& h : l.hooks)
      if (h->on_grad && h->active.load()) h->on_grad(g);
  }
  int add(Node* m, Var v) {
    if (!m->requires_grad()) return 0;
    if (hooks)
      if (HookedLeaves::Leaf* l = hooks->find(m)) l->reached = true;
    // A gradient has its value's dtype (as backward() gives it): mixed-dtype ops promote to f64.
    const DType want = m->is_tensor() ? m->ext->value.dtype() : f64;
    if (v.dtype() != want) v = to(v, want);
    const auto [it, fresh] = grads.try_emplace(m, v);
    if (!fresh) {
      it->second = it->second + v;
      return 0;
    }
    if (trail) trail->reached(m);
    return m->on_heap() ? 0 : 1;
  }
};

/// trace_backward's pass (scalar graphs): the same steps backward() takes, gradients kept aside
/// (the nodes are not touched), each edge recorded.
struct TracePass {
  std::unordered_map<const Node*, double> grads;
  const std::function<void(const ChainStep&)>& visit;
  ChainStep step{}; ///< the edge being passed: node, slot, local, upstream

  bool take(Node* n) {
    const auto it = grads.find(n);
    if (it == grads.end()) return false;
    step.node = n;
    step.upstream = it->second;
    return true;
  }
  template <class Add> int backward(Node* n, const Add& add) {
    double d[2];
    local_derivatives(n, d);
    int reached = 0;
    for (int i = 0; i < n->num_inputs(); ++i) {
      step.slot = i;
      step.local = d[i];
      reached += add(n->input(i), step.upstream * d[i]);
    }
    return reached;
  }
  void visited(const Node*) {} // a trace calls no hooks
  int add(Node* m, double product) {
    if (!m->requires_grad()) return 0; // a constant: backward sends it nothing
    const auto [it, fresh] = grads.try_emplace(m, 0.0);
    step.previous = it->second;
    it->second += product;
    step.input = m;
    step.product = product;
    step.accumulated = it->second;
    visit(step);
    return fresh && !m->on_heap() ? 1 : 0;
  }
};

/// ValuePass::shares of this thread's passes (one at a time: value_pass refuses a nested one). Left
/// undefined by every pass, a failed one included (value_pass empties it).
thread_local InputGrads t_shares;

/// The newest of the seeds' tape nodes (null when all are leaves): where the sweep starts.
Node* newest(const std::vector<std::pair<Node*, Tensor>>& seeds) {
  Node* top = nullptr;
  for (const auto& [n, seed] : seeds) {
    if (n->on_heap()) continue;
    const Segment *sn = segment_of(n), *st = top ? segment_of(top) : nullptr;
    if (!top || (sn->seq != st->seq ? sn->seq > st->seq : n > top)) top = n;
  }
  return top;
}

/// Runs ValuePass<Anomaly, Retain, Hooks> from the seeds; the leaves' gradients are left in `leaves`
/// (but those of hooked leaves in backward(), already added to their .grad()).
template <bool Anomaly, bool Retain, bool Hooks>
void run_value_pass(const std::vector<std::pair<Node*, Tensor>>& seeds, LeafGradients& leaves,
                    AnomalyTrail& trail, HookedLeaves* hooks, bool accumulate) {
  ValuePass<Anomaly, Retain, Hooks> pass{{}, trail, hooks, accumulate, t_shares};
  pass.leaves.swap_buffers(leaves); // the caller's buffers, with their capacity
  struct Back {
    LeafGradients &from, &to;
    ~Back() { from.swap_buffers(to); }
  } back{pass.leaves, leaves};
  std::size_t pending = 0;
  for (const auto& [n, seed] : seeds) pending += static_cast<std::size_t>(pass.add(n, seed));
  if (Node* top = newest(seeds)) chain_rule(pass, top, pending);
  if constexpr (Hooks) hooks->finish([&pass](HookedLeaves::Leaf& l) { pass.fire(l); });
  pass.leaves.flush(); // the table's gradients into the buffers handed back
}
template <bool Hooks>
void run_value_pass(const std::vector<std::pair<Node*, Tensor>>& seeds, LeafGradients& leaves,
                    AnomalyTrail& trail, bool anomaly, bool retain, HookedLeaves* hooks, bool accumulate) {
  if (anomaly) [[unlikely]]
    retain ? run_value_pass<true, true, Hooks>(seeds, leaves, trail, hooks, accumulate)
           : run_value_pass<true, false, Hooks>(seeds, leaves, trail, hooks, accumulate);
  else
    retain ? run_value_pass<false, true, Hooks>(seeds, leaves, trail, hooks, accumulate)
           : run_value_pass<false, false, Hooks>(seeds, leaves, trail, hooks, accumulate);
}
/// A value pass while some leaf has a hook: with hooks when the seeds reach a hooked leaf. Out of line:
/// the pass without hooks pays one load and a branch for them.
[[gnu::noinline]] void run_hooked_value_pass(const std::vector<std::pair<Node*, Tensor>>& seeds,
                                             LeafGradients& leaves, AnomalyTrail& trail, bool anomaly,
                                             bool retain, bool accumulate) {
  HookedLeaves hooked;
  hooked.count(seeds);
  if (hooked.leaves.empty())
    run_value_pass<false>(seeds, leaves, trail, anomaly, retain, nullptr, accumulate);
  else
    run_value_pass<true>(seeds, leaves, trail, anomaly, retain, &hooked, accumulate);
}

/// The hooked leaves the seeds reach, when some leaf has a hook (else none: the pass without hooks).
std::optional<HookedLeaves> find_hooked(const std::vector<std::pair<Node*, Tensor>>& seeds) {
  std::optional<HookedLeaves> hooked;
  if (!any_hooks()) [[likely]]
    return hooked;
  hooked.emplace().count(seeds);
  if (hooked->leaves.empty()) hooked.reset();
  return hooked;
}

/// A value pass (backward(), grad() without create_graph) from the seeds; `accumulate` for backward():
/// hooked leaves' gradients go to their .grad() as soon as they are final.
void value_pass(const std::vector<std::pair<Node*, Tensor>>& seeds, LeafGradients& leaves, bool retain,
                bool accumulate) {
  // The reached-marks live in the nodes, so two value passes on one thread would corrupt each other
  // (a custom backward calling backward() or grad() on another graph): refuse clearly.
  thread_local bool sweeping = false;
  if (sweeping)
    throw UsageError("backward() or grad() was called while another backward pass runs on this thread (from "
                     "a custom op's backward?): use grad(..., {.create_graph = true}) there instead");
  sweeping = true;
  struct Done {
    ~Done() { sweeping = false; }
  } done;
  const NoGrad no_grad;
  AnomalyTrail trail;
  const bool anomaly = t_anomaly;
  if (anomaly) [[unlikely]]
    for (const auto& [n, seed] : seeds)
      if (!all_finite(seed)) throw_seed_anomaly(n, seed);
  try {
    if (any_hooks()) [[unlikely]]
      run_hooked_value_pass(seeds, leaves, trail, anomaly, retain, accumulate);
    else
      run_value_pass<false>(seeds, leaves, trail, anomaly, retain, nullptr, accumulate);
  } catch (...) { // a custom op's backward or a check threw: the graph is left as this pass found it
    if (!retain) unspend_visited(seeds);
    // Unmark what this pass reached (the whole tape below the newest seed: the count of marked
    // nodes is not known after a throw).
    if (Node* top = newest(seeds))
      for_each_node_down(top, [](Node* n) {
        n->marks_ &= ~k_reached;
        return true;
      });
    leaves.clear();
    t_shares = {}; // a rule that threw may have filled some
    throw;
  }
}

/// gg::grad with create_graph: gradients are Vars recorded on the tape.
std::vector<Var> graph_pass(const std::vector<std::pair<Node*, Tensor>>& seeds,
                            const std::vector<Var>& inputs) {
  GraphPass pass;
  AnomalyTrail trail;
  if (t_anomaly) pass.trail = &trail;
  std::optional<HookedLeaves> hooked = find_hooked(seeds);
  if (hooked) pass.hooks = &*hooked;
  const DetectAnomaly forward_checks_off(false); // the rules' ops are checked as gradients instead
  std::size_t pending = 0;
  for (const auto& [n, seed] : seeds) {
    if (pass.trail && !all_finite(seed)) throw_seed_anomaly(n, seed);
    pending += static_cast<std::size_t>(pass.add(
        n, n->is_tensor() ? Var::constant(seed) : Var::constant(seed.item()))); // scalars stay scalar
  }
  if (Node* top = newest(seeds)) chain_rule(pass, top, pending);
  if (pass.hooks) pass.hooks->finish([&pass](const HookedLeaves::Leaf& l) { pass.fire(l); });
  std::vector<Var> r;
  for (const Var& x : inputs) {
    const auto it = pass.grads.find(x.node());
    r.push_back(it != pass.grads.end() ? it->second : Var());
  }
  return r;
}

void check_seed(const Var& v, const Tensor& seed, std::string_view what) {
  if (!v.defined()) throw UsageError(fmt::format("{}: the Var is undefined", what));
  if (!(seed.shape() == v.shape()))
    throw ShapeError(fmt::format("{}: the seed gradient has shape {} but the value has shape {}", what,
                                 seed.shape().str(), v.shape().str()));
}

Tensor default_seed(const Var& v, std::string_view what) {
  if (!v.defined()) throw UsageError(fmt::format("{}: the Var is undefined", what));
  if (v.numel() != 1)
    throw UsageError(fmt::format("{}: a seed gradient is implicit only for one-element outputs, this one has "
                                 "shape {}: pass a seed of that shape",
                                 what, v.shape().str()));
  return Tensor::ones(v.shape(), v.dtype());
}

/// backward() on the thread that owns the graph (or under the lock of a closed tape).
void backward_here(Node* n, const Tensor& seed, bool retain) {
  if (t_tape) t_tape->drain_foreign();
  if (t_updating_leaves) [[unlikely]] // before the pass, which would spend the graph for nothing
    throw_inside_update("backward");
  thread_local LeafGradients leaves; // buffers reused from one backward to the next
  leaves.clear();
  value_pass({{n, seed}}, leaves, retain, true);
  leaves.apply();
}

/// gg::grad on the thread that owns the graph (or under the lock of a closed tape).
std::vector<Var> grad_here(const std::vector<Var>& outputs, const std::vector<Var>& inputs,
                           const std::vector<Tensor>& seeds, GradOptions options) {
  if (t_tape) t_tape->drain_foreign();
  std::vector<std::pair<Node*, Tensor>> s;
  for (std::size_t i = 0; i < outputs.size(); ++i)
    if (options.create_graph || outputs[i].requires_grad()) s.emplace_back(outputs[i].node(), seeds[i]);
  std::vector<Var> r;
  if (options.create_graph) {
    r = graph_pass(s, inputs);
  } else {
    for (const Var& x : inputs) // inputs on the tape: has_grad marks which ones this pass reached
      if (!x.node()->on_heap()) x.node()->marks_ &= ~k_has_grad;
    LeafGradients leaves;
    value_pass(s, leaves, options.retain_graph, false);
    for (const Var& x : inputs) {
      const Node* n = x.node();
      Tensor g;
      if (n->on_heap())
        g = leaves.total(n);
      else if (n->marks_ & k_has_grad)
        g = n->is_tensor() ? n->ext->grad : Tensor::scalar(n->grad);
      r.push_back(g.defined() ? Var::constant(g) : Var());
    }
  }
  if (options.materialize_zeros)
    for (std::size_t i = 0; i < r.size(); ++i)
      if (!r[i].defined()) r[i] = Var::constant(Tensor::zeros(inputs[i].shape(), inputs[i].dtype()));
  return r;
}

} // namespace

void trace_chain_rule(Node* root, const std::function<void(const ChainStep&)>& visit) {
  if (root->on_heap()) return;
  TracePass pass{{}, visit};
  pass.grads.emplace(root, 1.0);
  chain_rule(pass, root, 1);
}

std::mutex& leaf_grad_mutex() {
  static std::mutex m;
  return m;
}
thread_local constinit bool t_updating_leaves = false;
void throw_inside_update(const char* call) {
  throw UsageError(fmt::format("{}: called from inside update_leaves' update (an optimizer's update), which "
                               "holds the leaves' gradient lock: change gradients before or after the step",
                               call));
}

void local_derivatives(const Node* n, double d[2]) {
  scalar_derivatives(n, d);
}

// ---------------------------------------------------------------------------------------------
// The helpers' definitions

namespace {

template <class F> void for_each_node_down(Node* top, F&& visit) {
  Segment* s = segment_of(top);
  std::ptrdiff_t i = top - s->slots();
  while (s) {
    Node* slots = s->slots();
    for (; i >= 0; --i) {
      prefetch_below(slots + i, 32 * sizeof(Node));
      if (!visit(slots + i)) return;
    }
    s = s->prev;
    if (s) i = static_cast<std::ptrdiff_t>(s->size) - 1;
  }
}

/// The change clock when tape node n was recorded: its segment's last stamp at or before its slot.
std::uint64_t recorded_at(const Node* n) {
  const Segment* s = segment_of(n);
  const auto slot = static_cast<std::uint32_t>(n - const_cast<Segment*>(s)->slots());
  // Recorded since the segment's last stamp (the graph of the step being differentiated): no search.
  if (!s->stamps.empty() && s->stamps.back().first <= slot) return s->stamps.back().second;
  const auto after = std::upper_bound(s->stamps.begin(), s->stamps.end(), slot,
                                      [](std::uint32_t i, const auto& stamp) { return i < stamp.first; });
  return after == s->stamps.begin() ? 0 : std::prev(after)->second;
}

/// "'q' (mul)", "mul": a node as messages name it.
std::string describe(const Node* n) {
  const Var v = ref(const_cast<Node*>(n));
  return v.name().empty() ? v.op_name() : fmt::format("'{}' ({})", v.name(), v.op_name());
}

void check_inputs_unchanged_slow(const Node* n) {
  std::uint64_t recorded = 0;
  bool known = false;
  for (int i = 0; i < n->num_inputs(); ++i) {
    const Node* x = n->input(i);
    if (!x->on_heap() || !x->ext) continue;
    const auto changed =
        detail::atomic_ref<std::uint64_t>(x->ext->changed_at).load(std::memory_order_relaxed);
    if (changed == 0) continue;
    if (!known) recorded = recorded_at(n), known = true;
    if (changed <= recorded) continue;
    const Var v = ref(const_cast<Node*>(x)), op = ref(const_cast<Node*>(n));
    const std::string name = v.name().empty() ? std::string("a leaf") : fmt::format("leaf '{}'", v.name());
    throw UsageError(fmt::format(
        "backward: {} of shape {} was changed in place (set_value, an optimizer step) after the op '{}'{} "
        "used it, so its gradient would mix old and new values: record the forward pass again after "
        "changing it",
        name, v.shape().str(), op.op_name(), op.name().empty() ? "" : fmt::format(" ('{}')", op.name())));
  }
}

/// n, the node that first passed it a gradient, and so on up to the output.
std::vector<const Node*> path_to_output(const Node* n,
                                        const std::unordered_map<const Node*, const Node*>& from) {
  std::vector<const Node*> path;
  for (const Node* m = n; m && path.size() < 1000;) {
    path.push_back(m);
    const auto it = from.find(m);
    m = it == from.end() ? nullptr : it->second;
  }
  return path;
}

void AnomalyTrail::check(const Node* n, int i, double share, double upstream) const {
  if (!std::isfinite(share))
    throw_backward_anomaly(n, i, Tensor::scalar(share), Tensor::scalar(upstream),
                           path_to_output(n, reached_from));
}
void AnomalyTrail::check(const Node* n, int i, const Tensor& share, const Tensor& upstream) const {
  if (!all_finite(share)) throw_backward_anomaly(n, i, share, upstream, path_to_output(n, reached_from));
}

void LeafGradients::flush() {
  if (!used) return;
  for (auto& slot : cache)
    if (slot.first) scalar.push_back(slot), slot = {nullptr, 0.0};
  used = false;
}
void LeafGradients::clear() {
  scalar.clear();
  tensor.clear();
  if (used) cache.fill({nullptr, 0.0});
  used = false;
}

void LeafGradients::apply() {
  std::lock_guard lock(leaf_grad_mutex()); // backward_here checked t_updating_leaves before its pass
  for (const auto& [leaf, v] : scalar) accumulate_leaf(leaf, v);
  for (auto& [leaf, v] : tensor) accumulate_leaf(leaf, v);
  tensor.clear(); // drop references to gradient tensors
}

void HookedLeaves::count(const std::vector<std::pair<Node*, Tensor>>& seeds) {
  std::size_t pending = 0;
  // A leaf's entry (null when it has no active hook), made when first met.
  const auto entry = [this](Node* m) -> Leaf* {
    const auto [it, fresh] = index.try_emplace(m, k_none);
    if (fresh) {
      HookList h = hooks_of(m);
      if (h.empty()) return nullptr;
      it->second = leaves.size();
      leaves.emplace_back().node = m;
      leaves.back().hooks = std::move(h);
    }
    return it->second == k_none ? nullptr : &leaves[it->second];
  };
  // m gets a gradient from a consumer (or, consumer false, as a seed).
  const auto reach = [&](Node* m, bool consumer) {
    if (!m->requires_grad()) return;
    if (m->on_heap()) {
      if (Leaf* l = hooked(m) ? entry(m) : nullptr; l && consumer) ++l->consumers;
    } else if (!(m->marks_ & k_counted)) {
      m->marks_ |= k_counted;
      ++pending;
    }
  };
  for (const auto& [n, seed] : seeds) reach(n, false);
  if (pending == 0) return;
  for_each_node_down(newest(seeds), [&](Node* n) {
    if (!(n->marks_ & k_counted)) return true;
    n->marks_ &= ~k_counted;
    for (int i = 0; i < n->num_inputs(); ++i) reach(n->input(i), true);
    return --pending > 0;
  });
}

Tensor LeafGradients::total(const Node* n) const {
  Tensor acc;
  const auto plus = [&](const Tensor& v) {
    acc = acc.defined() ? kernel::binary(kernel::Binary::add, acc, v) : v;
  };
  for (const auto& [leaf, v] : scalar)
    if (leaf == n) plus(Tensor::scalar(v));
  for (const auto& [leaf, v] : tensor)
    if (leaf == n) plus(v);
  return acc;
}

void unspend_visited(const std::vector<std::pair<Node*, Tensor>>& seeds) {
  std::vector<Node*> todo;
  std::unordered_set<const Node*> seen;
  for (const auto& [n, seed] : seeds)
    if (!n->on_heap()) todo.push_back(n);
  while (!todo.empty()) {
    Node* m = todo.back();
    todo.pop_back();
    if (!seen.insert(m).second || (m->marks_ & k_reached)) continue; // reached, not visited: untouched
    m->marks_ &= ~k_spent;
    for (int i = 0; i < m->num_inputs(); ++i)
      if (!m->input(i)->on_heap()) todo.push_back(m->input(i));
  }
}

void throw_second_pass(const Node* n) {
  throw UsageError(fmt::format(
      "backward: the graph through {} was already differentiated by a backward pass; a second pass would add "
      "its gradients to the leaves again. Record the forward pass again, or keep the graph for another pass "
      "with backward({{.retain_graph = true}}) (grad(..., {{.retain_graph = true}})) the first time",
      describe(n)));
}

} // namespace

} // namespace gg::detail

namespace gg {
using namespace detail;

void Var::backward(BackwardOptions options) const {
  backward(default_seed(*this, "backward"), options);
}

void Var::backward(const Tensor& seed, BackwardOptions options) const {
  check_seed(*this, seed, "backward");
  if (!requires_grad())
    throw UsageError("backward: this value does not require grad (no input requires grad, or it was "
                     "computed under NoGrad)");
  on_graph(n_, "backward", [&] { backward_here(n_, seed, options.retain_graph); });
}

std::vector<Var> grad(const std::vector<Var>& outputs, const std::vector<Var>& inputs,
                      const std::vector<Tensor>& grad_outputs, GradOptions options) {
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw ValueError(
        fmt::format("grad: {} grad_outputs for {} outputs", grad_outputs.size(), outputs.size()));
  std::vector<Tensor> seeds;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    if (grad_outputs.empty()) {
      seeds.push_back(default_seed(outputs[i], "grad"));
    } else {
      check_seed(outputs[i], grad_outputs[i], "grad");
      seeds.push_back(grad_outputs[i]);
    }
  }
  for (const Var& x : inputs)
    if (!x.defined()) throw UsageError("grad: an input Var is undefined");
  // The graph is this thread's, or a closed tape's under its lock (all outputs on one tape: an op
  // never mixes tapes).
  const Node* any = nullptr;
  for (const Var& v : outputs)
    if (!v.node()->on_heap()) any = v.node();
  for (const std::vector<Var>* vs : {&outputs, &inputs})
    for (const Var& v : *vs)
      if (any && !v.node()->on_heap() && tape_of(v.node()) != tape_of(any))
        throw UsageError("grad: the outputs and inputs were recorded by different threads");
  if (!any) return grad_here(outputs, inputs, seeds, options);
  return on_graph(any, "grad", [&] { return grad_here(outputs, inputs, seeds, options); });
}

} // namespace gg
