// Reverse mode: the reverse sweep over the tape that applies the chain rule, with each op's rule
// (autodiff/src/ops/). Scalar nodes take a fast path (the local derivatives of the elementwise rows,
// inlined); tensor nodes, and every node when the backward pass itself is recorded (create_graph),
// use the ops' vector-Jacobian products.
#include <autodiff/function.hpp>
#include <autodiff/ops.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <iterator>
#include <limits>
#include <mutex>
#include <unordered_map>

#include <fmt/format.h>

#include "internal.hpp"
#include "kernels/kernels.hpp"
#include "ops/elementwise.hpp"
#include "ops/family.hpp"
#include "tape.hpp"

namespace gg::detail {

std::mutex& leaf_grad_mutex() {
  static std::mutex m;
  return m;
}

void local_derivatives(const Node* n, double d[2]) {
  scalar_derivatives(n, d);
}

namespace {

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

/// The change clock when tape node n was recorded: its segment's last stamp at or before its slot.
std::uint64_t recorded_at(const Node* n) {
  const Segment* s = segment_of(n);
  const auto slot = static_cast<std::uint32_t>(n - const_cast<Segment*>(s)->slots());
  const auto after = std::upper_bound(s->stamps.begin(), s->stamps.end(), slot,
                                      [](std::uint32_t i, const auto& stamp) { return i < stamp.first; });
  return after == s->stamps.begin() ? 0 : std::prev(after)->second;
}

[[noreturn]] void throw_changed_input(const Node* n, const Node* leaf) {
  const Var v = ref(const_cast<Node*>(leaf)), op = ref(const_cast<Node*>(n));
  const std::string name = v.name().empty() ? std::string("a leaf") : fmt::format("leaf '{}'", v.name());
  throw UsageError(fmt::format(
      "backward: {} of shape {} was changed in place (set_value, an optimizer step) after the op '{}'{} "
      "used it, so its gradient would mix old and new values: record the forward pass again after "
      "changing it",
      name, v.shape().str(), op.op_name(), op.name().empty() ? "" : fmt::format(" ('{}')", op.name())));
}

/// Throws when a leaf input of n was changed in place after n was recorded (a stale gradient).
void check_inputs_unchanged(const Node* n) {
  if (g_change_clock.load(std::memory_order_relaxed) == 0) return; // nothing ever changed
  std::uint64_t recorded = 0;
  bool known = false;
  for (int i = 0; i < n->num_inputs(); ++i) {
    const Node* x = n->input(i);
    if (!x->on_heap() || !x->ext) continue;
    const auto changed = std::atomic_ref<std::uint64_t>(x->ext->changed_at).load(std::memory_order_relaxed);
    if (changed == 0) continue;
    if (!known) recorded = recorded_at(n), known = true;
    if (changed > recorded) throw_changed_input(n, x);
  }
}

/// With anomaly detection: n, the node that first passed it a gradient, and so on up to the output.
std::vector<const Node*> path_to_output(const Node* n,
                                        const std::unordered_map<const Node*, const Node*>& reached_from) {
  std::vector<const Node*> path;
  for (const Node* m = n; m && path.size() < 1000;) {
    path.push_back(m);
    const auto it = reached_from.find(m);
    m = it == reached_from.end() ? nullptr : it->second;
  }
  return path;
}

/// Position of a node in recording order, to start the sweep at the newest seed.
bool newer(const Node* x, const Node* y) {
  const Segment *sx = segment_of(x), *sy = segment_of(y);
  return sx->seq != sy->seq ? sx->seq > sy->seq : x > y;
}

/// Visits tape nodes from `top` down in reverse recording order until visit(node) returns false
/// (nothing left to reach) or the tape's oldest node was visited.
template <class F> void reverse_sweep(Node* top, F&& visit) {
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

/// The value sweep: gradients as numbers, stored in the nodes; leaves' contributions collected
/// for the caller (applied under a lock after the sweep, so threads can share parameters).
/// The count of reached nodes still to visit travels in return values and a local of sweep(), and
/// anomaly mode is a template argument: a node's flags are bytes, and a byte store may alias any
/// member, so members would be reloaded after every store (callgrind, scalar chain: 81 instructions
/// per node before, 64 after).
struct ValueSweep {
  std::vector<std::pair<Node*, double>> leaf_scalar;
  std::vector<std::pair<Node*, Tensor>> leaf_tensor;
  // Scalar leaves' contributions are summed in a small direct-mapped table (a leaf is typically hit
  // by many edges); an evicted or final entry goes to leaf_scalar.
  static constexpr std::size_t k_slots = 64;
  std::array<std::pair<Node*, double>, k_slots> leaf_cache{};
  // Anomaly detection: every gradient checked, and for each node reached, the node that first
  // passed it a gradient (the path back to the output, for the message).
  const Node* visiting = nullptr;
  std::unordered_map<const Node*, const Node*> reached_from;

  void add_leaf(Node* m, double v) {
    auto& slot = leaf_cache[(reinterpret_cast<std::uintptr_t>(m) >> 6) % k_slots];
    if (slot.first == m) {
      slot.second += v;
      return;
    }
    if (slot.first) leaf_scalar.push_back(slot);
    slot = {m, v};
  }
  void flush_leaves() {
    for (auto& slot : leaf_cache)
      if (slot.first) leaf_scalar.push_back(slot), slot = {nullptr, 0.0};
  }

  /// Adds v to m's gradient; 1 when m is a tape node reached for the first time (now pending).
  template <bool A> int add(Node* m, double v) {
    if (!m->requires_grad()) return 0;
    if (m->on_heap()) {
      add_leaf(m, v);
      return 0;
    }
    if (m->marks_ & k_reached) {
      m->grad += v;
      return 0;
    }
    m->marks_ |= k_reached | k_has_grad;
    m->grad = v;
    if constexpr (A) reached_from.emplace(m, visiting);
    return 1;
  }
  template <bool A> int add(Node* m, Tensor v) {
    if (!m->requires_grad()) return 0;
    if (!m->is_tensor()) return add<A>(m, v.item());
    if (v.dtype() != m->ext->value.dtype()) v = v.to(m->ext->value.dtype());
    if (m->on_heap()) {
      leaf_tensor.emplace_back(m, std::move(v));
      return 0;
    }
    if (m->marks_ & k_reached) {
      m->ext->grad = kernel::binary(kernel::Binary::add, m->ext->grad, v);
      return 0;
    }
    m->marks_ |= k_reached | k_has_grad;
    m->ext->grad = std::move(v); // may share storage with another gradient: never updated in place
    if constexpr (A) reached_from.emplace(m, visiting);
    return 1;
  }

  /// One node: its gradient times each local derivative, added to its inputs. Returns the change
  /// in the count of pending nodes (inputs reached for the first time, minus n itself).
  template <bool A> std::ptrdiff_t visit(Node* n) {
    if (!(n->marks_ & k_reached)) return 0;
    n->marks_ &= ~k_reached;
    if constexpr (A) visiting = n;
    if (!n->is_tensor()) [[likely]] {
      if (g_change_clock.load(std::memory_order_relaxed) != 0 && // nothing changed in place: no call
          ((n->first && n->first->on_heap()) || (n->in1() && n->in1()->on_heap())))
        check_inputs_unchanged(n);
      double d[2];
      scalar_derivatives(n, d);
      if constexpr (A) check_scalar_step(n, d);
      int reached = 0;
      if (n->first) reached += add<A>(n->first, n->grad * d[0]);
      if (Node* b = n->in1()) reached += add<A>(b, n->grad * d[1]);
      return reached - 1;
    }
    return visit_tensor<A>(n) - 1;
  }
  template <bool A> [[gnu::noinline]] int visit_tensor(Node* n) {
    check_inputs_unchanged(n);
    int reached = 0;
    std::array<Tensor, 3> values;
    const OpRule& op_rule = rule_of(n->op);
    if (op_rule.vjp_values && op_rule.vjp_values(n, n->ext->grad, values)) { // kernels only, no graph nodes
      for (int i = 0; i < 3 && i < n->num_inputs(); ++i) {
        Tensor& g = values[static_cast<std::size_t>(i)];
        if (!g.defined()) continue;
        if (A && !all_finite(g)) throw_backward_anomaly(n, i, g, n->ext->grad, path_to_output(n));
        reached += add<A>(n->input(i), std::move(g));
      }
      return reached;
    }
    const std::vector<Var> gin = op_rule.vjp(n, Var::constant(n->ext->grad));
    for (std::size_t i = 0; i < gin.size(); ++i) {
      if (!gin[i].defined()) continue;
      if (A && !all_finite(gin[i].value()))
        throw_backward_anomaly(n, static_cast<int>(i), gin[i].value(), n->ext->grad, path_to_output(n));
      reached += add<A>(n->input(static_cast<int>(i)), gin[i].value());
    }
    return reached;
  }

  /// Visits the tape from top down until no reached node is left.
  template <bool A> void sweep(Node* top, std::size_t pending) {
    reverse_sweep(top, [&](Node* n) {
      pending += static_cast<std::size_t>(visit<A>(n));
      return pending != 0;
    });
  }

  /// With anomaly detection: the gradients a scalar node passes to its inputs must be finite.
  void check_scalar_step(const Node* n, const double d[2]) {
    for (int i = 0; i < 2 && n->input(i); ++i)
      if (!std::isfinite(n->grad * d[i]))
        throw_backward_anomaly(n, i, Tensor::scalar(n->grad * d[i]), Tensor::scalar(n->grad),
                               path_to_output(n));
  }
  std::vector<const Node*> path_to_output(const Node* n) const {
    return detail::path_to_output(n, reached_from);
  }

  void run(const std::vector<std::pair<Node*, Tensor>>& seeds) {
    // The reached-marks live in the nodes, so two value sweeps on one thread would corrupt each
    // other (a custom backward calling backward() or grad() on another graph): refuse clearly.
    thread_local bool sweeping = false;
    if (sweeping)
      throw UsageError(
          "backward() or grad() was called while another backward pass runs on this thread (from "
          "a custom op's backward?): use grad(..., {.create_graph = true}) there instead");
    sweeping = true;
    struct Done {
      ~Done() { sweeping = false; }
    } done;
    NoGrad no_grad;
    const bool anomaly = t_anomaly;
    visiting = nullptr;
    reached_from.clear();
    if (anomaly) [[unlikely]]
      for (const auto& [n, seed] : seeds)
        if (!all_finite(seed)) throw_seed_anomaly(n, seed);
    Node* top = nullptr;
    std::size_t pending = 0;
    for (const auto& [n, seed] : seeds) {
      pending += static_cast<std::size_t>(anomaly ? add<true>(n, seed) : add<false>(n, seed));
      if (!n->on_heap() && (!top || newer(n, top))) top = n;
    }
    if (!top) return flush_leaves();
    try {
      if (anomaly) [[unlikely]]
        sweep<true>(top, pending);
      else
        sweep<false>(top, pending);
    } catch (...) { // a custom op's backward or a check threw: unmark what this sweep reached (the
      // whole tape below top: the count of marked nodes is not known after a throw)
      reverse_sweep(top, [](Node* n) {
        n->marks_ &= ~k_reached;
        return true;
      });
      leaf_scalar.clear();
      leaf_tensor.clear();
      leaf_cache.fill({nullptr, 0.0});
      throw;
    }
    flush_leaves();
  }
};

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
void backward_here(Node* n, const Tensor& seed) {
  if (t_tape) t_tape->drain_foreign();
  thread_local ValueSweep sweep; // buffers reused from one backward to the next
  sweep.leaf_scalar.clear();
  sweep.leaf_tensor.clear();
  sweep.run({{n, seed}});
  std::lock_guard lock(leaf_grad_mutex());
  for (const auto& [leaf, v] : sweep.leaf_scalar) {
    leaf->grad = has_grad_mark(leaf) ? leaf->grad + v : v;
    set_grad_mark(leaf, true);
  }
  for (auto& [leaf, v] : sweep.leaf_tensor) {
    Tensor& g = leaf->ext->grad;
    if (g.defined())
      add_into(g, v);
    else if (v.use_count() == 1) // nothing else holds this gradient: it becomes .grad() as it is
      g = std::move(v);
    else
      g = v.clone();
  }
  sweep.leaf_tensor.clear(); // drop references to gradient tensors
}

/// gg::grad with create_graph: gradients are Vars recorded on the tape.
std::vector<Var> grad_graph(const std::vector<Var>& outputs, const std::vector<Var>& inputs,
                            const std::vector<Tensor>& seeds) {
  std::unordered_map<Node*, Var> g;
  std::unordered_map<const Node*, const Node*> reached_from; // for anomaly messages
  const Node* visiting = nullptr;
  const bool anomaly = t_anomaly;
  const DetectAnomaly forward_checks_off(false); // the rules' ops are checked as gradients, below
  std::size_t pending = 0;
  auto add = [&](Node* m, Var v) {
    if (!m->requires_grad()) return;
    // A gradient has its value's dtype (as backward() gives it): mixed-dtype ops promote to f64.
    const DType want = m->is_tensor() ? m->ext->value.dtype() : f64;
    if (v.dtype() != want) v = to(v, want);
    auto [it, fresh] = g.try_emplace(m, v);
    if (fresh) {
      if (!m->on_heap()) ++pending;
      if (anomaly) reached_from.emplace(m, visiting);
    } else {
      it->second = it->second + v;
    }
  };
  Node* top = nullptr;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    Node* n = outputs[i].node();
    if (anomaly && !all_finite(seeds[i])) throw_seed_anomaly(n, seeds[i]);
    add(n, n->is_tensor() ? Var::constant(seeds[i]) : Var::constant(seeds[i].item())); // scalars stay scalar
    if (!n->on_heap() && (!top || newer(n, top))) top = n;
  }
  if (top)
    reverse_sweep(top, [&](Node* n) {
      auto it = g.find(n);
      if (it == g.end() || n->on_heap()) return pending != 0;
      --pending;
      check_inputs_unchanged(n);
      const Var gn = it->second;
      std::vector<Var> gin = rule_of(n->op).vjp(n, gn);
      visiting = n;
      for (std::size_t i = 0; i < gin.size(); ++i) {
        if (!gin[i].defined()) continue;
        if (anomaly && !all_finite(gin[i].value()))
          throw_backward_anomaly(n, static_cast<int>(i), gin[i].value(), gn.value(),
                                 path_to_output(n, reached_from));
        add(n->input(static_cast<int>(i)), gin[i]);
      }
      return pending != 0;
    });
  std::vector<Var> r;
  for (const Var& x : inputs) {
    auto it = g.find(x.node());
    r.push_back(it != g.end() ? it->second : Var());
  }
  return r;
}

/// gg::grad on the thread that owns the graph (or under the lock of a closed tape).
std::vector<Var> grad_here(const std::vector<Var>& outputs, const std::vector<Var>& inputs,
                           const std::vector<Tensor>& seeds, GradOptions options) {
  if (t_tape) t_tape->drain_foreign();
  std::vector<Var> r;
  if (options.create_graph) {
    r = grad_graph(outputs, inputs, seeds);
  } else {
    ValueSweep sweep;
    std::vector<std::pair<Node*, Tensor>> s;
    for (std::size_t i = 0; i < outputs.size(); ++i)
      if (outputs[i].requires_grad()) s.emplace_back(outputs[i].node(), seeds[i]);
    for (const Var& x : inputs)
      if (!x.node()->on_heap()) x.node()->marks_ &= ~k_has_grad;
    sweep.run(s);
    for (const Var& x : inputs) {
      Node* n = x.node();
      Tensor acc;
      if (n->on_heap()) {
        for (const auto& [leaf, v] : sweep.leaf_scalar)
          if (leaf == n)
            acc = acc.defined() ? kernel::binary(kernel::Binary::add, acc, Tensor::scalar(v))
                                : Tensor::scalar(v);
        for (const auto& [leaf, v] : sweep.leaf_tensor)
          if (leaf == n) acc = acc.defined() ? kernel::binary(kernel::Binary::add, acc, v) : v;
      } else if (n->marks_ & k_has_grad) { // cleared below before the sweep: reached by this one
        acc = n->is_tensor() ? n->ext->grad : Tensor::scalar(n->grad);
      }
      r.push_back(acc.defined() ? Var::constant(acc) : Var());
    }
  }
  if (options.materialize_zeros)
    for (std::size_t i = 0; i < r.size(); ++i)
      if (!r[i].defined()) r[i] = Var::constant(Tensor::zeros(inputs[i].shape(), inputs[i].dtype()));
  return r;
}

} // namespace

} // namespace gg::detail

namespace gg {
using namespace detail;

void Var::backward() const {
  backward(default_seed(*this, "backward"));
}

void Var::backward(const Tensor& seed) const {
  check_seed(*this, seed, "backward");
  if (!requires_grad())
    throw UsageError("backward: this value does not require grad (no input requires grad, or it was "
                     "computed under NoGrad)");
  on_graph(n_, "backward", [&] { backward_here(n_, seed); });
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
