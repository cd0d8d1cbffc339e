// Sweedle Studio: wires the panels to the API and the progress feed.
import "./studio.css";
import { ApiError, dracoPath, getJson, key, whenUnauthorized } from "./api.js";
import { AssetPanel } from "./asset.js";
import { Feed } from "./feed.js";
import { Jobs } from "./jobs.js";
import { Library } from "./library.js";
import { MakeForm } from "./make.js";
import { Viewer } from "./viewer.js";

const HEALTH_EVERY_MS = 15_000;

const viewer = makeViewer();

/** The viewer, or a stand-in saying why there is none (no WebGL): the rest of the page works. */
function makeViewer() {
  try {
    return new Viewer(document.getElementById("canvas"), dracoPath);
  } catch (problem) {
    document.getElementById("stage-note").textContent =
      `This browser cannot show 3D here (${problem.message}); downloads still work.`;
    const nothing = () => 0;
    return { parse: async () => null, show: nothing, clear: nothing, fit: nothing, resize: nothing, setShading: nothing, setWireframe: nothing };
  }
}
const panel = new AssetPanel(viewer);
const jobs = new Jobs(document.getElementById("jobs"), document.getElementById("queue-summary"), {
  onReady: (assetId) => openAsset(assetId),
});
const make = new MakeForm(document.getElementById("make-form"), {
  onSubmitted: (submitted, name) => jobs.submitted(submitted, name),
});
const library = new Library({
  onOpen: (id) => openAsset(id),
  onEdit: (asset) => edit(asset),
  onError: (problem) => report(problem),
});
const feed = new Feed({
  onEvent: (event) => jobs.event(event),
  onState: (state) => {
    document.body.dataset.feed = state;
  },
  onConnected: () => jobs.reload().catch(report),
  onRefused: () => askForKey("The progress feed refused the key; enter another."),
});

// --- views ---------------------------------------------------------------------------------

function showView(name) {
  for (const tab of document.querySelectorAll(".tab")) {
    tab.setAttribute("aria-pressed", String(tab.dataset.view === name));
  }
  document.getElementById("view-make").hidden = name !== "make";
  document.getElementById("view-library").hidden = name !== "library";
  if (name === "library") library.show().catch(report);
  else viewer.resize();
}

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => showView(tab.dataset.view));
}

async function openAsset(assetId) {
  showView("make");
  try {
    await panel.open(assetId);
  } catch (problem) {
    report(problem);
  }
}

// --- the key -------------------------------------------------------------------------------

const keyDialog = document.getElementById("key-dialog");
const keyButton = document.getElementById("key-button");

function askForKey(message = "") {
  const error = document.getElementById("key-error");
  error.textContent = message;
  error.hidden = !message;
  keyButton.hidden = false;
  if (!keyDialog.open) keyDialog.showModal();
}

whenUnauthorized((sent) => askForKey(sent ? "The key was not accepted; enter another." : ""));
keyButton.addEventListener("click", () => askForKey());
document.getElementById("key-form").addEventListener("submit", (event) => {
  const given = document.getElementById("key-input").value.trim();
  if (!given) {
    event.preventDefault();
    return;
  }
  const changed = key.get() !== given;
  key.set(given);
  document.getElementById("key-input").value = "";
  if (changed) {
    // Another key may see other jobs and assets: nothing of the last one's stays.
    jobs.clear();
    panel.reset();
  }
  start();
});

// --- editing -------------------------------------------------------------------------------

const editDialog = document.getElementById("edit-dialog");
const editForm = document.getElementById("edit-form");
const confirmDialog = document.getElementById("confirm-dialog");
let editing = null;

function edit(asset) {
  editing = asset;
  editForm.elements.name.value = asset.name;
  editForm.elements.tags.value = (asset.tags || []).map((t) => t.name ?? t).join(", ");
  document.getElementById("edit-error").hidden = true;
  editDialog.showModal();
}

