// The REST API as the page calls it: the path the page is served under, the key (kept in
// localStorage, cleared on a 401), JSON errors as ApiError, files as blob URLs (an <img> or a
// link cannot send the key's header).

const KEY_ITEM = "sweedle.apiKey";

/** The path the app is served under ("" at the server's root, "/sweedle" under a prefix). */
export const root = document.querySelector('meta[name="sweedle-root"]').content;
export const dracoPath = document.querySelector('meta[name="sweedle-draco"]').content;

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export const key = {
  get: () => localStorage.getItem(KEY_ITEM) || "",
  set: (value) => localStorage.setItem(KEY_ITEM, value),
  clear: () => localStorage.removeItem(KEY_ITEM),
};

/** Called when the server answers 401 (with whether a key was sent): the page asks for one. */
let onUnauthorized = () => {};
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

/** A path the API gave (it starts with the app's root) or one of ours (`/api/...`); never
 * anything off this origin, which would carry the key elsewhere. */
export function url(path) {
  if (!path.startsWith("/") || path.startsWith("//")) throw new Error(`not a path of this server: ${path}`);
  return root && path.startsWith(root + "/") ? path : root + path;
}

function headers(extra = {}) {
  const given = key.get();
  return given ? { "X-API-Key": given, ...extra } : extra;
}

async function send(path, { method = "GET", json, form, headers: extra } = {}) {
  const sent = key.get();
  const init = { method, headers: headers(extra) };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers["Content-Type"] = "application/json";
  } else if (form !== undefined) {
    init.body = form;
  }
  const response = await fetch(url(path), init);
  if (response.ok) return response;
  let body = {};
  try {
    body = await response.json();
  } catch {
    // not JSON: the status says it
  }
  if (response.status === 401 && key.get() === sent) {
    // Only the key this request sent is forgotten: one entered meanwhile stays.
    key.clear();
    onUnauthorized(Boolean(sent));
  }
  const detail = typeof body.detail === "string" ? body.detail : describe(body.detail);
  throw new ApiError(response.status, body.error, detail);
}

function describe(detail) {
  if (!Array.isArray(detail)) return "";
  return detail.map((item) => `${(item.loc || []).slice(1).join(".")}: ${item.msg}`).join("; ");
}

/** The answer's JSON; null for 204 No Content (a DELETE). */
export async function getJson(path, options) {
  const response = await send(path, options);
  return response.status === 204 ? null : response.json();
}

/** A stored file (a model, a thumbnail, a bundle), its bytes through this server: never a
 * redirect to the store, which this page's policy would block and where the key's header
 * would follow. */
export function file(path) {
  return send(`${path}${path.includes("?") ? "&" : "?"}redirect=false`);
}

export async function blobUrl(path) {
  return URL.createObjectURL(await (await file(path)).blob());
}

export { send };

/** 32 random hex characters; crypto.randomUUID needs a secure context, this does not. */
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The file name a Content-Disposition header gives, or ``fallback``. */
export function fileName(response, fallback) {
  const given = response.headers.get("content-disposition") || "";
  const star = /filename\*=UTF-8''([^;]+)/i.exec(given);
  if (star) return decodeURIComponent(star[1]);
  const plain = /filename="?([^";]+)"?/i.exec(given);
  return plain ? plain[1] : fallback;
}
