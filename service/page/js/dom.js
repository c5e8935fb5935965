// Small DOM helpers: build elements from data, never from HTML strings (so no text can inject markup).

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(el, props, children) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "style")
      Object.assign(el.style, value); // CSSOM: allowed by the page's CSP
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key in el && !(el instanceof SVGElement)) el[key] = value;
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** h("a", {href: "#x", class: "y"}, "text", otherNode) */
export function h(tag, props, ...children) {
  return fill(document.createElement(tag), props, children);
}

/** The same for SVG elements (attributes only). */
export function s(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

export function replace(el, ...children) {
  el.replaceChildren();
  return fill(el, {}, children);
}

/** A table cell with a bar (`fraction` of its track, decoration only) and the number it stands for. */
export function barCell(fraction, kind, text, title) {
  const width = `${(Math.max(0, Math.min(1, fraction)) * 100).toFixed(2)}%`;
  return h(
    "td",
    { class: "num barcell" },
    h(
      "div",
      {},
      h("span", { class: "track", "aria-hidden": "true" }, h("span", { class: `bar ${kind}`, style: { width } })),
      h("span", { title }, text),
    ),
  );
}

/** Show an error (an ApiError or any Error) in an element with role=alert, or hide it with null. */
export function showError(el, error) {
  el.hidden = !error;
  if (!error) return el.replaceChildren();
  const parts = [];
  if (error.status) parts.push(h("strong", {}, `${error.status} ${error.code || ""}`.trim() + ": "));
  parts.push(error.message);
  replace(el, ...parts);
}
