// The step-by-step view of one explain reply: the graph (laid out by Graphviz in the worker), the
// panel of the current step and the table of named values. It shows what the engine computed and
// computes nothing itself: every number is a [full, short] pair from the reply.

const SVG_NS = "http://www.w3.org/2000/svg";

/** "dq", "d(2*x)": a name as a derivative's denominator (as explain's text writes it). */
function dOf(name) {
  return /^[A-Za-z_]\w*$/.test(name) || name.startsWith("(") ? name : `(${name})`;
}

/** An element with a class and children (strings become text). */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

/** A number as shown: its 6 significant digits, the full value in data-full and a tooltip. */
function num(pair, role, node) {
  return el("span", { class: "num", "data-full": pair[0], "data-role": role, "data-node": node, title: pair[0], text: pair[1] });
}

const isFinitePair = (pair) => !["nan", "inf", "-inf"].includes(pair[0]);

export class StepView {
  /**
   * @param engine the Engine (for the layout)
   * @param parts {graph, panel, names, status, alert}: the elements it fills
   * @param texts a function returning the current language's texts
   * @param onStep called with the step after each change (for the URL)
   */
  constructor(engine, parts, texts, onStep = () => {}) {
    this.engine = engine;
    this.parts = parts;
    this.texts = texts;
    this.onStep = onStep;
    this.reply = null;
    this.step = 0;
    this.layoutToken = 0;
  }

  /** Number of steps: the forward nodes, then the backward nodes. */
  get total() {
    return this.reply ? this.forward.length + this.reply.backward.length : 0;
  }

  /** Shows a new reply at `step` (a number, or "end"); the graph is laid out asynchronously. */
  async show(reply, step = 0) {
    this.reply = reply;
    this.forward = reply.nodes.map((n, i) => i).filter((i) => reply.nodes[i].kind !== "input");
    this.position = new Map(this.forward.map((node, k) => [node, k + 1]));
    this.svgNodes = new Map();
    this.svgEdges = new Map();
    this.nameOf = new Map(reply.names.map((entry) => [entry.node, entry]));
    this.renderNames();
    this.renderAlert();
    this.go(step === "end" ? this.total : Number(step) || 0);
    const token = ++this.layoutToken;
    delete this.parts.graph.dataset.layoutMs;
    this.parts.status.textContent = this.texts().computing;
    const started = performance.now();
    let layout;
    try {
      layout = await this.engine.layout(reply.dot);
    } catch (e) {
      // the steps and the table stay usable without the picture
      if (token === this.layoutToken) this.parts.status.textContent = e.message;
      return null;
    }
    if (token !== this.layoutToken) return null; // a newer reply came meanwhile
    this.layoutMs = performance.now() - started;
    this.insertSvg(layout.svg);
    // the time Graphviz took in the worker (the status line says it; the browser tests report it)
    this.parts.graph.dataset.layoutMs = String(layout.milliseconds);
    this.parts.status.textContent = this.texts().layoutTime(Math.round(this.layoutMs));
    this.go(this.step);
    return this.layoutMs;
  }

  insertSvg(svgText) {
    const doc = new DOMParser().parseFromString(svgText, "image/svg+xml");
    const svg = document.importNode(doc.documentElement, true);
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.classList.add(this.reply.nodes.length > 60 ? "large" : "fit");
    this.parts.graph.replaceChildren(svg);
    this.activeEdges = [];
    // n4, or n4c0, n4c1, ...: the copies of a widely shared input, one beside each node using it
    // (drawn for large graphs by the engine), which are shown, stepped and highlighted together.
    for (const g of svg.querySelectorAll("g.node")) {
      const i = Number(/^n(\d+)/.exec(g.id)[1]);
      g.dataset.name = this.reply.nodes[i].name;
      g.addEventListener("click", () => this.goToNode(i));
      if (!this.svgNodes.has(i)) this.svgNodes.set(i, { groups: [], texts: [] });
      const entry = this.svgNodes.get(i);
      entry.groups.push(g);
      entry.texts.push(g.querySelectorAll("text"));
      if (g.classList.contains("copy")) {
        g.addEventListener("mouseenter", () => entry.groups.forEach((c) => c.classList.add("linked")));
        g.addEventListener("mouseleave", () => entry.groups.forEach((c) => c.classList.remove("linked")));
      }
    }
    for (const g of svg.querySelectorAll("g.edge")) this.svgEdges.set(Number(g.id.slice(1)), g);
    const bad = this.reply.nonfinite.value;
    if (bad) for (const g of this.svgNodes.get(bad.node)?.groups ?? []) g.classList.add("first-nonfinite");
    svg.querySelector("title")?.remove();
  }

