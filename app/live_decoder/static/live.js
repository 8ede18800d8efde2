// The Explore page's live decoder (a Streamlit components-v2 module): latent sliders and a 2-D pad whose
// picture is decoded in the browser by onnxruntime-web while the pointer moves. Python hands over the model's
// decoder.onnx (by the name of its gzipped copy, served beside this folder), the dimensions, their ranges and the current point;
// the point goes back to Python (state "z") only when the pointer is released. When decoding cannot run here
// (no WebAssembly, the model fails to load) the state "failed" says why, and the page falls back to its
// server-side sliders.
const MODELS = new URL("../vae_explorer.live_models/", import.meta.url).href;
const sessions = new Map(); // model file -> Promise<InferenceSession>
const instances = new WeakMap(); // parentElement -> Live
// Figures for the browser test and the benchmark: frames drawn, input-to-pixels latency, first frame.
const stats = (window.__liveDecoder ||= { frames: [], firstFrameMs: null, mountMs: null, sessionMs: null,
  previewMs: null });

// Both files are stored gzipped and served as they are (Streamlit would gzip them anew on every request).
async function gunzip(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url.split("/").pop()}: HTTP ${r.status}`);
  if (typeof DecompressionStream !== "function") throw new Error("DecompressionStream is not available");
  return new Response(r.body.pipeThrough(new DecompressionStream("gzip"))).arrayBuffer();
}

// The runtime's binary and the model are fetched side by side (onnxruntime would fetch the model only once
// its runtime is up), then the session is made from both.
// onnxruntime-web's single-file bundle (its JS glue inlined) and its binary, handed over as env.wasm.wasmBinary:
// nothing else is fetched, and nothing from a CDN. Imported on first use, so that a browser it cannot run in
// gets a message instead of a module that fails to load.
const WASM = new URL("./ort-wasm-simd-threaded.wasm.gz", import.meta.url).href;
let ort = null;

async function runtime() {
  if (typeof WebAssembly !== "object") throw new Error("WebAssembly is not available");
  const [mod, binary] = await Promise.all([import("./ort.wasm.bundle.min.mjs"), gunzip(WASM)]);
  mod.env.wasm.numThreads = 1; // a Streamlit page is not cross-origin isolated: no SharedArrayBuffer
  mod.env.wasm.proxy = false;
  mod.env.wasm.wasmBinary = binary;
  ort = mod;
  return ort;
}

let loading = null;
function session(file) {
  if (!sessions.has(file)) {
    loading ||= runtime();
    const model = gunzip(MODELS + file);
    model.catch(() => {}); // reported through the session's promise below
    sessions.set(file, Promise.all([loading, model]).then(([rt, data]) =>
      rt.InferenceSession.create(new Uint8Array(data), { executionProviders: ["wasm"] })));
  }
  return sessions.get(file);
}

const el = (tag, attrs = {}, text) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};
const same = (a, b) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) < 1e-6);
const fmt = (v) => (v >= 0 ? "+" : "") + v.toFixed(2);

class Live {
  constructor(root) {
    this.root = root;
    this.structure = null; // what the DOM was built for
    this.z = [];
    this.dataZ = null;
    this.reported = []; // the last points sent to Python
    this.pending = false;
    this.busy = false;
    this.reports = 0;
    this.inputAt = 0;
    this.model = null; // the decoder file this.session belongs to
    this.session = null;
  }

  update(data, setStateValue) {
    this.setStateValue = setStateValue;
    this.data = data;
    const structure = JSON.stringify([data.model, data.order, data.labels, data.limits, data.size, data.channels,
      data.px, data.posterior, data.input, data.edits_title, (data.edits || []).map((t) => [t.factor, t.names])]);
    if (structure !== this.structure) {
      this.structure = structure;
      this.build();
      this.dataZ = null;
      this.reported = [];
    }
    // A new model gets its own decoder; a rerun of the same model (most reruns) decodes nothing anew.
    if (data.model !== this.model) {
      const file = (this.model = data.model);
      this.session = null; // the last model's decoder must not run the new model's points
      session(file).then((s) => {
        if (this.model !== file) return; // another model took its place meanwhile
        if (stats.sessionMs === null) stats.sessionMs = performance.now();
        this.session = s;
        this.request(this.inputAt || performance.now());
      }, (err) => { if (this.model === file) this.fail(err); });
    }
    // Python moved the point (a button, a new model) unless this is the echo of a point reported from here,
    // the latest or an earlier one whose rerun arrives late (applying it would jump back for a moment).
    const echo = this.reported.some((r) => same(r, data.z));
    if (!this.dragging && !(this.dataZ && same(this.dataZ, data.z)) && !echo) {
      this.dataZ = data.z.slice();
      this.reported = []; // from here on, an earlier report's point is a new move, not an echo
      this.z = data.z.slice();
      this.syncControls();
      this.syncEdits();
      if (!this.session) this.preview(data.preview, data.z);
      this.request(performance.now());
    }
  }

  // The server's picture of the point, until the decoder here is ready (it takes its place from then on).
  preview(url, z) {
    if (!url) return;
    const img = new Image();
    img.onload = () => {
      if (this.session || !same(z, this.z)) return;
      this.ctx.drawImage(img, 0, 0, this.canvas.width, this.canvas.height);
      if (stats.previewMs === null) stats.previewMs = performance.now();
    };
    img.src = url;
  }

  fail(err) {
    const message = String(err && err.message ? err.message : err).slice(0, 300);
    this.status.textContent = `In-browser decoding failed: ${message}`;
    this.setStateValue("failed", message);
  }

  build() {
    const d = this.data;
    const wrap = el("div", { class: "live" });
    const sliders = el("div", { class: "sliders" });
    this.inputs = new Map();
    this.values = new Map();
    for (const dim of d.order) {
      const row = el("div", { class: "row" + (d.active[dim] ? "" : " inactive") });
      const head = el("div", { class: "head" });
      head.append(el("span", { class: "label" }, d.labels[dim]));
      const value = el("span", { class: "value" });
      head.append(value);
      const input = el("input", { type: "range", min: -d.limits[dim], max: d.limits[dim], step: d.step,
        "data-dim": dim, "aria-label": d.labels[dim] });
      input.addEventListener("input", () => this.set(dim, Number(input.value)));
      input.addEventListener("pointerdown", () => { this.dragging = true; });
      input.addEventListener("change", () => { this.dragging = false; this.report(); });
      row.append(head, input);
      if (d.posterior) {
        row.append(el("div", { class: "post" },
          `μ ${fmt(d.posterior.mu[dim])} · σ ${d.posterior.sigma[dim].toFixed(2)}`));
      }
      sliders.append(row);
      this.inputs.set(dim, input);
      this.values.set(dim, value);
    }
    sliders.prepend(...this.buildEdits());
    const view = el("div", { class: "view" });
    this.canvas = el("canvas", { class: "image", width: d.size, height: d.size, "data-testid": "live-image" });
    this.canvas.style.width = this.canvas.style.height = `${d.px}px`;
    this.ctx = this.canvas.getContext("2d");
    this.pixels = this.ctx.createImageData(d.size, d.size);
    this.status = el("div", { class: "status" }, "Loading the in-browser decoder…");
    view.append(this.canvas, el("div", { class: "caption" }, "decoded in your browser while you drag"),
      this.status, this.buildPad());
    if (d.input) { // the encoded image in the decoded image's column, not below the sliders
      const input = el("img", { class: "input", src: d.input.src, alt: d.input.caption, "data-testid": "live-input" });
      input.style.width = `${Math.round(d.px * 0.4)}px`;
      view.append(input, el("div", { class: "caption" }, d.input.caption));
    }
    wrap.append(sliders, view);
    if (this.wrap) this.wrap.replaceWith(wrap); else this.root.append(wrap); // Streamlit's own <link> stays
    this.wrap = wrap;
  }

  // One slider per learned edit (app/live.py's "edits"): its track runs through the current point edited to each
  // value of the factor (computed by Python); a position between two values decodes the point between theirs.
  buildEdits() {
    const tracks = this.data.edits || [];
    this.editInputs = [];
    if (!tracks.length) return [];
    const box = el("div", { class: "edits", "data-testid": "live-edits" });
    box.append(el("div", { class: "padtitle" }, this.data.edits_title || "Edit a factor"));
    tracks.forEach((track, k) => {
      const row = el("div", { class: "row" });
      const head = el("div", { class: "head" });
      const last = track.names.length - 1;
      head.append(el("span", { class: "label" }, `${track.factor}: ${track.names[0]} → ${track.names[last]}`));
      const value = el("span", { class: "value" });
      head.append(value);
      const input = el("input", { type: "range", min: 0, max: last, step: 0.01, "data-edit": track.factor,
        "aria-label": `edit ${track.factor}` });
      input.addEventListener("input", () => this.along(k, Number(input.value)));
      input.addEventListener("pointerdown", () => { this.dragging = true; });
      input.addEventListener("change", () => { this.dragging = false; this.report(); });
      row.append(head, input);
      if (track.note) row.append(el("div", { class: "note", "data-testid": "live-edit-note" }, track.note));
      box.append(row);
      this.editInputs.push({ input, value });
    });
    this.syncEdits();
    return [box];
  }

  // the point at position t of edit k's track: between the edited points of the values either side of t
  along(k, t) {
    const points = this.data.edits[k].points;
    const i = Math.min(Math.floor(t), points.length - 2);
    const f = t - i;
    this.dragging = true;
    this.z = points[i].map((v, d) => v * (1 - f) + points[i + 1][d] * f);
    this.editInputs[k].value.textContent = this.data.edits[k].names[Math.round(t)];
    this.syncControls();
    this.request(performance.now());
  }

  syncEdits() {
    (this.editInputs || []).forEach(({ input, value }, k) => {
      const track = this.data.edits[k];
      input.value = String(track.at);
      value.textContent = track.names[track.at];
    });
  }

  buildPad() {
    const d = this.data;
    const box = el("div", { class: "padbox" });
    const pick = el("div", { class: "pick" });
    this.padDims = [d.order[0], d.order[Math.min(1, d.order.length - 1)]];
    const selects = ["horizontal", "vertical"].map((axis, i) => {
      const s = el("select", { "aria-label": `pad ${axis} latent`, "data-axis": axis });
      for (const dim of d.order) s.append(el("option", { value: dim }, d.labels[dim].split(" ·")[0]));
      s.value = String(this.padDims[i]);
      s.addEventListener("change", () => { this.padDims[i] = Number(s.value); this.drawPad(); });
      pick.append(el("label", {}, `${axis} `), s);
      return s;
    });
    this.padSelects = selects;
    this.pad = el("canvas", { class: "pad", width: 220, height: 220, "data-testid": "live-pad" });
    const move = (ev) => {
      const r = this.pad.getBoundingClientRect();
      const fx = Math.min(1, Math.max(0, (ev.clientX - r.left) / r.width));
      const fy = Math.min(1, Math.max(0, (ev.clientY - r.top) / r.height));
      const [a, b] = this.padDims;
      const at = performance.now();
      this.z[a] = (2 * fx - 1) * d.limits[a];
      if (b !== a) this.z[b] = (1 - 2 * fy) * d.limits[b];
      this.syncControls();
      this.request(at);
    };
    this.pad.addEventListener("pointerdown", (ev) => {
      this.dragging = true;
      this.pad.setPointerCapture(ev.pointerId);
      move(ev);
    });
    this.pad.addEventListener("pointermove", (ev) => { if (this.dragging) move(ev); });
    const release = () => {
      if (!this.dragging) return;
      this.dragging = false;
      const [a, b] = this.padDims;
      for (const dim of [a, b]) this.z[dim] = Math.round(this.z[dim] / d.step) * d.step;
      this.syncControls();
      this.request(performance.now());
      this.report();
    };
    this.pad.addEventListener("pointerup", release);
    this.pad.addEventListener("pointercancel", release);
    box.append(el("div", { class: "padtitle" }, "Drag over two latents"), pick, this.pad);
    return box;
  }

  drawPad() {
    const d = this.data;
    const c = this.pad.getContext("2d");
    const w = this.pad.width;
    const h = this.pad.height;
    const [a, b] = this.padDims;
    c.clearRect(0, 0, w, h);
    c.strokeStyle = "rgba(128,128,128,0.5)";
    c.beginPath();
    c.moveTo(w / 2, 0); c.lineTo(w / 2, h); c.moveTo(0, h / 2); c.lineTo(w, h / 2);
    c.stroke();
    const x = ((this.z[a] / d.limits[a]) + 1) / 2 * w;
    const y = (1 - ((this.z[b] / d.limits[b]) + 1) / 2) * h;
    c.fillStyle = "#ff4b4b";
    c.beginPath();
    c.arc(x, y, 7, 0, 2 * Math.PI);
    c.fill();
  }

  syncControls() {
    for (const [dim, input] of this.inputs) {
      input.value = String(this.z[dim]);
      this.values.get(dim).textContent = fmt(this.z[dim]);
    }
    this.drawPad();
  }

  set(dim, value) {
    this.dragging = true; // keyboard and mouse alike: an input event means the hand is on a slider
    this.z[dim] = value;
    this.values.get(dim).textContent = fmt(value);
    this.drawPad();
    this.request(performance.now());
  }

  report() {
    this.reports += 1;
    this.reported = [...this.reported.slice(-7), this.z.map((v) => Math.round(v / this.data.step) * this.data.step)];
    this.setStateValue("z", { z: this.z.slice(), n: this.reports });
  }

  request(inputAt) {
    this.inputAt = inputAt;
    this.pending = true;
    if (!this.busy && this.session) this.pump();
  }

  async pump() {
    this.busy = true;
    try {
      while (this.pending && this.session) { // a model switch may take the session away mid-loop
        this.pending = false;
        const inputAt = this.inputAt;
        const d = this.data;
        const began = performance.now();
        const z = new ort.Tensor("float32", Float32Array.from(this.z), [1, this.z.length]);
        const session = this.session;
        let out;
        try {
          out = await session.run({ z });
        } catch (err) {
          if (session !== this.session) continue; // the last model's decoder failed on its way out: no matter
          throw err;
        }
        if (session !== this.session) continue; // the model changed meanwhile: its frame is not this model's
        this.draw(out.image.data, d.channels, d.size);
        const now = performance.now();
        if (stats.firstFrameMs === null) {
          stats.firstFrameMs = now;
          this.status.textContent = "";
        }
        stats.frames.push({ t: now, latency: now - inputAt, run: now - began });
        if (stats.frames.length > 5000) stats.frames.splice(0, 1000);
        this.status.textContent = `${(now - began).toFixed(1)} ms per frame`;
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.busy = false;
    }
  }

  draw(values, channels, size) {
    const px = this.pixels.data;
    const n = size * size;
    for (let i = 0; i < n; i++) {
      const r = values[i];
      const g = channels === 3 ? values[n + i] : r;
      const b = channels === 3 ? values[2 * n + i] : r;
      px[4 * i] = r * 255; // a Uint8ClampedArray rounds and clamps
      px[4 * i + 1] = g * 255;
      px[4 * i + 2] = b * 255;
      px[4 * i + 3] = 255;
    }
    this.ctx.putImageData(this.pixels, 0, 0);
  }
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  if (stats.mountMs === null) stats.mountMs = performance.now();
  let live = instances.get(parentElement);
  if (!live) {
    live = new Live(parentElement);
    instances.set(parentElement, live);
  }
  live.update(data, setStateValue);
}
