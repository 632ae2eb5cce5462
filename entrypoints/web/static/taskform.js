// The fields that organise a task (priority, due, tags), the same in the add form and in each
// task's editor: built here, filled from a task, read back as the API's fields.

import { browserZone } from "./dates.js";
import { h, setText } from "./dom.js";

const PRIORITIES = { none: "None", low: "Low", medium: "Medium", high: "High" };

// A labelled control with its error (and hint) read out with it; pair: [control, error].
export function field(id, text, control, hint) {
  const error = h("p", { id: `${id}-error`, className: "error", role: "alert" });
  control.id = id;
  control.setAttribute("aria-describedby", hint ? `${hint.id} ${error.id}` : error.id);
  const label = h("label", { for: id }, text);
  const box = h("div", { className: "field" }, label, control, hint, error);
  return { pair: [control, error], box };
}

export function organisingFields(prefix) {
  const hint = (name, text) => h("p", { id: `${prefix}-${name}-hint`, className: "hint" }, text);
  const zone = hint("zone");
  const options = Object.entries(PRIORITIES).map(([value, text]) => h("option", { value }, text));
  const tags = h("input", { autocomplete: "off", spellcheck: false });
  // Keyed by the API's field names, for its errors (see showProblem).
  const made = {
    priority: field(`${prefix}-priority`, "Priority", h("select", {}, ...options)),
    due: field(`${prefix}-due-date`, "Due date", h("input", { type: "date" }), zone),
    "due.time": field(`${prefix}-due-time`, "Due time", h("input", { type: "time" })),
    tags: field(`${prefix}-tags`, "Tags", tags, hint("tags", "Separated by commas: work, home")),
  };
  const fields = Object.fromEntries(Object.entries(made).map(([name, { pair }]) => [name, pair]));
  return {
    element: h("div", { className: "organise" }, ...Object.values(made).map(({ box }) => box)),
    priority: fields.priority[0],
    date: fields.due[0],
    time: fields["due.time"][0],
    tags,
    zone,
    fields,
  };
}

export function fill(form, task) {
  form.priority.value = task.priority || "none";
  form.date.value = task.due?.date || "";
  form.time.value = task.due?.time?.slice(0, 5) || "";
  form.tags.value = (task.tags || []).join(", ");
  // An existing due keeps its own zone when edited, so the person is told which one it is.
  const zone = task.due?.timezone;
  setText(form.zone, zone && zone !== browserZone() ? `In ${zone} time` : "");
}

// Shaped like the API's 422, so that it is shown the same way.
function invalid(field, message) {
  return { problem: { message: "Validation failed", fields: new Map([[field, message]]) } };
}

// {values: {priority, due, tags}} as the API takes them (a due without its zone: the user's),
// or {problem} for what the browser can tell is wrong before asking.
export function read(form) {
  const { date, time } = form;
  if (date.validity.badInput) return invalid("due", "Enter the whole date, or none");
  if (time.validity.badInput) return invalid("due.time", "Enter the whole time, or none");
  // An empty date is no due, whatever the time says: clearing the date is how a due goes.
  let due = null;
  if (date.value) due = time.value ? { date: date.value, time: time.value } : { date: date.value };
  const tags = form.tags.value
    .split(",")
    .map((name) => name.trim())
    .filter(Boolean);
  return { values: { priority: form.priority.value, due, tags } };
}

// What an edit changes, so that a field another tab changed meanwhile is left as it is there.
// An edited due stays in its own zone: the form showed its date and time there.
export function changesTo(task, values) {
  const changes = {};
  if (values.priority !== task.priority) changes.priority = values.priority;
  const due = task.due;
  const same = due
    ? values.due?.date === due.date && (values.due.time || "") === (due.time || "").slice(0, 5)
    : !values.due;
  // (A zone of undefined is left out of the JSON: a new due is in the user's zone.)
  if (!same) changes.due = values.due && { ...values.due, timezone: due?.timezone };
  if (values.tags.join("\n") !== (task.tags || []).join("\n")) changes.tags = values.tags;
  return changes;
}

// A due as the list shows it until the API answers with its own.
export function shownDue(due) {
  if (!due) return null;
  const time = due.time ? `${due.time}:00`.slice(0, 8) : null;
  return { date: due.date, time, timezone: due.timezone || browserZone(), at: null };
}
