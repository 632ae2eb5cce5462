// The todo app: log in, then the caller's tasks, newest first. Every change is shown at once
// and undone if the API refuses it, with the reason next to what it concerns.

import { api, session } from "./api.js";
import { byId, h, setText } from "./dom.js";

const PAGE_SIZE = 20;
const FILTERS = { all: undefined, open: false, done: true };

const state = {
  email: "",
  filter: "all",
  tasks: [],
  total: 0,
  nextCursor: null,
  editing: null, // the id of the task whose editor is open
  listVersion: 0, // bumped by every fresh load, so that a late answer to an older one is dropped
};
const rows = new Map(); // task id -> {li, checkbox, title, description, edit, remove, editor}
let pendingIds = 0;
const sending = new Map(); // task id -> the change to it that the API has not answered yet

const authForm = byId("auth-form");
const addForm = byId("add-form");
const list = byId("task-list");
const loadMore = byId("load-more");

// --- messages -------------------------------------------------------------------------------

function waitText(seconds) {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

function reasonOf(error) {
  let text = error.message;
  if (error.retryAfter !== null && error.retryAfter !== undefined) {
    text += `. Try again in ${waitText(error.retryAfter)}`;
  }
  return text.endsWith(".") ? text : `${text}.`;
}

function clearMessages(form) {
  for (const element of form.querySelectorAll(".error, .status")) setText(element, "");
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
  }
}

// A problem's field errors go next to their fields ({apiField: [input, errorElement]}); the
// rest to the form's own alert. Returns whether any field got one.
function showProblem(error, fields, formAlert) {
  let placed = false;
  const generic = error.message === "Validation failed";
  for (const [field, message] of error.fields) {
    const target = fields[field];
    if (!target) continue;
    const [input, alert] = target;
    setText(alert, generic ? message : `${error.message}. ${message}`);
    input.setAttribute("aria-invalid", "true");
    if (!placed) input.focus();
    placed = true;
  }
  if (!placed) setText(formAlert, reasonOf(error));
  return placed;
}

function sayInList(message) {
  setText(byId("list-status"), "");
  setText(byId("list-error"), message);
}

function noteInList(message) {
  setText(byId("list-error"), "");
  setText(byId("list-status"), message);
}

// --- screens --------------------------------------------------------------------------------

function showAuth({ alert = "", status = "" } = {}) {
  byId("starting").hidden = true;
  byId("tasks").hidden = true;
  byId("account").hidden = true;
  byId("auth").hidden = false;
  clearMessages(authForm);
  setText(byId("auth-error"), alert);
  setText(byId("auth-status"), status);
  byId("email").focus();
}

function showTasks() {
  byId("starting").hidden = true;
  byId("auth").hidden = true;
  byId("tasks").hidden = false;
  byId("account").hidden = false;
  setText(byId("account-email"), state.email);
}

// The token no longer works (or the person logged out): back to the login form.
function endSession(message) {
  session.token = null;
  Object.assign(state, { email: "", tasks: [], total: 0, nextCursor: null, editing: null });
  state.listVersion += 1;
  for (const row of rows.values()) row.li.remove();
  rows.clear();
  clearMessages(byId("tasks"));
  addForm.reset();
  showAuth(message);
}

// True when the error ended the session (a 401 on any authenticated call).
function endedSession(error) {
  if (error.status !== 401) return false;
  endSession({ alert: `You have been logged out: ${reasonOf(error)} Please log in again.` });
  return true;
}

async function enter() {
  const [user] = await Promise.all([api.me(), loadFirstPage()]);
  state.email = user.email;
  showTasks();
}

// --- the list -------------------------------------------------------------------------------

function matchesFilter(task) {
  const wanted = FILTERS[state.filter];
  return wanted === undefined || task.completed === wanted;
}

async function loadFirstPage() {
  const version = ++state.listVersion;
  const page = await api.listTasks({ completed: FILTERS[state.filter], limit: PAGE_SIZE });
  if (version !== state.listVersion) return;
  state.tasks = page.tasks;
  state.total = page.total;
  state.nextCursor = page.next_cursor;
  state.editing = null;
  render();
}

