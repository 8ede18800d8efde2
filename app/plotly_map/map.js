// The latent map (a Streamlit components-v2 module): one Plotly figure, updated in place by Plotly.react when
// Python sends a new one. Streamlit's own Plotly element is keyed by a hash of its whole figure, so any change
// (another colouring, one placed upload) threw the chart away and drew a new one: new WebGL contexts and a full
// first draw of 10,000 points, 1.6-2.8 s of a software-drawing browser's CPU, where an update takes 0.3 s.
// plotly.js is the copy inside the Python plotly package, served beside this folder (nothing from a CDN).
// A selection (box, lasso, clicked points) goes back to Python as the state "selection", in the shape of
// st.plotly_chart's: {points: [{customdata}], box: [{x, y}], lasso: [{x, y}]}.
// "Colour by" is chosen here: Python publishes the uncoloured figure and every colouring as one file
// (app/map_chart.py), fetched once, and a change of colouring redraws at once, without a round trip to the
// server. The choice stays while the chart does (across the page's reruns: a placed upload keeps it).
// The points are painted here on a canvas of their own (paintPoints), between Plotly's layers: Plotly keeps them
// invisible, for hovering, selecting and the axes, because its WebGL points cost a software-drawing browser
// 0.4-0.9 s per redraw of 60,000 and this canvas 0.05-0.09 s. Images placed on the map are marked over it in the
// page (paintMarks), not as Plotly annotations (a new annotation redrew every point).
// gzipped once by the server (app/map_chart.py) and inflated here, so it is not compressed anew per request
const FILES = new URL("../vae_explorer.map_files/", import.meta.url).href;
const PLOTLY = new URL("plotly.min.js.gz", FILES).href;
const PUBLISHED = /^[0-9a-f]{64}\.json\.gz$/; // the names app/map_chart.py publishes the maps' data under
const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud"] };
const charts = new WeakMap(); // parentElement -> {div, select, figure, colourings, colour, report}
const PICTURE_CELLS = 9; // zoomed in, the view is cut into 9 x 9 cells and a cell shows one point's picture
const ZOOMED = 0.5; // pictures appear by themselves once the view spans at most half of the map's width
let plotly = null;

