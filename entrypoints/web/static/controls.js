// What the list shows: All / Open / Done, the search, the sort and the tag filter. Each asks
// the API for the list afresh; Load more asks with the same query as the list it extends.

import { byId, setText } from "./dom.js";
import { listFailed } from "./messages.js";
import { loadFirstPage, loadNextPage, state } from "./store.js";
import { on, rows } from "./taskview.js";

// Typing waits this long for the next key before the list is asked for, so that fast typing
// makes one request; the answer to an older one arriving late is dropped (listVersion).
const SEARCH_DELAY_MS = 150;

const search = byId("search");
const sort = byId("sort");
const tagFilter = byId("tag-filter");
const loadMore = byId("load-more");
let typing = null;

function reload() {
  setText(byId("list-error"), "");
  return loadFirstPage().catch((error) => listFailed("load the tasks", error));
}

function searchNow() {
  clearTimeout(typing);
  const q = search.value.trim();
  if (q === state.q) return;
  state.q = q;
  reload();
}

function showTag() {
  tagFilter.hidden = !state.tag;
  setText(byId("tag-filter-name"), state.tag ? `#${state.tag}` : "");
}

// A tag's button replaces any tag filtered by before; the focus goes to the way back.
on.tag = (name) => {
  state.tag = name;
  showTag();
  byId("clear-tag").focus();
  reload();
};

// Puts the controls back as a fresh session starts.
export function resetControls() {
  clearTimeout(typing);
  search.value = "";
  sort.value = state.sort;
  byId("filter").querySelector(`[value="${state.filter}"]`).checked = true;
  showTag();
}

byId("filter").addEventListener("change", (event) => {
  state.filter = event.target.value;
  reload();
});

search.addEventListener("input", () => {
  clearTimeout(typing);
  typing = setTimeout(searchNow, SEARCH_DELAY_MS);
});
search.addEventListener("keydown", (event) => {
  if (event.key === "Enter") searchNow();
});

sort.addEventListener("change", () => {
  state.sort = sort.value;
  reload();
});

byId("clear-tag").addEventListener("click", () => {
  state.tag = null;
  showTag();
  search.focus();
  reload();
});

loadMore.addEventListener("click", async () => {
  loadMore.disabled = true;
  try {
    const added = await loadNextPage();
    // The button may be gone (last page): keyboard focus moves on to what was loaded.
    if (added?.length && loadMore.hidden) rows.get(added[0].id)?.checkbox.focus();
  } catch (error) {
    listFailed("load more tasks", error);
  } finally {
    loadMore.disabled = false;
  }
});
