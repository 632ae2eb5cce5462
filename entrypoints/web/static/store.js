// The tasks as the page knows them, and the list query they were loaded with.

import { api } from "./api.js";

export const PAGE_SIZE = 20;
export const NEWEST = "-created_at";
const SHOWN = { all: undefined, open: false, done: true };

export const state = {
  email: "",
  filter: "all",
  sort: NEWEST,
  tag: null,
  q: "",
  query: null, // what the loaded list was asked with: its cursor is only good for that
  tasks: [],
  total: 0,
  nextCursor: null,
  editing: null, // the id of the task whose editor is open
  listVersion: 0, // bumped by every fresh load, so that a late answer to an older one is dropped
};
const sending = new Map(); // task id -> the change to it that the API has not answered yet

let changed = () => {};

export function onListChange(render) {
  changed = render;
}

export function reset() {
  Object.assign(state, { email: "", tasks: [], total: 0, nextCursor: null, editing: null });
  Object.assign(state, { filter: "all", sort: NEWEST, tag: null, q: "", query: null });
  state.listVersion += 1;
}

// Whether a task changed or added here still belongs in the list the API gave.
export function matchesFilter(task) {
  const wanted = SHOWN[state.filter];
  if (wanted !== undefined && task.completed !== wanted) return false;
  const tag = state.tag?.toLowerCase();
  if (tag && !(task.tags || []).some((name) => name.toLowerCase() === tag)) return false;
  const text = `${task.title}\n${task.description || ""}`.toLowerCase();
  return state.q
    .toLowerCase()
    .split(/\s+/)
    .every((word) => text.includes(word));
}

// Resolves to false when a newer load overtook this one (its answer is then dropped).
export async function loadFirstPage() {
  const version = ++state.listVersion;
  const query = { completed: SHOWN[state.filter], tag: state.tag, q: state.q };
  if (state.sort !== NEWEST) query.sort = state.sort;
  const page = await api.listTasks({ ...query, limit: PAGE_SIZE });
  if (version !== state.listVersion) return false;
  Object.assign(state, { query, tasks: page.tasks, total: page.total });
  state.nextCursor = page.next_cursor;
  state.editing = null;
  changed();
  return true;
}

// The tasks added, or null when the list was loaded afresh meanwhile.
export async function loadNextPage() {
  const version = state.listVersion;
  const page = await api.listTasks({ ...state.query, cursor: state.nextCursor, limit: PAGE_SIZE });
  if (version !== state.listVersion) return null;
  const known = new Set(state.tasks.map((task) => task.id));
  const added = page.tasks.filter((task) => !known.has(task.id));
  state.tasks.push(...added);
  state.total = page.total;
  state.nextCursor = page.next_cursor;
  changed();
  return added;
}

export function findTask(id) {
  return state.tasks.find((task) => task.id === id);
}

// Changes to one task reach the API one after another, each with the version the previous
// one left (its If-Match), so that a quick double click is not taken for another tab's edit.
// `send` gets the task as last known: the previous change's answer, or the list's copy.
export function inTurn(id, send) {
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

export function remember(task) {
  return {
    task,
    index: state.tasks.indexOf(task),
    total: state.total,
    totalAfter: state.total,
    listVersion: state.listVersion,
  };
}

// Takes the list back to how it was before one change, leaving every other change alone.
export function undo(before) {
  // A list loaded since (another filter, say) already shows what the server has.
  if (before.listVersion !== state.listVersion) return;
  const at = state.tasks.findIndex((task) => task.id === before.task.id);
  if (at >= 0) state.tasks[at] = before.task;
  else if (before.index >= 0) {
    state.tasks.splice(Math.min(before.index, state.tasks.length), 0, before.task);
  }
  state.total = before.total + (state.total - before.totalAfter);
}

// Puts a task as the API now has it into the list (or out of it, if the filters hide it).
export function accept(task) {
  const at = state.tasks.findIndex((known) => known.id === task.id);
  if (at < 0) return;
  if (matchesFilter(task)) state.tasks[at] = task;
  else {
    state.tasks.splice(at, 1);
    state.total -= 1;
  }
}

export function removeLocally(id) {
  const at = state.tasks.findIndex((task) => task.id === id);
  if (at < 0) return;
  state.tasks.splice(at, 1);
  state.total -= 1;
  if (state.editing === id) state.editing = null;
}
