// Playground: one image (drawn, dropped, chosen, pasted or a sample) through one model, version and variant.
// Shows the top-k, the input as the model sees it (POST /models/{name}/preprocess), the server's timings next
// to the round trip, and the code that makes the same request.

import { apiKey, postImage, query } from "../api.js";
import { h, replace, showError } from "../dom.js";
import { accuracy, ms, percent, shape } from "../format.js";
import { setCurrentImage } from "../image.js";
import { imageInput } from "../imageinput.js";
import { Pad } from "../pad.js";
import { updateHash } from "../route.js";
import { SNIPPETS } from "../snippets.js";
import { store } from "../store.js";
import { codeTabs } from "./code.js";
import { occlusionPanel } from "./occlusion.js";
import { samplesOf, sampleStrip } from "./samples.js";

const el = {};
const state = {
  model: null,
  wanted: null,
  version: null,
  variant: null,
  image: null,
  token: 0,
  samplesReady: Promise.resolve(),
};
let pad;

// --- the pickers -----------------------------------------------------------------------------------------

function options(select, items, wanted) {
  const signature = JSON.stringify(items);
  if (select.dataset.items !== signature) {
    // Rebuilt only when the choices change: a poll must not close a list the user has open.
    select.dataset.items = signature;
    replace(
      select,
      items.map(([value, text]) => h("option", { value }, text)),
    );
  }
  if (items.some(([value]) => value === wanted)) select.value = wanted;
  return select.value || null;
}

function fillModels() {
  const ready = store.ready();
  if (!ready.length) {
    replace(el.model, h("option", { value: "" }, "none ready yet"));
    el.status.textContent = store.models
      ? "No model is ready yet — the build is running; this page updates by itself."
      : "";
    return;
  }
  el.status.textContent = "";
  const fallback = ready.find((m) => m.name === "lenet5") || ready[0];
  const chosen = options(
    el.model,
    ready.map((m) => [m.name, `${m.name}${m.architecture && m.architecture !== m.name ? ` (${m.architecture})` : ""}`]),
    state.model || state.wanted || fallback.name,
  );
  if (chosen !== state.model)
    selectModel(chosen); // classifies an image given before the models arrived
  else fillVersions();
}

function fillVersions() {
  const model = store.get(state.model);
  const versions = (model?.served_versions || []).slice().sort((a, b) => b - a);
  const latest = model?.latest_version;
  const chosen = options(
    el.version,
    versions.map((v) => [String(v), v === latest ? `${v} (latest)` : String(v)]),
    String(state.version ?? latest),
  );
  state.version = chosen === null ? null : Number(chosen);
  const version = model?.versions.find((v) => v.version === state.version);
  const variants = (version?.variants || []).filter((v) => v.status === "READY");
  state.variant = options(
    el.variant,
    variants.map((v) => [v.precision, `${v.precision} (test top-1 ${accuracy(v.test_top1)})`]),
    state.variant || "fp32",
  );
  el.topk.max = String(model?.num_classes || 1000);
  if (Number(el.topk.value) > Number(el.topk.max)) el.topk.value = el.topk.max;
}

async function selectModel(name, run = true) {
  state.model = name;
  state.version = null;
  updateHash("playground", { model: name });
  fillVersions();
  const model = store.get(name);
  const digits = model?.num_classes === 10 && model.input?.color_mode === "L";
  el.padHint.textContent = digits
    ? "Draw a digit here, any size, anywhere on the pad: the model finds the ink and fits it as its training digits were."
    : `Draw here, or better give a photo: ${name} knows ${model?.num_classes ?? "?"} classes.`;
  loadSamples(name);
  if (run && state.image) classify();
}

function loadSamples(name) {
  replace(el.samples);
  // classify() waits for the list and its thumbnails: they would otherwise share the timed round trip.
  state.samplesReady = (async () => {
    try {
      const samples = await samplesOf(name);
      if (state.model !== name || !samples.length) return;
      const title = `Sample test images of ${name} (never seen in training)`;
      const strip = sampleStrip(samples, title, (blob, file) => setImage(blob, file, "sample"));
      replace(el.samples, strip);
      await strip.ready;
    } catch {
      // no samples for this model (an older card): the other inputs still work
    }
  })();
}

// --- classifying ------------------------------------------------------------------------------------------

function setImage(blob, filename, source) {
  state.image = setCurrentImage(blob, filename, source);
  classify();
}

function request() {
  return {
    model: state.model,
    version: state.version,
    variant: state.variant,
    topK: Number(el.topk.value) || 5,
    filename: state.image.filename,
    origin: location.origin,
    host: location.host,
    keyed: Boolean(apiKey()),
    input: store.get(state.model)?.input,
  };
}

