// The page's browser tests (CTest's web_browser): the built page in headless Debian Chromium, every
// number it shows checked against `gradgraph explain --json` of the same program, the parse error's
// caret, the first value and gradient that are not finite, the URL round trip, the playground training
// the triangle (a bad field refused with train's message), refusals of absurd sizes, and the
// pinned check of `explain --html` (chromium --dump-dom of FILE#end, run literally). It also reports
// how long a 1,000-node program takes to lay out and a step to render (measured, not asserted).
// Usage: node web/test/run.mjs PAGE_DIR GRADGRAPH_BINARY
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { launch } from "./browser.mjs";

const [pageDir, gradgraph] = process.argv.slice(2);
if (!pageDir || !gradgraph) {
  console.error("usage: node web/test/run.mjs PAGE_DIR GRADGRAPH_BINARY");
  process.exit(2);
}
const pageUrl = pathToFileURL(path.resolve(pageDir, "index.html")).href;
const tmp = mkdtempSync(path.join(os.tmpdir(), "gg-web-test-"));

let failures = 0;
function check(ok, what) {
  if (!ok) {
    failures++;
    console.log(`  FAILED: ${what}`);
  }
}
function equal(actual, expected, what) {
  check(actual === expected, `${what}: ${JSON.stringify(actual)} != ${JSON.stringify(expected)}`);
}
// The page's numbers against the CLI's: equal, but for the last bits of what went through a
// transcendental function (tanh, exp, log), which each C library computes its own way (glibc
// natively, musl in WebAssembly): up to 4 units in the last place. Differences taken over h = 1e-6
// divide such a difference by h, so finite differences agree to 1e-8 relatively.
let lastBits = 0;
function close(actual, expected, what, relative = 4 * Number.EPSILON) {
  if (actual === expected) return;
  const a = Number(actual), e = Number(expected);
  const ok = Number.isFinite(a) && Number.isFinite(e) && Math.abs(a - e) <= relative * Math.max(Math.abs(a), Math.abs(e));
  check(ok, `${what}: ${JSON.stringify(actual)} != ${JSON.stringify(expected)}`);
  if (ok) ++lastBits;
}

/** `gradgraph explain --json PROGRAM inputs...`, parsed (numbers kept as the text --json wrote). */
function explainJson(program, inputs) {
  const args = ["explain", "--json", "--check", program, ...Object.entries(inputs).map(([k, v]) => `${k}=${v}`)];
  const text = execFileSync(gradgraph, args, { encoding: "utf8" });
  // the numbers' text exactly as written: "-12", "0.6931471805599453", "nan" (quoted)
  const raw = (section) => {
    const out = {};
    const body = text.match(new RegExp(`"${section}": \\{([^}]*)\\}`))[1];
    for (const m of body.matchAll(/"([^"]+)": ("[^"]*"|[^,]+)/g)) out[m[1]] = m[2].replace(/^"|"$/g, "");
    return out;
  };
  return { output: JSON.parse(text).output, values: raw("values"), grads: raw("grads"), check: raw("check") };
}

const EXAMPLES = {
  cs231n: { program: "q = x + y; f = q * z", inputs: { x: "-2", y: "5", z: "-4" } },
  "fan-out": { program: "a = x * y; f = a + x", inputs: { x: "3", y: "2" } },
  micrograd: {
    program: "z = 2*x + 2 + x; q = relu(z) + z*x; h = relu(z*z); y = h + q + q*x",
    inputs: { x: "-4" },
  },
  "micrograd neuron": {
    program: "n = x1*w1 + x2*w2 + b; o = tanh(n)",
    inputs: { x1: "2", x2: "0", w1: "-3", w2: "1", b: "6.8813735870195432" },
  },
};

function hashOf(program, inputs, extra = "") {
  const p = new URLSearchParams();
  p.set("p", program);
  for (const [k, v] of Object.entries(inputs)) p.set(`i.${k}`, v);
  return "#" + p.toString() + extra;
}

/** Opens the page at a fragment and waits until the explorer shows a laid-out reply. */
async function open(browser, hash) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => check(false, `page error: ${e.message}`));
  await page.goto(pageUrl + hash);
  await page.waitForSelector("#graph[data-layout-ms]", { timeout: 30000 });
  return page;
}