  /** Jumps to the forward step of a clicked node. */
  goToNode(i) {
    if (this.position.has(i)) this.go(this.position.get(i));
  }

  /** The state after `step` steps: which values are computed, each gradient's running sum. */
  stateAt(step) {
    const r = this.reply;
    const known = r.nodes.map((n, i) => n.kind === "input" || (this.position.get(i) ?? Infinity) <= step);
    const grads = new Map(); // node -> [pair, complete]
    const back = step - this.forward.length;
    for (let b = 0; b < back; ++b) {
      const s = r.backward[b];
      if (b === 0) grads.set(s.node, [s.upstream, true]);
      for (const e of s.edges) grads.set(e.input, [e.accumulated, e.contribution === e.contributions]);
    }
    return { known, grads };
  }

  go(step) {
    if (!this.reply) return;
    this.step = Math.max(0, Math.min(step, this.total));
    const { known, grads } = this.stateAt(this.step);
    this.renderGraph(known, grads);
    this.renderPanel();
    this.renderNameValues(known, grads);
    this.onStep(this.step === this.total && this.total > 0 ? "end" : this.step);
  }

  /** The node and edges the current step works on. */
  current() {
    const F = this.forward.length;
    if (this.step === 0) return { node: -1, edges: [] };
    if (this.step <= F) return { node: this.forward[this.step - 1], edges: [] };
    const s = this.reply.backward[this.step - F - 1];
    return { node: s.node, edges: s.edges.map((e) => e.edge) };
  }

