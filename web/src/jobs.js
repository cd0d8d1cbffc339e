// The queue panel: the service's queue in numbers and this key's jobs, each with its stage,
// a progress bar, its step message, a cancel button, and its end (open it, or why it failed).
import { ApiError, getJson } from "./api.js";

const FINAL = new Set(["completed", "failed", "cancelled"]);
const STAGES = {
  queued: "waiting",
  preprocessing: "preparing the photo",
  generating: "generating",
  waiting_for_gpu: "waiting for a GPU",
  exporting: "exporting",
  completed: "done",
  failed: "failed",
  cancelled: "cancelled",
};
const SHOWN = 20; // finished jobs kept in the list

export class Jobs {
  constructor(list, summary, { onReady }) {
    this.list = list;
    this.summary = summary;
    this.onReady = onReady;
    this.jobs = new Map(); // job id -> what is known of it
    this.names = new Map(); // asset id -> name
    this.watched = new Set(); // jobs this page submitted: opened when ready
    this.items = new Map(); // job id -> its list item, updated in place (focus stays put)
  }

  /** Forget every job shown (another key is in use). */
  clear() {
    this.jobs.clear();
    this.names.clear();
    this.watched.clear();
    this.draw();
  }

  /** The jobs still running, read again (at start and after the feed reconnects). */
  async reload() {
    const active = await getJson("/api/generation/queue/jobs");
    for (const job of active) this.update(job);
    for (const [id, job] of this.jobs) {
      if (!FINAL.has(job.status) && !active.some((a) => a.job_id === id)) {
        await this.refresh(id); // ended while the feed was away
      }
    }
  }

  async refresh(id) {
    try {
      const job = await getJson(`/api/generation/jobs/${id}`);
      this.update({ job_id: job.id, ...job }, job.status === "completed" ? "asset_ready" : null);
    } catch (problem) {
      if (!(problem instanceof ApiError && problem.status === 404)) throw problem;
      this.jobs.delete(id);
      this.draw();
    }
  }

  submitted(submitted, name) {
    if (name) this.names.set(submitted.asset_id, name);
    // The feed may have told more already (then that stands); an Idempotency-Key replay may
    // name a job that has ended.
    const known = this.jobs.has(submitted.job_id) && !FINAL.has(submitted.status);
    const { job_id, asset_id, status, stage } = submitted;
    this.update(known ? { job_id, asset_id } : { job_id, asset_id, status, stage });
    const job = this.jobs.get(submitted.job_id);
    if (job.status === "completed") this.onReady(job.asset_id);
    else this.watched.add(submitted.job_id);
  }

  /** A feed event. */
  event(event) {
    if (event.type === "queue_status") {
      this.status(event);
    } else if (event.job_id && event.type !== "webhook_attempt") {
      this.update(event, event.type);
    }
  }

  status(queue) {
    const waiting = Object.values(queue.queue_depth || {}).reduce((a, b) => a + b, 0);
    const stages = queue.by_stage || {};
    const high = queue.queue_depth?.high || 0;
    this.summary.textContent =
      `${waiting} waiting${high ? ` (${high} high)` : ""} · ` +
      `${stages.generating || 0} generating · ${stages.exporting || 0} exporting`;
  }

  update(change, type = null) {
    const id = change.job_id;
    const known = this.jobs.get(id) || { id, asset_id: change.asset_id, progress: 0 };
    const final = FINAL.has(known.status);
    if (final && !type?.match(/^(asset_ready|job_failed|job_cancelled)$/) && !FINAL.has(change.status)) {
      return; // a late report (or an older REST answer) never undoes a job's end
    }
    const job = { ...known, ...pick(change) };
    if (type === "asset_ready") Object.assign(job, { status: "completed", stage: "completed" });
    if (type === "job_cancelled") Object.assign(job, { status: "cancelled", stage: "cancelled" });
    if (type === "job_failed") Object.assign(job, { status: "failed", stage: "failed" });
    // Events can pass each other; progress never moves back within a job.
    if (known.progress > job.progress && !FINAL.has(job.status)) job.progress = known.progress;
    this.jobs.set(id, job);
    if (!this.names.has(job.asset_id)) this.lookUpName(job.asset_id);
    this.draw();
    if (type === "asset_ready" && this.watched.delete(id)) this.onReady(job.asset_id);
  }

