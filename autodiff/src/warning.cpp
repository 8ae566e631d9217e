// The warning handler: one per process, replaced under a mutex and called outside it (a handler may
// itself warn), and the keys of the once-only warnings already given.
#include <autodiff/warning.hpp>

#include <iostream>
#include <mutex>
#include <set>
#include <string>

namespace gg {

namespace {

struct Warnings {
  std::mutex mutex;
  WarningHandler handler;
  std::set<std::string, std::less<>> given; ///< keys of warn_once
};

Warnings& warnings() {
  static Warnings w;
  return w;
}

void deliver(const WarningHandler& handler, std::string_view message) {
  if (handler) {
    handler(message);
  } else {
    std::cerr << "gradgraph warning: " << message << '\n';
  }
}

} // namespace

WarningHandler set_warning_handler(WarningHandler handler) {
  Warnings& w = warnings();
  const std::lock_guard lock(w.mutex);
  w.given.clear();
  std::swap(w.handler, handler);
  return handler;
}

void warn(std::string_view message) {
  Warnings& w = warnings();
  WarningHandler handler;
  {
    const std::lock_guard lock(w.mutex);
    handler = w.handler;
  }
  deliver(handler, message);
}

void warn_once(std::string_view key, std::string_view message) {
  Warnings& w = warnings();
  WarningHandler handler;
  {
    const std::lock_guard lock(w.mutex);
    if (!w.given.emplace(key).second) return;
    handler = w.handler;
  }
  deliver(handler, message);
}

} // namespace gg
