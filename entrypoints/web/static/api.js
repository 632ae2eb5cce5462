// The public HTTP API of todo-api, as any client sees it: JSON in, JSON or problem details out.

const TOKEN_KEY = "todo-api.token";

// The token lives for this tab only: sessionStorage, never a cookie or localStorage.
export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

export class ApiError extends Error {
  // status 0: the request never got an answer (offline, server down).
  constructor(status, problem, retryAfter) {
    super(problem.detail || `The server answered ${status}`);
    this.status = status;
    this.fields = new Map((problem.errors || []).map((error) => [error.field, error.message]));
    this.retryAfter = retryAfter;
  }
}

function secondsIn(retryAfter) {
  if (!retryAfter) return null;
  if (/^\d+$/.test(retryAfter.trim())) return Number(retryAfter);
  const at = Date.parse(retryAfter);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

async function call(method, path, { body, headers = {}, authenticated = true } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, cache: "no-store" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  if (authenticated && session.token) init.headers.Authorization = `Bearer ${session.token}`;
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, {
      detail: "The server cannot be reached; check the connection and try again",
    });
  }
  if (response.ok) return response;
  let problem = {};
  try {
    problem = await response.json();
  } catch {
    // Not problem details (a proxy's error page, say): the status alone must do.
  }
  throw new ApiError(response.status, problem, secondsIn(response.headers.get("Retry-After")));
}

async function json(method, path, options) {
  return (await call(method, path, options)).json();
}

// The API documents a task's ETag as its updated_at in microseconds since the epoch, so a
// task read from a list page can be updated with If-Match like one read on its own.
export function etagOf(task) {
  const parts = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d{1,6}))?Z$/.exec(task.updated_at);
  const seconds = BigInt(Date.parse(`${parts[1]}Z`) / 1000);
  return `"${seconds * 1000000n + BigInt((parts[2] || "").padEnd(6, "0"))}"`;
}

export const api = {
  register: (email, password) =>
    json("POST", "/api/auth/register", { body: { email, password }, authenticated: false }),
  logIn: (email, password) =>
    json("POST", "/api/auth/login", { body: { email, password }, authenticated: false }),
  logOut: () => json("POST", "/api/auth/logout"),
  logOutEverywhere: () => json("POST", "/api/auth/logout-all"),
  me: () => json("GET", "/api/auth/me"),
  setTimezone: (timezone) => json("PATCH", "/api/auth/me", { body: { timezone } }),
  // What is unset is left out: the API's defaults, and a cursor's digest, expect it so.
  listTasks: (query) => {
    const params = new URLSearchParams();
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
    }
    return json("GET", `/api/tasks?${params}`);
  },
  getTask: (id) => json("GET", `/api/tasks/${encodeURIComponent(id)}`),
  createTask: (fields) => json("POST", "/api/tasks", { body: fields }),
  updateTask: (task, changes) =>
    json("PATCH", `/api/tasks/${encodeURIComponent(task.id)}`, {
      body: changes,
      headers: { "If-Match": etagOf(task) },
    }),
  deleteTask: (task) =>
    call("DELETE", `/api/tasks/${encodeURIComponent(task.id)}`, {
      headers: { "If-Match": etagOf(task) },
    }),
};
