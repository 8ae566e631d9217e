// Bundles the page into one self-contained HTML file: the Web Worker (the engine compiled by
// Emscripten with its .wasm inlined, and Graphviz's WebAssembly build) as a string inside the page's
// script, the CSS inline, nothing fetched at run time, so it works from file:// with no network.
// Usage: node build.mjs ENGINE_JS OUT_DIR   (scripts/build_web.sh runs it)
import * as esbuild from "esbuild";
import { readFileSync, writeFileSync, mkdirSync, renameSync } from "node:fs";
import path from "node:path";

const [engineJs, outDir] = process.argv.slice(2);
if (!engineJs || !outDir) {
  console.error("usage: node build.mjs ENGINE_JS OUT_DIR");
  process.exit(2);
}
const here = path.dirname(new URL(import.meta.url).pathname);
const common = { bundle: true, minify: true, write: false, target: "chrome100", logLevel: "warning" };

const worker = await esbuild.build({
  ...common,
  entryPoints: [path.join(here, "src/worker.js")],
  format: "iife",
  alias: { "gradgraph-engine": path.resolve(engineJs) },
  // Emscripten's node branch names these; the worker never takes it.
  external: ["fs", "path", "crypto", "ws", "worker_threads"],
});
const workerSource = worker.outputFiles[0].text;

const page = await esbuild.build({
  ...common,
  entryPoints: [path.join(here, "src/main.js")],
  format: "iife",
  plugins: [
    {
      name: "worker-source",
      setup(build) {
        build.onResolve({ filter: /^gradgraph-worker-source$/ }, () => ({ path: "worker", namespace: "worker-source" }));
        build.onLoad({ filter: /.*/, namespace: "worker-source" }, () => ({ contents: workerSource, loader: "text" }));
      },
    },
  ],
});
// A "</script" inside the inlined code would end the script element early.
const script = page.outputFiles[0].text.replaceAll("</script", "<\\/script");
const css = readFileSync(path.join(here, "src/style.css"), "utf8");
let html = readFileSync(path.join(here, "src/index.html"), "utf8");
const marker = '<script type="application/json" id="gg-initial">null</script>';
if (html.split(marker).length !== 2) throw new Error("index.html must hold the gg-initial marker once");
html = html.replace("/*GG_CSS*/", () => css).replace("/*GG_SCRIPT*/", () => script);
if (html.split(marker).length !== 2) throw new Error("the bundle repeats the gg-initial marker");

mkdirSync(outDir, { recursive: true });
const out = path.join(outDir, "index.html");
writeFileSync(out + ".tmp", html);
renameSync(out + ".tmp", out); // never a half-written page
console.log(`wrote ${out} (${(html.length / 1e6).toFixed(1)} MB)`);