/** What the stepper shows now: the panel's numbers and the names table. */
function snapshot(page) {
  return page.evaluate(() => {
    const panel = document.getElementById("panel");
    const nums = [...panel.querySelectorAll(".num")].map((n) => ({ full: n.dataset.full, role: n.dataset.role, node: n.dataset.node }));
    const rows = [...document.querySelectorAll("tr.named")].map((r) => ({ name: r.dataset.name, value: r.dataset.value, grad: r.dataset.grad }));
    const edges = [...panel.querySelectorAll("tr[data-input]")].map((tr) => ({
      input: tr.dataset.input,
      complete: tr.dataset.complete === "true",
      nums: [...tr.querySelectorAll(".num")].map((n) => ({ full: n.dataset.full, role: n.dataset.role })),
    }));
    return { step: Number(panel.dataset.step), total: Number(panel.dataset.total), phase: panel.dataset.phase, nums, rows, edges };
  });
}

/** Steps through every forward and backward step with the → key, checking each number shown. */
async function stepThrough(browser, id) {
  const { program, inputs } = EXAMPLES[id];
  const expected = explainJson(program, inputs);
  const page = await open(browser, hashOf(program, inputs));
  let s = await snapshot(page);
  equal(s.step, 0, `${id}: opens at step 0`);
  const named = new Set(Object.keys(expected.values));
  let steps = 0, checked = 0;
  while (s.step < s.total) {
    await page.keyboard.press("ArrowRight");
    const next = await snapshot(page);
    equal(next.step, s.step + 1, `${id}: → goes one step on`);
    s = next;
    ++steps;
    if (s.phase === "forward") {
      const v = s.nums.find((n) => n.role === "value");
      check(v !== undefined, `${id}: forward step ${s.step} shows a value`);
      if (v && named.has(v.node)) {
        close(v.full, expected.values[v.node], `${id}: forward step ${s.step}, value of ${v.node}`);
        ++checked;
      }
    } else {
      const up = s.nums.find((n) => n.role === "upstream");
      if (named.has(up.node)) {
        close(up.full, expected.grads[up.node], `${id}: backward step ${s.step}, upstream d/d${up.node}`);
        ++checked;
      }
      for (const e of s.edges) {
        const get = (role) => e.nums.find((n) => n.role === role)?.full;
        const [upstream, local, product, accumulated] = ["upstream", "local", "product", "accumulated"].map(get);
        equal(Number(product), Number(upstream) * Number(local), `${id}: step ${s.step}, ${e.input}: upstream × local`);
        const previous = get("previous");
        if (previous !== undefined)
          equal(Number(accumulated), Number(previous) + Number(product), `${id}: step ${s.step}, ${e.input}: running sum`);
        if (e.complete && named.has(e.input)) {
          close(accumulated, expected.grads[e.input], `${id}: backward step ${s.step}, d/d${e.input}`);
          // the finite-difference check beside the complete gradient, explain --check's
          close(get("check"), expected.check[e.input], `${id}: backward step ${s.step}, check of d/d${e.input}`, 1e-8);
          checked += 2;
        }
      }
    }
    // the table: a value once computed, a gradient once complete, both as --json writes them
    for (const row of s.rows) {
      if (row.value !== undefined) close(row.value, expected.values[row.name], `${id}: step ${s.step}, table value of ${row.name}`);
      if (row.grad !== undefined) close(row.grad, expected.grads[row.name], `${id}: step ${s.step}, table gradient of ${row.name}`);
    }
  }
  for (const row of s.rows) {
    check(row.value !== undefined && row.grad !== undefined, `${id}: at the end ${row.name} has a value and a gradient`);
    ++checked;
  }
  const checks = await page.$$eval("tr.named", (rows) => rows.map((r) => [r.dataset.name, r.querySelector("td.check .num")?.dataset.full]));
  for (const [name, full] of checks) close(full, expected.check[name], `${id}: finite difference of ${name}`, 1e-8);
  // ← goes back; the End button jumps to the end
  await page.keyboard.press("ArrowLeft");
  equal((await snapshot(page)).step, s.total - 1, `${id}: ← goes one step back`);
  await page.click("#first");
  equal((await snapshot(page)).step, 0, `${id}: the start button`);
  await page.click("#last");
  equal((await snapshot(page)).step, s.total, `${id}: the end button`);
  console.log(`${id}: ${steps} steps, ${checked} numbers against explain --json (${lastBits} comparisons equal to the last bits of a transcendental function), the rest by the chain rule`);
  lastBits = 0;
  await page.close();
}

