// Changes to tasks: shown at once, sent to the API, and undone if it refuses them.

import { api } from "./api.js";
import { byId } from "./dom.js";
import {
  clearMessages,
  endedSession,
  listFailed,
  noteInList,
  reasonOf,
  sayInList,
  showProblem,
} from "./messages.js";
import * as store from "./store.js";
import { changesTo, fill, organisingFields, read, shownDue } from "./taskform.js";
import { render, rows } from "./taskview.js";

const { state } = store;
const addForm = byId("add-form");
const adding = organisingFields("new");
addForm.querySelector(".actions").before(adding.element);
let pendingIds = 0;

// What a refused change means for the task: its message, and the list brought up to date.
async function explain(error, before, action = "changed") {
  if (endedSession(error)) return;
  const name = `“${before.task.title}”`;
  if (error.status === 412) {
    try {
      store.accept(await api.getTask(before.task.id));
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
    store.removeLocally(before.task.id);
    render();
    sayInList(`${name} no longer exists: it was deleted in another tab or on another device.`);
    return;
  }
  sayInList(`${name} could not be ${action}: ${reasonOf(error)}`);
}

function undo(before) {
  store.undo(before);
  render();
}

export async function toggle(id, completed) {
  const task = store.findTask(id);
  if (!task) return;
  const before = store.remember(task);
  state.tasks[before.index] = { ...task, completed };
  // The row stays until the API agrees, even where the filter will hide it.
  render();
  try {
    const updated = await store.inTurn(id, (latest) =>
      api.updateTask(latest || task, { completed }),
    );
    store.accept(updated);
    render();
  } catch (error) {
    undo(before);
    await explain(error, before);
  }
}

export async function save(id, editor) {
  const task = store.findTask(id);
  if (!task) return;
  clearMessages(editor.form);
  const { values, problem } = read(editor.organising);
  if (problem) {
    showProblem(problem, editor.fields, editor.formError);
    return;
  }
  const description = editor.description.value;
  const changes = {
    title: editor.title.value,
    description: description.trim() ? description : null,
    ...changesTo(task, values),
  };
  const before = store.remember(task);
  const shown = { ...task, ...changes, title: changes.title.trim() };
  if ("due" in changes) shown.due = shownDue(changes.due);
  state.tasks[before.index] = shown;
  state.editing = null;
  render();
  rows.get(id)?.edit.focus();
  try {
    store.accept(await store.inTurn(id, (latest) => api.updateTask(latest || task, changes)));
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
      const due = "due" in changes ? shownDue(changes.due) : task.due;
      fill(reopened.organising, { ...values, due });
      showProblem(error, reopened.fields, reopened.formError);
      return;
    }
    await explain(error, before);
  }
}

export async function remove(id) {
  const task = store.findTask(id);
  if (!task) return;
  const before = store.remember(task);
  const next = state.tasks[before.index + 1] || state.tasks[before.index - 1];
  store.removeLocally(id);
  before.totalAfter = state.total;
  render();
  if (next) rows.get(next.id)?.checkbox.focus();
  else byId("title").focus();
  try {
    await store.inTurn(id, (latest) => api.deleteTask(latest || task));
    noteInList(`Deleted “${task.title}”.`);
  } catch (error) {
    if (error.status === 404) return; // gone already: what the person wanted
    undo(before);
    await explain(error, before, "deleted");
  }
}

function addFields() {
  return {
    title: [byId("title"), byId("title-error")],
    description: [byId("description"), byId("description-error")],
    ...adding.fields,
  };
}

export async function add() {
  const title = byId("title");
  const descriptionInput = byId("description");
  clearMessages(addForm);
  const { values, problem } = read(adding);
  if (problem) {
    showProblem(problem, addFields(), byId("list-error"));
    return;
  }
  const fields = {
    title: title.value,
    description: descriptionInput.value.trim() ? descriptionInput.value : null,
    ...values,
  };
  const pending = {
    ...fields,
    id: `pending-${++pendingIds}`,
    title: fields.title.trim(),
    due: shownDue(fields.due),
    completed: false,
    pending: true,
  };
  // Under another sort than newest first, the list is loaded again to put it in its place.
  const placed = state.sort === store.NEWEST;
  const shown = placed && store.matchesFilter(pending);
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
      return;
    }
    if (!placed) {
      await store.loadFirstPage().catch((error) => listFailed("load the tasks", error));
    }
    if (!store.findTask(task.id)) {
      noteInList(`Added “${task.title}”; it is not among the tasks shown.`);
    }
  } catch (error) {
    if (shown) {
      store.removeLocally(pending.id);
      render();
    }
    if (endedSession(error)) return;
    if (!title.value && !descriptionInput.value) {
      title.value = fields.title;
      descriptionInput.value = fields.description || "";
      fill(adding, pending);
    }
    if (!showProblem(error, addFields(), byId("list-error"))) title.focus();
  }
}
