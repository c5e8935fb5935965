// A compact drawing of a network: one box per block, left to right; a box's height is the block's spatial
// size (H of its output, linear), its width the channels (log scale). Boxes are buttons: selecting one
// calls onSelect(name, call, type); arrow keys move between them (one tab stop for the whole drawing).

import { s } from "./dom.js";
import { human, int, shape } from "./format.js";

const MAX_BOXES = 32; // compact: the finest level that fits, so ResNet-18 shows its 8 residual blocks
const BOX_AREA = 120; // px for the tallest box
const GAP = 8;
const CHAR_WIDTH = 6.2; // px of an 11 px label character, for the room the slanted labels need
const MIN_WIDTH = 640; // a small network is drawn up to 3x wider, so that its boxes can be told apart

/**
 * The API's name of each row (the views take them): a module called more than once (ResNet's shared ReLU) has one
 * row per call, all with its name; the k-th from the second on is `name#k`.
 */
export function callNames(rows) {
  const seen = new Map();
  return rows.map((row) => {
    const k = (seen.get(row.name) || 0) + 1;
    seen.set(row.name, k);
    return k === 1 ? row.name : `${row.name}#${k}`;
  });
}

function spatial(dims) {
  return dims.length >= 3 ? dims[dims.length - 1] : 1;
}

function channels(dims) {
  return dims.length ? dims[0] : 1;
}

/** Rows that change something: parameters, MACs or the shape (activations and dropouts are left out). */
function meaningful(rows, inputShape) {
  let previous = shape(inputShape);
  return rows.filter((row) => {
    const current = shape(row.output_shape);
    const keep = row.params > 0 || row.macs > 0 || current !== previous;
    previous = current;
    return keep;
  });
}

/**
 * The finest level that still fits: the leaves, else the deepest block level with at most MAX_BOXES boxes,
 * else depth 1. `depths` is the summary's {depth: rows}. Returns {depth (null = leaves), rows}.
 */
export function drawingLevel(record) {
  const levels = [[null, record.layers]];
  const depths = Object.keys(record.depths || {})
    .map(Number)
    .sort((a, b) => b - a);
  for (const d of depths) levels.push([d, record.depths[d]]);
  const boxesOf = (rows) => {
    const calls = callNames(rows);
    return meaningful(
      rows.map((row, i) => ({ ...row, call: calls[i] })),
      record.input_shape,
    );
  };
  for (const [depth, rows] of levels) {
    const boxes = boxesOf(rows);
    if (boxes.length <= MAX_BOXES) return { depth, rows: boxes };
  }
  const [depth, rows] = levels[levels.length - 1];
  return { depth, rows: boxesOf(rows) };
}

function boxSize(dims, maxSpatial, stretch) {
  const height = 4 + (BOX_AREA - 4) * (spatial(dims) / maxSpatial);
  const width = stretch * (4 + 5 * Math.log2(Math.max(1, channels(dims))));
  return { width, height };
}

function describe(row) {
  return `${row.name} (${row.type}): output ${shape(row.output_shape)}, ${int(row.params)} parameters, ${human(row.macs)} MACs`;
}

export function drawArchitecture(record, level, { onSelect, title }) {
  const boxes = [
    { name: "input", type: "input", output_shape: record.input_shape, params: 0, macs: 0, input: true },
    ...level.rows,
  ];
  const maxSpatial = Math.max(...boxes.map((b) => spatial(b.output_shape)));
  const natural = boxes.reduce((sum, b) => sum + boxSize(b.output_shape, maxSpatial, 1).width + GAP, GAP);
  const stretch = Math.min(3, Math.max(1, MIN_WIDTH / natural));
  let x = GAP;
  const sized = boxes.map((box) => {
    const size = boxSize(box.output_shape, maxSpatial, stretch);
    const placed = { box, x, gap: GAP * stretch, ...size };
    x += size.width + GAP * stretch;
    return placed;
  });
  const longest = Math.max(...boxes.map((b) => b.name.length));
  const labelSpace = 16 + longest * CHAR_WIDTH * Math.sin((55 * Math.PI) / 180);
  const width = x + longest * CHAR_WIDTH * Math.cos((55 * Math.PI) / 180) + 8; // the last slanted label
  const height = BOX_AREA + 8 + labelSpace;
  const centre = 4 + BOX_AREA / 2;
  const levelText =
    level.depth === null ? "every layer that has parameters or changes the shape" : `blocks at depth ${level.depth}`;
  const svg = s(
    "svg",
    {
      class: "arch",
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: "group",
      "aria-labelledby": "arch-title arch-desc",
    },
    s("title", { id: "arch-title" }, title),
    s(
      "desc",
      { id: "arch-desc" },
      `${boxes.length - 1} boxes (${levelText}), from the input ${shape(record.input_shape)} to ${shape(boxes[boxes.length - 1].output_shape)}. ` +
        "Height: spatial size; width: channels (log scale). Each box is a button that selects its rows in the table below.",
    ),
  );
  const groups = sized.map(({ box, x: left, gap, width: w, height: h }, i) => {
    const top = centre - h / 2;
    const empty = !box.input && box.params === 0;
    const g = s(
      "g",
      {
        class: `box${box.input ? " input" : ""}${empty ? " empty" : ""}`,
        role: box.input ? "img" : "button",
        "aria-label": box.input ? `input ${shape(box.output_shape)}` : describe(box),
        "aria-pressed": box.input ? null : "false",
        tabindex: box.input ? null : i === 1 ? 0 : -1,
        dataset: box.input ? { name: box.name } : { name: box.name, call: box.call, type: box.type },
      },
      s("title", {}, box.input ? `input ${shape(box.output_shape)}` : describe(box)),
      s("rect", { class: "hit", x: left - gap / 2, y: 0, width: w + gap, height }),
      s("rect", { class: "shape", x: left, y: top, width: w, height: h, rx: 2 }),
      s(
        "text",
        { class: "label", transform: `translate(${left + w / 2 - 3},${BOX_AREA + 14}) rotate(55)` },
        box.input ? "input" : box.name,
      ),
    );
    return g;
  });
  groups.forEach((g) => svg.append(g));
  const buttons = groups.filter((g) => g.getAttribute("role") === "button");

  function select(g, focus) {
    buttons.forEach((b) => {
      b.setAttribute("aria-pressed", String(b === g));
      b.setAttribute("tabindex", b === g ? "0" : "-1");
    });
    if (focus) g.focus();
    onSelect(g.dataset.name, g.dataset.call, g.dataset.type);
  }
  svg.addEventListener("click", (event) => {
    const g = event.target.closest("g.box[role=button]");
    if (g) select(g, false);
  });
  svg.addEventListener("keydown", (event) => {
    const g = event.target.closest("g.box[role=button]");
    if (!g) return;
    const i = buttons.indexOf(g);
    const moves = {
      ArrowRight: i + 1,
      ArrowDown: i + 1,
      ArrowLeft: i - 1,
      ArrowUp: i - 1,
      Home: 0,
      End: buttons.length - 1,
    };
    if (event.key in moves) {
      event.preventDefault();
      const next = buttons[Math.max(0, Math.min(buttons.length - 1, moves[event.key]))];
      buttons.forEach((b) => b.setAttribute("tabindex", b === next ? "0" : "-1"));
      next.focus();
    } else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      select(g, true);
    }
  });
  svg.selectBox = (call) => {
    buttons.forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.call === call)));
  };
  return svg;
}
