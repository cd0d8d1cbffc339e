// The viewer panel around one asset: its GLB at a chosen LOD, plain or Draco, with its triangle
// count and file size; its facts, validation report and thumbnail; its downloads.
import { blobUrl, file, fileName, getJson } from "./api.js";
import { element } from "./jobs.js";

const ENGINES = new Set(["unity", "unreal", "godot"]);

export class AssetPanel {
  constructor(viewer) {
    this.viewer = viewer;
    this.asset = null;
    this.loading = 0; // a newer load makes an older one's answer stale
    this.title = document.getElementById("viewer-title");
    this.note = document.getElementById("stage-note");
    this.facts = document.getElementById("facts");
    this.lod = document.getElementById("lod");
    this.draco = document.getElementById("draco");
    this.reportBox = document.getElementById("report-box");
    this.report = document.getElementById("report");
    this.downloads = document.getElementById("downloads");
    this.thumb = document.getElementById("thumb");
    this.shown = {}; // what the canvas shows: triangles, bytes

    this.lod.addEventListener("change", () => this.load());
    this.draco.addEventListener("change", () => this.load());
    document.getElementById("shading").addEventListener("change", (event) => {
      viewer.setShading(event.target.value);
    });
    document.getElementById("wireframe").addEventListener("change", (event) => {
      viewer.setWireframe(event.target.checked);
    });
    document.getElementById("fit").addEventListener("click", () => viewer.fit());
    document.getElementById("download").addEventListener("click", () => this.download());
  }

  async open(assetId) {
    const ticket = ++this.loading;
    const asset = await getJson(`/api/assets/${assetId}`);
    if (ticket !== this.loading) return; // another asset was asked for meanwhile
    this.reset();
    this.asset = asset;
    this.title.textContent = asset.name;
    if (asset.status !== "completed") {
      this.note.hidden = false;
      this.note.textContent = `“${asset.name}” is ${asset.status}: nothing to show yet.`;
      return;
    }
    const lods = asset.lods && asset.lods.length ? asset.lods : [{ index: 0, faces: asset.face_count }];
    this.lod.replaceChildren(
      ...lods.map((lod) => {
        const bytes = lod.bytes ? ` · ${size(lod.bytes)}` : "";
        const option = element("option", "", `${lod.index} · ${count(lod.faces)} tris${bytes}`);
        option.value = String(lod.index);
        return option;
      }),
    );
    this.lod.disabled = lods.length < 2;
    this.draco.checked = false;
    this.draco.disabled = false;
    this.downloads.hidden = false;
    this.showThumbnail(asset);
    this.showReport(asset);
    await this.load();
  }

  /** Nothing shown: after a delete, or before another asset. */
  reset() {
    this.loading += 1; // answers still on their way are dropped
    this.asset = null;
    this.viewer.clear();
    this.title.textContent = "Viewer";
    this.facts.replaceChildren();
    this.reportBox.hidden = true;
    this.downloads.hidden = true;
    this.lod.disabled = true;
    this.draco.disabled = true;
    this.thumb.hidden = true;
    if (this.thumb.src) URL.revokeObjectURL(this.thumb.src);
    this.thumb.removeAttribute("src");
    this.note.hidden = false;
    this.note.textContent = "Generate or open an asset to look at it here.";
  }

  async load() {
    const asset = this.asset;
    if (!asset) return;
    const ticket = ++this.loading;
    const lod = Number(this.lod.value || 0);
    const draco = this.draco.checked;
    this.note.textContent = "Loading…";
    this.note.hidden = false;
    const query = `format=glb&lod=${lod}${draco ? "&draco=true" : ""}`;
    try {
      const response = await file(`/api/assets/${asset.id}/download?${query}`);
      const data = await response.arrayBuffer();
      if (ticket !== this.loading) return;
      const gltf = await this.viewer.parse(data);
      if (ticket !== this.loading) return; // a newer choice is on its way: this one is stale
      const triangles = this.viewer.show(gltf);
      this.shown = { triangles, bytes: data.byteLength, lod, draco };
      this.note.hidden = true;
      this.showFacts();
    } catch (problem) {
      if (ticket !== this.loading) return;
      this.viewer.clear();
      this.note.textContent = `Cannot show it: ${problem.message}`;
    }
  }

  showFacts() {
    const asset = this.asset;
    const rows = [
      ["Triangles", count(this.shown.triangles)],
      ["File", `${size(this.shown.bytes)}${this.shown.draco ? " (Draco)" : ""}`],
      ["LOD", String(this.shown.lod)],
      ["Vertices (full)", count(asset.vertex_count)],
      ["Generator", asset.generator || "–"],
      ["Texture", asset.texture_method || "–"],
    ];
    this.facts.replaceChildren();
    for (const [term, value] of rows) {
      const key = term.toLowerCase().replace(/[^a-z]+/g, "-").replace(/-$/, "");
      const dd = element("dd", "", value);
      dd.dataset.fact = key;
      this.facts.append(element("dt", "", term), dd);
    }
  }

  async showThumbnail(asset) {
    if (!asset.thumbnail_url) return;
    try {
      const url = await blobUrl(asset.thumbnail_url);
      if (this.asset !== asset) {
        URL.revokeObjectURL(url); // another asset is shown by now
        return;
      }
      this.thumb.src = url;
      this.thumb.hidden = false;
    } catch {
      // no thumbnail yet: the viewer shows the model anyway
    }
  }

  async showReport(asset) {
    try {
      const report = await getJson(`/api/export/${asset.id}/validate`);
      if (this.asset !== asset) return;
      const problems = report.problems || [];
      const lines = [
        `${count(report.faces)} faces, ${count(report.vertices)} vertices`,
        `watertight: ${report.watertight ? "yes" : "no"}, winding: ${report.winding || "–"}`,
        ...(problems.length ? problems : ["no problems found"]),
      ];
      this.report.replaceChildren(...lines.map((line) => element("li", "", String(line))));
      this.reportBox.querySelector("summary").textContent =
        `Validation report (${problems.length} problem${problems.length === 1 ? "" : "s"})`;
      this.reportBox.hidden = false;
    } catch {
      // not ready: the rest of the panel stands
    }
  }

  async download() {
    const asset = this.asset;
    const choice = document.getElementById("download-format").value;
    const button = document.getElementById("download");
    button.disabled = true;
    try {
      let path;
      if (ENGINES.has(choice)) {
        const bundle = await getJson(`/api/export/${asset.id}/engine`, {
          method: "POST",
          json: { engine: choice },
        });
        path = bundle.download_url;
      } else {
        const [format, draco] = choice.split("-");
        path = `/api/assets/${asset.id}/download?format=${format}${draco ? "&draco=true" : ""}`;
      }
      const response = await file(path);
      const link = element("a", "", "");
      link.href = URL.createObjectURL(await response.blob());
      link.download = fileName(response, `${asset.name}.${choice}`);
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
    } catch (problem) {
      this.note.hidden = false;
      this.note.textContent = `Download failed: ${problem.message}`;
    } finally {
      button.disabled = false;
    }
  }
}

export function count(value) {
  return value === null || value === undefined ? "–" : Number(value).toLocaleString("en-US");
}

function size(bytes) {
  if (bytes >= 1048576) return `${(bytes / 1048576).toFixed(1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}
