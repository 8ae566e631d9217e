// The page: the expression explorer and the model playground, wired to the engine (api.js) and
// to the URL (state.js). Layout, words and drawing live here; every number comes from the engine.
import { Engine } from "./api.js";
import { TEXTS } from "./i18n.js";
import { readState, writeState } from "./state.js";
import { StepView, el } from "./stepper.js";

const EXAMPLES = [
  { id: "cs231n", program: "q = x + y; f = q * z", inputs: { x: "-2", y: "5", z: "-4" } },
  { id: "fan-out", program: "a = x * y; f = a + x", inputs: { x: "3", y: "2" } },
  {
    id: "micrograd",
    program: "z = 2*x + 2 + x; q = relu(z) + z*x; h = relu(z*z); y = h + q + q*x",
    inputs: { x: "-4" },
  },
  {
    id: "micrograd neuron",
    program: "n = x1*w1 + x2*w2 + b; o = tanh(n)",
    inputs: { x1: "2", x2: "0", w1: "-3", w2: "1", b: "6.8813735870195432" },
  },
  { id: "logistic unit", program: "d = w0 + w1*x1 + w2*x2; p = sigmoid(d); loss = -log(p)", inputs: { w0: "-1", w1: "2", w2: "-1", x1: "0.5", x2: "0.25" } },
];

const $ = (id) => document.getElementById(id);
const initial = JSON.parse($("gg-initial").textContent || "null");
const state = readState();
let lang = state.lang === "es" ? "es" : "en";
const texts = () => TEXTS[lang];
const engine = new Engine();

// ---------------------------------------------------------------------------------------------
// URL

let urlTimer = null;
function saveUrl() {
  clearTimeout(urlTimer);
  urlTimer = setTimeout(() => history.replaceState(null, "", writeState(currentState())), 150);
}

