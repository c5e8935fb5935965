// Models: one card per served model, refreshed live from GET /models (LOADING -> READY as `make serve` builds).

import { h, replace } from "../dom.js";
import { accuracy, human, int, paper, shape } from "../format.js";
import { link } from "../route.js";
import { store } from "../store.js";

const STATUS = {
  READY: { icon: "✓", text: "ready" },
  LOADING: { icon: "◌", text: "loading…" },
  UNAVAILABLE: { icon: "✕", text: "unavailable" },
};

export function badge(status) {
  const known = STATUS[status] || { icon: "?", text: String(status).toLowerCase() };
  return h(
    "span",
    { class: `badge ${String(status).toLowerCase()}` },
    h("span", { "aria-hidden": "true" }, known.icon),
    " ",
    known.text,
  );
}

/** The paper's title, a link when it has a URL, then its authors and year. */
export function paperLink(value) {
  const p = paper(value);
  if (!p) return "–";
  const title = p.url
    ? h("a", { href: p.url, rel: "noopener noreferrer", target: "_blank" }, p.title || p.url)
    : p.title;
  return h("span", { class: "paper" }, title, p.byline ? ` (${p.byline})` : "");
}

function inputText(input) {
  if (!input) return "–";
  const mode = input.color_mode === "L" ? "grey" : "colour";
  if (input.digits) {
    const d = input.digits;
    return `${shape(input.shape)} ${mode}: any image made into the digits data set's picture of a digit (ink found whatever its colour, fitted into ${d.frame}×${d.frame}, thin strokes thickened, ${d.resolution}×${d.resolution} block counts)`;
  }
  return `${shape(input.shape)} ${mode} (shorter side to ${input.resize}, centre crop ${input.crop})`;
}

/** A digit model's top-1 on the handwriting check set, both polarities. */
export function handwritingText(handwriting) {
  if (!handwriting) return null;
  const light = handwriting["light-on-dark"];
  const dark = handwriting["dark-on-light"];
  return `${accuracy(light)} white on black · ${accuracy(dark)} dark on white`;
}

function variantTable(model) {
  const version = model.versions.find((v) => v.version === model.latest_version) || model.versions[0];
  if (!version) return null;
  return h(
    "table",
    { class: "variants" },
    h("caption", {}, `Test top-1 of version ${version.version}, by variant`),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, "variant"),
        h("th", { scope: "col" }, "status"),
        h("th", { scope: "col" }, "test top-1"),
      ),
    ),
    h(
      "tbody",
      {},
      version.variants.map((v) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, v.precision),
          h("td", {}, badge(v.status), v.reason ? h("span", { class: "why" }, ` ${v.reason}`) : null),
          h("td", { class: "num" }, accuracy(v.test_top1)),
        ),
      ),
    ),
  );
}

function fact(term, value) {
  return [h("dt", {}, term), h("dd", {}, value ?? "–")];
}

