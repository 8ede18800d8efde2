// The latent map (a Streamlit components-v2 module): one Plotly figure, updated in place by Plotly.react when
// Python sends a new one. Streamlit's own Plotly element is keyed by a hash of its whole figure, so any change
// (another colouring, one placed upload) threw the chart away and drew a new one: new WebGL contexts and a full
// first draw of 10,000 points, 1.6-2.8 s of a software-drawing browser's CPU, where an update takes 0.3 s.
// plotly.js is the copy inside the Python plotly package, served beside this folder (nothing from a CDN).
// A selection (box, lasso, clicked points) goes back to Python as the state "selection", in the shape of
// st.plotly_chart's: {points: [{customdata}], box: [{x, y}], lasso: [{x, y}]}.
// "Colour by" is chosen here: Python sends the uncoloured figure and every colouring (app/map_chart.py), and a
// change of colouring redraws at once, without a round trip to the server. The choice stays while the chart
// does (across the page's reruns: a placed upload keeps it).
// gzipped once by the server (app/map_chart.py) and inflated here, so it is not compressed anew per request
const PLOTLY = new URL("../vae_explorer.plotly_js/plotly.min.js.gz", import.meta.url).href;
const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud"] };
const charts = new WeakMap(); // parentElement -> {div, select, figure, colourings, colour, report}
let plotly = null;

async function plotlySource() {
  const r = await fetch(PLOTLY);
  if (!r.ok) throw new Error(`plotly.min.js.gz: HTTP ${r.status}`);
  if (typeof DecompressionStream !== "function") throw new Error("DecompressionStream is not available");
  const text = await new Response(r.body.pipeThrough(new DecompressionStream("gzip"))).text();
  return URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
}

function loadPlotly() {
  plotly ||= window.Plotly ? Promise.resolve(window.Plotly) : plotlySource().then((src) =>
    new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("plotly.js did not start")));
      script.onerror = () => reject(new Error("plotly.js could not be run"));
      document.head.appendChild(script);
    }));
  plotly.catch(() => { plotly = null; }); // a failed load is tried again at the next draw
  return plotly;
}

function selection(event, count) {
  const points = (event?.points || []).map((p) => ({ customdata: p.customdata }));
  const box = event?.range ? [{ x: event.range.x, y: event.range.y }] : [];
  const lasso = event?.lassoPoints ? [{ x: event.lassoPoints.x, y: event.lassoPoints.y }] : [];
  return { points, box, lasso, n: count }; // n: two equal selections in a row are still two reports
}

// Arrays come as {dtype, bdata} (base64). Each is decoded here once and the same typed array handed to Plotly
// while its text is unchanged: Plotly.react recomputes only a trace whose arrays are new objects, so placing an
// upload or recolouring leaves the 10,000 points' positions alone.
const TYPES = { f8: Float64Array, f4: Float32Array, i4: Int32Array, u4: Uint32Array, i2: Int16Array,
  u2: Uint16Array, i1: Int8Array, u1: Uint8Array };

function decoded(value, seen, kept) {
  if (Array.isArray(value)) return value.map((v) => decoded(v, seen, kept));
  if (!value || typeof value !== "object") return value;
  if (typeof value.bdata === "string" && TYPES[value.dtype] && value.shape === undefined) {
    const key = value.dtype + value.bdata;
    let array = kept.get(key);
    if (!array) {
      const bytes = Uint8Array.from(atob(value.bdata), (c) => c.charCodeAt(0));
      array = new TYPES[value.dtype](bytes.buffer);
    }
    seen.set(key, array);
    return array;
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decoded(v, seen, kept)]));
}

