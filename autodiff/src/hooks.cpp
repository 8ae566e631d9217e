// Registering and removing gradient hooks on leaves. The sweep that calls them is backward.cpp's
// (a pass counts each hooked leaf's consumers and calls its hooks when the last one is done).
#include "hooks.hpp"

#include <unordered_map>

#include <fmt/format.h>

#include "internal.hpp"

namespace gg::detail {

std::atomic<std::int64_t> g_active_hooks{0};

namespace {

std::mutex& hook_mutex() {
  static std::mutex m;
  return m;
}
/// Each hooked leaf's hooks in registration order, under hook_mutex(). A registry rather than a field
/// of the node's Ext: every tensor op's Ext would pay for clearing it when recycled.
std::unordered_map<const Node*, HookList>& registry() {
  static std::unordered_map<const Node*, HookList> r;
  return r;
}

/// Ends one record: no pass calls it any more. Under hook_mutex().
void deactivate(HookRecord& r) {
  if (r.active.exchange(false)) g_active_hooks.fetch_sub(1, std::memory_order_relaxed);
}

std::shared_ptr<HookRecord> add_hook(const Var& v, std::shared_ptr<HookRecord> record,
                                     std::string_view what) {
  Node* n = need(v, what);
  if (!n->on_heap() || !n->requires_grad())
    throw UsageError(fmt::format("{}: hooks are registered on leaves that require grad (parameters, "
                                 "Var(x)); this Var is {}",
                                 what, n->on_heap() ? "a constant" : "computed by an op"));
  std::lock_guard lock(hook_mutex());
  HookList& list = registry()[n];
  std::erase_if(list, [](const auto& r) { return !r->active.load(); }); // removed hooks go here
  list.push_back(record);
  g_active_hooks.fetch_add(1, std::memory_order_relaxed);
  detail::atomic_ref<std::uint8_t>(n->hooked_).store(1, std::memory_order_relaxed);
  return record;
}

} // namespace

HookList hooks_of(const Node* n) {
  std::lock_guard lock(hook_mutex());
  HookList r;
  if (const auto it = registry().find(n); it != registry().end())
    for (const auto& h : it->second)
      if (h->active.load()) r.push_back(h);
  return r;
}

void drop_hooks(Node* n) noexcept {
  std::lock_guard lock(hook_mutex());
  const auto it = registry().find(n);
  if (it == registry().end()) return;
  for (const auto& r : it->second) deactivate(*r);
  registry().erase(it);
}

} // namespace gg::detail

namespace gg {
using namespace detail;

void HookHandle::remove() {
  if (!record_) return;
  std::lock_guard lock(hook_mutex());
  deactivate(*record_);
}

bool HookHandle::active() const {
  return record_ && record_->active.load();
}

HookHandle Var::register_hook(std::function<void(const Tensor& grad)> hook) {
  if (!hook) throw ValueError("register_hook: the hook is empty");
  auto r = std::make_shared<HookRecord>();
  r->on_grad = std::move(hook);
  return HookHandle(add_hook(*this, std::move(r), "register_hook"));
}

HookHandle Var::register_post_accumulate_grad_hook(std::function<void(Var& leaf)> hook) {
  if (!hook) throw ValueError("register_post_accumulate_grad_hook: the hook is empty");
  auto r = std::make_shared<HookRecord>();
  r->after_accumulate = std::move(hook);
  return HookHandle(add_hook(*this, std::move(r), "register_post_accumulate_grad_hook"));
}

} // namespace gg
