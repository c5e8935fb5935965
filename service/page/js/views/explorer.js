// Explorer: a network layer by layer, from GET /models/{name}/summary (served models, trained or canonical
// configuration) or GET /zoo/{arch}/summary (any architecture), at every layer or collapsed to blocks (?depth=N).

import { getJSON, getText, query } from "../api.js";
import { barCell, h, replace, showError } from "../dom.js";
import { callNames, drawArchitecture, drawingLevel } from "../drawing.js";
import { human, int, mb, percent, shape, size } from "../format.js";
import { updateHash } from "../route.js";
import { store } from "../store.js";
import { initMaps, mapsFor, refreshMaps, selectLayer } from "./maps.js";
import { paperLink } from "./models.js";
import { zooIndex } from "./zoo.js";

const ELEMENT_BYTES = 4; // activations are float32 (models.summarize's forward pass)
const cache = new Map(); // url -> Promise of the JSON

const state = {
  source: null,
  config: "trained",
  depth: null,
  token: 0,
  record: null,
  rows: [],
  selected: null,
  zoo: [],
};
const el = {};

function cached(url) {
  if (!cache.has(url))
    cache.set(
      url,
      getJSON(url).catch((error) => (cache.delete(url), Promise.reject(error))),
    );
  return cache.get(url);
}

function summaryUrl(source, config, extra) {
  const [kind, name] = source.split(":");
  if (kind === "zoo") return `/zoo/${encodeURIComponent(name)}/summary${query(extra)}`;
  return `/models/${encodeURIComponent(name)}/summary${query({ config, ...extra })}`;
}

/** Rows at the chosen depth: the record's own `depths` when it carries them, else GET …?depth=N. */
async function rowsAt(record, depth) {
  if (depth === null) return record.layers;
  if (record.depths && record.depths[depth]) return record.depths[depth];
  return (await cached(summaryUrl(state.source, state.config, { depth }))).layers;
}

function availableDepths(record) {
  return Object.keys(record.depths || {})
    .map(Number)
    .sort((a, b) => a - b);
}

// --- the controls ---------------------------------------------------------------------------------------

function fillSources() {
  const served = store.models || [];
  const options = [];
  if (served.length) {
    options.push(
      h(
        "optgroup",
        { label: "Served models (trained here)" },
        served
          .filter((m) => m.params !== null && m.params !== undefined)
          .map((m) =>
            h(
              "option",
              { value: `model:${m.name}` },
              `${m.name}${m.architecture && m.architecture !== m.name ? ` (${m.architecture})` : ""}`,
            ),
          ),
      ),
    );
  }
  if (state.zoo.length) {
    options.push(
      h(
        "optgroup",
        { label: "The zoo: every architecture, canonical configuration" },
        state.zoo.map((a) => h("option", { value: `zoo:${a.name}` }, `${a.name} (${a.family})`)),
      ),
    );
  }
  const keep = el.source.value;
  replace(el.source, options);
  if (keep) el.source.value = keep;
}

function fillDepths(record) {
  const depths = availableDepths(record);
  const options = [h("option", { value: "" }, `every layer (${record.layers.length} rows)`)];
  for (const d of depths.slice().reverse()) {
    const rows = record.depths[d];
    options.push(h("option", { value: String(d) }, `blocks at depth ${d}${rows ? ` (${rows.length} rows)` : ""}`));
  }
  replace(el.depth, options);
  el.depth.disabled = depths.length === 0;
  el.depth.value = state.depth === null ? "" : String(state.depth);
}

function fillConfig() {
  const isZoo = state.source.startsWith("zoo:");
  const trained = el.config.querySelector("input[value=trained]");
  trained.disabled = isZoo;
  if (isZoo) state.config = "canonical";
  el.config.querySelector(`input[value=${state.config}]`).checked = true;
  const model = isZoo ? null : store.get(state.source.slice(6));
  const zoo = state.zoo.find((a) => a.name === (isZoo ? state.source.slice(4) : model?.architecture));
  el.trainedLabel.textContent = isZoo
    ? "as trained (not served: the zoo has only the canonical configuration)"
    : `as trained and served (${shape(model?.input?.shape)}, ${model?.num_classes ?? "?"} classes)`;
  el.canonicalLabel.textContent = zoo
    ? `canonical, as in the paper (${shape(zoo.input_size)}, ${zoo.num_classes} classes)`
    : "canonical, as in the paper";
}

