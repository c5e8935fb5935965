// A scatter chart in SVG: test top-1 (y, %) against MACs (x, log scale). Each variant has its own marker
// shape (circle fp32, square int8, triangle fp16) and every point carries its model's name, so nothing
// depends on colour; the SVG has a title and a description, and the page shows the numbers as a table.

import { s } from "./dom.js";
import { human } from "./format.js";

function tick(value) {
  return human(value).replace(/\.00(?=[KMG])/, "");
}

const W = 720;
const H = 360;
const M = { left: 56, right: 40, top: 16, bottom: 48 };
// The variants of a model share its MACs: side by side around it rather than on top of each other.
const NUDGE = { int8: -9, fp32: 0, fp16: 9 };
const MARKERS = {
  fp32: (x, y) => s("circle", { cx: x, cy: y, r: 6 }),
  int8: (x, y) => s("rect", { x: x - 5.5, y: y - 5.5, width: 11, height: 11 }),
  fp16: (x, y) => s("path", { d: `M${x},${y - 7} L${x + 7},${y + 5} L${x - 7},${y + 5} Z` }),
};

function legend(x, y) {
  return s(
    "g",
    { class: "legend", transform: `translate(${x},${y})` },
    Object.entries(MARKERS).map(([name, marker], i) =>
      s(
        "g",
        { class: `point ${name}`, transform: `translate(${i * 70},0)` },
        marker(0, 0),
        s("text", { x: 11, y: 4 }, name),
      ),
    ),
  );
}

/** points: [{model, variant, macs, accuracy}]. */
export function accuracyChart(points, { title, description }) {
  const svg = s(
    "svg",
    { class: "scatter", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "chart-title chart-desc" },
    s("title", { id: "chart-title" }, title),
    s("desc", { id: "chart-desc" }, description),
  );
  if (!points.length) return svg;
  const lo = Math.floor(Math.log10(Math.min(...points.map((p) => p.macs))));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...points.map((p) => p.macs)))));
  const accs = points.map((p) => p.accuracy);
  const yLo = Math.max(0, Math.floor(Math.min(...accs) / 10) * 10);
  const yHi = Math.min(100, Math.max(yLo + 10, Math.ceil(Math.max(...accs) / 10) * 10));
  const x = (macs) => M.left + ((Math.log10(macs) - lo) / (hi - lo)) * (W - M.left - M.right);
  const y = (acc) => H - M.bottom - ((acc - yLo) / (yHi - yLo)) * (H - M.top - M.bottom);
  const axes = s("g", { class: "axes" });
  for (let e = lo; e <= hi; e++) {
    axes.append(s("line", { class: "grid", x1: x(10 ** e), x2: x(10 ** e), y1: M.top, y2: H - M.bottom }));
    axes.append(s("text", { x: x(10 ** e), y: H - M.bottom + 16, "text-anchor": "middle" }, tick(10 ** e)));
  }
  for (let a = yLo; a <= yHi; a += 10) {
    axes.append(s("line", { class: "grid", x1: M.left, x2: W - M.right, y1: y(a), y2: y(a) }));
    axes.append(s("text", { x: M.left - 6, y: y(a) + 4, "text-anchor": "end" }, `${a}%`));
  }
  axes.append(
    s(
      "text",
      { x: (M.left + W - M.right) / 2, y: H - 8, "text-anchor": "middle", class: "axis-title" },
      "multiply-adds per image (log scale)",
    ),
  );
  axes.append(
    s(
      "text",
      {
        transform: `translate(14,${(M.top + H - M.bottom) / 2}) rotate(-90)`,
        "text-anchor": "middle",
        class: "axis-title",
      },
      "test top-1",
    ),
  );
  svg.append(axes);
  const labelled = new Set();
  for (const p of points) {
    const g = s(
      "g",
      { class: `point ${p.variant}` },
      s("title", {}, `${p.model} ${p.variant}: ${p.accuracy.toFixed(1)}% at ${human(p.macs)} MACs`),
      MARKERS[p.variant](x(p.macs) + NUDGE[p.variant], y(p.accuracy)),
    );
    if (!labelled.has(p.model)) {
      labelled.add(p.model); // one name per model: its variants sit on the same vertical line
      g.append(s("text", { x: x(p.macs) + 16, y: y(p.accuracy) - 8, class: "point-label" }, p.model));
    }
    svg.append(g);
  }
  svg.append(legend(M.left + 12, M.top + 10));
  return svg;
}
