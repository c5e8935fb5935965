// The image the Playground was last given (drawn, dropped, chosen, pasted or a sample). Compare can take it and
// the Explorer shows a layer's feature maps for it; it lives here so those views need not load the Playground.

let current = null;
let given = 0;

/** {blob, filename, source, url, id} of the last image given, or null. */
export function currentImage() {
  return current;
}

export function setCurrentImage(blob, filename, source) {
  if (current?.url) URL.revokeObjectURL(current.url);
  current = { blob, filename, source, url: URL.createObjectURL(blob), id: ++given };
  return current;
}