// --- what is drawn ------------------------------------------------------------------------------------

function totals(record) {
  const items = [
    ["input_shape", "Input", shape(record.input_shape)],
    ["total_params", "Total params", int(record.total_params)],
    ["trainable_params", "Trainable params", int(record.trainable_params)],
    ["non_trainable_params", "Non-trainable params", int(record.non_trainable_params)],
    ["total_macs", "Total MACs", `${human(record.total_macs)} (${int(record.total_macs)})`],
    ["param_bytes", "Params size (MB)", mb(record.param_bytes)],
    ["activation_bytes", "Forward activations size (MB)", mb(record.activation_bytes)],
  ];
  return items.map(([key, term, value]) =>
    h("div", {}, h("dt", {}, term), h("dd", { dataset: { total: key } }, value)),
  );
}

function tableHead() {
  const col = (text, title, cls) => h("th", { scope: "col", title, class: cls }, text);
  return h(
    "thead",
    {},
    h(
      "tr",
      {},
      col("#", "row number", "num"),
      col("Layer"),
      col("Type"),
      col("Output shape", "channels × height × width, without the batch"),
      col("Parameters", "the bar: relative to the row with the most parameters", "num"),
      col("Σ params", "running share of all parameters: this row and every one above it", "num"),
      col("MACs", "multiply-adds for one image; the bar: relative to the row with the most", "num"),
      col("Σ MACs", "running share of all MACs", "num"),
      col("Activations", "size of the layer's output for one image (float32)", "num"),
    ),
  );
}

function tableBody(record, rows) {
  let params = 0;
  let macs = 0;
  const calls = callNames(rows);
  const totalParams = record.total_params || 1;
  const totalMacs = record.total_macs || 1;
  // Bars relative to the largest row, so that small layers still show; the Σ columns give the shares.
  const maxParams = Math.max(1, ...rows.map((r) => r.params));
  const maxMacs = Math.max(1, ...rows.map((r) => r.macs));
  return h(
    "tbody",
    {},
    rows.map((row, i) => {
      params += row.params;
      macs += row.macs;
      return h(
        "tr",
        { dataset: { name: row.name, call: calls[i], index: i } },
        h("td", { class: "num muted" }, i + 1),
        h(
          "th",
          { scope: "row", class: "name" },
          h("button", { type: "button", class: "row-select", "aria-pressed": "false" }, row.name),
        ),
        h("td", {}, row.type),
        h("td", { class: "shape" }, shape(row.output_shape)),
        barCell(row.params / maxParams, "params", int(row.params)),
        h("td", { class: "num muted" }, percent(params / totalParams)),
        barCell(row.macs / maxMacs, "macs", human(row.macs), int(row.macs)),
        h("td", { class: "num muted" }, percent(macs / totalMacs)),
        h("td", { class: "num" }, size(row.activations * ELEMENT_BYTES)),
      );
    }),
  );
}

function title(record) {
  const [kind, name] = state.source.split(":");
  const config =
    kind === "zoo"
      ? "canonical configuration"
      : state.config === "trained"
        ? "as trained and served"
        : "canonical configuration";
  return `${name}: ${config}, input ${shape(record.input_shape)}`;
}

function about() {
  const [kind, name] = state.source.split(":");
  const model = kind === "model" ? store.get(name) : null;
  const arch = state.zoo.find((a) => a.name === (model ? model.architecture : name));
  const parts = [];
  if (model) parts.push(`Served model of architecture ${model.architecture}. `);
  else
    parts.push(
      "Not necessarily served here: the architecture's canonical configuration, computed ahead from the code. ",
    );
  if (arch?.description) parts.push(`${arch.description} `);
  if (arch?.family) parts.push(`Family: ${arch.family}. `);
  const paper = model?.paper || arch?.paper;
  if (paper) parts.push("Paper: ", paperLink(paper), ".");
  return parts;
}

function caption(rows) {
  const levelText =
    state.depth === null
      ? "every layer"
      : `blocks at depth ${state.depth} (a block's parameters and MACs include its layers')`;
  return h(
    "caption",
    {},
    `${rows.length} rows, ${levelText}. Bars: parameters (solid) and MACs (striped) relative to the largest row; ` +
      "Σ: the running share of the total, from the top.",
  );
}

