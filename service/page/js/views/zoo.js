// The zoo: every architecture the project can build (GET /zoo), served here or not, each one a link to the
// Explorer with its canonical summary.

import { getJSON } from "../api.js";
import { h, replace, showError } from "../dom.js";
import { accuracy, human, int, paper, shape } from "../format.js";
import { link } from "../route.js";
import { store } from "../store.js";
import { badge, handwritingText } from "./models.js";

let index = null;

/** GET /zoo once: the list of architectures ({name, family, paper, input_size, num_classes, params, macs, description}). */
export function zooIndex() {
  if (!index) {
    index = getJSON("/zoo")
      .then((body) => body.architectures)
      .catch((error) => {
        index = null;
        throw error;
      });
  }
  return index;
}

const el = {};
let architectures = [];

function servedAs(arch) {
  return (store.models || []).filter((m) => m.architecture === arch);
}

function year(a) {
  const p = paper(a.paper);
  const text = String(a.paper?.year ?? "paper");
  if (!p?.url) return text;
  return h(
    "a",
    { href: p.url, rel: "noopener noreferrer", target: "_blank", title: p.text, "aria-label": `${text}: ${p.text}` },
    text,
  );
}

function row(a) {
  const served = servedAs(a.name);
  return h(
    "tr",
    { dataset: { arch: a.name } },
    h(
      "th",
      { scope: "row" },
      h("a", { href: link("explorer", { arch: a.name }) }, a.name),
      h("div", { class: "desc" }, a.description),
    ),
    h("td", {}, a.family),
    h("td", { class: "num" }, year(a)),
    h("td", {}, shape(a.input_size)),
    h(
      "td",
      { class: "num", title: a.num_classes ? null : "no classifier: a building block" },
      a.num_classes ? int(a.num_classes) : "–",
    ),
    h("td", { class: "num", title: int(a.params) }, human(a.params)),
    h("td", { class: "num", title: int(a.macs) }, human(a.macs)),
    h(
      "td",
      {},
      served.length
        ? served.map((m) =>
            h(
              "span",
              { class: "served" },
              h("a", { href: link("explorer", { model: m.name }) }, m.name),
              " ",
              badge(m.status),
              m.accuracy === null || m.accuracy === undefined
                ? null
                : h("span", { class: "scores" }, ` test top-1 ${accuracy(m.accuracy)}`),
              m.handwriting ? h("span", { class: "scores handwriting" }, ` · handwriting ${handwritingText(m.handwriting)}`) : null,
            ),
          )
        : h("span", { class: "muted" }, "no"),
    ),
  );
}

function render() {
  const words = el.filter.value.toLowerCase().split(/\s+/).filter(Boolean);
  const shown = architectures.filter((a) => {
    const hay = `${a.name} ${a.family} ${a.description} ${paper(a.paper)?.text ?? ""}`.toLowerCase();
    return words.every((w) => hay.includes(w));
  });
  const col = (text, cls) => h("th", { scope: "col", class: cls }, text);
  replace(
    el.table,
    h(
      "caption",
      {},
      `${shown.length} of ${architectures.length} architectures, at their canonical input size and classes. Select a name to open it in the Explorer; a year, to read the paper.`,
    ),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        col("Architecture"),
        col("Family"),
        col("Year", "num"),
        col("Input"),
        col("Classes", "num"),
        col("Params", "num"),
        col("MACs", "num"),
        col("Served here as"),
      ),
    ),
    h("tbody", {}, shown.map(row)),
  );
  el.status.textContent = words.length ? `${shown.length} of ${architectures.length} architectures match.` : "";
}

export function init() {
  el.table = document.getElementById("zoo-table");
  el.status = document.getElementById("zoo-status");
  el.filter = document.getElementById("zoo-filter");
  el.error = h("div", { class: "notice error", role: "alert", hidden: true });
  el.status.after(el.error);
  el.filter.addEventListener("input", render);
  replace(el.table, h("caption", {}, "Loading the zoo…"));
  zooIndex()
    .then((list) => {
      architectures = list;
      render();
      let served = null;
      store.subscribe((st) => {
        // "Served here as" follows the models as they load; redrawn only when it changes (keeps focus).
        const now = JSON.stringify((st.models || []).map((m) => [m.name, m.architecture, m.status]));
        if (now !== served) render((served = now));
      });
    })
    .catch((error) => showError(el.error, error));
}

export function show() {}
