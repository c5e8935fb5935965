// An occlusion map drawn over the input the model sees, in the input's own pixels (the SVG's viewBox), so cells
// and image line up whatever the size shown. One cell per patch position: it spans from halfway to the
// neighbouring patches' centres (the outer cells reach the border), so the cells tile the input and each sits
// where its patch was centred. Red: the class's probability drops with the patch there; blue: it rises; the
// opacity says how much, relative to the largest change. Nothing relies on colour alone: the legend has numbers,
// each cell's number shows on hover and on focus (arrow keys), in every cell on request, and as a table.

import { h, s } from "./dom.js";
import { percent } from "./format.js";

const RED = "#c0262d";
const BLUE = "#1f5fae";
const MAX_OPACITY = 0.8;
const FLOOR = 0.01; // a map whose changes are all under one point is drawn faint, not blown up

/** A drop of probability in percentage points, as the API's `drop` has it: "12.3", "-0.4" (a rise). */
export function points(drop) {
  const value = (drop * 100).toFixed(1);
  return value === "-0.0" ? "0.0" : value;
}

/** [start, end) of each cell along one axis: halfway between neighbouring patch centres, the outer ones to the border. */
function spans(starts, patch, size) {
  const centres = starts.map((v) => v + patch / 2);
  return centres.map((c, i) => [
    i === 0 ? 0 : (centres[i - 1] + c) / 2,
    i === centres.length - 1 ? size : (c + centres[i + 1]) / 2,
  ]);
}

function largest(drop) {
  let best = { row: 0, col: 0, value: -Infinity };
  drop.forEach((cells, row) =>
    cells.forEach((value, col) => {
      if (value > best.value) best = { row, col, value };
    }),
  );
  return best;
}

function legend(scale) {
  const bar = h("span", {
    class: "occ-bar",
    "aria-hidden": "true",
    style: { background: `linear-gradient(to right, ${BLUE}, #ffffff00 50%, ${RED})` },
  });
  return h(
    "div",
    { class: "occ-legend" },
    h("span", { class: "num" }, `rises ${points(scale)}`),
    bar,
    h("span", { class: "num" }, `drops ${points(scale)}`),
    h(
      "span",
      { class: "occ-legend-text" },
      "Percentage points of the class's probability with the patch there. Red: it drops (the model looks there); " +
        "blue: it rises; the stronger the colour, the larger the change. The numbers are drops (negative: a rise).",
    ),
  );
}

function table(answer) {
  return h(
    "details",
    { class: "occ-table" },
    h("summary", {}, "The map's numbers as a table"),
    h(
      "div",
      { class: "scroll", tabindex: 0, role: "region", "aria-label": "Occlusion map as a table" },
      h(
        "table",
        {},
        h(
          "caption",
          {},
          `Drop of the probability of "${answer.label}" in percentage points (negative: it rises) with the ` +
            `${answer.patch}×${answer.patch} patch's top-left corner at row y, column x of the input.`,
        ),
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, "y \\ x"),
            answer.x.map((x) => h("th", { scope: "col", class: "num" }, x)),
          ),
        ),
        h(
          "tbody",
          {},
          answer.drop.map((cells, row) =>
            h(
              "tr",
              {},
              h("th", { scope: "row", class: "num" }, answer.y[row]),
              cells.map((d) => h("td", { class: "num" }, points(d))),
            ),
          ),
        ),
      ),
    ),
  );
}

/**
 * The map over `image` (a data: URL of the input as the model sees it, `width` x `height` pixels, or null) for an
 * answer of POST /models/{name}/occlusion. Returns a figure with the map, its legend, a readout and the table.
 */