function render() {
  const { record, rows } = state;
  replace(el.heading, title(record));
  replace(el.about, about());
  replace(el.totals, totals(record));
  replace(el.table, caption(rows), tableHead(), tableBody(record, rows));
  const level = drawingLevel(record);
  const svg = drawArchitecture(record, level, {
    title: `The architecture of ${state.source.split(":")[1]}`,
    onSelect: (name, call, type) => selectBlock(name, { call, type, from: "drawing" }),
  });
  replace(el.drawing, svg);
  el.drawingCaption.textContent =
    `One box per ${level.depth === null ? "layer with parameters or a new shape" : `block at depth ${level.depth}`}, input first. ` +
    "Height: the output's spatial size; width: its channels (log scale); dashed: no parameters. Select a box to highlight its rows.";
  mapsFor(...mapsSource());
  selectBlock(null);
  if (!el.keras.open) el.kerasText.textContent = "";
  else loadKeras();
}

function related(rowName, block) {
  return rowName === block || rowName.startsWith(`${block}.`) || block.startsWith(`${rowName}.`);
}

/** Feature maps need the served model as it runs: [model, null], or [null, why not]. */
function mapsSource() {
  const [kind, name] = state.source.split(":");
  if (kind === "zoo")
    return [null, "Feature maps need a served model: a zoo architecture is only computed, never run here."];
  if (state.config !== "trained")
    return [null, "Feature maps come from the served model: choose the configuration as trained and served."];
  return [name, null];
}

/**
 * Select a block or layer by name (null: none) and highlight its rows. `call` is the API's name of one call of a
 * module called more than once (`name#k`): then only that row. Shows the layer's feature maps.
 */
function selectBlock(name, { call = name, type = null, from = "table" } = {}) {
  state.selected = name === null ? null : call;
  const single = call !== name;
  let first = null;
  let params = 0;
  let macs = 0;
  let count = 0;
  for (const tr of el.table.tBodies[0]?.rows || []) {
    const on = name !== null && (single ? tr.dataset.call === call : related(tr.dataset.name, name));
    tr.classList.toggle("selected", on);
    tr.querySelector(".row-select")?.setAttribute("aria-pressed", String(on && tr.dataset.call === call));
    if (on) {
      first = first || tr;
      const row = state.rows[Number(tr.dataset.index)];
      params += row.params;
      macs += row.macs;
      count += 1;
    }
  }
  el.drawing.querySelector("svg")?.selectBox(name === null ? null : call);
  selectLayer(name === null ? null : { name, call, type: type ?? state.rows.find((r) => r.name === name)?.type });
  if (name === null) return (el.selection.textContent = "");
  el.selection.textContent = `Selected ${call}: ${count} row${count === 1 ? "" : "s"} highlighted in the table, ${int(params)} parameters (${percent(params / (state.record.total_params || 1))}), ${human(macs)} MACs (${percent(macs / (state.record.total_macs || 1))}).`;
  // The feature maps sit above the table: bring them into view; without them, the highlighted rows.
  if (mapsSource()[0]) el.maps.scrollIntoView({ block: "nearest" });
  else if (from === "drawing") first?.scrollIntoView({ block: "nearest" });
}

async function loadKeras() {
  const token = state.token;
  el.kerasText.textContent = "Loading…";
  const url = summaryUrl(state.source, state.config, { format: "text", depth: state.depth });
  try {
    const text = await getText(url);
    if (token === state.token) el.kerasText.textContent = text;
  } catch (error) {
    if (token === state.token) el.kerasText.textContent = `Could not load the text table: ${error.message}`;
  }
}

// --- loading ------------------------------------------------------------------------------------------

