// The comparison behind the page's graph layout (docs/web.md, "Graph layout"): Graphviz dot (the
// page's), ELK's layered algorithm (elkjs) and dagre, each on the graph as drawn so far and with a
// widely shared input drawn as one copy beside each node using it, on the cs231n and micrograd
// programs, a 200-node program with 8 shared inputs and a 1,000-node chain. It prints the time each
// layout takes (in Node, the V8 of the page's worker) and writes a screenshot of each drawing.
// Usage: node web/test/layouts.mjs ENGINE_JS OUT_DIR   (ENGINE_JS: build-web/web/gradgraph_engine.js)
import { createRequire } from "node:module";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { Graphviz } from "@hpcc-js/wasm-graphviz";
import ELK from "elkjs/lib/elk.bundled.js";
import dagre from "@dagrejs/dagre";
import { launch } from "./browser.mjs";

const [engineJs, outDir] = process.argv.slice(2);
if (!engineJs || !outDir) {
  console.error("usage: node web/test/layouts.mjs ENGINE_JS OUT_DIR");
  process.exit(2);
}
mkdirSync(outDir, { recursive: true });
const createEngine = createRequire(import.meta.url)(path.resolve(engineJs));
const engine = await createEngine();

function explain(program, inputs) {
  const request = JSON.stringify({ program, inputs, check: false });
  const text = engine.ccall("gg_call", "number", ["string", "string"], ["explain", request]);
  const reply = JSON.parse(engine.UTF8ToString(text));
  engine._gg_free(text);
  if (reply.error) throw new Error(reply.error.message);
  return reply;
}

const fanout = [];
for (let k = 1; k <= 64; ++k) fanout.push(`a${k} = tanh(${k === 1 ? "x" : `a${k - 1}`} * w${k % 5} + b${k % 3})`);
const chain = [];
for (let k = 1; k <= 500; ++k) chain.push(`a${k} = ${k === 1 ? "x" : `a${k - 1}`} * 1.001 + 0.5`);
const PROGRAMS = {
  cs231n: ["q = x + y; f = q * z", { x: "-2", y: "5", z: "-4" }],
  micrograd: ["z = 2*x + 2 + x; q = relu(z) + z*x; h = relu(z*z); y = h + q + q*x", { x: "-4" }],
  "200-nodes": [fanout.join("; "), { x: "0.5", w0: "0.9", w1: "1.1", w2: "-0.7", w3: "0.3", w4: "1.2", b0: "0.1", b1: "-0.2", b2: "0.05" }],
  "1000-nodes": [chain.join("; "), { x: "0.5" }],
};
const LARGE = 60; // the engine's k_large_graph
const SHARED = 3; // the engine's k_shared_input_uses

/** The graph to draw: nodes with their three lines, edges with their local derivatives; with
 * `copies`, an input of a large graph used more than SHARED times becomes one node per use. */
function graphOf(reply, copies) {
  const large = reply.nodes.length > LARGE;
  const uses = reply.nodes.map(() => 0);
  for (const e of reply.edges) ++uses[e.from];
  const copied = (i) => copies && large && reply.nodes[i].kind === "input" && uses[i] > SHARED;
  const lines = (n) => [n.name, `value ${n.value[1]}`, `grad ${n.grad ? n.grad[1] : "0"}`];
  const nodes = [];
  reply.nodes.forEach((n, i) => {
    if (!copied(i)) nodes.push({ id: `n${i}`, lines: lines(n), box: n.kind !== "op" });
  });
  const count = new Map();
  const edges = reply.edges.map((e, k) => {
    let from = `n${e.from}`;
    if (copied(e.from)) {
      const c = count.get(e.from) ?? 0;
      count.set(e.from, c + 1);
      from = `n${e.from}c${c}`;
      nodes.push({ id: from, lines: lines(reply.nodes[e.from]), box: true, copy: true });
    }
    return { id: `e${k}`, from, to: `n${e.to}`, label: e.local ? e.local[1] : "" };
  });
  return { nodes, edges, large, copies: nodes.length !== reply.nodes.length };
}

