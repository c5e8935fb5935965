// Number formats shared by every view; human() is repository/summary.py's _human, so the page and the
// Keras-style text table print the same "15.47G".

const grouping = new Intl.NumberFormat("en-US");

export function int(n) {
  return n === null || n === undefined ? "–" : grouping.format(n);
}

export function human(n) {
  if (n === null || n === undefined) return "–";
  for (const [unit, scale] of [
    ["G", 1e9],
    ["M", 1e6],
    ["K", 1e3],
  ]) {
    if (Math.abs(n) >= scale) return `${(n / scale).toFixed(2)}${unit}`;
  }
  return String(Math.trunc(n));
}

export function mb(bytes) {
  return (bytes / 2 ** 20).toFixed(2);
}

export function size(bytes) {
  if (bytes >= 2 ** 20) return `${(bytes / 2 ** 20).toFixed(1)} MB`;
  if (bytes >= 2 ** 10) return `${(bytes / 2 ** 10).toFixed(1)} KB`;
  return `${bytes} B`;
}

export function shape(dims) {
  return dims && dims.length ? dims.join("×") : "–";
}

export function percent(fraction, digits = 1) {
  return `${(fraction * 100).toFixed(digits)}%`;
}

/** Test top-1 as the cards store it (a percentage, 0-100). */
export function accuracy(value) {
  return value === null || value === undefined ? "–" : `${Number(value).toFixed(1)}%`;
}

export function ms(value) {
  if (value === null || value === undefined) return "–";
  return value < 10 ? `${value.toFixed(2)} ms` : `${value.toFixed(1)} ms`;
}

/** The API's paper record {title, authors, year, url} as {title, byline, url, text}. */
export function paper(value) {
  if (!value) return null;
  const byline = [value.authors, value.year].filter(Boolean).join(", ");
  const text = [value.title, byline && `(${byline})`].filter(Boolean).join(" ");
  return { title: value.title || "", byline, url: value.url || null, text };
}
