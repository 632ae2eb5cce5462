// What the person is told: an API's refusal in words, next to what it concerns.

import { byId, setText } from "./dom.js";

function waitText(seconds) {
  if (seconds < 60) return `${seconds} second${seconds === 1 ? "" : "s"}`;
  const minutes = Math.ceil(seconds / 60);
  return `${minutes} minute${minutes === 1 ? "" : "s"}`;
}

export function reasonOf(error) {
  let text = error.message;
  if (error.retryAfter !== null && error.retryAfter !== undefined) {
    text += `. Try again in ${waitText(error.retryAfter)}`;
  }
  return text.endsWith(".") ? text : `${text}.`;
}

export function clearMessages(form) {
  for (const element of form.querySelectorAll(".error, .status")) setText(element, "");
  for (const input of form.querySelectorAll("[aria-invalid]")) {
    input.removeAttribute("aria-invalid");
  }
}

// A problem's field errors go next to their fields ({apiField: [input, errorElement]}; "due"
// takes "due.date" too), the rest to the form's alert. Returns whether any field got one.
export function showProblem(error, fields, formAlert) {
  let placed = false;
  const generic = error.message === "Validation failed";
  for (const [field, message] of error.fields) {
    const target = fields[field] || fields[field.split(".")[0]];
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

export function sayInList(message) {
  setText(byId("list-status"), "");
  setText(byId("list-error"), message);
}

export function noteInList(message) {
  setText(byId("list-error"), "");
  setText(byId("list-status"), message);
}

let endSession = () => {};

// The app's way back to the login form, set once at start.
export function onSessionEnd(end) {
  endSession = end;
}

// True when the error ended the session (a 401 on any authenticated call).
export function endedSession(error) {
  if (error.status !== 401) return false;
  endSession({ alert: `You have been logged out: ${reasonOf(error)} Please log in again.` });
  return true;
}

// A failure of the list as a whole: the login form for a 401, else the reason in the list.
export function listFailed(what, error) {
  if (!endedSession(error)) sayInList(`Could not ${what}: ${reasonOf(error)}`);
}
