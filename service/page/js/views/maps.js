// The Explorer's feature maps: what the selected layer of a served model outputs for one image
// (POST /models/{name}/activations?layers=…: its shape, statistics and most active channels), with the first
// convolution's learned filters beside them (GET /models/{name}/filters). Nothing is asked before a layer is
// selected, then one layer at a time; answers are kept per model, image and layer, the filters per model.
// The image is the Playground's last one, else the model's first sample image.

import { getJSON, postImage, query } from "../api.js";
import { h, replace, showError } from "../dom.js";
import { percent, shape } from "../format.js";
import { currentImage } from "../image.js";
import { sampleBlob, samplesOf } from "./samples.js";

const el = {};
const state = { model: null, why: null, layer: null, imageKey: null, token: 0, filtersOf: null };
const answers = new Map(); // `${model} ${image} ${layer}` -> Promise of the layer's answer
const filters = new Map(); // model -> Promise of GET /filters
const sampleImages = new Map(); // sample url -> Promise of the input

/** A statistic with 3 significant digits (what the eye compares), in a form any parser reads back. */
export function num(x) {
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e4 || a < 1e-3 ? x.toExponential(2) : String(Number(x.toPrecision(3)));
}

function remember(cache, key, make) {
  if (!cache.has(key)) {
    const promise = make();
    cache.set(key, promise);
    promise.catch(() => cache.delete(key)); // a failure is asked again next time
  }
  return cache.get(key);
}

/** The image to explain: {blob, filename, url, key, text}, or null when there is none. */
async function inputImage(model) {
  const given = currentImage();
  if (given) return { ...given, key: `given:${given.id}`, text: `the Playground's image (${given.filename})` };
  const samples = await samplesOf(model).catch(() => []);
  if (!samples.length) return null;
  const sample = samples[0];
  return remember(sampleImages, sample.url, async () => {
    const blob = await sampleBlob(sample.url);
    const filename = sample.file.split("/").pop();
    const label = sample.label === null || sample.label === undefined ? "" : `, a ${sample.label}`;
    const text = `${model}'s sample ${filename}${label} (the Playground has no image yet)`;
    return { blob, filename, url: URL.createObjectURL(blob), key: sample.url, text };
  });
}

// --- what is drawn ------------------------------------------------------------------------------------------

/** A grey scale's key: the bar from `lo` to `hi` with their values, and what it stands for. */
function greyLegend(stops, lo, hi, what) {
  return h(
    "div",
    { class: "grey-legend" },
    h("span", { class: "num" }, lo),
    h("span", {
      class: "grey-bar",
      "aria-hidden": "true",
      style: { background: `linear-gradient(to right, ${stops})` },
    }),
    h("span", { class: "num" }, hi),
    h("span", { class: "muted" }, what),
  );
}

function stats(layer) {
  const items = [
    ["shape", "Shape", shape(layer.shape)],
    ["min", "Min", num(layer.min)],
    ["max", "Max", num(layer.max)],
    ["mean", "Mean", num(layer.mean)],
    ["zeros", "Zeros", percent(layer.zeros)],
  ];
  return h(
    "dl",
    { class: "stats", "aria-label": `Statistics of ${layer.name}'s output` },
    items.map(([key, term, value]) => h("div", {}, h("dt", {}, term), h("dd", { dataset: { stat: key } }, value))),
  );
}

function channelList(layer) {
  return h(
    "ul",
    { class: "channels", "aria-label": `The ${layer.images.length} most active channels of ${layer.name}` },
    layer.images.map((c) =>
      h(
        "li",
        { dataset: { channel: c.index } },
        c.image
          ? h("img", {
              src: c.image,
              alt: `channel ${c.index}: mean |value| ${num(c.mean_abs)}, max ${num(c.max)}`,
              title: `channel ${c.index}: mean |value| ${num(c.mean_abs)}, max ${num(c.max)}`,
            })
          : h("span", { class: "left-out" }, "left out"),
        h("span", { "aria-hidden": "true" }, `#${c.index}`),
      ),
    ),
  );
}