// Sizes as Graphviz's 14 pt Times gives them, so the three engines draw nodes of the same size.
const textWidth = (s) => 7 * s.length;
const nodeSize = (n) => ({ width: Math.max(...n.lines.map(textWidth)) + 24, height: 3 * 16 + 10 });

/** The graph as DOT, with the settings the page gave a large graph before copies (labels placed
 * after the layout, the crossing and ranking passes cut short). */
function dotOf(g) {
  const q = (s) => `"${s.replaceAll('"', '\\"')}"`;
  const out = ["digraph G {", "rankdir=LR;"];
  if (g.large) out.push("mclimit=0.01; nslimit=0.2; nslimit1=0.2; searchsize=5; remincross=false;");
  for (const n of g.nodes)
    out.push(`${n.id} [id=${n.id}, label=${q(n.lines.join("\\n"))}, shape=${n.box ? "box" : "ellipse"}${n.copy ? ", style=dashed" : ""}];`);
  for (const e of g.edges) out.push(`${e.from}->${e.to} [id=${e.id}, ${g.large ? "xlabel" : "label"}=${q(e.label)}];`);
  out.push("}");
  return out.join("\n");
}

async function elkLayout(g) {
  const elk = new ELK();
  const result = await elk.layout({
    id: "root",
    layoutOptions: { "elk.algorithm": "layered", "elk.direction": "RIGHT", "elk.edgeLabels.inline": "true", "elk.layered.spacing.nodeNodeBetweenLayers": "30" },
    children: g.nodes.map((n) => ({ id: n.id, ...nodeSize(n) })),
    edges: g.edges.map((e) => ({
      id: e.id, sources: [e.from], targets: [e.to],
      labels: e.label ? [{ text: e.label, width: textWidth(e.label), height: 14 }] : [],
    })),
  });
  const nodes = new Map(result.children.map((c) => [c.id, { x: c.x + c.width / 2, y: c.y + c.height / 2, width: c.width, height: c.height }]));
  const edges = result.edges.map((e) => {
    const s = e.sections[0];
    const label = e.labels?.[0];
    return {
      points: [s.startPoint, ...(s.bendPoints ?? []), s.endPoint],
      label: label ? { text: label.text, x: label.x + label.width / 2, y: label.y + label.height / 2 } : null,
    };
  });
  return { nodes, edges, width: result.width, height: result.height };
}

function dagreLayout(g) {
  const d = new dagre.graphlib.Graph({ multigraph: true });
  d.setGraph({ rankdir: "LR", nodesep: 20, ranksep: 40 });
  d.setDefaultEdgeLabel(() => ({}));
  for (const n of g.nodes) d.setNode(n.id, nodeSize(n));
  for (const e of g.edges) d.setEdge(e.from, e.to, { label: e.label, width: textWidth(e.label), height: 14, labelpos: "c" }, e.id);
  dagre.layout(d);
  const nodes = new Map(g.nodes.map((n) => [n.id, d.node(n.id)]));
  const edges = g.edges.map((e) => {
    const l = d.edge(e.from, e.to, e.id);
    return { points: l.points, label: e.label ? { text: e.label, x: l.x, y: l.y } : null };
  });
  return { nodes, edges, width: d.graph().width, height: d.graph().height };
}

