// The list of tasks on the page: one row per task, kept across renders so that the keyboard
// focus stays where it was, and the editor that opens in a row.

import { dueText, isOverdue } from "./dates.js";
import { byId, h, setText } from "./dom.js";
import { state } from "./store.js";
import { field, fill, organisingFields } from "./taskform.js";

export const rows = new Map(); // task id -> {li, checkbox, title, description, meta, ...}
// What the rows do, set by the app: toggle(id, done), save(id, editor), remove(id), tag(name).
export const on = {};

const list = byId("task-list");
const PRIORITY_WORDS = { low: "Low priority", medium: "Medium priority", high: "High priority" };

export function render() {
  const wanted = new Set(state.tasks.map((task) => task.id));
  for (const [id, row] of rows) {
    if (!wanted.has(id)) {
      row.li.remove();
      rows.delete(id);
    }
  }
  const now = new Date();
  state.tasks.forEach((task, index) => {
    const row = rows.get(task.id) || createRow(task);
    updateRow(row, task, now);
    // Only rows out of place move: moving a row would take the keyboard focus out of it.
    if (list.children[index] !== row.li) list.insertBefore(row.li, list.children[index] || null);
  });
  setText(byId("total"), `${state.total} tasks`);
  const empty = byId("empty");
  empty.hidden = state.tasks.length > 0;
  setText(empty, state.q || state.tag ? "No tasks match." : "Nothing here yet.");
  byId("load-more").hidden = !state.nextCursor;
}

export function clearRows() {
  for (const row of rows.values()) row.li.remove();
  rows.clear();
}

function createRow(task) {
  const checkboxId = `task-${task.id}`;
  const checkbox = h("input", { type: "checkbox", id: checkboxId });
  const title = h("label", { for: checkboxId, className: "task-title" });
  const description = h("p", { className: "task-description" });
  const meta = h("div", { className: "task-meta" });
  const edit = h("button", { type: "button", className: "quiet" }, "Edit");
  const remove = h("button", { type: "button", className: "quiet danger" }, "Delete");
  const li = h(
    "li",
    { className: "task" },
    h(
      "div",
      { className: "task-main" },
      checkbox,
      h("div", { className: "task-text" }, title, description, meta),
    ),
    h("div", { className: "task-actions" }, edit, remove),
  );
  const row = { li, checkbox, title, description, meta, edit, remove, editor: null, id: task.id };
  checkbox.addEventListener("change", () => on.toggle(row.id, checkbox.checked));
  edit.addEventListener("click", () => openEditor(row.id));
  remove.addEventListener("click", () => on.remove(row.id));
  rows.set(task.id, row);
  return row;
}

// Priority, due and "Overdue" in words (never colour alone), then a button per tag.
function updateMeta(row, task, now) {
  const parts = [];
  const priority = PRIORITY_WORDS[task.priority];
  if (priority) parts.push(["span", `badge priority-${task.priority}`, priority]);
  if (task.due) parts.push(["span", "due", `Due ${dueText(task.due, now)}`]);
  if (isOverdue(task, now)) parts.push(["strong", "badge overdue", "Overdue"]);
  for (const name of task.tags || []) parts.push(["button", "tag", `#${name}`, name]);
  // Rebuilt only when it reads differently: a tag button keeps the focus across renders.
  const key = JSON.stringify(parts);
  if (row.metaKey === key) return;
  row.metaKey = key;
  row.meta.replaceChildren(
    ...parts.map(([tag, className, text, name]) => {
      const element = h(tag, { className }, text);
      if (tag === "button") {
        element.type = "button";
        element.addEventListener("click", () => on.tag(name));
      }
      return element;
    }),
  );
  row.meta.hidden = parts.length === 0;
}

function updateRow(row, task, now) {
  row.li.classList.toggle("done", task.completed);
  row.li.classList.toggle("pending", Boolean(task.pending));
  row.li.setAttribute("aria-busy", task.pending ? "true" : "false");
  row.checkbox.checked = task.completed;
  setText(row.title, task.title);
  setText(row.description, task.description);
  row.description.hidden = !task.description;
  updateMeta(row, task, now);
  for (const control of [row.checkbox, row.edit, row.remove, ...row.meta.children]) {
    control.disabled = Boolean(task.pending);
  }
  const editing = state.editing === task.id;
  if (editing && !row.editor) {
    row.editor = createEditor(row, task);
    row.li.append(row.editor.form);
  } else if (!editing && row.editor) {
    row.editor.form.remove();
    row.editor = null;
  }
  row.li.classList.toggle("editing", editing);
}

function createEditor(row, task) {
  const prefix = `edit-${task.id}`;
  const title = field(`${prefix}-title`, "Title", h("input", { value: task.title }));
  title.pair[0].autocomplete = "off";
  const description = field(
    `${prefix}-description`,
    "Description",
    h("textarea", { rows: 2, value: task.description || "", placeholder: "Optional" }),
  );
  const organising = organisingFields(prefix);
  fill(organising, task);
  const formError = h("p", { className: "error", role: "alert" });
  const cancel = h("button", { type: "button" }, "Cancel");
  const save = h("button", { type: "submit", className: "primary" }, "Save");
  const form = h(
    "form",
    { className: "editor", noValidate: true },
    formError,
    title.box,
    description.box,
    organising.element,
    h("div", { className: "actions" }, save, cancel),
  );
  const editor = {
    form,
    title: title.pair[0],
    description: description.pair[0],
    organising,
    formError,
    fields: { title: title.pair, description: description.pair, ...organising.fields },
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    on.save(row.id, editor);
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeEditor(row.id);
  });
  cancel.addEventListener("click", () => closeEditor(row.id));
  return editor;
}

export function openEditor(id) {
  if (state.editing && state.editing !== id) closeEditor(state.editing, { focus: false });
  state.editing = id;
  render();
  const editor = rows.get(id)?.editor;
  editor?.title.focus();
  editor?.title.select();
}

export function closeEditor(id, { focus = true } = {}) {
  if (state.editing !== id) return;
  state.editing = null;
  render();
  if (focus) rows.get(id)?.edit.focus();
}
