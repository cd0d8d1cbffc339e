// The library: a grid of thumbnails with search, tag, source and status filters, sort and
// paging (GET /api/assets, page after page by cursor: as fast on page 500 as on page 1); each
// card opens the asset, and edits or deletes it.
import { blobUrl, getJson } from "./api.js";
import { count } from "./asset.js";
import { element } from "./jobs.js";

const PAGE_SIZE = 24;
const SEARCH_PAUSE_MS = 250;

export class Library {
  constructor({ onOpen, onEdit, onError }) {
    this.onOpen = onOpen;
    this.onEdit = onEdit;
    const show = (page) => this.show(page).catch(onError);
    this.filters = document.getElementById("filters");
    this.grid = document.getElementById("grid");
    this.summary = document.getElementById("library-summary");
    this.pageLabel = document.getElementById("page");
    this.prev = document.getElementById("prev");
    this.next = document.getElementById("next");
    this.page = 1;
    this.cursors = [null]; // cursors[i] opens page i + 1 (null: the first page)
    this.urls = []; // thumbnails' blob URLs, released when the grid is redrawn
    this.asked = 0;
    let pause = null;
    this.filters.addEventListener("input", () => {
      // The cursors were given for the old filters: none is followed until page 1 is back,
      // and a page still coming for the old ones is dropped, with the cursor it brings.
      this.asked++;
      this.cursors = [null];
      this.prev.disabled = this.next.disabled = true;
      clearTimeout(pause);
      pause = setTimeout(() => show(1), SEARCH_PAUSE_MS);
    });
    this.filters.addEventListener("submit", (event) => {
      event.preventDefault();
      show(1);
    });
    this.prev.addEventListener("click", () => show(this.page - 1));
    this.next.addEventListener("click", () => show(this.page + 1));
  }

  query(cursor) {
    const form = this.filters.elements;
    const [sortBy, sortOrder] = form.sort.value.split(":");
    const query = new URLSearchParams({
      page_size: String(PAGE_SIZE),
      sort_by: sortBy,
      sort_order: sortOrder,
    });
    if (cursor) query.set("cursor", cursor);
    for (const field of ["search", "tags", "source_type", "status"]) {
      const value = form[field].value.trim();
      if (value) query.set(field, value);
    }
    return query;
  }

  // Page ``page`` of the current filters: page 1 starts them afresh; another page is one whose
  // cursor a page before gave.
  async show(page = this.page) {
    const asked = ++this.asked;
    if (page <= 1) this.cursors = [null];
    page = Math.max(1, Math.min(page, this.cursors.length));
    const [result, tags] = await Promise.all([
      getJson(`/api/assets?${this.query(this.cursors[page - 1])}`),
      getJson("/api/assets/tags"),
    ]);
    if (asked !== this.asked) return; // a newer query answered first
    if (!result.items.length && page > 1) return this.show(page - 1); // its last one deleted
    this.page = page;
    this.cursors.length = page;
    if (result.next_cursor) this.cursors.push(result.next_cursor);
    this.showTags(tags);
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.urls = [];
    this.grid.replaceChildren(...result.items.map((asset) => this.card(asset)));
    this.summary.textContent = summary(result);
    const exact = result.total_kind === "exact";
    this.pageLabel.textContent = exact ? `Page ${page} of ${result.pages}` : `Page ${page}`;
    this.prev.disabled = page <= 1;
    this.next.disabled = !result.next_cursor;
  }

  showTags(tags) {
    const select = this.filters.elements.tags;
    const chosen = select.value;
    const options = [element("option", "", "any")];
    options[0].value = "";
    for (const tag of tags) {
      const option = element("option", "", `${tag.name} (${tag.count})`);
      option.value = tag.name;
      options.push(option);
    }
    select.replaceChildren(...options);
    select.value = tags.some((tag) => tag.name === chosen) ? chosen : "";
  }

  card(asset) {
    const item = element("li", "card", "");
    item.dataset.assetId = asset.id;
    const open = element("button", "card-open", "");
    open.type = "button";
    open.setAttribute("aria-label", `Open ${asset.name}`);
    const image = element("img", "card-thumb", "");
    image.alt = "";
    open.append(image, element("span", "card-name", asset.name));
    open.addEventListener("click", () => this.onOpen(asset.id));
    const facts = element(
      "div",
      "card-facts",
      asset.status === "completed" ? `${count(asset.face_count)} tris` : asset.status,
    );
    const tags = element("div", "card-tags", (asset.tags || []).map((t) => t.name ?? t).join(", "));
    const edit = element("button", "ghost small", "Edit");
    edit.type = "button";
    edit.setAttribute("aria-label", `Edit ${asset.name}`);
    edit.addEventListener("click", () => this.onEdit(asset));
    item.append(open, facts, tags, edit);
    if (asset.thumbnail_url) {
      blobUrl(asset.thumbnail_url)
        .then((url) => {
          this.urls.push(url);
          image.src = url;
        })
        .catch(() => {});
    }
    return item;
  }
}

// "1 asset", "1,234 assets", "about 1,200,000 assets" (PostgreSQL's estimate past the count's
// limit) or "more than 10,000 assets" (SQLite's).
function summary({ total, total_kind: kind }) {
  if (!total) return "No assets match.";
  const assets = `${count(total)} asset${total === 1 ? "" : "s"}`;
  return { exact: assets, estimate: `about ${assets}`, more_than: `more than ${assets}` }[kind];
}