async function parseError(browser) {
  const page = await open(browser, "");
  const bad = "q = x + y; f = q * * z";
  await page.$eval("#program", (e, v) => {
    e.value = v;
    e.dispatchEvent(new Event("input"));
  }, bad);
  await page.waitForSelector("#error:not([hidden])", { timeout: 10000 });
  const shown = await page.$eval("#error", (e) => ({ text: e.textContent, line: e.dataset.line, column: e.dataset.column }));
  let cli = "";
  try {
    execFileSync(gradgraph, ["explain", bad, "x=1", "y=1", "z=1"], { encoding: "utf8", stdio: "pipe" });
  } catch (e) {
    cli = e.stderr;
  }
  equal(`gradgraph explain: ${shown.text}\n`, cli, "the parse error is the CLI's message");
  const lines = shown.text.split("\n");
  const caret = lines.findIndex((l) => /^\s*\^\s*$/.test(l));
  check(caret > 0, "the message has a caret line");
  if (caret > 0) equal(lines[caret].indexOf("^") - lines[caret - 1].indexOf(bad), 19, "the caret is under the second '*'");
  equal(shown.column, "20", "the error's column");
  // a value that is not a number is refused the same way
  await page.$eval('input[data-input="x"]', (e) => {
    e.value = "0,5";
    e.dispatchEvent(new Event("input"));
  });
  await page.$eval("#program", (e) => {
    e.value = "q = x + y; f = q * z";
    e.dispatchEvent(new Event("input"));
  });
  await page.waitForFunction(() => document.getElementById("error").textContent.includes("use a dot for decimals"), { timeout: 10000 });
  console.log("parse error: the CLI's message and caret; a value '0,5' refused with its hint");
  await page.close();
}

/** The first value and the first gradient that are not finite: named with their op above the steps,
 * drawn apart in the graph, and a button to each one's step. */
async function nonFinite(browser) {
  const program = "y = log(x); f = y * 2";
  const page = await open(browser, hashOf(program, { x: "0" }));
  await page.waitForSelector("#nonfinite:not([hidden])", { timeout: 10000 });
  const alert = await page.$eval("#nonfinite", (e) => ({
    value: { ...e.querySelector(".first-value")?.dataset },
    text: e.querySelector(".first-value")?.firstChild.textContent,
    grad: { ...e.querySelector(".first-grad")?.dataset },
  }));
  equal(alert.value?.node, "y", "the first value that is not finite is y's");
  equal(alert.value?.op, "log", "it names the op that made it");
  check(alert.text.includes("-inf"), `it shows the value: ${alert.text}`);
  equal(alert.grad?.node, "x", "the first gradient that is not finite is x's");
  equal(await page.$$eval("#graph g.node.first-nonfinite", (g) => g.map((n) => n.dataset.name).join()), "y", "the graph marks y");
  await page.click("#nonfinite .first-grad button");
  const s = await snapshot(page);
  equal(s.phase, "backward", "its button opens the backward step");
  check(s.edges.some((e) => e.input === "x" && !Number.isFinite(Number(e.nums.find((n) => n.role === "accumulated")?.full))),
    "the step shows x's gradient that is not finite");
  console.log(`non-finite: ${alert.text.trim()}; the first gradient d f/d x, its step opened`);
  await page.close();
}