async function classify() {
  if (!state.image || !state.model) return;
  const token = ++state.token;
  await state.samplesReady;
  if (token !== state.token) return;
  const r = request();
  showError(el.error, null);
  el.result.setAttribute("aria-busy", "true");
  try {
    const path = `/models/${encodeURIComponent(r.model)}`;
    const { json, roundTripMs } = await postImage(
      `${path}/predict${query({ version: r.version, variant: r.variant, top_k: r.topK })}`,
      state.image.blob,
      r.filename,
    );
    // After the prediction, so that its timings are not shared with this request.
    const seen = await postImage(`${path}/preprocess${query({ version: r.version })}`, state.image.blob, r.filename)
      .then((x) => x.json)
      .catch(() => null);
    if (token !== state.token) return;
    renderResult(r, json, roundTripMs, seen);
  } catch (error) {
    if (token !== state.token) return;
    showError(el.error, error);
    replace(el.output, h("p", { class: "empty" }, "No prediction: the server refused this input (above)."));
  } finally {
    if (token === state.token) el.result.removeAttribute("aria-busy");
  }
}

function topK(prediction) {
  return h(
    "ol",
    { class: "topk", "aria-label": "Top classes with their probabilities" },
    prediction.top_k.map((c, i) =>
      h(
        "li",
        { class: i === 0 ? "first" : null },
        h("span", { class: "label" }, c.label),
        h(
          "span",
          { class: "track", "aria-hidden": "true" },
          h("span", { class: "bar", style: { width: `${(c.probability * 100).toFixed(2)}%` } }),
        ),
        h("span", { class: "value" }, percent(c.probability)),
      ),
    ),
  );
}

function seenFigures(r, seen) {
  const given = h(
    "figure",
    {},
    h("img", { src: state.image.url, alt: `the image given: ${r.filename}`, class: "given" }),
    h("figcaption", {}, `You gave: ${r.filename}`),
  );
  if (!seen) return h("div", { class: "seen" }, given);
  const spec = r.input;
  const digits = spec?.digits;
  const caption = digits
    ? `The model sees: ${shape(seen.shape)} — your image made into the digits data set's picture of a digit: ink found (light or dark), its box fitted into ${digits.frame}×${digits.frame}, thin strokes thickened, counted into ${digits.resolution}×${digits.resolution} blocks and resized to ${spec.crop}×${spec.crop} as in training (shown back as pixels).`
    : spec
    ? `The model sees: ${shape(seen.shape)}, shorter side resized to ${spec.resize}, centre crop ${spec.crop}, ${spec.color_mode === "L" ? "grey" : "RGB"}; normalised with mean ${spec.mean.map((m) => m.toFixed(3)).join("/")} and std ${spec.std.map((v) => v.toFixed(3)).join("/")} (shown back as pixels).`
    : `The model sees: ${shape(seen.shape)}.`;
  return h(
    "div",
    { class: "seen" },
    given,
    h(
      "figure",
      {},
      h("img", { src: seen.image, alt: `the input after preprocessing, ${shape(seen.shape)}`, class: "pixelated" }),
      h("figcaption", {}, caption),
    ),
  );
}

function timings(json, roundTripMs) {
  const t = json.timings;
  const otherServer = Math.max(0, t.total_ms - t.decode_ms - t.queue_ms - t.inference_ms);
  const network = Math.max(0, roundTripMs - t.total_ms);
  const parts = [
    ["decode", "decoding and preprocessing the image", t.decode_ms],
    ["queue", "waiting in the batch queue", t.queue_ms],
    ["inference", `session.run (batch of ${t.batch_size})`, t.inference_ms],
    ["other", "the rest of the server's handler", otherServer],
    ["network", "HTTP, the network and the browser", network],
  ];
  const scale = Math.max(roundTripMs, 1e-6);
  const line = (name, what, value, props = {}) =>
    h(
      "tr",
      props.sum ? { class: "sum" } : {},
      h(
        "th",
        { scope: "row" },
        props.key ? h("span", { class: `key ${props.key}`, "aria-hidden": "true" }) : null,
        name,
        h("div", { class: "what" }, what),
      ),
      h("td", { class: "num", dataset: props.timing ? { timing: props.timing } : {} }, ms(value)),
    );
  return [
    h(
      "div",
      { class: "stack", "aria-hidden": "true" },
      parts.map(([id, , v]) =>
        h("span", {
          class: `seg ${id}`,
          style: { width: `${((v / scale) * 100).toFixed(2)}%` },
          title: `${id} ${ms(v)}`,
        }),
      ),
    ),
    h(
      "table",
      { class: "timings" },
      h("caption", {}, "Where the time went"),
      h(
        "tbody",
        {},
        parts.map(([id, what, v]) => line(id, what, v, { key: id })),
        line("server total", "timings.total_ms: from the handler's start to the encoded answer", t.total_ms, {
          sum: true,
          timing: "total",
        }),
        line("round trip", "measured by this page, from the request to the parsed answer", roundTripMs, {
          sum: true,
          timing: "roundtrip",
        }),
      ),
    ),
  ];
}