async function loadNextPage() {
  const version = state.listVersion;
  loadMore.disabled = true;
  try {
    const page = await api.listTasks({
      completed: FILTERS[state.filter],
      cursor: state.nextCursor,
      limit: PAGE_SIZE,
    });
    if (version !== state.listVersion) return;
    const known = new Set(state.tasks.map((task) => task.id));
    const added = page.tasks.filter((task) => !known.has(task.id));
    state.tasks.push(...added);
    state.total = page.total;
    state.nextCursor = page.next_cursor;
    render();
    // The button may be gone (last page): keyboard focus moves on to what was loaded.
    if (added.length && loadMore.hidden) rows.get(added[0].id)?.checkbox.focus();
  } catch (error) {
    if (!endedSession(error)) sayInList(`Could not load more tasks: ${reasonOf(error)}`);
  } finally {
    loadMore.disabled = false;
  }
}

function render() {
  const wanted = new Set(state.tasks.map((task) => task.id));
  for (const [id, row] of rows) {
    if (!wanted.has(id)) {
      row.li.remove();
      rows.delete(id);
    }
  }
  state.tasks.forEach((task, index) => {
    const row = rows.get(task.id) || createRow(task);
    updateRow(row, task);
    // Only rows out of place move: moving a row would take the keyboard focus out of it.
    if (list.children[index] !== row.li) list.insertBefore(row.li, list.children[index] || null);
  });
  setText(byId("total"), `${state.total} tasks`);
  byId("empty").hidden = state.tasks.length > 0;
  loadMore.hidden = !state.nextCursor;
}

function createRow(task) {
  const checkboxId = `task-${task.id}`;
  const checkbox = h("input", { type: "checkbox", id: checkboxId });
  const title = h("label", { for: checkboxId, className: "task-title" });
  const description = h("p", { className: "task-description" });
  const edit = h("button", { type: "button", className: "quiet" }, "Edit");
  const remove = h("button", { type: "button", className: "quiet danger" }, "Delete");
  const li = h(
    "li",
    { className: "task" },
    h(
      "div",
      { className: "task-main" },
      checkbox,
      h("div", { className: "task-text" }, title, description),
    ),
    h("div", { className: "task-actions" }, edit, remove),
  );
  const row = { li, checkbox, title, description, edit, remove, editor: null, id: task.id };
  checkbox.addEventListener("change", () => toggle(row.id, checkbox.checked));
  edit.addEventListener("click", () => openEditor(row.id));
  remove.addEventListener("click", () => removeTask(row.id));
  rows.set(task.id, row);
  return row;
}

function updateRow(row, task) {
  row.li.classList.toggle("done", task.completed);
  row.li.classList.toggle("pending", Boolean(task.pending));
  row.li.setAttribute("aria-busy", task.pending ? "true" : "false");
  row.checkbox.checked = task.completed;
  setText(row.title, task.title);
  setText(row.description, task.description);
  row.description.hidden = !task.description;
  for (const control of [row.checkbox, row.edit, row.remove]) {
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
  const titleId = `edit-title-${task.id}`;
  const descriptionId = `edit-description-${task.id}`;
  const title = h("input", {
    id: titleId,
    value: task.title,
    autocomplete: "off",
    "aria-describedby": `${titleId}-error`,
  });
  const titleError = h("p", { id: `${titleId}-error`, className: "error", role: "alert" });
  const description = h("textarea", {
    id: descriptionId,
    rows: 2,
    value: task.description || "",
    placeholder: "Optional",
    "aria-describedby": `${descriptionId}-error`,
  });
  const descriptionError = h("p", {
    id: `${descriptionId}-error`,
    className: "error",
    role: "alert",
  });
  const formError = h("p", { className: "error", role: "alert" });
  const cancel = h("button", { type: "button" }, "Cancel");
  const form = h(
    "form",
    { className: "editor", noValidate: true },
    formError,
    h("div", { className: "field" }, h("label", { for: titleId }, "Title"), title, titleError),
    h(
      "div",
      { className: "field" },
      h("label", { for: descriptionId }, "Description"),
      description,
      descriptionError,
    ),
    h(
      "div",
      { className: "actions" },
      h("button", { type: "submit", className: "primary" }, "Save"),
      cancel,
    ),
  );
  const editor = {
    form,
    title,
    description,
    formError,
    fields: { title: [title, titleError], description: [description, descriptionError] },
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    save(row.id, editor);
  });
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") closeEditor(row.id);
  });
  cancel.addEventListener("click", () => closeEditor(row.id));
  return editor;
}

function openEditor(id) {
  if (state.editing && state.editing !== id) closeEditor(state.editing, { focus: false });
  state.editing = id;
  render();
  const editor = rows.get(id)?.editor;
  editor?.title.focus();
  editor?.title.select();
}

function closeEditor(id, { focus = true } = {}) {
  if (state.editing !== id) return;
  state.editing = null;
  render();
  if (focus) rows.get(id)?.edit.focus();
}