async function urlRoundTrip(browser) {
  const { program, inputs } = EXAMPLES.micrograd;
  const page = await open(browser, hashOf(program, inputs));
  for (let k = 0; k < 5; ++k) await page.keyboard.press("ArrowRight");
  await page.click("#lang");
  await new Promise((r) => setTimeout(r, 400)); // the URL is written 150 ms after a change
  const url = page.url();
  const before = await snapshot(page);
  const heading = await page.$eval("#tab-explorer", (e) => e.textContent);
  await page.close();
  const again = await open(await browser, new URL(url).hash);
  const after = await snapshot(again);
  equal(after.step, 5, "the URL reopens at the step");
  equal(JSON.stringify(after.nums), JSON.stringify(before.nums), "the URL reopens the same numbers");
  equal(await again.$eval("#program", (e) => e.value), program, "the URL reopens the program");
  equal(await again.$eval('input[data-input="x"]', (e) => e.value), "-4", "the URL reopens the inputs");
  equal(await again.$eval("#tab-explorer", (e) => e.textContent), heading, "the URL reopens the language");
  check(heading === "Explorador de expresiones", "the language toggle shows Spanish");
  console.log(`URL round trip: ${new URL(url).hash.length} characters, step, inputs and language kept`);
  await again.close();
}

async function playground(browser) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => check(false, `page error: ${e.message}`));
  await page.goto(pageUrl + "#tab=playground&g.dataset=triangle&g.hidden=8&g.activation=tanh&g.optimizer=adam&o.lr=0.05");
  await page.waitForSelector("#scores[data-step]", { timeout: 30000 });
  const started = Date.now();
  await page.click("#run");
  // the scores the page shows when they first reach 0.95 (training goes on until the pause lands)
  const reached = await page.waitForFunction(() => {
    const d = document.getElementById("scores").dataset;
    return Number(d.accuracy) >= 0.95 ? { accuracy: d.accuracy, step: d.step } : false;
  }, { timeout: 90000 });
  const scores = await reached.jsonValue();
  await page.click("#run"); // pause
  check(Number(scores.accuracy) >= 0.95, "the triangle trains to at least 0.95 accuracy");
  // the sample's graph is drawn and steppable with the current weights
  await page.waitForSelector("#sample-graph[data-layout-ms]", { timeout: 30000 });
  const total = await page.$eval("#sample-panel", (e) => Number(e.dataset.total));
  check(total > 0, "one sample's graph has steps");
  // the sample is shown again when the pause lands: press End until its gradients are shown
  const grads = await page
    .waitForFunction(() => {
      document.getElementById("sample-last").click();
      const rows = [...document.querySelectorAll("#sample-names tr.named")];
      return rows.filter((r) => r.dataset.grad !== undefined).length || false;
    }, { timeout: 30000, polling: 200 })
    .then((h) => h.jsonValue(), () => 0);
  check(grads > 0, "one sample's gradients are shown");
  // a value typed into a field is refused with train's message for that option, the field marked
  await page.$eval('#hyper input[data-param="lr"]', (e) => {
    e.value = "abc";
    e.dispatchEvent(new Event("change"));
  });
  await page.waitForSelector("#playground-error:not([hidden])", { timeout: 10000 });
  let cli = "";
  try {
    execFileSync(gradgraph, ["train", "--dataset", "triangle", "--layers", "2,8,2", "--lr", "abc"], { encoding: "utf8", stdio: "pipe" });
  } catch (e) {
    cli = e.stderr;
  }
  equal(`gradgraph train: ${await page.$eval("#playground-error", (e) => e.textContent)}\n`, cli, "a bad lr: train's message");
  check(await page.$eval('#hyper input[data-param="lr"]', (e) => e.classList.contains("error-field")), "the lr field is marked");
  await page.$eval('#hyper input[data-param="lr"]', (e) => {
    e.value = "0.05";
    e.dispatchEvent(new Event("change"));
  });
  await page.waitForSelector("#playground-error[hidden]", { timeout: 10000 });
  // a 10,000-unit layer is refused with a message, the tab stays responsive
  await page.$eval("#hidden", (e) => {
    e.value = "10000";
    e.dispatchEvent(new Event("change"));
  });
  await page.waitForSelector("#playground-error:not([hidden])", { timeout: 10000 });
  const message = await page.$eval("#playground-error", (e) => e.textContent);
  check(message.includes("units per layer"), `a 10,000-unit layer is refused: ${message}`);
  console.log(`playground: the triangle at accuracy ${scores.accuracy} after ${scores.step} steps (${Date.now() - started} ms); a 10,000-unit layer refused`);
  await page.close();
}

