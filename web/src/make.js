// The "New asset" form: a photo (dropped, picked or pasted), four views, or a prompt; the
// options; one Idempotency-Key per form fill, so a double click or a retry makes one job.
import { getJson, randomId } from "./api.js";

const NUMBERS = ["inference_steps", "octree_resolution", "max_faces", "seed"];
const MAX_SEED = 4294967295;

export class MakeForm {
  constructor(form, { onSubmitted }) {
    this.form = form;
    this.onSubmitted = onSubmitted;
    this.photo = null;
    this.attempt = randomId();
    this.error = document.getElementById("make-error");
    this.button = document.getElementById("generate");
    this.preview = document.getElementById("photo-preview");

    const drop = document.getElementById("drop");
    const input = document.getElementById("photo");
    input.addEventListener("change", () => this.take(input.files[0]));
    drop.addEventListener("dragover", (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      this.take(event.dataTransfer.files[0]);
    });
    drop.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        input.click();
      }
    });
    document.addEventListener("paste", (event) => {
      const file = Array.from(event.clipboardData?.files || []).find((f) =>
        f.type.startsWith("image/"),
      );
      if (file) this.take(file);
    });
    document.getElementById("dice").addEventListener("click", () => {
      form.elements.seed.value = String(Math.floor(Math.random() * MAX_SEED));
      this.changed();
    });
    for (const radio of form.elements.mode) {
      radio.addEventListener("change", () => this.showMode());
    }
    form.addEventListener("input", () => this.changed());
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
  }

  /** What the service offers (from /health): a prompt only where text-to-3d runs or is
   * loading (not where it is off or its model failed to load). */
  offer(health) {
    const painter = health?.text_to_image?.state;
    document.getElementById("prompt-mode").hidden = !["ready", "loading"].includes(painter);
  }

  get mode() {
    return this.form.elements.mode.value;
  }

  showMode() {
    for (const mode of ["photo", "views", "prompt"]) {
      this.form.querySelector(`.mode-${mode}`).hidden = mode !== this.mode;
    }
    this.changed();
  }

  take(file) {
    if (!file) return;
    this.photo = file;
    if (this.preview.src) URL.revokeObjectURL(this.preview.src);
    this.preview.src = URL.createObjectURL(file);
    this.preview.hidden = false;
    document.getElementById("drop-text").textContent = file.name || "pasted image";
    if (!this.form.elements.name.value && file.name) {
      this.form.elements.name.placeholder = file.name.replace(/\.[^.]+$/, "");
    }
    this.changed();
  }

  /** A changed form is another request: it gets a new Idempotency-Key. */
  changed() {
    this.attempt = randomId();
    this.error.hidden = true;
  }

  options() {
    const elements = this.form.elements;
    const options = {
      priority: elements.priority.value,
      texture: elements.texture.checked,
      remove_background: elements.remove_background.checked,
      output_format: elements.output_format.value,
    };
    const name = elements.name.value.trim() || elements.name.placeholder;
    if (name && name !== "from the file name") options.name = name;
    if (elements.quality.value) options.quality = elements.quality.value;
    for (const field of NUMBERS) {
      const value = elements[field].value.trim();
      if (value !== "") options[field] = Number(value);
    }
    return options;
  }

  request() {
    const options = this.options();
    if (this.mode === "prompt") {
      const prompt = this.form.elements.prompt.value.trim();
      if (!prompt) throw new Error("Type a prompt first.");
      return ["/api/generation/text-to-3d", { json: { ...options, prompt } }];
    }
    const form = new FormData();
    for (const [field, value] of Object.entries(options)) form.append(field, String(value));
    if (this.mode === "views") {
      let any = false;
      for (const view of ["front", "left", "back", "right"]) {
        const file = this.form.elements[view].files[0];
        if (file) {
          form.append(view, file);
          any = true;
        }
      }
      if (!this.form.elements.front.files[0]) throw new Error("The front view is needed.");
      if (!any) throw new Error("Pick the views first.");
      return ["/api/generation/multiview-to-3d", { form }];
    }
    if (!this.photo) throw new Error("Drop, pick or paste a photo first.");
    form.append("file", this.photo, this.photo.name || "pasted.png");
    return ["/api/generation/image-to-3d", { form }];
  }

  async submit() {
    this.error.hidden = true;
    let path;
    let body;
    try {
      [path, body] = this.request();
    } catch (problem) {
      this.fail(problem.message);
      return;
    }
    this.button.disabled = true;
    try {
      const headers = { "Idempotency-Key": this.attempt };
      const submitted = await getJson(path, { method: "POST", headers, ...body });
      this.attempt = randomId(); // the next press is a new job (a double click is not: the
      // button is disabled while this one is sent, and a retry of it reuses its key)
      this.onSubmitted(submitted, this.options().name);
    } catch (problem) {
      this.fail(problem.message);
    } finally {
      this.button.disabled = false;
    }
  }

  fail(message) {
    this.error.textContent = message;
    this.error.hidden = false;
  }
}
