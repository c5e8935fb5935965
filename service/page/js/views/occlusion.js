// The Playground's occlusion view (Zeiler and Fergus, 2014): POST /models/{name}/occlusion with the image just
// classified, its version and variant, only when asked (a run costs one inference per patch position). The map is
// drawn over the input as the model sees it (POST /preprocess's image), in the same pixels the API answers in.

import { postImage, query } from "../api.js";
import { h, replace, showError } from "../dom.js";
import { ms, percent } from "../format.js";
import { occlusionFigure, points } from "../heatmap.js";

function numberField(id, label, max) {
  return h(
    "label",
    {},
    label,
    h("input", {
      type: "number",
      id,
      min: 1,
      max,
      step: 1,
      inputmode: "numeric",
      placeholder: "default",
      "aria-describedby": "occ-defaults",
    }),
  );
}

function classField(prediction) {
  return h(
    "label",
    {},
    "Class to explain",
    h(
      "select",
      { id: "occ-class" },
      prediction.top_k.map((c, i) =>
        h("option", { value: c.index }, `${c.label} (${percent(c.probability)}${i === 0 ? ", the top-1" : ""})`),
      ),
    ),
  );
}

function verdict(answer) {
  const best = answer.drop.flat().reduce((a, b) => Math.max(a, b), -Infinity);
  return h(
    "p",
    { class: "occ-verdict" },
    "Explains ",
    h("strong", { id: "occ-label" }, answer.label),
    ": ",
    h("span", { id: "occ-baseline" }, percent(answer.baseline)),
    ` on the whole image (the baseline); the largest drop with the patch somewhere: ${points(best)} points.`,
  );
}

function cost(answer, roundTripMs) {
  const t = answer.timings;
  return h(
    "p",
    { class: "muted occ-cost" },
    `A ${answer.patch}×${answer.patch} patch every ${answer.stride} pixels: ${answer.rows}×${answer.cols} = ` +
      `${answer.copies} occluded copies in ${answer.batches} batches through ${answer.model}'s batcher ` +
      `(${answer.variant}): ${ms(t.inference_ms)} of inference, ${ms(t.total_ms)} in the server, ` +
      `${ms(roundTripMs)} round trip.`,
  );
}

/** The occlusion controls and map for one classified image. `r`: the request the prediction answered. */
export function occlusionPanel({ r, blob, prediction, seen }) {
  const [, height, width] = r.input?.shape || seen?.shape || [1, 0, 0];
  const side = Math.min(height, width);
  const form = h(
    "form",
    { class: "controls occ-controls", "aria-label": "Occlusion map" },
    classField(prediction),
    numberField("occ-patch", "Patch side (px)", side),
    numberField("occ-stride", "Stride (px)", side),
    h("button", { type: "submit", class: "primary", id: "occ-run" }, "Show where the decision comes from"),
  );
  const defaults = h(
    "p",
    { class: "muted", id: "occ-defaults" },
    `In the ${width}×${height} pixels the model sees. Empty fields take the API's defaults: a patch a quarter of ` +
      "the side, moved by a quarter of the patch (by half above 96 pixels).",
  );
  const status = h("p", { class: "status-line", role: "status" });
  const error = h("div", { class: "notice error", role: "alert", hidden: true });
  const output = h("div", { class: "occ-output" });
  let token = 0;

  async function run(event) {
    event.preventDefault();
    const mine = ++token;
    const patch = form.querySelector("#occ-patch");
    const stride = form.querySelector("#occ-stride");
    const params = {
      version: r.version,
      variant: r.variant,
      class: form.querySelector("#occ-class").value,
      patch: patch.value,
      stride: stride.value,
    };
    showError(error, null);
    status.classList.remove("visually-hidden");
    status.textContent = `Sliding a grey patch over the image through ${r.model}…`;
    output.setAttribute("aria-busy", "true");
    try {
      const path = `/models/${encodeURIComponent(r.model)}/occlusion${query(params)}`;
      const { json, roundTripMs } = await postImage(path, blob, r.filename);
      if (mine !== token) return;
      if (!patch.value) patch.placeholder = String(json.patch);
      if (!stride.value) stride.placeholder = String(json.stride);
      replace(
        output,
        verdict(json),
        occlusionFigure(json, { image: seen?.image || null, width, height }),
        cost(json, roundTripMs),
      );
      status.classList.add("visually-hidden"); // the map says it; screen readers still hear it
      status.textContent = `The occlusion map: ${json.rows}×${json.cols} positions.`;
    } catch (failure) {
      if (mine !== token) return;
      status.textContent = "";
      showError(error, failure);
    } finally {
      if (mine === token) output.removeAttribute("aria-busy");
    }
  }

  form.addEventListener("submit", run);
  return h(
    "div",
    { class: "occ", id: "pg-occlusion" },
    h(
      "p",
      {},
      "Which part of the image does the answer rest on? A grey square (the training data's mean pixel) slides over " +
        "the input; each covered copy goes through the model, and the map shows how much the class's probability " +
        "drops with the square there.",
    ),
    form,
    defaults,
    status,
    error,
    output,
  );
}
