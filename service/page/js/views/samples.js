// A model's sample images (real held-out test images, listed in its card): GET /models/{name}/samples, each
// image fetched with the API key and shown from a blob: URL.

import { getBlob, getJSON } from "../api.js";
import { h } from "../dom.js";

const lists = new Map();

export function samplesOf(name) {
  if (!lists.has(name)) {
    const url = `/models/${encodeURIComponent(name)}/samples`;
    lists.set(
      name,
      getJSON(url).then((body) => (Array.isArray(body) ? body : body.samples || [])),
    );
    lists.get(name).catch(() => lists.delete(name));
  }
  return lists.get(name);
}

const blobs = new Map(); // url -> Promise<Blob>

/** A sample image (fetched once, with the API key). */
export function sampleBlob(url) {
  if (!blobs.has(url)) blobs.set(url, getBlob(url));
  return blobs.get(url);
}

/** A row of buttons, one per sample (thumbnail and label); onPick(blob, filename). `.ready`: thumbnails loaded. */
export function sampleStrip(samples, title, onPick) {
  const loading = [];
  const buttons = samples.map((sample) => {
    const label = sample.label ?? "no label";
    const filename = sample.file.split("/").pop();
    const img = h("img", { alt: "", width: 48, height: 48 });
    const shown = sampleBlob(sample.url).then(
      (blob) => (img.src = URL.createObjectURL(blob)),
      () => img.remove(),
    );
    loading.push(shown);
    return h(
      "button",
      {
        type: "button",
        class: "sample",
        "aria-label": `sample ${filename}, labelled ${label}`,
        dataset: { file: filename, label },
        onclick: async () => onPick(await sampleBlob(sample.url), filename),
      },
      img,
      h("span", { "aria-hidden": "true" }, label),
    );
  });
  const strip = h(
    "div",
    { class: "sample-strip", role: "group", "aria-label": title },
    h("p", { class: "strip-title" }, title),
    buttons,
  );
  strip.ready = Promise.allSettled(loading); // every thumbnail fetched (or failed)
  return strip;
}
