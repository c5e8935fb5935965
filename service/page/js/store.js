// GET /models, shared by every view and kept fresh: every 2 s while a model is loading or none is
// ready (`make serve` publishes them one by one), every 10 s after that, never while the tab is hidden.

import { getJSON } from "./api.js";

const FAST_MS = 2000;
const SLOW_MS = 10000;

class ModelStore {
  constructor() {
    this.models = null; // null until the first answer
    this.error = null;
    this.updated = null;
    this.listeners = new Set();
    this.timer = null;
    this.inflight = null;
  }

  subscribe(fn) {
    this.listeners.add(fn);
    if (this.models || this.error) fn(this);
    return () => this.listeners.delete(fn);
  }

  ready() {
    return (this.models || []).filter((m) => m.status === "READY");
  }

  get(name) {
    return (this.models || []).find((m) => m.name === name) || null;
  }

  settled() {
    const models = this.models || [];
    return models.length > 0 && models.some((m) => m.status === "READY") && !models.some((m) => m.status === "LOADING");
  }

  refresh() {
    if (!this.inflight) {
      this.inflight = getJSON("/models")
        .then((body) => {
          this.models = body.models;
          this.error = null;
        })
        .catch((error) => {
          this.error = error;
        })
        .finally(() => {
          this.inflight = null;
          this.updated = new Date();
          this.listeners.forEach((fn) => fn(this));
          this.schedule();
        });
    }
    return this.inflight;
  }

  schedule() {
    clearTimeout(this.timer);
    // Hidden tab: nothing to show. 401: the key prompt was cancelled; asking again every 2 s would nag.
    if (document.hidden || this.error?.status === 401) return;
    this.timer = setTimeout(() => this.refresh(), this.settled() ? SLOW_MS : FAST_MS);
  }

  start() {
    document.addEventListener("visibilitychange", () => (document.hidden ? clearTimeout(this.timer) : this.refresh()));
    return this.refresh();
  }
}

export const store = new ModelStore();