document.getElementById("edit-cancel").addEventListener("click", () => editDialog.close());
editForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const tags = editForm.elements.tags.value
    .split(",")
    .map((tag) => tag.trim())
    .filter(Boolean);
  try {
    await getJson(`/api/assets/${editing.id}`, {
      method: "PATCH",
      json: { name: editForm.elements.name.value.trim(), tags },
    });
    editDialog.close();
    await library.show();
  } catch (problem) {
    showError("edit-error", problem.message);
  }
});

document.getElementById("delete").addEventListener("click", () => {
  document.getElementById("confirm-text").textContent =
    `“${editing.name}”, its files and every export go. This cannot be undone.`;
  confirmDialog.returnValue = "";
  confirmDialog.showModal();
});
confirmDialog.addEventListener("close", async () => {
  if (confirmDialog.returnValue !== "delete") return;
  try {
    await getJson(`/api/assets/${editing.id}`, { method: "DELETE" });
    editDialog.close();
    if (panel.asset?.id === editing.id) panel.reset();
    await library.show();
  } catch (problem) {
    showError("edit-error", problem.message);
  }
});

// --- health --------------------------------------------------------------------------------

const healthDialog = document.getElementById("health-dialog");
document.getElementById("health-button").addEventListener("click", () => healthDialog.showModal());

async function checkHealth() {
  let health;
  try {
    health = await getJson("/health");
  } catch (problem) {
    health = { status: "unreachable", problem: problem.message };
  }
  showHealth(health);
  return health;
}

function showHealth(health) {
  const generation = health.generation || {};
  const state = generation.state || (health.ready ? "ready" : health.status);
  document.getElementById("health-dot").dataset.state = state;
  document.getElementById("health-summary").textContent = `generation ${state}`;
  const rows = [
    ["Service", health.status],
    ["Generation", [state, generation.detail].filter(Boolean).join(": ")],
    ["Model", (generation.running || []).join(", ") || "–"],
    ["Fallback", generation.fallback || "none"],
    ["Background remover", health.preprocessing?.background_remover || "–"],
    ["Waiting jobs", depth(health.queue?.queue_depth)],
    ["Running jobs", String(health.queue?.active_jobs ?? "–")],
    ["Text to 3D", health.text_to_image?.state || "–"],
  ];
  if (health.exposure?.warning) rows.push(["Warning", health.exposure.warning]);
  const facts = document.getElementById("health-facts");
  facts.replaceChildren();
  for (const [term, value] of rows) {
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = value ?? "–";
    facts.append(dt, dd);
  }
  const dashboard = document.getElementById("dashboard-link");
  dashboard.href = `${location.protocol}//${location.hostname}:8265/`;
  make.offer(health);
}

function depth(queueDepth) {
  if (!queueDepth) return "–";
  return String(Object.values(queueDepth).reduce((a, b) => a + b, 0));
}

// --- start ---------------------------------------------------------------------------------

function showError(id, message) {
  const node = document.getElementById(id);
  node.textContent = message;
  node.hidden = false;
}

function report(problem) {
  if (problem instanceof ApiError && problem.status === 401) return; // the key dialog asks
  const note = document.getElementById("stage-note");
  note.hidden = false;
  note.textContent = problem.message;
}

/** /health answers anyone, and gives its details only to a valid key (or with keys off):
 * so the page learns whether it needs a key, or a better one, without a refused request. */
async function start() {
  const health = await checkHealth();
  if (health.status === "unreachable") return;
  if (!health.generation) {
    const sent = Boolean(key.get());
    key.clear();
    askForKey(sent ? "The key was not accepted; enter another." : "");
    return;
  }
  keyButton.hidden = !key.get();
  feed.start(); // its first message reads the jobs (see Feed.onConnected)
  document.body.dataset.ready = "true";
}

setInterval(async () => {
  if (keyDialog.open) return;
  if (!document.body.dataset.ready) {
    start().catch(report); // not started yet (the service was unreachable): try again
    return;
  }
  const health = await checkHealth();
  if (health.status !== "unreachable" && !health.generation && key.get()) {
    key.clear(); // the key was revoked while the page was open
    delete document.body.dataset.ready;
    askForKey("The key is no longer accepted; enter another.");
  }
}, HEALTH_EVERY_MS);
start();
