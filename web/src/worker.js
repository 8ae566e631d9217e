// The page's Web Worker: it owns the gradgraph engine (WebAssembly) and the graph layout (Graphviz
// compiled to WebAssembly), so a long computation never blocks the page. Messages in:
// {id, method, request}; out: {id, reply} (the engine's JSON reply, parsed) or {id, failure}.
import createEngine from "gradgraph-engine";
import { Graphviz } from "@hpcc-js/wasm-graphviz";

const ready = Promise.all([createEngine(), Graphviz.load()]);

/** The engine's reply to method(request), parsed: a result or {error: {...}}. */
function callEngine(engine, method, request) {
  const text = JSON.stringify(request ?? {});
  const methodBytes = engine.lengthBytesUTF8(method) + 1;
  const requestBytes = engine.lengthBytesUTF8(text) + 1;
  const methodPtr = engine._malloc(methodBytes);
  const requestPtr = engine._malloc(requestBytes);
  try {
    engine.stringToUTF8(method, methodPtr, methodBytes);
    engine.stringToUTF8(text, requestPtr, requestBytes);
    const replyPtr = engine._gg_call(methodPtr, requestPtr);
    if (!replyPtr) throw new Error("the engine ran out of memory");
    try {
      return JSON.parse(engine.UTF8ToString(replyPtr));
    } finally {
      engine._gg_free(replyPtr);
    }
  } finally {
    engine._free(methodPtr);
    engine._free(requestPtr);
  }
}

self.onmessage = async (event) => {
  const { id, method, request } = event.data;
  try {
    const [engine, graphviz] = await ready;
    let reply;
    if (method === "layout") {
      const started = performance.now();
      const svg = graphviz.layout(request.dot, "svg", "dot");
      reply = { svg, milliseconds: performance.now() - started };
    } else {
      reply = callEngine(engine, method, request);
    }
    self.postMessage({ id, reply });
  } catch (e) {
    self.postMessage({ id, failure: String(e && e.message ? e.message : e) });
  }
};