function currentState() {
  const s = { tab: activeTab, lang, inputs: {}, playground: {}, optimizerParams: {} };
  if (activeTab === "explorer") {
    s.p = editor.value;
    for (const [name, input] of inputFields) s.inputs[name] = input.value;
    s.step = explorerView.step === explorerView.total && explorerView.total > 0 ? "end" : String(explorerView.step);
  } else {
    Object.assign(s.playground, playgroundSettings());
    delete s.playground.params;
    s.optimizerParams = playgroundSettings().params;
    s.playground.sample = $("sample-index").value;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Words

function applyTexts() {
  const t = texts();
  document.documentElement.lang = lang;
  document.title = t.title;
  for (const node of document.querySelectorAll("[data-t]")) node.textContent = t[node.dataset.t];
  $("lang").textContent = t.language;
  explorerView.relabel();
  sampleView.relabel();
}

// ---------------------------------------------------------------------------------------------
// Explorer

const editor = $("program");
const inputFields = new Map(); // name -> text input
const explorerView = new StepView(
  engine,
  { graph: $("graph"), panel: $("panel"), names: $("names"), status: $("graph-status"), alert: $("nonfinite") },
  texts,
  saveUrl,
);
let explainToken = 0;

/** Asks the engine for the program with the fields' values and shows its reply (or its error). */
async function explain(step = 0, reply = null) {
  const token = ++explainToken;
  const inputs = {};
  for (const [name, input] of inputFields) inputs[name] = input.value;
  if (!reply) {
    $("error").hidden = true;
    try {
      reply = await engine.explain(editor.value, inputs);
    } catch (e) {
      reply = { error: { message: e.message, line: 0, column: 0 } };
    }
  }
  if (token !== explainToken) return;
  if (reply.error) {
    showError(reply.error);
    if (reply.inputs) syncInputs(reply.inputs);
    return;
  }
  $("error").hidden = true;
  editor.classList.remove("has-error");
  syncInputs(reply.inputs);
  await explorerView.show(reply, step);
  saveUrl();
}

function showError(error) {
  const box = $("error");
  box.hidden = false;
  box.textContent = error.message;
  box.dataset.line = error.line;
  box.dataset.column = error.column;
  editor.classList.add("has-error");
  if (error.line > 0) {
    // Selects the character the message points at (columns count characters, as the CLI's).
    const lines = editor.value.split("\n");
    let offset = 0;
    for (let l = 0; l < error.line - 1 && l < lines.length; ++l) offset += lines[l].length + 1;
    const chars = Array.from(lines[error.line - 1] ?? "");
    offset += chars.slice(0, error.column - 1).join("").length;
    editor.dataset.errorOffset = String(offset);
  }
}

/** One field and slider per input of the program, in its order; values typed are kept. */
function syncInputs(list) {
  const box = $("inputs");
  const names = list.map((i) => i.name);
  if (names.join("\n") === [...inputFields.keys()].join("\n")) return;
  const old = new Map([...inputFields].map(([n, f]) => [n, f.value]));
  inputFields.clear();
  box.replaceChildren();
  for (const { name, text } of list) {
    const field = el("input", { type: "text", class: "value", "data-input": name, value: old.get(name) ?? text, spellcheck: "false" });
    const value = Number(field.value);
    const span = Math.max(1, Math.abs(value) * 2);
    const slider = el("input", { type: "range", min: String(value - span), max: String(value + span), step: "any", value: String(value) });
    if (!Number.isFinite(value)) slider.disabled = true;
    field.addEventListener("input", () => {
      const v = Number(field.value);
      if (Number.isFinite(v)) slider.value = String(v);
      scheduleExplain();
    });
    slider.addEventListener("input", () => {
      field.value = slider.value;
      scheduleExplain(explorerView.step === explorerView.total ? "end" : explorerView.step);
    });
    inputFields.set(name, field);
    box.append(el("label", { class: "input" }, el("span", { class: "input-name", text: name }), field, slider));
  }
}

let explainTimer = null;
function scheduleExplain(step = 0) {
  clearTimeout(explainTimer);
  explainTimer = setTimeout(() => explain(step), 200);
}

function loadExample(example, step = 0) {
  editor.value = example.program;
  inputFields.clear();
  syncInputs(Object.entries(example.inputs).map(([name, text]) => ({ name, text })));
  return explain(step);
}

// ---------------------------------------------------------------------------------------------
// Playground

const sampleView = new StepView(
  engine,
  { graph: $("sample-graph"), panel: $("sample-panel"), names: $("sample-names"), status: $("sample-status"), alert: $("sample-nonfinite") },
  texts,
);
let options = null;
let running = false;
let losses = [];
let playground = null; // the create reply
let busy = false;

function playgroundSettings() {
  const params = {};
  for (const input of $("hyper").querySelectorAll("input"))
    params[input.dataset.param] = input.type === "checkbox" ? String(input.checked) : input.value;
  return {
    dataset: $("dataset").value,
    samples: $("samples").value,
    noise: $("noise").value,
    seed: $("seed").value,
    hidden: $("hidden").value,
    activation: $("activation").value,
    loss: $("loss").value,
    optimizer: $("optimizer").value,
    params,
  };
}

function fillSelect(select, values, chosen) {
  select.replaceChildren(...values.map((v) => el("option", { value: v, text: v })));
  if (chosen && values.includes(chosen)) select.value = chosen;
}

/** The chosen optimizer's hyper-parameters as fields (a flag as a box), with the engine's defaults:
 * those of `gradgraph train --dataset`, whose names they have. */
function fillHyper(given = {}) {
  const spec = options.optimizers.find((o) => o.name === $("optimizer").value);
  $("hyper").replaceChildren(
    ...spec.params.map((p) => {
      const value = given[p.name] ?? p.default;
      const input = p.flag
        ? el("input", { type: "checkbox", "data-param": p.name })
        : el("input", { type: "text", "data-param": p.name, value, spellcheck: "false" });
      if (p.flag) input.checked = value === "true";
      return el("label", {}, el("span", { text: p.name }), input);
    }),
  );
  for (const input of $("hyper").querySelectorAll("input")) input.addEventListener("change", resetPlayground);
}

async function setupPlayground() {
  options = await engine.playgroundOptions();
  const g = state.playground;
  fillSelect($("dataset"), options.datasets, g.dataset);
  fillSelect($("activation"), options.activations, g.activation);
  fillSelect($("loss"), options.losses, g.loss);
  fillSelect($("optimizer"), options.optimizers.map((o) => o.name), g.optimizer ?? "adam");
  for (const key of ["samples", "noise", "seed", "hidden"]) if (g[key] !== undefined) $(key).value = g[key];
  if (g.sample !== undefined) $("sample-index").value = g.sample;
  fillHyper(state.optimizerParams);
  $("optimizer").addEventListener("change", () => {
    fillHyper();
    resetPlayground();
  });
  for (const id of ["dataset", "samples", "noise", "seed", "hidden", "activation", "loss"])
    $(id).addEventListener("change", resetPlayground);
  await resetPlayground();
}

async function resetPlayground() {
  running = false;
  updateRunButton();
  losses = [];
  const reply = await engine.playgroundCreate(playgroundSettings());
  markField(reply.error ? reply.error.message : "");
  if (reply.error) {
    playground = null;
    $("playground-error").hidden = false;
    $("playground-error").textContent = reply.error.message;
    return;
  }
  $("playground-error").hidden = true;
  playground = reply;
  $("parameters").textContent = texts().parameters(reply.parameters);
  showScores(reply);
  await drawRegions();
  drawLoss();
  await showSample();
  saveUrl();
}

/** Marks the field a message names ("--lr 'abc': not a number", "hidden layers '8,x': ..."): the
 * messages are `gradgraph train`'s, which name its options. */
function markField(message) {
  const option = /^--([\w-]+)/.exec(message)?.[1];
  const fields = [...$("hyper").querySelectorAll("input"), ...["samples", "noise", "seed", "hidden"].map($)];
  for (const f of fields) {
    const name = f.dataset.param ?? f.id;
    f.classList.toggle("error-field", name === option || (name === "hidden" && message.startsWith("hidden layers")));
  }
}

function showScores(reply) {
  const t = texts();
  const scores = $("scores");
  scores.dataset.step = reply.step;
  scores.dataset.accuracy = reply.accuracy[0];
  scores.dataset.loss = reply.loss[0];
  scores.textContent = `${t.stepCount(reply.step, reply.epoch)} · ${t.lossLabel} ${reply.loss[1]} · ${t.accuracy} ${reply.accuracy[1]}`;
}

const COLORS = [[230, 85, 13], [49, 130, 189], [49, 163, 84], [117, 107, 177]];

async function drawRegions() {
  if (!playground) return;
  const size = 60;
  const grid = await engine.playgroundGrid(size);
  if (grid.error) return;
  const canvas = $("regions");
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(size, size);
  for (let i = 0; i < size * size; ++i) {
    const c = COLORS[grid.classes[i] % COLORS.length];
    const a = grid.confidence[i];
    for (let k = 0; k < 3; ++k) image.data[4 * i + k] = Math.round(255 - (255 - c[k]) * (0.15 + 0.45 * a));
    image.data[4 * i + 3] = 255;
  }
  const off = new OffscreenCanvas(size, size);
  off.getContext("2d").putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(off, 0, 0, canvas.width, canvas.height);
  const [x0, x1, y0, y1] = playground.bounds;
  for (const [x, y, k] of playground.points) {
    const c = COLORS[k % COLORS.length];
    ctx.beginPath();
    ctx.arc(((x - x0) / (x1 - x0)) * canvas.width, ((y1 - y) / (y1 - y0)) * canvas.height, 3, 0, 2 * Math.PI);
    ctx.fillStyle = `rgb(${c.join(",")})`;
    ctx.strokeStyle = "white";
    ctx.fill();
    ctx.stroke();
  }
}

function drawLoss() {
  const canvas = $("loss-curve");
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (losses.length < 2) return;
  const finite = losses.filter(Number.isFinite);
  const hi = Math.max(...finite), lo = Math.min(0, ...finite);
  ctx.strokeStyle = "#3182bd";
  ctx.beginPath();
  losses.forEach((l, i) => {
    const x = (i / (losses.length - 1)) * canvas.width;
    const y = canvas.height - ((l - lo) / (hi - lo || 1)) * (canvas.height - 10) - 5;
    if (i === 0) ctx.moveTo(x, y);
    else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#555";
  ctx.fillText(hi.toPrecision(3), 4, 12);
}

async function trainSteps(steps) {
  if (!playground || busy) return;
  busy = true;
  try {
    const reply = await engine.playgroundTrain(steps);
    if (reply.error) {
      running = false;
      $("playground-error").hidden = false;
      $("playground-error").textContent = reply.error.message;
      return;
    }
    losses.push(...reply.losses);
    showScores(reply);
    await drawRegions();
    drawLoss();
  } finally {
    busy = false;
  }
}

async function run() {
  while (running) {
    await trainSteps(10);
    await new Promise((r) => requestAnimationFrame(r));
  }
  await showSample();
}

function updateRunButton() {
  $("run").textContent = running ? texts().pause : texts().startTraining;
}

async function showSample(step = 0) {
  if (!playground) return;
  const reply = await engine.playgroundSample(Number($("sample-index").value) || 0);
  if (reply.error) {
    $("sample-error").hidden = false;
    $("sample-error").textContent = reply.error.message;
    return;
  }
  $("sample-error").hidden = true;
  $("sample-program").textContent = reply.program;
  sampleView.sample = reply;
  await sampleView.show(reply.explain, step);
}

// ---------------------------------------------------------------------------------------------
// Tabs, keys, start

let activeTab = state.tab === "playground" ? "playground" : "explorer";
let playgroundStarted = false;

function showTab(tab) {
  activeTab = tab;
  for (const t of ["explorer", "playground"]) {
    $(t).hidden = t !== tab;
    $(`tab-${t}`).classList.toggle("active", t === tab);
  }
  if (tab === "playground" && !playgroundStarted) {
    playgroundStarted = true;
    setupPlayground();
  }
  saveUrl();
}

function activeView() {
  return activeTab === "explorer" ? explorerView : sampleView;
}

function wireStepper(prefix, view) {
  $(`${prefix}first`).addEventListener("click", () => view.go(0));
  $(`${prefix}prev`).addEventListener("click", () => view.go(view.step - 1));
  $(`${prefix}next`).addEventListener("click", () => view.go(view.step + 1));
  $(`${prefix}last`).addEventListener("click", () => view.go(view.total));
}

function start() {
  wireStepper("", explorerView);
  wireStepper("sample-", sampleView);
  document.addEventListener("keydown", (e) => {
    if (e.target instanceof Element && e.target.matches("input, textarea, select")) return;
    const view = activeView();
    if (e.key === "ArrowRight") view.go(view.step + 1);
    else if (e.key === "ArrowLeft") view.go(view.step - 1);
    else return;
    e.preventDefault();
  });
  $("lang").addEventListener("click", () => {
    lang = lang === "en" ? "es" : "en";
    applyTexts();
    saveUrl();
  });
  $("tab-explorer").addEventListener("click", () => showTab("explorer"));
  $("tab-playground").addEventListener("click", () => showTab("playground"));
  editor.addEventListener("input", () => scheduleExplain());
  const examples = $("examples");
  examples.replaceChildren(el("option", { value: "", text: "…" }), ...EXAMPLES.map((x) => el("option", { value: x.id, text: x.id })));
  examples.addEventListener("change", () => {
    const x = EXAMPLES.find((e) => e.id === examples.value);
    if (x) loadExample(x);
  });
  $("run").addEventListener("click", () => {
    running = !running;
    updateRunButton();
    if (running) run();
  });
  $("one-step").addEventListener("click", async () => {
    running = false;
    updateRunButton();
    await trainSteps(1);
    await showSample();
  });
  $("reset").addEventListener("click", resetPlayground);
  $("sample-index").addEventListener("change", () => showSample());
  $("open-in-explorer").addEventListener("click", () => {
    if (!sampleView.sample) return;
    showTab("explorer");
    loadExample({ program: sampleView.sample.program, inputs: sampleView.sample.inputs });
  });
  applyTexts();
  showTab(activeTab);

  // The explorer opens at the URL's program, else at the one `gradgraph explain --html` embedded
  // (with its reply, shown before the engine has even loaded), else at the cs231n example.
  const step = state.step ?? 0;
  if (state.p !== undefined) {
    loadExample({ program: state.p, inputs: state.inputs }, step);
  } else if (initial) {
    editor.value = initial.program;
    syncInputs(Object.entries(initial.inputs).map(([name, text]) => ({ name, text })));
    explain(step, initial.reply);
  } else {
    loadExample(EXAMPLES[0], step);
  }
}

start();
