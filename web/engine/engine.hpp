// The engine's one entry point: a method name and a JSON request in, a JSON reply out. The Web
// Worker calls it through WebAssembly (wasm_exports.cpp); the native build calls it in the tests.
// docs/web.md lists the methods, their requests and their replies.
#pragma once

#include <string>
#include <string_view>

namespace gg::web {

/// Runs `method` ("explain", "playground.options", "playground.create", "playground.train",
/// "playground.grid", "playground.sample") on a JSON request and returns the JSON reply; an error
/// (an unknown method, a malformed request, bad input) is a reply {"error": {...}}, never a throw.
std::string call(std::string_view method, std::string_view request);

} // namespace gg::web