// Below this top probability the page does not announce an answer: it says the model is unsure.
const SURE = 0.6;

function verdict(json, prediction) {
  const [best, second] = prediction.top_k;
  const served = h("span", { class: "muted" }, ` · ${json.model} version ${json.version}, ${json.variant}, on ${json.provider}`);
  if (best.probability >= SURE) {
    return h(
      "p",
      { class: "verdict" },
      h("span", { class: "big", id: "pg-top1" }, best.label),
      h("span", {}, ` with ${percent(best.probability)} probability`),
      served,
    );
  }
  return h(
    "p",
    { class: "verdict unsure", role: "status" },
    h("strong", {}, "Not sure. "),
    h("span", {}, "Perhaps "),
    h("span", { class: "big", id: "pg-top1" }, best.label),
    h("span", {}, ` (${percent(best.probability)})`),
    second ? h("span", {}, ` or ${second.label} (${percent(second.probability)})`) : null,
    h("span", {}, ": no class reaches 60%. A clearer, larger drawing usually settles it."),
    served,
  );
}

function renderResult(r, json, roundTripMs, seen) {
  const prediction = json.predictions[0];
  replace(
    el.output,
    verdict(json, prediction),
    topK(prediction),
    h("h3", {}, "The input"),
    seenFigures(r, seen),
    h("h3", {}, "Where the decision comes from"),
    occlusionPanel({ r, blob: state.image.blob, prediction, seen }),
    h("h3", {}, "Time"),
    timings(json, roundTripMs),
    h("h3", {}, "The same request from code"),
    codeTabs(SNIPPETS.map((sn) => ({ id: sn.id, name: sn.name, code: sn.make(r) }))),
  );
}

/** An empty pad is never sent: clearing it drops a drawing's answer instead of classifying a blank canvas. */
function clearPad() {
  pad.clear();
  if (state.image?.source !== "drawing") return;
  state.image = null;
  state.token++; // an answer still on its way is for the cleared drawing
  el.result.removeAttribute("aria-busy");
  showError(el.error, null);
  replace(el.output, h("p", { class: "empty" }, "The pad is empty: draw a digit (nothing is sent until you do)."));
}

// --- wiring -------------------------------------------------------------------------------------------------

export function init() {
  for (const [key, id] of Object.entries({
    model: "pg-model",
    version: "pg-version",
    variant: "pg-variant",
    topk: "pg-topk",
    status: "playground-status",
    error: "pg-error",
    output: "pg-output",
    result: "pg-result",
    samples: "pg-samples",
    padHint: "pg-pad-hint",
  })) {
    el[key] = document.getElementById(id);
  }
  document.getElementById("playground-controls").addEventListener("submit", (event) => event.preventDefault());
  el.model.addEventListener("change", () => selectModel(el.model.value));
  el.version.addEventListener("change", () => {
    state.version = Number(el.version.value);
    fillVersions();
    classify();
  });
  el.variant.addEventListener("change", () => {
    state.variant = el.variant.value;
    classify();
  });
  el.topk.addEventListener("change", classify);
  pad = new Pad(document.getElementById("pg-pad"), {
    onStroke: async () => setImage(await pad.toBlob(), "drawing.png", "drawing"),
  });
  document.getElementById("pg-clear").addEventListener("click", clearPad);
  imageInput({
    zone: document.getElementById("pg-drop"),
    fileInput: document.getElementById("pg-file"),
    isActive: () => !document.getElementById("view-playground").hidden,
    onImage: (blob, name) => setImage(blob, name, "file"),
  });
  store.subscribe(fillModels);
}

export function show(params) {
  const wanted = params.get("model");
  if (!wanted || wanted === state.model) return;
  if (store.get(wanted)?.status === "READY") {
    el.model.value = wanted;
    selectModel(wanted);
  } else {
    state.wanted = wanted; // chosen when it is ready (the model list may not have arrived yet)
  }
}
