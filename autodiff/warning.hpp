// Warnings: what the library says about use that is valid but likely a mistake (PyTorch's
// UserWarning), sent to one handler that a program or a test can replace; by default standard error.
#pragma once

#include <functional>
#include <string_view>

namespace gg {

/// Receives a warning's text: one line, without the "gradgraph warning: " prefix or a newline.
using WarningHandler = std::function<void(std::string_view message)>;

/// Replaces the handler and returns the previous one (empty: the default, which writes
/// "gradgraph warning: <message>\n" to standard error). It also forgets which once-only warnings
/// were given, as Python forgets when its warning filters change: the new handler sees each of them.
WarningHandler set_warning_handler(WarningHandler handler);

/// Sends a warning to the handler.
void warn(std::string_view message);

/// Sends a warning the first time `key` is warned about (since the start or the last
/// set_warning_handler), as PyTorch's TORCH_WARN_ONCE; later ones are dropped.
void warn_once(std::string_view key, std::string_view message);

} // namespace gg