function card(model) {
  const ready = model.status === "READY";
  const family = model.family || null;
  const served = model.served_versions.length ? model.served_versions.join(", ") : "none";
  const all = model.versions.map((v) => v.version);
  const versions = all.length
    ? `${served} served, latest ${model.latest_version ?? "–"} (repository: ${all.join(", ")})`
    : "–";
  return h(
    "article",
    {
      class: "card model-card",
      dataset: { model: model.name, status: model.status },
      "aria-labelledby": `model-${model.name}`,
    },
    h(
      "header",
      {},
      h("h2", { id: `model-${model.name}` }, model.name),
      badge(model.status),
      model.quick
        ? h("span", { class: "tag", title: "trained with --quick: a smoke-test model, not a real one" }, "quick build")
        : null,
    ),
    model.description ? h("p", { class: "desc" }, model.description) : null,
    model.reason ? h("p", { class: "notice warn" }, h("strong", {}, "Why: "), model.reason) : null,
    h(
      "dl",
      { class: "facts" },
      fact("Architecture", [model.architecture || "–", family ? ` · ${family} family` : ""]),
      fact("Paper", paperLink(model.paper)),
      fact("Input", inputText(model.input)),
      fact("Classes", int(model.num_classes)),
      fact("Test top-1", accuracy(model.accuracy)),
      model.handwriting
        ? fact(
            h("abbr", { title: "digits drawn as pen strokes, never trained on (make bench: benchmark 8)" }, "Handwriting top-1"),
            handwritingText(model.handwriting),
          )
        : null,
      fact("Parameters", int(model.params)),
      fact("MACs", model.macs === null || model.macs === undefined ? "–" : `${human(model.macs)} (${int(model.macs)})`),
      fact("Provider", model.provider || "–"),
      fact("Versions", versions),
      model.samples ? fact("Sample images", `${model.samples}`) : null,
    ),
    variantTable(model),
    h(
      "div",
      { class: "actions" },
      model.params !== null && model.params !== undefined
        ? h("a", { class: "button", href: link("explorer", { model: model.name }) }, "Explore its layers")
        : null,
      ready ? h("a", { class: "button primary", href: link("playground", { model: model.name }) }, "Try it") : null,
    ),
  );
}

const rendered = new Map(); // name -> {json, el}: only changed cards are rebuilt (keeps focus and scroll)

function renderList(list, models) {
  if (!models.length) {
    rendered.clear();
    return replace(
      list,
      h(
        "div",
        { class: "empty big" },
        h("p", {}, h("strong", {}, "No model is ready yet — the build is running.")),
        h(
          "p",
          {},
          "`make serve` trains and publishes LeNet-5 first, usually within a minute, then the others one by one. This page refreshes by itself.",
        ),
      ),
    );
  }
  const seen = new Set();
  const cards = models.map((model) => {
    seen.add(model.name);
    const json = JSON.stringify(model);
    const old = rendered.get(model.name);
    if (old && old.json === json) return old.el;
    const el = card(model);
    rendered.set(model.name, { json, el });
    return el;
  });
  for (const name of rendered.keys()) if (!seen.has(name)) rendered.delete(name);
  cards.forEach((el, i) => {
    if (list.children[i] !== el) list.insertBefore(el, list.children[i] || null);
  });
  while (list.children.length > cards.length) list.lastElementChild.remove();
}

function statusText(st) {
  if (st.error) {
    if (st.error.status === 401) {
      return [
        "This server needs an API key. ",
        h("button", { type: "button", class: "link", onclick: () => store.refresh() }, "Enter it"),
      ];
    }
    return `The server did not answer: ${st.error.message}. Retrying…`;
  }
  const models = st.models || [];
  const counts = {};
  models.forEach((m) => (counts[m.status] = (counts[m.status] || 0) + 1));
  const parts = [`${models.length} model${models.length === 1 ? "" : "s"}`];
  for (const status of ["READY", "LOADING", "UNAVAILABLE"])
    if (counts[status]) parts.push(`${counts[status]} ${STATUS[status].text.replace("…", "")}`);
  return parts.join(" · ");
}

export function init() {
  const list = document.getElementById("models-list");
  const status = document.getElementById("models-status");
  const updated = document.getElementById("models-updated");
  let said = null;
  replace(list, h("p", { class: "empty" }, "Asking the server for its models…"));
  store.subscribe((st) => {
    // The live region changes only when the counts do: a screen reader hears news, not every poll.
    const text = statusText(st);
    const key = typeof text === "string" ? text : "401";
    if (key !== said) {
      said = key;
      replace(status, text);
    }
    updated.textContent = st.models ? `(updated ${st.updated.toLocaleTimeString()})` : "";
    if (st.models) renderList(list, st.models);
    else if (st.error)
      replace(list, h("p", { class: "empty" }, "No list of models: the server did not give it (above)."));
  });
}

export function show() {}
