// Views keep their state in the URL's hash (#explorer?model=resnet18&depth=2) so a link shows the same thing.

import { query } from "./api.js";

/** Replace the hash without a hashchange (the view already shows what it says). */
export function updateHash(view, params) {
  const hash = `#${view}${query(params)}`;
  if (location.hash !== hash) history.replaceState(null, "", hash);
}

export function link(view, params = {}) {
  return `#${view}${query(params)}`;
}
