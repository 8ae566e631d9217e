// The JavaScript API over the gradgraph engine (docs/web.md): every number the page shows comes
// from here, computed by the same C++ as the command line, in a Web Worker. A call that runs longer
// than its time limit ends the worker (and so the computation) and starts a fresh one.
import workerSource from "gradgraph-worker-source";

/** An engine call that failed outside the engine's own error replies (a time-out, a crash). */
export class EngineFailure extends Error {}

export class Engine {
  /** Starts the worker; the engine and the layout load in it while the page goes on. */
  constructor({ timeoutMs = 20000 } = {}) {
    this.timeoutMs = timeoutMs;
    this.pending = new Map();
    this.nextId = 1;
    this.start();
  }

  start() {
    const url = URL.createObjectURL(new Blob([workerSource], { type: "text/javascript" }));
    this.worker = new Worker(url);
    URL.revokeObjectURL(url);
    this.worker.onmessage = (event) => {
      const { id, reply, failure } = event.data;
      const call = this.pending.get(id);
      if (!call) return;
      this.pending.delete(id);
      clearTimeout(call.timer);
      if (failure !== undefined) call.reject(new EngineFailure(failure));
      else call.resolve(reply);
    };
    this.worker.onerror = (event) => {
      event.preventDefault();
      this.restart(new EngineFailure(`the engine stopped: ${event.message}`));
    };
  }

  /** Ends the worker and every call waiting on it (rejected with `reason`), and starts another. */
  restart(reason) {
    this.worker.terminate();
    for (const call of this.pending.values()) {
      clearTimeout(call.timer);
      call.reject(reason);
    }
    this.pending.clear();
    this.start();
  }

  /** The reply of the engine's `method` to `request`: a result object, or {error: {kind, exit_code,
   * message, line, column}} for bad input. Rejects with EngineFailure on a time-out. */
  call(method, request = {}, timeoutMs = this.timeoutMs) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.restart(new EngineFailure(`${method} took longer than ${timeoutMs / 1000} s and was stopped`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.worker.postMessage({ id, method, request });
    });
  }

  /** Evaluates and differentiates an explain program: inputs maps names to the text of their values. */
  explain(program, inputs = {}, { check = true } = {}) {
    return this.call("explain", { program, inputs, check });
  }

  /** Lays out a DOT graph with Graphviz's dot: {svg, milliseconds}. */
  layout(dot) {
    return this.call("layout", { dot });
  }

  /** The playground's choices: datasets, activations, losses, optimizers with their
   * hyper-parameters and defaults, and the size limits. */
  playgroundOptions() {
    return this.call("playground.options");
  }

  /** A new model and dataset: {dataset, samples, noise, seed, hidden: "8,8", activation, loss,
   * optimizer, params: {lr: "0.01", ...}}. */
  playgroundCreate(settings) {
    return this.call("playground.create", settings);
  }

  /** Trains `steps` minibatch steps: their losses, the whole data's loss and accuracy. */
  playgroundTrain(steps) {
    return this.call("playground.train", { steps });
  }

  /** The predicted class and its probability on a size x size grid over the data. */
  playgroundGrid(size) {
    return this.call("playground.grid", { size });
  }

  /** Sample `index`'s forward and backward as an explain program and its explain reply. */
  playgroundSample(index) {
    return this.call("playground.sample", { index });
  }
}