// --- changes, shown at once and undone on failure -------------------------------------------

function findTask(id) {
  return state.tasks.find((task) => task.id === id);
}

// Changes to one task reach the API one after another, each with the version the previous
// one left (its If-Match), so that a quick double click is not taken for another tab's edit.
// `send` gets the task as last known: the previous change's answer, or the list's copy.
function inTurn(id, send) {
  const previous = sending.get(id) || Promise.resolve();
  const next = previous
    .catch(() => undefined)
    .then((answered) => send(answered?.id === id ? answered : findTask(id)));
  sending.set(id, next);
  const forget = () => {
    if (sending.get(id) === next) sending.delete(id);
  };
  next.then(forget, forget);
  return next;
}

// Takes the list back to how it was before one change, leaving every other change alone.
function undo(before) {
  // A list loaded since (another filter, say) already shows what the server has.
  if (before.listVersion !== state.listVersion) return;
  const at = state.tasks.findIndex((task) => task.id === before.task.id);
  if (at >= 0) state.tasks[at] = before.task;
  else if (before.index >= 0) {
    state.tasks.splice(Math.min(before.index, state.tasks.length), 0, before.task);
  }
  state.total = before.total + (state.total - before.totalAfter);
  render();
}

function remember(task) {
  return {
    task,
    index: state.tasks.indexOf(task),
    total: state.total,
    totalAfter: state.total,
    listVersion: state.listVersion,
  };
}

// Puts a task as the API now has it into the list (or out of it, if the filter hides it).
function accept(task) {
  const at = state.tasks.findIndex((known) => known.id === task.id);
  if (at < 0) return;
  if (matchesFilter(task)) state.tasks[at] = task;
  else {
    state.tasks.splice(at, 1);
    state.total -= 1;
  }
}

function removeLocally(id) {
  const at = state.tasks.findIndex((task) => task.id === id);
  if (at < 0) return;
  state.tasks.splice(at, 1);
  state.total -= 1;
  if (state.editing === id) state.editing = null;
}

// What a refused change means for the task: its message, and the list brought up to date.
async function explain(error, before, action = "changed") {
  if (endedSession(error)) return;
  const name = `“${before.task.title}”`;
  if (error.status === 412) {
    try {
      const fresh = await api.getTask(before.task.id);
      accept(fresh);
      render();
      sayInList(
        `${name} was changed in another tab or on another device, so it has been reloaded.` +
          " Check it and try again.",
      );
    } catch (reloadError) {
      await explain(reloadError, before, action);
    }
    return;
  }
  if (error.status === 404) {
    removeLocally(before.task.id);
    render();
    sayInList(`${name} no longer exists: it was deleted in another tab or on another device.`);
    return;
  }
  sayInList(`${name} could not be ${action}: ${reasonOf(error)}`);
}

async function toggle(id, completed) {
  const task = findTask(id);
  if (!task) return;
  const before = remember(task);
  const changed = { ...task, completed };
  state.tasks[before.index] = changed;
  // The row stays until the API agrees, even where the filter will hide it.
  before.totalAfter = state.total;
  render();
  try {
    const updated = await inTurn(id, (latest) => api.updateTask(latest || task, { completed }));
    accept(updated);
    render();
  } catch (error) {
    undo(before);
    await explain(error, before);
  }
}

async function save(id, editor) {
  const task = findTask(id);
  if (!task) return;
  clearMessages(editor.form);
  const description = editor.description.value;
  const changes = {
    title: editor.title.value,
    description: description.trim() ? description : null,
  };
  const before = remember(task);
  state.tasks[before.index] = { ...task, ...changes, title: changes.title.trim() };
  state.editing = null;
  render();
  rows.get(id)?.edit.focus();
  try {
    accept(await inTurn(id, (latest) => api.updateTask(latest || task, changes)));
    render();
    noteInList("Saved.");
  } catch (error) {
    undo(before);
    if (error.status === 422) {
      // The editor comes back with what was typed, and the reasons next to the fields.
      state.editing = id;
      render();
      const reopened = rows.get(id).editor;
      reopened.title.value = changes.title;
      reopened.description.value = description;
      showProblem(error, reopened.fields, reopened.formError);
      return;
    }
    await explain(error, before);
  }
}

