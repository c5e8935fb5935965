// The one way the page talks to the server: same-origin fetch, the service's error shape turned into
// ApiError, and the API key (asked for on a 401, kept in sessionStorage: this tab only).

const KEY_STORAGE = "cnnserve.apiKey";

export class ApiError extends Error {
  constructor(status, body) {
    const known = body && typeof body === "object" && "error" in body;
    super(known ? body.error : `the server answered ${status}`);
    this.status = status;
    this.code = known ? body.code : null;
    this.details = known ? body.details : null;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
  keyListeners.forEach((fn) => fn(null));
}

const keyListeners = [];
export function onKeyChange(fn) {
  keyListeners.push(fn);
}

let pendingPrompt = null;

/** Ask for the key once, however many requests got a 401 at the same time. Resolves to the key or null. */
function promptForKey(refused) {
  if (!pendingPrompt) {
    pendingPrompt = new Promise((resolve) => {
      const dialog = document.getElementById("key-dialog");
      const input = document.getElementById("key-input");
      document.getElementById("key-error").hidden = !refused;
      input.value = "";
      dialog.addEventListener(
        "close",
        () => {
          pendingPrompt = null;
          const key = dialog.returnValue === "ok" ? input.value.trim() : "";
          if (key) {
            sessionStorage.setItem(KEY_STORAGE, key);
            keyListeners.forEach((fn) => fn(key));
          }
          resolve(key || null);
        },
        { once: true },
      );
      dialog.showModal();
    });
  }
  return pendingPrompt;
}

async function send(path, options, asked = false) {
  const headers = new Headers(options.headers || {});
  const key = apiKey();
  if (key) headers.set("X-API-Key", key);
  const startedAt = performance.now();
  const response = await fetch(path, { ...options, headers });
  response.startedAt = startedAt; // the round trip of the attempt that answered, without the key prompt
  if (response.status === 401) {
    const given = await promptForKey(asked || Boolean(key));
    if (given) return send(path, options, true);
  }
  if (!response.ok) {
    let body = null;
    try {
      body = await response.json();
    } catch {
      // not JSON (a proxy's page?): the status says enough
    }
    throw new ApiError(response.status, body);
  }
  return response;
}

export async function getJSON(path) {
  return (await send(path, {})).json();
}

export async function getText(path) {
  return (await send(path, {})).text();
}

export async function getBlob(path) {
  return (await send(path, {})).blob();
}

/** POST an image as multipart (field "file"), like `curl -F file=@image.png`. Returns {json, roundTripMs}. */
export async function postImage(path, blob, filename) {
  const form = new FormData();
  form.append("file", blob, filename);
  const response = await send(path, { method: "POST", body: form });
  const json = await response.json();
  return { json, roundTripMs: performance.now() - response.startedAt };
}

/** Query string from an object, skipping null/undefined values. */
export function query(params) {
  const entries = Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== "");
  return entries.length ? "?" + new URLSearchParams(entries).toString() : "";
}
