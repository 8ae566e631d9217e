// The WebAssembly module's exports: gg_call(method, request) returns the engine's JSON reply in a
// buffer the caller frees with gg_free. The Web Worker (web/src/worker.js) is the only caller.
#include "engine.hpp"

#include <cstdlib>
#include <cstring>

#include <emscripten/emscripten.h>

extern "C" {

/// The reply to `method` on `request` (both UTF-8, NUL-terminated), NUL-terminated, malloc'd.
EMSCRIPTEN_KEEPALIVE char* gg_call(const char* method, const char* request) {
  const std::string reply = gg::web::call(method, request);
  char* out = static_cast<char*>(std::malloc(reply.size() + 1));
  if (out) std::memcpy(out, reply.c_str(), reply.size() + 1);
  return out;
}

/// Frees a reply of gg_call.
EMSCRIPTEN_KEEPALIVE void gg_free(char* reply) {
  std::free(reply);
}
}
