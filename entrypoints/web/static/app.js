// The todo app: log in, then the caller's tasks.

import { api, session } from "./api.js";
import * as changes from "./changes.js";
import { resetControls } from "./controls.js";
import { browserZone } from "./dates.js";
import { byId, setText } from "./dom.js";
import {
  clearMessages,
  endedSession,
  onSessionEnd,
  reasonOf,
  sayInList,
  showProblem,
} from "./messages.js";
import { loadFirstPage, onListChange, reset, state } from "./store.js";
import { clearRows, on, render } from "./taskview.js";

const authForm = byId("auth-form");
const addForm = byId("add-form");

Object.assign(on, { toggle: changes.toggle, save: changes.save, remove: changes.remove });
onListChange(render);

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
  reset();
  clearRows();
  clearMessages(byId("tasks"));
  addForm.reset();
  resetControls();
  showAuth(message);
}
onSessionEnd(endSession);

// The browser's time zone is the person's: dues written without a zone are read in it. A
// zone the API does not know leaves the account's as it was; the page works on regardless.
async function followTheBrowsersZone(user) {
  const zone = browserZone();
  if (!zone || user.timezone === zone) return user;
  try {
    return await api.setTimezone(zone);
  } catch (error) {
    if (error.status === 401) throw error;
    return user;
  }
}

async function enter() {
  const [user] = await Promise.all([api.me().then(followTheBrowsersZone), loadFirstPage()]);
  state.email = user.email;
  showTasks();
}

// "Today" and "Overdue" move with the clock, not only with the tasks.
setInterval(() => {
  if (!byId("tasks").hidden) render();
}, 60000);

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
  changes.add();
});

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