async function absurdProgram(browser) {
  const page = await open(browser, "");
  const big = "f = x" + " + x".repeat(100000);
  const started = Date.now();
  await page.$eval("#program", (e, v) => {
    e.value = v;
    e.dispatchEvent(new Event("input"));
  }, big);
  await page.waitForSelector("#error:not([hidden])", { timeout: 20000 });
  const message = await page.$eval("#error", (e) => e.textContent);
  check(message.includes("the page shows at most"), `a 100,000-node program is refused: ${message.slice(0, 120)}`);
  check(await page.evaluate(() => 1 + 1) === 2, "the tab still answers");
  console.log(`absurd program: refused in ${Date.now() - started} ms`);
  await page.close();
}

/** Lays out a program of 1,000 op nodes and times the steps' rendering (reported, not asserted). */
async function speed(browser) {
  const statements = [];
  for (let k = 1; k <= 500; ++k) statements.push(`a${k} = ${k === 1 ? "x" : `a${k - 1}`} * 1.001 + 0.5`);
  const page = await open(browser, hashOf(statements.join("; "), { x: "0.5" }));
  const nodes = await page.$$eval("#graph g.node", (g) => g.length);
  const layoutMs = Number(await page.$eval("#graph", (e) => e.dataset.layoutMs));
  const times = await page.evaluate(() => {
    const out = [];
    const total = Number(document.getElementById("panel").dataset.total);
    const started = performance.now(); // every step, or as many as 20 s allow
    for (let k = 0; k < total && performance.now() - started < 20000; ++k) {
      const t0 = performance.now();
      document.dispatchEvent(new KeyboardEvent("keydown", { key: "ArrowRight" }));
      out.push(performance.now() - t0);
    }
    return out;
  });
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)], worst = times[times.length - 1];
  check(nodes >= 1000, `the program has at least 1,000 nodes (${nodes})`);
  console.log(`speed: ${nodes} nodes laid out in ${layoutMs.toFixed(0)} ms; ${times.length} steps rendered in ${median.toFixed(2)} ms (median), ${worst.toFixed(2)} ms (slowest)`);
  await page.close();
}

/** The pinned check: `explain --html OUT`, then chromium --dump-dom of OUT#end, without our scripts. */
function pinned() {
  const { program, inputs } = EXAMPLES.micrograd;
  const out = path.join(tmp, "micrograd.html");
  execFileSync(gradgraph, ["explain", "--html", out, program, ...Object.entries(inputs).map(([k, v]) => `${k}=${v}`)], { stdio: "pipe" });
  const chromium = process.env.GG_CHROMIUM || "/usr/bin/chromium";
  const dom = execFileSync(chromium, [
    "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", `--user-data-dir=${path.join(tmp, "profile")}`,
    "--dump-dom", "--virtual-time-budget=10000", pathToFileURL(out).href + "#end",
  ], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"], maxBuffer: 64 << 20 });
  const expected = explainJson(program, inputs);
  const found = {};
  for (const m of dom.matchAll(/<[^>]*\sdata-name="([^"]*)"[^>]*>/g)) {
    const attr = (name) => m[0].match(new RegExp(`\\s${name}="([^"]*)"`))?.[1];
    if (attr("data-value") !== undefined && attr("data-grad") !== undefined)
      found[m[1]] = { value: attr("data-value"), grad: attr("data-grad") };
  }
  for (const name of Object.keys(expected.values)) {
    check(found[name] !== undefined, `--dump-dom of ${out}#end has ${name} with data-value and data-grad`);
    if (!found[name]) continue;
    equal(found[name].value, expected.values[name], `--dump-dom: data-value of ${name}`);
    equal(found[name].grad, expected.grads[name], `--dump-dom: data-grad of ${name}`);
  }
  console.log(`pinned: chromium --dump-dom of explain --html's file#end shows ${Object.keys(found).length} named nodes with --json's values and gradients`);
}

const chromium = await launch();
const browser = chromium.browser;
try {
  for (const id of Object.keys(EXAMPLES)) await stepThrough(browser, id);
  await parseError(browser);
  await nonFinite(browser);
  await urlRoundTrip(browser);
  await absurdProgram(browser);
  await playground(browser);
  await speed(browser);
} finally {
  await chromium.close();
}
pinned();
rmSync(tmp, { recursive: true, force: true });
if (failures) {
  console.log(`${failures} checks failed`);
  process.exit(1);
}
console.log("all browser checks passed");