export function occlusionFigure(answer, { image, width, height }) {
  const rows = spans(answer.y, answer.patch, height);
  const cols = spans(answer.x, answer.patch, width);
  const scale = Math.max(FLOOR, ...answer.drop.flat().map(Math.abs));
  const best = largest(answer.drop);
  const where = (row, col) =>
    `rows ${answer.y[row]}–${answer.y[row] + answer.patch - 1}, columns ${answer.x[col]}–${answer.x[col] + answer.patch - 1}`;
  const describe = (row, col) => {
    const d = answer.drop[row][col];
    return (
      `Patch over ${where(row, col)}: ${d >= 0 ? "drops" : "rises"} ${points(Math.abs(d))} points ` +
      `(${percent(answer.baseline)} → ${percent(answer.baseline - d)})`
    );
  };
  const cells = s("g", { class: "cells" });
  const numbers = s("g", { class: "numbers" });
  const fontSize = Math.min(...cols.map(([a, b]) => (b - a) / 1.9), ...rows.map(([a, b]) => (b - a) * 0.6));
  answer.drop.forEach((line, row) =>
    line.forEach((d, col) => {
      const [y0, y1] = rows[row];
      const [x0, x1] = cols[col];
      const strength = Math.min(1, Math.abs(d) / scale) * MAX_OPACITY;
      cells.append(
        s(
          "rect",
          {
            class: "cell",
            x: x0,
            y: y0,
            width: x1 - x0,
            height: y1 - y0,
            fill: d >= 0 ? RED : BLUE,
            "fill-opacity": strength.toFixed(3),
            dataset: { row, col },
          },
          s("title", {}, describe(row, col)),
        ),
      );
      numbers.append(
        s(
          "text",
          { x: (x0 + x1) / 2, y: (y0 + y1) / 2, "font-size": fontSize.toFixed(2) },
          (d * 100).toFixed(0).replace(/^-0$/, "0"),
        ),
      );
    }),
  );
  const cursor = s("rect", { class: "cursor", width: 0, height: 0 });
  const patch = s("rect", { class: "patch", width: answer.patch, height: answer.patch });
  const label = `The occlusion map of "${answer.label}", ${answer.rows} by ${answer.cols} patch positions`;
  const svg = s(
    "svg",
    {
      class: "occ-map",
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      tabindex: 0,
      "aria-label":
        `${label}, over the input as the model sees it. The largest drop, ${points(best.value)} points, is with the ` +
        `patch over ${where(best.row, best.col)}. Arrow keys read each position; the table below has every number.`,
      dataset: { rows: answer.rows, cols: answer.cols },
    },
    image
      ? s("image", { href: image, x: 0, y: 0, width, height, preserveAspectRatio: "none" })
      : s("rect", { class: "no-image", width, height }),
    cells,
    numbers,
    patch,
    cursor,
  );
  const readout = h(
    "p",
    { class: "occ-readout", "aria-live": "polite" },
    "Hover over the map, or focus it and use the arrow keys, to read each position's number.",
  );
  let at = { row: best.row, col: best.col };
  function point(row, col) {
    at = { row, col };
    const [y0, y1] = rows[row];
    const [x0, x1] = cols[col];
    Object.entries({ x: x0, y: y0, width: x1 - x0, height: y1 - y0 }).forEach(([k, v]) => cursor.setAttribute(k, v));
    patch.setAttribute("x", answer.x[col]);
    patch.setAttribute("y", answer.y[row]);
    svg.classList.add("pointing");
    readout.textContent = `${describe(row, col)}. The dashed square is the patch.`;
  }
  svg.addEventListener("pointermove", (event) => {
    const cell = event.target.closest("rect.cell");
    if (cell) point(Number(cell.dataset.row), Number(cell.dataset.col));
  });
  svg.addEventListener("focus", () => point(at.row, at.col));
  svg.addEventListener("blur", () => svg.classList.remove("pointing"));
  svg.addEventListener("pointerleave", () => document.activeElement !== svg && svg.classList.remove("pointing"));
  svg.addEventListener("keydown", (event) => {
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (!(event.key in moves)) return;
    event.preventDefault();
    const [dr, dc] = moves[event.key];
    point(Math.max(0, Math.min(answer.rows - 1, at.row + dr)), Math.max(0, Math.min(answer.cols - 1, at.col + dc)));
  });
  const toggle = h("input", { type: "checkbox", onchange: () => svg.classList.toggle("show-numbers", toggle.checked) });
  return h(
    "figure",
    { class: "occlusion", dataset: { rows: answer.rows, cols: answer.cols } },
    svg,
    h("figcaption", {}, legend(scale)),
    readout,
    h("label", { class: "check" }, toggle, " Show each position's number on the map"),
    table(answer),
  );
}
