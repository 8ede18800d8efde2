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
const PICTURE_CELLS = 9; // zoomed in, the view is cut into 9 x 9 cells and a cell shows one point's picture
const ZOOMED = 0.5; // pictures appear by themselves once the view spans at most half of the map's width
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

// The points' pictures (app/map_chart.py `pictures`): one sheet of PICTURE_PX squares and the rows they show.
// Each picture is cut from the sheet once, when first needed, as a data URL for Plotly's layout images.
function unpackPictures(chart, pictures) {
  const key = pictures ? pictures.sheet.length + pictures.rows.bdata : "";
  if (key === chart.picturesKey) return;
  chart.picturesKey = key;
  chart.pictures = null;
  chart.placesOf = null;
  if (!pictures) return;
  const rows = decoded(pictures.rows, new Map(), new Map());
  const sheet = new Image();
  const ready = new Promise((resolve, reject) => { sheet.onload = resolve; sheet.onerror = reject; });
  sheet.src = pictures.sheet;
  chart.pictures = { rows, slot: new Map(Array.from(rows, (row, i) => [row, i])), sheet, ready, cut: new Map(),
    px: pictures.px, columns: pictures.columns };
  ready.then(() => placePictures(chart)).catch(() => { chart.pictures = null; });
}

function picture(pictures, row) {
  let url = pictures.cut.get(row);
  if (url === undefined) {
    const i = pictures.slot.get(row);
    if (i === undefined || !pictures.sheet.complete) return null;
    const canvas = document.createElement("canvas");
    canvas.width = canvas.height = pictures.px;
    const x = (i % pictures.columns) * pictures.px;
    const y = Math.floor(i / pictures.columns) * pictures.px;
    canvas.getContext("2d").drawImage(pictures.sheet, x, y, pictures.px, pictures.px, 0, 0, pictures.px, pictures.px);
    url = canvas.toDataURL();
    pictures.cut.set(row, url);
  }
  return url;
}

// where each pictured row is on the map: its index among the points (customdata holds each point's row)
function picturedPoints(chart) {
  const trace = chart.base.data[0];
  if (chart.placesOf === trace.customdata) return chart.places;
  const { x, y, customdata } = trace;
  const places = [];
  for (let i = 0; i < customdata.length; i++) {
    if (chart.pictures.slot.has(customdata[i])) places.push([x[i], y[i], customdata[i]]);
  }
  let [x0, x1] = [Infinity, -Infinity];
  for (let i = 0; i < x.length; i++) { x0 = Math.min(x0, x[i]); x1 = Math.max(x1, x[i]); }
  chart.placesOf = trace.customdata;
  chart.places = places;
  chart.fullWidth = x1 - x0;
  return places;
}

// Zoomed in (or with "pictures" ticked), the view shows a grid of pictures: in each cell, the pictured point
// nearest the cell's centre, drawn at the point. Layout images only: the points are not drawn again.
function placePictures(chart) {
  if (!chart.Plotly || !chart.div.layout) return;
  const images = [];
  const pictures = chart.pictures;
  const xr = chart.div.layout.xaxis?.range;
  const yr = chart.div.layout.yaxis?.range;
  if (pictures && pictures.sheet.complete && xr && yr) {
    const places = picturedPoints(chart);
    const width = Math.abs(xr[1] - xr[0]);
    const height = Math.abs(yr[1] - yr[0]);
    if (chart.toggle.checked || width <= ZOOMED * chart.fullWidth) {
      const [xl, yl] = [Math.min(...xr), Math.min(...yr)];
      const best = new Map();
      for (const [x, y, row] of places) {
        const cx = Math.floor(((x - xl) / width) * PICTURE_CELLS);
        const cy = Math.floor(((y - yl) / height) * PICTURE_CELLS);
        if (cx < 0 || cy < 0 || cx >= PICTURE_CELLS || cy >= PICTURE_CELLS) continue;
        const d = Math.hypot((x - xl) / width * PICTURE_CELLS - cx - 0.5, (y - yl) / height * PICTURE_CELLS - cy - 0.5);
        const cell = cx * PICTURE_CELLS + cy;
        if (!best.has(cell) || best.get(cell)[0] > d) best.set(cell, [d, x, y, row]);
      }
      for (const [, x, y, row] of best.values()) {
        images.push({ source: picture(pictures, row), xref: "x", yref: "y", x, y, xanchor: "center",
          yanchor: "middle", sizex: (width / PICTURE_CELLS) * 0.9, sizey: (height / PICTURE_CELLS) * 0.9,
          sizing: "contain", layer: "above", opacity: 0.95 });
      }
    }
  }
  const shown = images.map((i) => `${i.x},${i.y},${i.sizex}`).join(";");
  chart.div.dataset.pictures = String(images.length);
  if (shown === chart.picturesShown) return;
  chart.picturesShown = shown;
  chart.placing = true;
  chart.Plotly.relayout(chart.div, { images }).finally(() => { chart.placing = false; });
}

function hover(chart, event) {
  const point = event?.points?.[0];
  const url = point && chart.pictures && picture(chart.pictures, point.customdata);
  if (!url) { chart.hover.hidden = true; return; }
  const box = chart.holder.getBoundingClientRect();
  const mouse = event.event;
  chart.hover.src = url;
  chart.hover.dataset.row = String(point.customdata);
  chart.hover.style.left = `${Math.min(mouse.clientX - box.left + 14, box.width - 100)}px`;
  chart.hover.style.top = `${Math.max(mouse.clientY - box.top - 110, 0)}px`;
  chart.hover.hidden = false;
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
  chart.Plotly = Plotly;
  chart.picturesShown = ""; // react draws the layout without them: none shown, until placed again below
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
    chart.div.on("plotly_relayout", (event) => chart.placing || event?.images || placePictures(chart));
    chart.div.on("plotly_hover", (event) => hover(chart, event));
    chart.div.on("plotly_unhover", () => { chart.hover.hidden = true; });
  }
  placePictures(chart);
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
  const toggleField = document.createElement("label");
  toggleField.className = "pictures-toggle";
  const toggle = Object.assign(document.createElement("input"), { type: "checkbox" });
  toggle.dataset.testid = "map-pictures";
  toggleField.append(toggle, "pictures");
  toggleField.hidden = true;
  const tools = document.createElement("div");
  tools.className = "map-tools";
  tools.append(field, toggleField);
  const holder = document.createElement("div");
  holder.className = "map-holder";
  const div = document.createElement("div");
  div.className = "map";
  div.dataset.testid = "map-chart";
  const hoverImage = Object.assign(document.createElement("img"), { className: "map-hover", hidden: true,
    alt: "the point's image" });
  hoverImage.dataset.testid = "map-hover";
  holder.append(div, hoverImage);
  parentElement.append(tools, holder);
  const chart = { div, field, caption, select, figure: null, wired: false, toggle, toggleField, holder,
    hover: hoverImage };
  toggle.addEventListener("change", () => placePictures(chart));
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
  const message = data.figure + JSON.stringify(data.colourings) + (data.pictures?.sheet.length || 0);
  if (message === chart.message) return; // a rerun that changed nothing here
  chart.message = message;
  unpack(chart, data);
  unpackPictures(chart, data.pictures);
  chart.toggleField.hidden = !chart.pictures;
  offer(chart, data);
  redraw(chart);
}