function layerView(layer, answer) {
  const notes = [];
  if (layer.holds)
    notes.push(`The ONNX file folded ${layer.holds} into ${layer.name} at export: this is ${layer.holds}'s output.`);
  if (layer.omitted) notes.push(layer.omitted);
  const scale = `one scale for the layer: black ${num(layer.scale[0])}, white ${num(layer.scale[1])}`;
  const body = layer.vector
    ? [
        h("p", {}, `${layer.channels} values (no map: the layer outputs a vector), in rows, ${scale}.`),
        h("img", { class: "vector", src: layer.vector, alt: `the ${layer.channels} values of ${layer.name}, in rows` }),
      ]
    : [
        h(
          "p",
          {},
          `The ${layer.images.length} most active of ${layer.channels} channels (largest mean |value| first), ` +
            `each ${shape(layer.shape.slice(1))}, ${scale}.`,
        ),
        channelList(layer),
      ];
  return [
    stats(layer),
    greyLegend("#000, #fff", num(layer.scale[0]), num(layer.scale[1]), "the layer's grey scale"),
    body,
    notes.map((text) => h("p", { class: "muted" }, text)),
    h(
      "p",
      { class: "muted" },
      `${answer.model} version ${answer.version} (float32 file, ${answer.provider}): ` +
        `${answer.timings.total_ms.toFixed(1)} ms in the server.`,
    ),
  ];
}

function filterList(answer) {
  return h(
    "ul",
    { class: "filters", "aria-label": `${answer.filters.length} filters of ${answer.layer}` },
    answer.filters.map((f) => {
      const src = f.rgb || f.channels[0];
      const text = `filter ${f.index}: norm ${num(f.norm)}`;
      return h(
        "li",
        { dataset: { filter: f.index } },
        src ? h("img", { src, alt: text, title: text }) : h("span", { class: "left-out" }, "left out"),
      );
    }),
  );
}

function filtersView(answer) {
  const [, inputs, kh, kw] = answer.shape;
  const colour = answer.filters.some((f) => f.rgb);
  const parts = [
    h(
      "p",
      {},
      `${answer.filters.length} of ${answer.filters_total} filters of ${answer.layer}, each ${inputs}×${kh}×${kw}` +
        (colour ? ", in colour: its weights on the red, green and blue inputs." : "."),
    ),
    greyLegend("#000, #808080, #fff", num(-answer.scale), num(answer.scale), "one scale for the layer: grey is 0"),
    filterList(answer),
  ];
  if (answer.holds)
    parts.push(h("p", { class: "muted" }, `${answer.holds} is folded into these weights (each filter scaled by it).`));
  if (answer.omitted) parts.push(h("p", { class: "muted" }, answer.omitted));
  return parts;
}

// --- loading ------------------------------------------------------------------------------------------------

function layerUrl(model, call) {
  return `/models/${encodeURIComponent(model)}/activations${query({ layers: call })}`;
}

async function loadFilters(model) {
  if (state.filtersOf === model) return;
  state.filtersOf = model;
  replace(el.filters, h("p", { class: "muted" }, "Loading the filters…"));
  try {
    const answer = await remember(filters, model, () => getJSON(`/models/${encodeURIComponent(model)}/filters`));
    if (state.model === model) replace(el.filters, filtersView(answer));
  } catch (error) {
    state.filtersOf = null;
    if (state.model === model) replace(el.filters, h("p", { class: "muted" }, `No filters: ${error.message}`));
  }
}

function explain(error, call) {
  const reason = error.details?.left_out?.[call];
  if (!reason) return error;
  return Object.assign(new Error(`${call} has no recorded tensor: ${reason}. ${error.message}`), error);
}

