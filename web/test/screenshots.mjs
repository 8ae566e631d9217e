// Screenshots of the explorer's graph for judging the layout (docs/web.md, "Graph layout"): the
// cs231n program, micrograd's example and a 200-node program, at the last step, as PNG files.
// Usage: node web/test/screenshots.mjs PAGE_DIR OUT_DIR
import path from "node:path";
import { pathToFileURL } from "node:url";
import { launch } from "./browser.mjs";

const [pageDir, outDir] = process.argv.slice(2);
const url = pathToFileURL(path.resolve(pageDir, "index.html")).href;
const statements = [];
for (let k = 1; k <= 64; ++k) statements.push(`a${k} = tanh(${k === 1 ? "x" : `a${k - 1}`} * w${k % 5} + b${k % 3})`);
const programs = {
  cs231n: ["q = x + y; f = q * z", { x: "-2", y: "5", z: "-4" }],
  micrograd: ["z = 2*x + 2 + x; q = relu(z) + z*x; h = relu(z*z); y = h + q + q*x", { x: "-4" }],
  "200-nodes": [statements.join("; "), { x: "0.5", w0: "0.9", w1: "1.1", w2: "-0.7", w3: "0.3", w4: "1.2", b0: "0.1", b1: "-0.2", b2: "0.05" }],
};
const { browser, close } = await launch();
try {
  for (const [name, [program, inputs]] of Object.entries(programs)) {
    const p = new URLSearchParams({ p: program, step: "end" });
    for (const [k, v] of Object.entries(inputs)) p.set(`i.${k}`, v);
    const page = await browser.newPage();
    await page.setViewport({ width: 1400, height: 1000 });
    await page.goto(`${url}#${p}`);
    await page.waitForSelector("#graph[data-layout-ms]", { timeout: 30000 });
    const nodes = await page.$$eval("#graph g.node", (g) => g.length);
    const file = path.join(outDir, `${name}.png`);
    await (await page.$("#graph")).screenshot({ path: file });
    console.log(`${file}: ${nodes} nodes`);
    await page.close();
  }
} finally {
  await close();
}
