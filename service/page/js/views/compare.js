// Compare: one image through every ready model, one request after the other (so they do not share the CPU),
// side by side; and every model's test accuracy against its MACs.

import { postImage } from "../api.js";
import { barCell, h, replace } from "../dom.js";
import { accuracy, human, int, ms, percent } from "../format.js";
import { currentImage } from "../image.js";
import { imageInput } from "../imageinput.js";
import { accuracyChart } from "../chart.js";
import { store } from "../store.js";
import { samplesOf, sampleStrip } from "./samples.js";

const el = {};
const state = { image: null, token: 0, samplesFrom: null, samplesReady: Promise.resolve() };

function head() {
  const col = (text, cls, title) => h("th", { scope: "col", class: cls, title }, text);
  return h(
    "thead",
    {},
    h(
      "tr",
      {},
      col("Model"),
      col("Architecture"),
      col("Top-1"),
      col("Confidence", "num"),
      col("Inference", "num", "session.run, in the server"),
      col("Round trip", "num", "measured by this page"),
      col("Params", "num"),
      col("MACs", "num"),
      col("Test top-1", "num", "fp32, on the held-out test split"),
    ),
  );
}

function resultRow(model, outcome) {
  const cells = [h("th", { scope: "row" }, model.name), h("td", {}, model.architecture || "–")];
  if (!outcome) {
    cells.push(h("td", { colspan: 4, class: "muted" }, "waiting…"));
  } else if (outcome.error) {
    cells.push(h("td", { colspan: 4, class: "error-text" }, `${outcome.error.status || ""} ${outcome.error.message}`));
  } else {
    const best = outcome.json.predictions[0].top_k[0];
    cells.push(
      h("td", { class: "top1" }, best.label),
      barCell(best.probability, "conf", percent(best.probability)),
      h("td", { class: "num" }, ms(outcome.json.timings.inference_ms)),
      h("td", { class: "num" }, ms(outcome.roundTripMs)),
    );
  }
  cells.push(
    h("td", { class: "num", title: int(model.params) }, human(model.params)),
    h("td", { class: "num", title: int(model.macs) }, human(model.macs)),
    h("td", { class: "num" }, accuracy(model.accuracy)),
  );
  return h("tr", { dataset: { model: model.name } }, cells);
}

async function run() {
  const image = state.image;
  if (!image) return;
  const token = ++state.token;
  if (!store.models) await store.refresh(); // an image given before the list of models arrived
  // Not while the sample thumbnails download: the round trips would time the queue for a connection.
  await state.samplesReady;
  if (token !== state.token) return;
  const models = store.ready();
  const outcomes = new Map();
  const draw = () =>
    replace(
      el.table,
      h(
        "caption",
        {},
        `${image.filename} through ${models.length} ready model${models.length === 1 ? "" : "s"}, one after the other`,
      ),
      head(),
      h(
        "tbody",
        {},
        models.map((m) => resultRow(m, outcomes.get(m.name))),
      ),
    );
  draw();
  el.status.textContent = `Classifying with ${models.length} models…`;
  for (const model of models) {
    try {
      outcomes.set(
        model.name,
        await postImage(`/models/${encodeURIComponent(model.name)}/predict?top_k=1`, image.blob, image.filename),
      );
    } catch (error) {
      outcomes.set(model.name, { error });
    }
    if (token !== state.token) return;
    draw();
  }
  el.status.textContent = `Done: ${models.length} models compared.`;
}

function setImage(blob, filename) {
  if (state.image?.url) URL.revokeObjectURL(state.image.url);
  state.image = { blob, filename, url: URL.createObjectURL(blob) };
  replace(
    el.preview,
    h(
      "figure",
      {},
      h("img", { src: state.image.url, alt: `the image compared: ${filename}` }),
      h("figcaption", {}, filename),
    ),
  );
  run();
}

function chart(st) {
  const points = [];
  for (const m of st.models || []) {
    const version = m.versions.find((v) => v.version === m.latest_version) || m.versions[0];
    for (const v of version?.variants || []) {
      if (v.test_top1 !== null && v.test_top1 !== undefined && m.macs > 0)
        points.push({ model: m.name, variant: v.precision, macs: m.macs, accuracy: v.test_top1 });
    }
  }
  const names = [...new Set(points.map((p) => p.model))];
  replace(
    el.chart,
    accuracyChart(points, {
      title: "Test top-1 against multiply-adds, every model",
      description: points.length
        ? `${names.length} models: ${names.join(", ")}. Multiply-adds on a log scale; circle fp32, square int8, triangle fp16. The same numbers are in the table below the chart.`
        : "No model has a test accuracy yet.",
    }),
    h(
      "figcaption",
      {},
      points.length
        ? "Up and to the left is better: more accurate for less compute. Marker shape: the variant."
        : "No model has a test accuracy yet: the chart fills in as models are published.",
    ),
  );
  replace(
    el.chartTable,
    h("caption", {}, "Test top-1 and MACs of every model and variant"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Model", "Variant", "MACs", "Test top-1"].map((t) => h("th", { scope: "col" }, t)),
      ),
    ),
    h(
      "tbody",
      {},
      points.map((p) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, p.model),
          h("td", {}, p.variant),
          h("td", { class: "num" }, human(p.macs)),
          h("td", { class: "num" }, accuracy(p.accuracy)),
        ),
      ),
    ),
  );
}

function offerSamples() {
  const withSamples = store.ready().find((m) => m.samples) || store.ready()[0];
  if (!withSamples || state.samplesFrom === withSamples.name) return;
  state.samplesFrom = withSamples.name;
  // run() waits for this: the list and its thumbnails, so that they do not share the timed round trips.
  state.samplesReady = (async () => {
    try {
      const samples = await samplesOf(withSamples.name);
      if (!samples.length) return;
      const strip = sampleStrip(samples, `Sample test images (from ${withSamples.name})`, setImage);
      replace(el.samples, strip);
      await strip.ready;
    } catch {
      state.samplesFrom = null; // no samples: the other inputs still work
    }
  })();
}

export function init() {
  for (const [key, id] of Object.entries({
    table: "compare-table",
    status: "compare-status",
    chart: "compare-chart",
    chartTable: "compare-chart-table",
    preview: "cmp-preview",
    samples: "cmp-samples",
  })) {
    el[key] = document.getElementById(id);
  }
  imageInput({
    zone: document.getElementById("cmp-drop"),
    fileInput: document.getElementById("cmp-file"),
    isActive: () => !document.getElementById("view-compare").hidden,
    onImage: setImage,
  });
  document.getElementById("cmp-use-playground").addEventListener("click", () => {
    const image = currentImage();
    if (image) setImage(image.blob, image.filename);
    else el.status.textContent = "The Playground has no image yet: draw or choose one there first, or choose one here.";
  });
  el.status.textContent = "Give an image above: every ready model classifies it, and the results line up here.";
  let seen = null;
  store.subscribe((st) => {
    const now = JSON.stringify((st.models || []).map((m) => [m.name, m.status, m.macs, m.versions]));
    if (now === seen) return; // redrawn when a model changes, not at every poll
    seen = now;
    chart(st);
    offerSamples();
  });
}

export function show() {
  if (!state.image && currentImage()) {
    const image = currentImage();
    setImage(image.blob, image.filename);
  }
}