  async lookUpName(assetId) {
    this.names.set(assetId, "");
    try {
      this.names.set(assetId, (await getJson(`/api/assets/${assetId}`)).name);
      this.draw();
    } catch {
      // deleted meanwhile, or not ours: the id stays the label
    }
  }

  async cancel(id) {
    try {
      await getJson(`/api/generation/jobs/${id}`, { method: "DELETE" });
    } catch (problem) {
      const job = this.jobs.get(id);
      if (job) job.note = problem.message;
      this.draw();
    }
  }

  /** The list: running jobs first, then the latest ended ones; items are kept and updated
   * in place, so a focused button keeps its focus and a click is never lost to a redraw. */
  draw() {
    const ordered = [...this.jobs.values()].reverse();
    const running = ordered.filter((job) => !FINAL.has(job.status));
    const ended = ordered.filter((job) => FINAL.has(job.status)).slice(0, SHOWN);
    const shown = [...running, ...ended];
    const ids = new Set(shown.map((job) => job.id));
    for (const [id, item] of this.items) {
      if (!ids.has(id)) {
        item.remove();
        this.items.delete(id);
      }
    }
    shown.forEach((job, index) => {
      const item = this.items.get(job.id) || this.item(job);
      this.fill(item, job);
      if (this.list.children[index] !== item) this.list.insertBefore(item, this.list.children[index] || null);
    });
  }

  item(job) {
    const item = element("li", "job", "");
    item.dataset.jobId = job.id;
    const title = element("div", "job-title", "");
    title.append(element("span", "job-name", ""), " ", element("span", "stage", ""));
    const bar = document.createElement("progress");
    bar.max = 1;
    const cancel = element("button", "ghost small cancel", "Cancel");
    cancel.type = "button";
    cancel.addEventListener("click", () => this.cancel(job.id));
    const open = element("button", "ghost small open", "Open");
    open.type = "button";
    open.addEventListener("click", () => this.onReady(this.jobs.get(job.id).asset_id));
    const actions = element("div", "job-actions", "");
    actions.append(cancel, open);
    item.append(title, bar, element("div", "message", ""), element("div", "message error note", ""), actions);
    this.items.set(job.id, item);
    return item;
  }

  fill(item, job) {
    const failed = job.status === "failed";
    const name = this.names.get(job.asset_id) || job.asset_id.slice(0, 8);
    item.className = `job ${job.status}`;
    item.dataset.status = job.status;
    item.querySelector(".job-name").textContent = name;
    item.querySelector(".stage").textContent = STAGES[job.stage] || job.stage || "";
    const bar = item.querySelector("progress");
    bar.value = job.progress || 0;
    bar.setAttribute("aria-label", `${name}: ${Math.round((job.progress || 0) * 100)}%`);
    const message = item.querySelector(".message");
    message.className = failed ? "message error" : "message";
    message.textContent = failed ? job.error || job.message || "failed" : job.message || "";
    const note = item.querySelector(".note");
    note.textContent = job.note || "";
    note.hidden = !job.note;
    const cancel = item.querySelector(".cancel");
    cancel.hidden = FINAL.has(job.status);
    cancel.disabled = Boolean(job.cancel_requested);
    cancel.textContent = job.cancel_requested ? "Cancelling…" : "Cancel";
    item.querySelector(".open").hidden = job.status !== "completed";
  }
}

function pick(change) {
  const fields = ["asset_id", "status", "stage", "progress", "message", "error", "priority"];
  const picked = {};
  for (const field of [...fields, "cancel_requested"]) {
    if (change[field] !== undefined && change[field] !== null) picked[field] = change[field];
  }
  return picked;
}

export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text) node.textContent = text;
  return node;
}
