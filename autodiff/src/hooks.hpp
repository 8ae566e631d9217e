// Gradient hooks registered on leaves (Var::register_hook, register_post_accumulate_grad_hook):
// the records, the registry's lock and the count of registered hooks the backward sweep tests to
// choose its path (none registered: the sweep runs as if hooks did not exist). Internal.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include <autodiff/var.hpp>

#include "node.hpp"

namespace gg::detail {

/// One registered hook: one of the two callbacks is set. The registry of each leaf's hooks is in
/// hooks.cpp, under its lock.
struct HookRecord {
  std::function<void(const Tensor&)> on_grad; ///< register_hook: this pass's gradient
  std::function<void(Var&)> after_accumulate; ///< register_post_accumulate_grad_hook: the leaf
  std::atomic<bool> active{true};             ///< cleared by remove() and by the leaf's death
};
/// A leaf's hooks in registration order.
using HookList = std::vector<std::shared_ptr<HookRecord>>;

/// Registered hooks of live leaves, all threads: 0 lets backward passes skip hooks entirely.
extern std::atomic<std::int64_t> g_active_hooks;
/// Whether any hook is registered (one relaxed load: the cost of hooks to a pass without them).
inline bool any_hooks() {
  return g_active_hooks.load(std::memory_order_relaxed) != 0;
}
/// Whether leaf n has had a hook registered (Node::hooked_, set under hook_mutex(), read by any thread).
inline bool hooked(const Node* n) {
  return n->on_heap() &&
         detail::atomic_ref<std::uint8_t>(const_cast<Node*>(n)->hooked_).load(std::memory_order_relaxed);
}
/// Leaf n's active hooks now, in registration order (a copy: hooks may be added while a pass runs).
HookList hooks_of(const Node* n);
/// A dying leaf's hooks end with it (free_heap_node).
void drop_hooks(Node* n) noexcept;

} // namespace gg::detail
