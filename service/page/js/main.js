// The page's entry point: a hash router over six views (#models, #explorer?model=lenet5, …), the shared
// model list, and the API key's status in the header. A view's code is loaded the first time it shows,
// so a first load fetches only what the Models view needs.

import { forgetKey, onKeyChange, apiKey } from "./api.js";
import { store } from "./store.js";

const VIEWS = {
  models: () => import("./views/models.js"),
  explorer: () => import("./views/explorer.js"),
  zoo: () => import("./views/zoo.js"),
  playground: () => import("./views/playground.js"),
  compare: () => import("./views/compare.js"),
  api: null,
};
const TITLES = {
  models: "Models",
  explorer: "Explorer",
  zoo: "The zoo",
  playground: "Playground",
  compare: "Compare",
  api: "API",
};
const started = new Set();

function parseHash() {
  const [name, search] = location.hash.slice(1).split("?");
  return { name: name in VIEWS ? name : "models", params: new URLSearchParams(search || "") };
}

let routing = Promise.resolve();

async function route({ focus }) {
  const { name, params } = parseHash();
  for (const section of document.querySelectorAll("section.view")) section.hidden = section.id !== `view-${name}`;
  for (const link of document.querySelectorAll("nav a[data-view]")) {
    if (link.dataset.view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${TITLES[name]} · cnnserve`;
  if (VIEWS[name]) {
    const view = await VIEWS[name]();
    if (!started.has(name)) {
      started.add(name);
      view.init();
    }
    view.show(params);
  }
  // Moving focus to the new heading tells screen readers the view changed (not on the first load).
  if (focus) document.getElementById(`${name}-title`)?.focus();
}

function keyStatus(key) {
  document.getElementById("key-status").hidden = !key;
}

document.getElementById("key-forget").addEventListener("click", () => {
  forgetKey();
  store.refresh();
});
onKeyChange((key) => {
  keyStatus(key);
  if (key && store.error?.status === 401) store.refresh();
});
keyStatus(apiKey());

// One route at a time, in order: a view's first show waits for its module.
const next = (focus) => (routing = routing.then(() => route({ focus })).catch((error) => console.error(error)));
window.addEventListener("hashchange", () => next(true));
next(false);
store.start();