async function removeTask(id) {
  const task = findTask(id);
  if (!task) return;
  const before = remember(task);
  const next = state.tasks[before.index + 1] || state.tasks[before.index - 1];
  removeLocally(id);
  before.totalAfter = state.total;
  render();
  if (next) rows.get(next.id)?.checkbox.focus();
  else byId("title").focus();
  try {
    await inTurn(id, (latest) => api.deleteTask(latest || task));
    noteInList(`Deleted “${task.title}”.`);
  } catch (error) {
    if (error.status === 404) return; // gone already: what the person wanted
    undo(before);
    await explain(error, before, "deleted");
  }
}

async function addTask() {
  const title = byId("title");
  const descriptionInput = byId("description");
  clearMessages(addForm);
  const fields = {
    title: title.value,
    description: descriptionInput.value.trim() ? descriptionInput.value : null,
  };
  const pending = {
    id: `pending-${++pendingIds}`,
    title: fields.title.trim(),
    description: fields.description,
    completed: false,
    pending: true,
  };
  const shown = matchesFilter(pending);
  if (shown) {
    state.tasks.unshift(pending);
    state.total += 1;
    render();
  }
  addForm.reset();
  title.focus();
  try {
    const task = await api.createTask(fields);
    const at = state.tasks.findIndex((known) => known.id === pending.id);
    if (at >= 0) {
      // The row was made for the pending task: it becomes the real one's, focus and all.
      const row = rows.get(pending.id);
      rows.delete(pending.id);
      row.id = task.id;
      row.checkbox.id = `task-${task.id}`;
      row.title.htmlFor = row.checkbox.id;
      rows.set(task.id, row);
      state.tasks[at] = task;
      render();
    } else if (!shown) {
      noteInList(`Added “${task.title}”; it is open, so the Done filter does not show it.`);
    }
  } catch (error) {
    if (shown) {
      removeLocally(pending.id);
      render();
    }
    if (endedSession(error)) return;
    if (!title.value && !descriptionInput.value) {
      title.value = fields.title;
      descriptionInput.value = fields.description || "";
    }
    const fieldsOfForm = {
      title: [title, byId("title-error")],
      description: [descriptionInput, byId("description-error")],
    };
    if (!showProblem(error, fieldsOfForm, byId("list-error"))) title.focus();
  }
}

// --- events ---------------------------------------------------------------------------------

function busy(form, value) {
  for (const button of form.querySelectorAll("button")) button.disabled = value;
}

authForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const registering = event.submitter?.value === "register";
  const email = byId("email").value;
  const password = byId("password");
  clearMessages(authForm);
  busy(authForm, true);
  try {
    if (registering) {
      await api.register(email, password.value);
      // Registering returns no token: the fields stay filled, one press from logging in.
      setText(byId("auth-status"), "Account created. You can log in now.");
      authForm.querySelector("button[value=log-in]").focus();
      return;
    }
    const auth = await api.logIn(email, password.value);
    session.token = auth.access_token;
    password.value = "";
    await enter();
    byId("title").focus();
  } catch (error) {
    if (error.status === 409) {
      // "Email already registered" is about the email: it goes next to that field.
      error.fields.set("email", error.message);
      error.message = "Validation failed";
    }
    if (session.token && endedSession(error)) return;
    showProblem(
      error,
      { email: [byId("email"), byId("email-error")], password: [password, byId("password-error")] },
      byId("auth-error"),
    );
  } finally {
    busy(authForm, false);
  }
});

addForm.addEventListener("submit", (event) => {
  event.preventDefault();
  addTask();
});

byId("filter").addEventListener("change", async (event) => {
  state.filter = event.target.value;
  setText(byId("list-error"), "");
  try {
    await loadFirstPage();
  } catch (error) {
    if (!endedSession(error)) sayInList(`Could not load the tasks: ${reasonOf(error)}`);
  }
});

loadMore.addEventListener("click", loadNextPage);

byId("log-out").addEventListener("click", async () => {
  try {
    await api.logOut();
    endSession({ status: "You have logged out." });
  } catch (error) {
    // Whatever the server said, this tab forgets the token.
    const note =
      error.status === 401 ? "" : ` (the server could not confirm it: ${reasonOf(error)})`;
    endSession({ status: `You have logged out${note}.` });
  }
});

byId("log-out-everywhere").addEventListener("click", async () => {
  try {
    await api.logOutEverywhere();
    endSession({ status: "You have logged out on every device." });
  } catch (error) {
    if (!endedSession(error)) sayInList(`Could not log out everywhere: ${reasonOf(error)}`);
  }
});

async function start() {
  if (!session.token) {
    showAuth();
    return;
  }
  try {
    await enter();
  } catch (error) {
    if (!endedSession(error)) showAuth({ alert: `Could not load your tasks: ${reasonOf(error)}` });
  }
}

start();