/** An SVG of a computed layout, drawn as the page draws Graphviz's. */
function svgOf(g, layout) {
  const esc = (s) => s.replaceAll("&", "&amp;").replaceAll("<", "&lt;");
  const out = [`<svg xmlns="http://www.w3.org/2000/svg" width="${layout.width + 20}" height="${layout.height + 20}" font-family="Times" font-size="14"><g transform="translate(10 10)">`];
  for (const e of layout.edges) {
    const pts = e.points.map((p) => `${p.x},${p.y}`).join(" ");
    out.push(`<polyline points="${pts}" fill="none" stroke="black"/>`);
    const [a, b] = e.points.slice(-2);
    const len = Math.hypot(b.x - a.x, b.y - a.y) || 1, ux = (b.x - a.x) / len, uy = (b.y - a.y) / len;
    out.push(`<polygon points="${b.x},${b.y} ${b.x - 9 * ux - 4 * uy},${b.y - 9 * uy + 4 * ux} ${b.x - 9 * ux + 4 * uy},${b.y - 9 * uy - 4 * ux}"/>`);
    if (e.label) out.push(`<text x="${e.label.x}" y="${e.label.y + 4}" text-anchor="middle" fill="#888">${esc(e.label.text)}</text>`);
  }
  for (const n of g.nodes) {
    const p = layout.nodes.get(n.id);
    const dash = n.copy ? ' stroke-dasharray="4 2"' : "";
    out.push(n.box
      ? `<rect x="${p.x - p.width / 2}" y="${p.y - p.height / 2}" width="${p.width}" height="${p.height}" fill="white" stroke="black"${dash}/>`
      : `<ellipse cx="${p.x}" cy="${p.y}" rx="${p.width / 2}" ry="${p.height / 2}" fill="white" stroke="black"/>`);
    n.lines.forEach((line, k) => out.push(`<text x="${p.x}" y="${p.y + (k - 1) * 16 + 5}" text-anchor="middle">${esc(line)}</text>`));
  }
  out.push("</g></svg>");
  return out.join("\n");
}

const graphviz = await Graphviz.load();
const ENGINES = {
  // with copies: the page's own DOT (the engine's dot_text), which also keeps the line straight
  dot: async (g, reply) => graphviz.layout(g.copies ? reply.dot : dotOf(g), "svg", "dot"),
  elk: async (g) => svgOf(g, await elkLayout(g)),
  dagre: async (g) => svgOf(g, dagreLayout(g)),
};

const { browser, close } = await launch();
try {
  for (const [name, [program, inputs]] of Object.entries(PROGRAMS)) {
    const reply = explain(program, inputs);
    for (const copies of [false, true]) {
      const g = graphOf(reply, copies);
      if (copies && g.nodes.length === reply.nodes.length) continue; // nothing is copied
      // the plain 200-node graph took ELK 100 s and dagre failed: only with GG_LAYOUT_PLAIN=1
      const plainSlow = (engineName) => !copies && graphOf(reply, true).copies && engineName !== "dot" && !process.env.GG_LAYOUT_PLAIN;
      for (const [engineName, layout] of Object.entries(ENGINES)) {
        if (plainSlow(engineName)) continue;
        if (name === "1000-nodes" && engineName === "elk") continue; // 6 s for 321 nodes already
        let svg, ms, first;
        try {
          // twice: the first call includes compiling the layout code (ELK's above all)
          for (let k = 0; k < 2; ++k) {
            const started = performance.now();
            svg = await layout(g, reply);
            ms = performance.now() - started;
            first ??= ms;
          }
        } catch (e) {
          console.log(`${name}: ${engineName}${copies ? " with copies" : ""}: failed: ${String(e?.message ?? e).slice(0, 200)}`);
          continue;
        }
        const file = path.join(outDir, `${name}-${engineName}${copies ? "-copies" : ""}.png`);
        const size = /viewBox="[\d.-]+ [\d.-]+ ([\d.]+) ([\d.]+)"/.exec(svg) ?? /width="([\d.]+)" height="([\d.]+)"/.exec(svg);
        const [w, h] = [Number(size[1]), Number(size[2])];
        if (name !== "1000-nodes") {
          const page = await browser.newPage();
          await page.setViewport({ width: 1400, height: 1000 });
          await page.setContent(`<body style="margin:0;background:white">${svg}</body>`);
          await (await page.$("svg")).screenshot({ path: file });
          await page.close();
        }
        console.log(`${name}: ${engineName}${copies ? " with copies" : ""}: ${g.nodes.length} nodes, ${g.edges.length} edges, laid out in ${ms.toFixed(0)} ms (the first time ${first.toFixed(0)} ms), ${Math.round(w)}x${Math.round(h)}`);
        writeFileSync(file.replace(/\.png$/, ".svg"), svg);
      }
    }
  }
} finally {
  await close();
}