async function inflated(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url.split("/").pop()}: HTTP ${r.status}`);
  if (typeof DecompressionStream !== "function") throw new Error("DecompressionStream is not available");
  return new Response(r.body.pipeThrough(new DecompressionStream("gzip"))).text();
}

async function plotlySource() {
  const text = await inflated(PLOTLY);
  return URL.createObjectURL(new Blob([text], { type: "text/javascript" }));
}

// a published file (app/map_chart.py `published`), fetched once per name: its name is its content's hash
const fetched = new Map();
function publishedFile(name) {
  if (name === null || name === undefined) return Promise.resolve(null);
  if (typeof name !== "string" || !PUBLISHED.test(name)) return Promise.reject(new Error("not a map file"));
  if (!fetched.has(name)) {
    const loading = inflated(new URL(name, FILES).href).then((text) => JSON.parse(text));
    loading.catch(() => fetched.delete(name)); // tried again at the next message
    fetched.set(name, loading);
  }
  return fetched.get(name);
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
    return [name, { traces, text, codes, palette: c.palette, edge: c.edge, labels: c.labels }];
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

// The hovered point: its class under the colouring shown and its row, with its picture. Where it has none (a
// sample of the points carry theirs) and a pictured point lies within NEAR_PX of it, that point is shown
// instead (map points often share a place: 60,000 placed among their UMAP neighbours). Plotly's own hover label
// is off (its text would be one more property of the invisible trace to redraw per colouring).
const NEAR_PX = 4;
function pictured(chart, row, x, y) {
  if (!chart.pictures) return null;
  const own = picture(chart.pictures, row);
  if (own) return { row, url: own };
  const area = plotArea(chart);
  if (!area) return null;
  const [sx, sy] = [area.w / (area.x[1] - area.x[0]), area.h / (area.y[1] - area.y[0])];
  let best = null;
  let nearest = NEAR_PX;
  for (const [px, py, other] of picturedPoints(chart)) {
    const d = Math.hypot((px - x) * sx, (py - y) * sy);
    if (d <= nearest) [best, nearest] = [other, d];
  }
  const url = best === null ? null : picture(chart.pictures, best);
  return url ? { row: best, url } : null;
}

function hover(chart, event) {
  const point = event?.points?.[0];
  if (!point || point.curveNumber !== 0) { chart.tip.hidden = true; return; }
  const shown = pictured(chart, point.customdata, point.x, point.y);
  const row = shown ? shown.row : point.customdata;
  const colouring = chart.colourings.get(chart.colour);
  const index = row === point.customdata ? point.pointIndex : chart.base.data[0].customdata.indexOf(row);
  const name = colouring?.codes && index >= 0 ? colouring.labels?.[colouring.codes[index]] : null;
  chart.tipText.textContent = `${name ? `${name} · ` : ""}row ${row}`;
  chart.hover.hidden = !shown;
  if (shown) {
    chart.hover.src = shown.url;
    chart.hover.dataset.row = String(row);
  }
  const box = chart.holder.getBoundingClientRect();
  const mouse = event.event;
  chart.tip.style.left = `${Math.min(mouse.clientX - box.left + 14, box.width - 140)}px`;
  chart.tip.style.top = `${Math.max(mouse.clientY - box.top - (shown ? 130 : 36), 0)}px`;
  chart.tip.hidden = false;
}

// The points trace, invisible (paintPoints draws the points): Plotly hovers, selects and scales by it, and it is
// the same object whatever the colouring, so a new colouring asks nothing of Plotly (the legend and the colour
// bar are this page's own, `key`).
const UNSEEN = { marker: { opacity: 0 } };
const KEY_ROOM = 110; // px right of the plot area for the colour bar
function unseenPoints(chart) {
  const base = chart.base.data[0];
  if (chart.unseen?.x !== base.x || chart.unseen?.customdata !== base.customdata) {
    chart.unseen = { ...base, marker: { ...base.marker, opacity: 0 }, selected: UNSEEN, unselected: UNSEEN,
      hoverinfo: "none", hovertemplate: undefined, text: undefined };
  }
  return chart.unseen;
}

// CSS colours as [r, g, b, a] (0-255, alpha 0-1), read back from a canvas, which parses them
const parser = document.createElement("canvas").getContext("2d");
function rgba(css) {
  parser.fillStyle = "#000";
  parser.fillStyle = String(css);
  const c = parser.fillStyle;
  if (c.startsWith("#")) return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)).concat(1);
  const [r, g, b, a] = c.match(/[\d.]+/g).map(Number);
  return [r, g, b, a ?? 1];
}

// The plot area as Plotly laid it out: its place in the chart's div and the axes' ranges.
function plotArea(chart) {
  const layout = chart.div._fullLayout;
  if (!layout?.xaxis?.range || !layout?.yaxis?.range || !layout._size) return null;
  const { l, t, w, h } = layout._size;
  return { l, t, w, h, x: layout.xaxis.range.map(Number), y: layout.yaxis.range.map(Number) };
}

// Each point as a disc of the trace's marker size, in its class's colour, blended over the ones drawn before it
// in the figure's order (shuffled by Python: no class always on top); unselected points faint, as Plotly would.
function paintPoints(chart) {
  const area = plotArea(chart);
  const trace = chart.base?.data[0];
  const host = chart.div.querySelector(".gl-container") || chart.div.querySelector(".svg-container");
  if (!area || !trace || !host) return;
  const canvas = chart.canvas ||= Object.assign(document.createElement("canvas"), { className: "map-points" });
  if (canvas.parentElement !== host) host.appendChild(canvas);
  const dpr = window.devicePixelRatio || 1;
  const [w, h] = [Math.max(1, Math.round(area.w * dpr)), Math.max(1, Math.round(area.h * dpr))];
  if (canvas.width !== w || canvas.height !== h) Object.assign(canvas, { width: w, height: h });
  Object.assign(canvas.style, { left: `${area.l}px`, top: `${area.t}px`, width: `${area.w}px`, height: `${area.h}px` });
  const colouring = chart.colourings.get(chart.colour) || chart.colourings.get("none");
  const points = colouring?.traces[0] || {};
  const palette = (colouring?.palette?.length ? colouring.palette : ["#1f77b4"]).map(rgba);
  const edge = colouring?.edge ? rgba(colouring.edge) : null;
  const opacity = points.marker?.opacity ?? trace.marker?.opacity ?? 0.7;
  const radius = ((points.marker?.size ?? trace.marker?.size ?? 4) * dpr) / 2;
  const codes = colouring?.codes;
  const chosen = chart.div.data?.[0]?.selectedpoints;
  const selected = Array.isArray(chosen) || ArrayBuffer.isView(chosen) ? new Uint8Array(trace.x.length) : null;
  if (selected) for (const i of chosen) selected[i] = 1;
  // one stamp for every point (its place rounded to the pixel): each pixel's offset, coverage, and whether it
  // is on the outline
  const reach = Math.ceil(radius + 0.5);
  const stamp = [];
  for (let dv = -reach; dv <= reach; dv++) {
    for (let du = -reach; du <= reach; du++) {
      const d = Math.hypot(du, dv);
      const cover = Math.min(1, radius + 0.5 - d);
      if (cover > 0) stamp.push([du, dv, cover, edge && d > radius - 0.5 * dpr ? 1 : 0]);
    }
  }
  const colours = palette.map(([r, g, b, a]) => [r, g, b, opacity * a]);
  const rim = edge && [edge[0], edge[1], edge[2], edge[3]];
  const pixels = new Uint8ClampedArray(w * h * 4);
  const [sx, sy] = [w / (area.x[1] - area.x[0]), h / (area.y[1] - area.y[0])];
  const { x, y } = trace;
  for (let i = 0; i < x.length; i++) {
    const pu = Math.round((x[i] - area.x[0]) * sx);
    const pv = Math.round(h - (y[i] - area.y[0]) * sy);
    if (!(pu > -reach && pv > -reach && pu < w + reach && pv < h + reach)) continue;
    const fill = colours[codes ? codes[i] : 0] || colours[0];
    const faint = selected && !selected[i] ? 0.2 : 1;
    for (const [du, dv, cover, onRim] of stamp) {
      const u = pu + du;
      const v = pv + dv;
      if (u < 0 || v < 0 || u >= w || v >= h) continue;
      const c = onRim ? rim : fill;
      const src = c[3] * cover * faint;
      const k = 4 * (v * w + u);
      const dst = (pixels[k + 3] / 255) * (1 - src);
      const out = src + dst;
      pixels[k] = (c[0] * src + pixels[k] * dst) / out;
      pixels[k + 1] = (c[1] * src + pixels[k + 1] * dst) / out;
      pixels[k + 2] = (c[2] * src + pixels[k + 2] * dst) / out;
      pixels[k + 3] = out * 255;
    }
  }
  canvas.getContext("2d").putImageData(new ImageData(pixels, w, h), 0, 0);
}

// The images placed on the map: each a dot at its place under its name, over the map (text, never markup)
function paintMarks(chart) {
  const area = plotArea(chart);
  const layer = chart.marksLayer;
  if (!area) return;
  Object.assign(layer.style, { left: `${area.l}px`, top: `${area.t}px`, width: `${area.w}px`, height: `${area.h}px` });
  const marks = [];
  for (const mark of chart.marks) {
    const px = ((mark.x - area.x[0]) / (area.x[1] - area.x[0])) * area.w;
    const py = area.h - ((mark.y - area.y[0]) / (area.y[1] - area.y[0])) * area.h;
    if (!(px >= 0 && py >= 0 && px <= area.w && py <= area.h)) continue;
    const name = Object.assign(document.createElement("span"), { className: "map-mark-name", textContent: mark.name });
    name.dataset.testid = "map-placed";
    const stem = Object.assign(document.createElement("span"), { className: "map-mark-stem" });
    const dot = Object.assign(document.createElement("span"), { className: "map-mark-dot" });
    const holder = Object.assign(document.createElement("div"), { className: "map-mark" });
    holder.style.left = `${px}px`;
    holder.style.top = `${py}px`;
    holder.append(name, stem, dot);
    marks.push(holder);
  }
  layer.replaceChildren(...marks);
}

// The colouring's key: a legend of its classes (their names as text), or a colour bar for an ordered factor
// (its colours from the least value to the most, ticks at its named values or at its ends)
function paintKey(chart) {
  const colouring = chart.colourings.get(chart.colour);
  const [points, ...legend] = colouring?.traces || [{}];
  const bar = points.marker?.colorbar;
  const entries = [];
  if (legend.length && colouring.palette) {
    colouring.palette.forEach((colour, i) => {
      const dot = Object.assign(document.createElement("i"), { className: "map-key-dot" });
      dot.style.background = colour;
      if (colouring.edge) dot.style.boxShadow = `0 0 0 1px ${colouring.edge}`;
      const entry = Object.assign(document.createElement("span"), { className: "map-key-entry" });
      entry.append(dot, String(colouring.labels?.[i] ?? ""));
      entries.push(entry);
    });
  }
  chart.legend.replaceChildren(...entries);
  chart.legend.hidden = !entries.length;
  const area = plotArea(chart);
  chart.colourBar.hidden = !(bar && colouring.palette?.length && area);
  if (chart.colourBar.hidden) return;
  const colours = colouring.palette;
  chart.colourBar.style.top = `${area.t}px`;
  chart.colourBar.style.height = `${area.h}px`;
  chart.colourBar.style.left = `${area.l + area.w + 16}px`;
  const ramp = chart.colourBar.querySelector(".map-bar-ramp");
  ramp.style.background = `linear-gradient(to top, ${colours.length > 1 ? colours.join(", ") : `${colours[0]}, ${colours[0]}`})`;
  chart.colourBar.querySelector(".map-bar-title").textContent = String(bar.title?.text ?? "");
  const n = colours.length;
  const named = bar.ticktext ? colouring.labels : null;
  const at = named ? [...Array(n).keys()] : n > 1 ? [0, n - 1] : [0];
  const values = points.marker?.color;
  let [least, most] = [Infinity, -Infinity]; // an unnamed ordered factor: its ends as numbers
  if (!named && values?.length) for (const v of values) { least = Math.min(least, v); most = Math.max(most, v); }
  const ticks = chart.colourBar.querySelector(".map-bar-ticks");
  ticks.replaceChildren(...at.map((i) => {
    const tick = Object.assign(document.createElement("span"), { className: "map-bar-tick",
      textContent: String(named ? named[i] : Number.isFinite(least) ? (i === 0 ? least : most) : "") });
    tick.style.bottom = `${n > 1 ? (100 * i) / (n - 1) : 50}%`;
    return tick;
  }));
}

function paint(chart) {
  if (chart.painting) cancelAnimationFrame(chart.painting); // painted now: not once more in the next frame
  chart.painting = 0;
  paintPoints(chart);
  paintMarks(chart);
  paintKey(chart);
}

// the marks Python sent: places that are numbers, names that are text (anything else is dropped)
function validMarks(marks) {
  return (Array.isArray(marks) ? marks : []).filter((m) => m && Number.isFinite(m.x) && Number.isFinite(m.y))
    .slice(0, 100).map((m) => ({ x: m.x, y: m.y, name: String(m.name ?? "").slice(0, 40) }));
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
  // room on the right for this page's colour bar, whatever the colouring: the plot area stays where it is
  const layout = { ...chart.base.layout, clickmode: "event+select", showlegend: false,
    margin: { ...chart.base.layout.margin, r: KEY_ROOM } };
  chart.Plotly = Plotly;
  chart.picturesShown = ""; // react draws the layout without them: none shown, until placed again below
  chart.drawing = true; // a redraw clears Plotly's own selection: that is not the person deselecting
  try {
    await Plotly.react(chart.div, [unseenPoints(chart)], layout, CONFIG);
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
    const later = () => { // repainted once per frame, after Plotly moved, zoomed, selected or drew
      if (!chart.painting) chart.painting = requestAnimationFrame(() => { chart.painting = 0; paint(chart); });
    };
    for (const name of ["plotly_afterplot", "plotly_relayout", "plotly_relayouting", "plotly_selecting",
      "plotly_selected", "plotly_deselect"]) chart.div.on(name, later);
    chart.div.on("plotly_hover", (event) => hover(chart, event));
    chart.div.on("plotly_unhover", () => { chart.tip.hidden = true; });
    chart.div.on("plotly_relayouting", () => { chart.tip.hidden = true; }); // the point moves away under a drag
  }
  placePictures(chart);
  paint(chart);
  drawn(chart);
}

function drawn(chart) {
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
  const tipText = Object.assign(document.createElement("span"), { className: "map-tip-text" });
  const tip = Object.assign(document.createElement("div"), { className: "map-tip", hidden: true });
  tip.dataset.testid = "map-tip";
  tip.append(hoverImage, tipText);
  const legend = Object.assign(document.createElement("div"), { className: "map-key", hidden: true });
  legend.dataset.testid = "map-legend";
  const colourBar = Object.assign(document.createElement("div"), { className: "map-bar", hidden: true });
  colourBar.dataset.testid = "map-colour-bar";
  colourBar.append(...["map-bar-title", "map-bar-ramp", "map-bar-ticks"].map((className) =>
    Object.assign(document.createElement("div"), { className })));
  const marksLayer = Object.assign(document.createElement("div"), { className: "map-marks" });
  holder.append(div, marksLayer, colourBar, tip);
  parentElement.append(tools, legend, holder);
  const chart = { div, field, caption, select, figure: null, wired: false, toggle, toggleField, holder,
    hover: hoverImage, tip, tipText, legend, colourBar, marksLayer, marks: [] };
  toggle.addEventListener("change", () => placePictures(chart));
  select.addEventListener("change", () => {
    chart.colour = select.value;
    if (!chart.Plotly || !chart.div.layout) return redraw(chart);
    paint(chart); // the points, their key: nothing of Plotly's changes
    drawn(chart);
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
  const marks = validMarks(data.marks);
  const marksChanged = JSON.stringify(marks) !== JSON.stringify(chart.marks);
  chart.marks = marks;
  const message = `${data.points} ${data.pictures}`;
  if (message === chart.message) { // a rerun that changed at most the placed images: nothing of Plotly's redrawn
    if (marksChanged && chart.Plotly) {
      paintMarks(chart);
      drawn(chart);
    }
    return;
  }
  chart.message = message;
  Promise.all([publishedFile(data.points), publishedFile(data.pictures)]).then(([points, pictures]) => {
    if (chart.message !== message || !points) return; // a newer message came meanwhile
    unpack(chart, points);
    unpackPictures(chart, pictures);
    chart.toggleField.hidden = !chart.pictures;
    offer(chart, data);
    redraw(chart);
  }).catch((err) => {
    chart.message = null;
    chart.div.textContent = `The map could not be drawn in this browser: ${err.message}`;
  });
}