async function load() {
  const token = ++state.token;
  updateHash("explorer", {
    ...(state.source.startsWith("zoo:") ? { arch: state.source.slice(4) } : { model: state.source.slice(6) }),
    config: state.source.startsWith("zoo:") || state.config === "trained" ? null : state.config,
    depth: state.depth,
  });
  fillConfig();
  el.status.classList.remove("visually-hidden");
  el.status.textContent = "Loading the summary…";
  showError(el.error, null);
  try {
    const record = await cached(summaryUrl(state.source, state.config, {}));
    if (state.depth !== null && !availableDepths(record).includes(state.depth)) state.depth = null;
    const rows = await rowsAt(record, state.depth);
    if (token !== state.token) return;
    Object.assign(state, { record, rows });
    fillDepths(record);
    el.body.hidden = false;
    render();
    el.status.classList.add("visually-hidden"); // the heading shows it; screen readers still hear it
    el.status.textContent = `${record.model}: ${rows.length} rows, ${int(record.total_params)} parameters, ${human(record.total_macs)} MACs.`;
  } catch (error) {
    if (token !== state.token) return;
    el.body.hidden = true;
    el.status.textContent = "";
    showError(el.error, error);
  }
}

function defaultSource() {
  const served = (store.models || []).filter((m) => m.params !== null && m.params !== undefined);
  const lenet = served.find((m) => m.name === "lenet5");
  if (lenet || served.length) return `model:${(lenet || served[0]).name}`;
  return state.zoo.length ? `zoo:${state.zoo[0].name}` : null;
}

export function init() {
  Object.assign(el, {
    source: document.getElementById("explorer-source"),
    config: document.getElementById("explorer-config"),
    depth: document.getElementById("explorer-depth"),
    status: document.getElementById("explorer-status"),
    body: document.getElementById("explorer-body"),
    heading: document.getElementById("explorer-heading"),
    about: document.getElementById("explorer-about"),
    totals: document.getElementById("explorer-totals"),
    drawing: document.getElementById("explorer-drawing"),
    drawingCaption: document.getElementById("explorer-drawing-caption"),
    selection: document.getElementById("explorer-selection"),
    table: document.getElementById("explorer-table"),
    keras: document.getElementById("explorer-keras"),
    kerasText: document.getElementById("explorer-keras-text"),
    trainedLabel: document.getElementById("explorer-trained-label"),
    canonicalLabel: document.getElementById("explorer-canonical-label"),
    maps: document.getElementById("explorer-maps"),
  });
  initMaps(el.maps);
  el.error = h("div", { class: "notice error", role: "alert", hidden: true });
  el.status.after(el.error);
  el.body.hidden = true;
  document.getElementById("explorer-controls").addEventListener("submit", (event) => event.preventDefault());
  el.source.addEventListener("change", () => {
    state.source = el.source.value;
    state.depth = null;
    load();
  });
  el.config.addEventListener("change", (event) => {
    state.config = event.target.value;
    load();
  });
  el.depth.addEventListener("change", () => {
    state.depth = el.depth.value === "" ? null : Number(el.depth.value);
    load();
  });
  el.keras.addEventListener("toggle", () => el.keras.open && loadKeras());
  el.table.addEventListener("click", (event) => {
    const tr = event.target.closest("tbody tr");
    if (!tr) return;
    const row = state.rows[Number(tr.dataset.index)];
    if (state.selected === tr.dataset.call) selectBlock(null);
    else selectBlock(row.name, { call: tr.dataset.call, type: row.type });
  });
  store.subscribe(() => {
    fillSources();
    if (state.source) el.source.value = state.source;
  });
  zooIndex()
    .then((zoo) => {
      state.zoo = zoo;
      fillSources();
      if (state.source) {
        el.source.value = state.source;
        fillConfig(); // the canonical input size comes from the zoo's index
      } else if (!document.getElementById("view-explorer").hidden)
        show(new URLSearchParams(location.hash.split("?")[1] || ""));
    })
    .catch(() => {}); // no zoo endpoint: the served models still work
}

export async function show(params) {
  if (!store.models) await store.refresh();
  const wanted = params.get("arch")
    ? `zoo:${params.get("arch")}`
    : params.get("model")
      ? `model:${params.get("model")}`
      : null;
  const source = wanted || state.source || defaultSource();
  if (!source) {
    el.status.textContent = "No model is ready yet and the zoo is not available: nothing to show.";
    return;
  }
  const config = params.get("config") === "canonical" ? "canonical" : wanted ? "trained" : state.config;
  const depth = params.get("depth") ? Number(params.get("depth")) : wanted ? null : state.depth;
  if (source === state.source && config === state.config && depth === state.depth && state.record) return refreshMaps();
  Object.assign(state, { source, config, depth });
  fillSources();
  el.source.value = source;
  await load();
}
