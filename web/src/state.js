// The page's state in the URL's fragment (#tab=explorer&p=...&i.x=-2&step=4&lang=es), so a link
// opens the same program, inputs, step and settings. "#end" alone (or step=end) means after the
// last backward step.
export function readState(hash = location.hash) {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const state = { inputs: {}, playground: {}, optimizerParams: {} };
  for (const [key, value] of params) {
    if (key === "end") state.step = "end";
    else if (key.startsWith("i.")) state.inputs[key.slice(2)] = value;
    else if (key.startsWith("o.")) state.optimizerParams[key.slice(2)] = value;
    else if (key.startsWith("g.")) state.playground[key.slice(2)] = value;
    else state[key] = value;
  }
  return state;
}

/** The fragment for a state: the same keys readState reads. */
export function writeState(state) {
  const params = new URLSearchParams();
  for (const key of ["tab", "lang", "p", "step"]) if (state[key] !== undefined && state[key] !== "") params.set(key, state[key]);
  for (const [k, v] of Object.entries(state.inputs || {})) params.set(`i.${k}`, v);
  for (const [k, v] of Object.entries(state.playground || {})) params.set(`g.${k}`, v);
  for (const [k, v] of Object.entries(state.optimizerParams || {})) params.set(`o.${k}`, v);
  return "#" + params.toString();
}