  renderGraph(known, grads) {
    if (!this.svgNodes.size) return;
    const r = this.reply;
    const { node: cur, edges } = this.current();
    const t = this.texts();
    for (const [i, entry] of this.svgNodes) {
      const n = r.nodes[i];
      const grad = grads.get(i);
      // a step changes a few nodes: the others are left alone (a 1,000-node graph stays fast)
      const key = `${t.value}|${known[i]}|${i === cur}|${grad ? grad[0][1] : ""}`;
      if (entry.key === key) continue;
      entry.key = key;
      entry.groups.forEach((g, k) => {
        g.classList.toggle("known", known[i]);
        g.classList.toggle("current", i === cur);
        g.classList.toggle("has-grad", !!grad);
        g.classList.toggle("nonfinite", known[i] && !isFinitePair(n.value));
        const texts = entry.texts[k];
        if (texts.length >= 3) {
          texts[1].textContent = known[i] ? `${t.value} ${n.value[1]}` : "";
          texts[2].textContent = grad ? `grad ${grad[0][1]}` : "";
        }
      });
    }
    for (const k of this.activeEdges ?? []) this.svgEdges.get(k)?.classList.remove("active");
    for (const k of edges) this.svgEdges.get(k)?.classList.add("active");
    this.activeEdges = edges;
    if (cur >= 0 && this.svgNodes.has(cur) && r.nodes.length > 60)
      this.svgNodes.get(cur).groups[0].scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  renderPanel() {
    const r = this.reply;
    const t = this.texts();
    const F = this.forward.length;
    const panel = this.parts.panel;
    panel.replaceChildren();
    panel.dataset.step = String(this.step);
    panel.dataset.total = String(this.total);
    if (this.step === 0) {
      panel.append(el("p", { class: "what", text: t.start }));
      if (!r.backward.length) panel.append(el("p", { text: t.noBackward }));
      return;
    }
    if (this.step <= F) {
      const i = this.forward[this.step - 1];
      const n = r.nodes[i];
      panel.dataset.phase = "forward";
      panel.append(el("p", { class: "what", text: t.forwardStep(this.step, F) }));
      const parts = [n.name];
      if (n.definition && n.definition !== n.name) parts.push(n.definition);
      if (n.substituted && n.substituted !== n.definition) parts.push(n.substituted);
      const line = el("p", { class: "formula" }, parts.join(" = ") + " = ", num(n.value, "value", n.name));
      panel.append(line);
      this.appendNonFinite(panel, i);
      return;
    }
    const b = this.step - F - 1;
    const s = r.backward[b];
    const node = r.nodes[s.node];
    const out = r.output;
    panel.dataset.phase = "backward";
    panel.append(el("p", { class: "what", text: t.backwardStep(b + 1, r.backward.length) }));
    const head = node.definition && node.definition !== node.name ? `${node.name} = ${node.definition}` : node.name;
    panel.append(
      el("p", { class: "formula" }, `${head}:   d${out}/d${dOf(node.name)} = `, num(s.upstream, "upstream", node.name),
        b === 0 ? ` (${t.seed})` : "", this.checkBeside(s.node)));
    const table = el("table", { class: "edges" });
    table.append(el("tr", {}, el("th", { text: t.local }), el("th", { text: t.product }), el("th", { text: t.grad })));
    for (const e of s.edges) {
      const input = r.nodes[e.input].name;
      const local = el("td", {}, `∂${dOf(node.name)}/∂${dOf(input)} = ${e.formula} = `, num(e.local, "local", input));
      const product = el("td", {}, num(e.upstream, "upstream", node.name), " × ", num(e.local, "local", input), " = ",
        num(e.product, "product", input));
      const grad = el("td", {}, `d${out}/d${dOf(input)} = `);
      if (e.contributions > 1 && e.contribution > 1)
        grad.append(num(e.previous, "previous", input), " + ", num(e.product, "product", input), " = ");
      grad.append(num(e.accumulated, "accumulated", input));
      if (e.contributions > 1) grad.append(el("span", { class: "note", text: `  (${t.contribution(e.contribution, e.contributions)})` }));
      if (e.contribution === e.contributions) grad.append(this.checkBeside(e.input));
      table.append(el("tr", { "data-input": input, "data-complete": String(e.contribution === e.contributions) }, local, product, grad));
    }
    panel.append(table);
    const bad = r.nonfinite.grad;
    if (bad && bad.step === b)
      panel.append(el("p", { class: "nonfinite", text: `${t.firstNonFiniteGrad}: d${out}/d${dOf(r.nodes[bad.node].name)}` }));
  }

  /** A complete gradient's finite-difference check (explain --check's), for a named node. */
  checkBeside(i) {
    const entry = this.nameOf.get(i);
    if (!entry || !entry.check) return null;
    const t = this.texts();
    const name = this.reply.nodes[i].name;
    return el("span", { class: "check-beside" }, `  ${t.check} `, num(entry.check, "check", name),
      el("span", { class: `agree ${entry.agrees ? "yes" : "no"}`, text: ` ${entry.agrees ? t.agrees : t.differs}` }));
  }

  /** The first value and the first gradient that are not finite, named with their op, above the
   * steps whatever the step, each with a button to its step. */
  renderAlert() {
    const box = this.parts.alert;
    if (!box) return;
    const r = this.reply;
    const t = this.texts();
    box.replaceChildren();
    const { value, grad } = r.nonfinite;
    if (value) {
      const n = r.nodes[value.node];
      const what = n.definition ? `${n.name} = ${n.definition}` : n.name;
      const go = el("button", { class: "go", text: t.show });
      go.addEventListener("click", () => this.goToNode(value.node));
      box.append(el("p", { class: "first-value", "data-node": n.name, "data-op": n.op },
        `${t.firstNonFinite}: ${what} = ${n.value[1]} (${n.op})${value.reason ? `: ${value.reason}` : ""} `, go));
    }
    if (grad) {
      const n = r.nodes[grad.node];
      const go = el("button", { class: "go", text: t.show });
      go.addEventListener("click", () => this.go(this.forward.length + grad.step + 1));
      box.append(el("p", { class: "first-grad", "data-node": n.name },
        `${t.firstNonFiniteGrad}: d${r.output}/d${dOf(n.name)} `, go));
    }
    box.hidden = !value && !grad;
  }

  appendNonFinite(panel, i) {
    const bad = this.reply.nonfinite.value;
    if (bad && bad.node === i) {
      const why = bad.reason ? `: ${bad.reason}` : "";
      panel.append(el("p", { class: "nonfinite", text: `${this.texts().firstNonFinite} (${this.reply.nodes[i].op})${why}` }));
    }
  }

  renderNames() {
    const t = this.texts();
    const r = this.reply;
    const table = el("table", { class: "names" });
    const head = el("tr", {}, el("th", { text: t.name }), el("th", { text: t.value }), el("th", { text: `d${r.output}/d·` }));
    if (r.names.length && r.names[0].check) head.append(el("th", { text: t.check }), el("th", {}));
    table.append(head);
    this.nameRows = r.names.map((entry) => {
      const n = r.nodes[entry.node];
      const row = el("tr", { class: "named", "data-name": n.name });
      row.append(el("td", { class: "source", text: entry.source }), el("td", { class: "value" }), el("td", { class: "grad" }));
      if (entry.check) row.append(el("td", { class: "check" }), el("td", { class: "agree" }));
      row.addEventListener("click", () => this.goToNode(entry.node));
      table.append(row);
      return row;
    });
    this.parts.names.replaceChildren(table);
  }

  renderNameValues(known, grads) {
    const r = this.reply;
    const t = this.texts();
    const end = this.step === this.total;
    r.names.forEach((entry, k) => {
      const row = this.nameRows[k];
      const i = entry.node;
      const n = r.nodes[i];
      const g = grads.get(i);
      const key = `${known[i]}|${end}|${g ? g[0][0] + g[1] : ""}`;
      if (row.shownKey === key) return;
      row.shownKey = key;
      const [value, grad, check, agree] = row.querySelectorAll("td:not(.source)");
      if (known[i]) {
        row.dataset.value = entry.value[0];
        value.replaceChildren(num(entry.value, "value", n.name));
        if (!isFinitePair(entry.value)) value.append(el("span", { class: "note", text: ` ${t.notFinite}${entry.flag ? ": " + entry.flag : ""}` }));
      } else {
        delete row.dataset.value;
        value.replaceChildren();
      }
      if (end || (g && g[1])) {
        // complete: the gradient --json gives (0 when the output does not depend on the name)
        row.dataset.grad = entry.grad[0];
        grad.replaceChildren(num(entry.grad, "grad", n.name));
      } else {
        delete row.dataset.grad;
        grad.replaceChildren(g ? num(g[0], "partial", n.name) : "");
      }
      row.classList.toggle("nonfinite", known[i] && !isFinitePair(entry.value));
      if (check) {
        const show = end || (g && g[1]);
        check.replaceChildren(show ? num(entry.check, "check", n.name) : "");
        agree.textContent = show ? (entry.agrees ? t.agrees : t.differs) : "";
        agree.className = "agree " + (show ? (entry.agrees ? "yes" : "no") : "");
      }
    });
  }

  /** Re-renders in the current language. */
  relabel() {
    if (!this.reply) return;
    this.renderNames();
    this.renderAlert();
    this.go(this.step);
  }
}