// The figure and its colourings as Plotly takes them, decoded once per message from Python. What has the same
// text as in the last message stays the same object: the points' arrays (positions, row ids), each colouring's
// traces and hover texts, and the layout's template. Plotly.react compares arrays and the template by identity,
// and any difference there recomputes and redraws all 10,000 points: a placed upload (new annotations in an
// otherwise equal figure) then took 0.15-0.2 s of drawing instead of 12-20 ms.
function unpack(chart, data) {
  const seen = new Map();
  const kept = chart.arrays || new Map();
  const same = (key, make) => {
    const value = kept.has(key) ? kept.get(key) : make();
    seen.set(key, value);
    return value;
  };
  chart.base = decoded(JSON.parse(data.figure), seen, kept);
  const template = chart.base.layout.template;
  if (template) chart.base.layout.template = same(`template:${JSON.stringify(template)}`, () => template);
  chart.colourings = new Map(Object.entries(data.colourings || {}).map(([name, c]) => {
    const traces = same(`traces:${c.traces}`, () => decoded(JSON.parse(c.traces), seen, kept).data);
    const codes = c.codes ? decoded(c.codes, seen, kept) : null;
    const text = codes && same(`text:${c.codes.bdata}:${JSON.stringify(c.names)}`,
      () => Array.from(codes, (i) => c.names[i]));
    return [name, { traces, text }];
  }));
  chart.arrays = seen;
}

// the figure's traces under colouring `name`: the points with its properties, then its legend entries (the
// placed images are shapes and annotations in the layout: a change there alone does not redraw the points)
function coloured(chart, name) {
  const data = chart.base.data;
  const colouring = chart.colourings.get(name);
  if (!colouring) return data;
  const [points, ...legend] = colouring.traces;
  return [{ ...data[0], ...points, text: colouring.text || undefined }, ...legend];
}

function offer(chart, data) {
  const names = [...chart.colourings.keys()];
  chart.field.hidden = names.length === 0;
  if (names.join("\n") !== chart.offered) {
    chart.offered = names.join("\n");
    chart.select.replaceChildren(...names.map((n) => Object.assign(document.createElement("option"),
      { value: n, textContent: n }))); // text, never HTML: names come from model folders
  }
  chart.caption.textContent = data.label || "Colour by";
  if (!chart.colourings.has(chart.colour)) chart.colour = data.colour;
  chart.select.value = chart.colour;
}

async function draw(chart, Plotly) {
  const layout = { ...chart.base.layout, clickmode: "event+select" };
  chart.drawing = true; // a redraw clears Plotly's own selection: that is not the person deselecting
  try {
    await Plotly.react(chart.div, coloured(chart, chart.colour), layout, CONFIG);
  } finally {
    chart.drawing = false;
  }
  if (!chart.wired) {
    chart.wired = true;
    let count = 0;
    const report = (event) => chart.drawing || chart.report(selection(event, ++count));
    chart.div.on("plotly_selected", (event) => event && report(event));
    chart.div.on("plotly_deselect", () => report(null));
  }
  chart.div.dataset.drawn = String(Number(chart.div.dataset.drawn || 0) + 1);
}

function redraw(chart) {
  loadPlotly()
    .then((Plotly) => draw(chart, Plotly))
    .catch((err) => {
      chart.div.textContent = `The map could not be drawn in this browser: ${err.message}`;
    });
}

function created(parentElement) {
  const field = document.createElement("label");
  field.className = "colour-by";
  const caption = document.createElement("span");
  const select = document.createElement("select");
  select.dataset.testid = "map-colour";
  field.append(caption, select);
  const div = document.createElement("div");
  div.className = "map";
  div.dataset.testid = "map-chart";
  parentElement.append(field, div);
  const chart = { div, field, caption, select, figure: null, wired: false };
  select.addEventListener("change", () => {
    chart.colour = select.value;
    redraw(chart);
  });
  return chart;
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let chart = charts.get(parentElement);
  if (!chart) {
    chart = created(parentElement);
    charts.set(parentElement, chart);
  }
  chart.report = (value) => setStateValue("selection", value);
  const message = data.figure + JSON.stringify(data.colourings);
  if (message === chart.message) return; // a rerun that changed nothing here
  chart.message = message;
  unpack(chart, data);
  offer(chart, data);
  redraw(chart);
}