async function load() {
  const mine = ++state.token;
  const { model, layer } = state;
  el.grid.hidden = false;
  el.hint.hidden = true;
  el.title.textContent = `What ${layer.call} (${layer.type}) outputs`;
  showError(el.error, null);
  el.result.setAttribute("aria-busy", "true");
  el.status.classList.remove("visually-hidden");
  el.status.textContent = `Running the image through ${model} up to ${layer.call}…`;
  try {
    const image = await inputImage(model);
    if (mine !== state.token) return;
    if (!image) {
      replace(
        el.input,
        "No image: give one in the ",
        h("a", { href: `#playground?model=${model}` }, "Playground"),
        ".",
      );
      replace(el.result);
      el.status.textContent = "";
      return;
    }
    state.imageKey = image.key;
    replace(
      el.input,
      h("img", { src: image.url, alt: "", width: 40, height: 40 }),
      h(
        "span",
        {},
        `For ${image.text}. `,
        h("a", { href: `#playground?model=${encodeURIComponent(model)}` }, "Give another image in the Playground"),
        ".",
      ),
    );
    const key = `${model} ${image.key} ${layer.call}`;
    const answer = await remember(answers, key, () =>
      postImage(layerUrl(model, layer.call), image.blob, image.filename).then(({ json }) => json),
    );
    if (mine !== state.token) return;
    replace(el.result, layerView(answer.layers[0], answer));
    el.status.classList.add("visually-hidden"); // the heading and the statistics show it; screen readers hear it
    el.status.textContent = `${layer.call}: ${shape(answer.layers[0].shape)}.`;
    loadFilters(model);
  } catch (error) {
    if (mine !== state.token) return;
    replace(el.result);
    el.status.textContent = "";
    showError(el.error, explain(error, layer.call));
    if (error.code !== "layers_not_recorded") loadFilters(model);
    else replace(el.filters, h("p", { class: "muted" }, "None either: they are found through the same record."));
  } finally {
    if (mine === state.token) el.result.removeAttribute("aria-busy");
  }
}

// --- what the Explorer calls ----------------------------------------------------------------------------------

export function initMaps(root) {
  el.root = root;
  el.hint = h("p", { class: "maps-hint" });
  el.title = h("h3", { id: "maps-layer-title" });
  el.input = h("p", { class: "maps-input" });
  el.status = h("p", { class: "status-line", role: "status" });
  el.error = h("div", { class: "notice error", role: "alert", hidden: true });
  el.result = h("div", { class: "maps-result" });
  el.filters = h("div", { class: "maps-filters-result" });
  el.grid = h(
    "div",
    { class: "maps-grid", hidden: true },
    h("div", { class: "maps-layer" }, el.title, el.input, el.status, el.error, el.result),
    h("div", { class: "maps-filters" }, h("h3", {}, "Learned filters of the first convolution"), el.filters),
  );
  replace(root, h("h2", { id: "maps-title" }, "Feature maps"), el.hint, el.grid);
}

/** The served model whose layers are shown, or null with the reason there are no feature maps to show. */
export function mapsFor(model, why) {
  if (model !== state.model) state.filtersOf = null;
  Object.assign(state, { model, why, layer: null });
  if (state.filtersOf === null) replace(el.filters);
  selectLayer(null);
}

/** A layer {name, call (the API's name: `name#k` for the k-th call), type} was selected, or none (null). */
export function selectLayer(layer) {
  state.layer = state.model ? layer : null;
  if (!state.layer) {
    state.token += 1;
    el.grid.hidden = true;
    el.hint.hidden = false;
    el.hint.textContent = state.model
      ? "Select a layer (a row of the table, or a box of the drawing) to see what it outputs for an image, " +
        "and the filters the first convolution learned."
      : state.why;
    return;
  }
  load();
}

/** The view shows again: a layer shown for an older image is shown for the Playground's new one. */
export function refreshMaps() {
  const given = currentImage();
  if (state.layer && given && state.imageKey !== `given:${given.id}`) load();
}
