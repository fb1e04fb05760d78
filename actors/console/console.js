// The Threds console (docs/console.md). One page, no dependencies: it signs in with a token,
// opens the node's WebSocket as that participant and uses the same operations any client may
// (`sysControl` for admins, `userControl` for everyone), and reads `/metrics` for its health view.
// Text from the server only ever reaches the page as text (`textContent`), never as markup.

import { drawPattern } from "/console/graph.js";

const SYS = "org.wt.control.sysControl";
const USER = "org.wt.control.userControl";
const PAGE_ROWS = 50;
const SERVER_PAGE = 1000;
const REQUEST_TIMEOUT_MS = 15000;
const WATCH_RENEW_MS = 30000;

// ---------------------------------------------------------------- small DOM helpers

function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const $ = (selector, root = document) => root.querySelector(selector);

function time(ms) {
  if (!ms) return "";
  const d = new Date(ms);
  return `${d.toLocaleDateString(undefined, { month: "short", day: "numeric" })} ${d.toLocaleTimeString(undefined, { hour12: false })}`;
}

function pretty(value) {
  return JSON.stringify(value, null, 2);
}

/** Shows `text` in the status banner (`kind`: info or error) for a while. */
function notify(text, kind = "info") {
  const banner = $("#banner");
  banner.textContent = text;
  banner.dataset.kind = kind;
  banner.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => {
    banner.hidden = true;
  }, kind === "error" ? 8000 : 4000);
}

/** Asks `question`; resolves true when confirmed. */
function confirmAction(question, action) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = question;
  $("#confirm-ok").textContent = action;
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.close();
      resolve(answer);
    };
    $("#confirm-ok").onclick = () => done(true);
    $("#confirm-cancel").onclick = () => done(false);
    dialog.oncancel = () => resolve(false);
    dialog.showModal();
    $("#confirm-cancel").focus();
  });
}

// ---------------------------------------------------------------- the session

const session = {
  token: sessionStorage.getItem("threds.token") || "",
  me: null,
  socket: null,
  pending: new Map(),
  listeners: new Set(),
  watchId: null,
  watchTimer: null,
  retry: 0,
  seq: 0,
};

async function api(path, options = {}) {
  const headers = { ...(options.headers || {}) };
  if (session.token) headers.Authorization = `Bearer ${session.token}`;
  if (options.body) headers["Content-Type"] = "application/json";
  const answer = await fetch(path, { ...options, headers });
  const text = await answer.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = { error: { message: text } };
  }
  if (!answer.ok) {
    const message = (body && body.error && body.error.message) || `${answer.status} ${answer.statusText}`;
    throw Object.assign(new Error(message), { status: answer.status });
  }
  return body;
}

function newId(prefix) {
  session.seq += 1;
  const random = crypto.getRandomValues(new Uint32Array(2));
  return `${prefix}-${Date.now().toString(36)}-${random[0].toString(36)}${random[1].toString(36)}-${session.seq}`;
}

/** Sends `event` (an event's fields; id and source are filled in). */
function send(event) {
  if (!session.socket || session.socket.readyState !== WebSocket.OPEN) {
    throw new Error("not connected: the console reconnects by itself; try again in a moment");
  }
  const full = { id: newId("console"), ...event };
  session.socket.send(JSON.stringify({ event: full }));
  return full.id;
}

/** Runs a control operation; resolves with its answer's values, rejects with its error. */
function control(type, values) {
  return new Promise((resolve, reject) => {
    let id;
    try {
      id = send({ type, thredId: "SYSTEM", data: { content: { values } } });
    } catch (e) {
      reject(e);
      return;
    }
    const timer = setTimeout(() => {
      session.pending.delete(id);
      reject(new Error(`${values.op}: no answer within ${REQUEST_TIMEOUT_MS / 1000} s`));
    }, REQUEST_TIMEOUT_MS);
    session.pending.set(id, { resolve, reject, timer, op: values.op });
  });
}

const admin = (values) => control(SYS, values);
const user = (values) => control(USER, values);

function onFrame(text) {
  let frame;
  try {
    frame = JSON.parse(text);
  } catch {
    return;
  }
  if (frame.message) {
    const event = frame.message.event || {};
    const waiting = event.re && session.pending.get(event.re);
    if (waiting && event.thredId === "SYSTEM") {
      session.pending.delete(event.re);
      clearTimeout(waiting.timer);
      const content = (event.data && event.data.content) || {};
      if (content.error) waiting.reject(new Error(`${waiting.op}: ${content.error.message} (code ${content.error.code})`));
      else waiting.resolve(content.values || {});
      return;
    }
    if (event.re && event.re === session.watchId) {
      const threds = (((event.data || {}).content || {}).values || {}).threds || [];
      store.upsert(threds, true);
      return;
    }
    for (const listener of session.listeners) listener(frame.message);
    store.touched(event.thredId);
  } else if (frame.error) {
    const waiting = frame.error.ref && session.pending.get(frame.error.ref);
    if (waiting) {
      session.pending.delete(frame.error.ref);
      clearTimeout(waiting.timer);
      waiting.reject(new Error(`${frame.error.message} (code ${frame.error.code})`));
    } else {
      notify(`${frame.error.message} (code ${frame.error.code})`, "error");
    }
  } else if (frame.ack) {
    for (const listener of session.listeners) listener({ ack: frame.ack.id });
  }
}

function setLink(state) {
  const link = $("#link");
  link.dataset.state = state;
  link.textContent = { open: "connected", connecting: "connecting…", closed: "disconnected" }[state] || state;
}

function connect() {
  if (!session.token) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const socket = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(session.token)}`);
  session.socket = socket;
  setLink("connecting");
  socket.onopen = () => {
    session.retry = 0;
    setLink("open");
    store.start();
  };
  socket.onmessage = (m) => onFrame(m.data);
  socket.onclose = (closed) => {
    if (session.socket !== socket) return;
    setLink("closed");
    clearInterval(session.watchTimer);
    for (const [, waiting] of session.pending) {
      clearTimeout(waiting.timer);
      waiting.reject(new Error("the connection closed"));
    }
    session.pending.clear();
    if (closed.code === 4401) {
      signOut(`Signed out: ${closed.reason || "the token was refused"}`);
      return;
    }
    session.retry = Math.min(session.retry + 1, 6);
    setTimeout(connect, 250 * 2 ** session.retry);
  };
}

async function signIn(token) {
  session.token = token.trim();
  try {
    session.me = await api("/console/api/whoami");
  } catch (e) {
    session.token = "";
    throw e;
  }
  sessionStorage.setItem("threds.token", session.token);
  renderWho();
  connect();
}

function signOut(reason) {
  const socket = session.socket;
  session.socket = null;
  if (socket) socket.close(1000, "signed out");
  clearInterval(session.watchTimer);
  session.token = "";
  session.me = null;
  sessionStorage.removeItem("threds.token");
  store.reset();
  renderWho();
  location.hash = "#/signin";
  if (reason) notify(reason, "error");
}

function renderWho() {
  const who = $("#who");
  who.replaceChildren();
  const nav = $("#nav");
  nav.hidden = !session.me;
  for (const link of nav.querySelectorAll("[data-admin]")) link.hidden = !(session.me && session.me.admin);
  if (!session.me) return;
  who.append(
    h("span", { class: "who-name", title: `roles: ${session.me.roles.join(", ") || "none"}` }, session.me.participant, session.me.admin ? h("span", { class: "badge" }, "admin") : null),
    h("button", { type: "button", class: "quiet", id: "sign-out", onclick: () => signOut() }, "Sign out"),
  );
}

// ---------------------------------------------------------------- the threds the console knows

const store = {
  threds: new Map(),
  loading: false,
  generation: 0,
  dirty: false,
  onChange: null,
  refetch: new Set(),

  reset() {
    this.threds.clear();
    this.loading = false;
    this.generation += 1;
    this.changed();
  },

  start() {
    this.reset();
    if (session.me.admin) this.watch();
    this.loadAll();
  },

  async watch() {
    try {
      session.watchId = null;
      const id = newId("watch");
      // The answer and every later notification carry the request's id as `re`.
      const pendingWatch = new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("watchThreds: no answer")), REQUEST_TIMEOUT_MS);
        session.pending.set(id, { resolve, reject, timer, op: "watchThreds" });
      });
      session.watchId = id;
      session.socket.send(JSON.stringify({ event: { id, type: SYS, thredId: "SYSTEM", data: { content: { values: { op: "watchThreds", directive: "start" } } } } }));
      await pendingWatch;
      clearInterval(session.watchTimer);
      session.watchTimer = setInterval(() => {
        admin({ op: "watchThreds", directive: "renew" }).catch(() => this.watch());
      }, WATCH_RENEW_MS);
    } catch (e) {
      notify(`Live updates are off: ${e.message}`, "error");
    }
  },

  /** Loads every thred page by page; the table shows the first page as soon as it is in. */
  async loadAll() {
    const generation = this.generation;
    this.loading = true;
    this.changed();
    try {
      if (session.me.admin) {
        let next = { status: "all", after: "" };
        while (next && generation === this.generation) {
          const page = await admin({ op: "getThreds", status: next.status, after: next.after, limit: SERVER_PAGE, withContext: true });
          if (generation !== this.generation) return;
          this.upsert(page.threds || [], false);
          next = page.next ? { status: page.next.status === "active" ? "all" : page.next.status, after: page.next.after } : null;
          // Let the page breathe between pages.
          await new Promise((r) => setTimeout(r, 0));
        }
      } else {
        const page = await user({ op: "getThreds", status: "all", limit: SERVER_PAGE, withContext: true });
        if (generation !== this.generation) return;
        this.upsert((page.results || []).map((r) => ({ ...r.thred, lastEvent: r.lastEvent })), false);
      }
      $("#view").dataset.loadedAt = String(Math.round(performance.now()));
    } catch (e) {
      notify(`Could not list threds: ${e.message}`, "error");
    } finally {
      if (generation === this.generation) {
        this.loading = false;
        this.changed();
      }
    }
  },

  /** Merges threds in (`live`: from a watch notification, whose threds lack their context). */
  upsert(threds, live) {
    for (const thred of threds) {
      if (!thred || !thred.id) continue;
      const known = this.threds.get(thred.id);
      const merged = known ? { ...known, ...thred } : thred;
      this.threds.set(thred.id, merged);
      if (live && !merged.context && statusOf(merged) !== "terminated") this.refetch.add(thred.id);
    }
    if (this.refetch.size && !this.refetchTimer) {
      this.refetchTimer = setTimeout(() => this.fetchContexts(), 300);
    }
    this.changed();
  },

  async fetchContexts() {
    this.refetchTimer = null;
    const ids = [...this.refetch].slice(0, SERVER_PAGE);
    ids.forEach((id) => this.refetch.delete(id));
    try {
      const page = await admin({ op: "getThreds", thredIds: ids, limit: SERVER_PAGE, withContext: true });
      this.upsert(page.threds || [], false);
    } catch {
      // The rows stay without participants until the next change.
    }
    if (this.refetch.size) this.refetchTimer = setTimeout(() => this.fetchContexts(), 300);
  },

  /** A message about `thredId` arrived: a participant's list refreshes it. */
  touched(thredId) {
    if (!thredId || thredId === "SYSTEM" || !session.me || session.me.admin) return;
    clearTimeout(this.touchTimer);
    this.touchTimer = setTimeout(() => this.loadAll(), 200);
  },

  changed() {
    if (this.dirty) return;
    this.dirty = true;
    requestAnimationFrame(() => {
      this.dirty = false;
      if (this.onChange) this.onChange();
    });
  },
};

// ---------------------------------------------------------------- views

const views = {};
let teardown = null;

function route() {
  if (teardown) {
    teardown();
    teardown = null;
  }
  store.onChange = null;
  const hash = location.hash || "#/threds";
  const [, name, ...rest] = hash.split("/");
  const arg = rest.map(decodeURIComponent).join("/");
  for (const link of document.querySelectorAll("#nav a")) {
    link.setAttribute("aria-current", link.getAttribute("href") === `#/${name}` ? "page" : "false");
  }
  const main = $("#view");
  main.replaceChildren();
  if (!session.me && name !== "signin") {
    location.hash = "#/signin";
    return;
  }
  const view = views[name] || views.threds;
  document.title = `Threds console — ${name || "threds"}`;
  view(main, arg);
}

views.signin = async (main) => {
  const form = h(
    "form",
    { class: "panel signin", id: "token-form" },
    h("h1", {}, "Sign in"),
    h("label", { for: "token" }, "Token"),
    h("textarea", { id: "token", rows: 4, placeholder: "eyJhbGciOi… (a JWT from your identity provider, or `threds token --participant …`)", required: true, spellcheck: "false" }),
    h("div", { class: "row" }, h("button", { type: "submit", id: "token-sign-in" }, "Sign in")),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await signIn($("#token").value);
      location.hash = "#/threds";
    } catch (err) {
      notify(`Not signed in: ${err.message}`, "error");
    }
  });
  main.append(form);
  // `threds dev` offers its participants; elsewhere the route answers 404 and nothing shows.
  let listed;
  try {
    const saved = session.token;
    session.token = "";
    listed = await api("/console/api/dev/participants");
    session.token = saved;
  } catch {
    return;
  }
  const as = async (participant) => {
    try {
      const minted = await api("/console/api/dev/token", { method: "POST", body: JSON.stringify({ participant }) });
      await signIn(minted.token);
      location.hash = "#/threds";
    } catch (err) {
      notify(`Not signed in: ${err.message}`, "error");
    }
  };
  const custom = h("input", { id: "dev-participant", placeholder: "any participant id", autocomplete: "off" });
  main.append(
    h(
      "section",
      { class: "panel", id: "dev-sign-in" },
      h("h2", {}, "threds dev: sign in as"),
      h("p", { class: "hint" }, "This node runs `threds dev` and mints development tokens; a production deployment takes tokens from its identity provider."),
      h(
        "div",
        { class: "chips" },
        (listed.participants || []).map((p) =>
          h("button", { type: "button", "data-participant": p.participant, onclick: () => as(p.participant) }, p.participant, p.roles.length ? h("span", { class: "badge" }, p.roles.join(", ")) : null),
        ),
      ),
      h(
        "form",
        { class: "row", onsubmit: (e) => { e.preventDefault(); if (custom.value.trim()) as(custom.value.trim()); } },
        custom,
        h("button", { type: "submit" }, "Sign in"),
      ),
    ),
  );
};

const STATUS = { a: "active", f: "finished", t: "terminated" };

/** A thred's status in words (the JSON says `a`, `f` or `t`). */
function statusOf(thred) {
  return STATUS[thred.status] || thred.status || "active";
}

views.threds = (main) => {
  const filters = { pattern: "", status: "active", participant: "" };
  let page = 0;
  const patternSelect = h("select", { id: "filter-pattern", "aria-label": "pattern" }, h("option", { value: "" }, "every pattern"));
  const statusSelect = h(
    "select",
    { id: "filter-status", "aria-label": "status" },
    ["active", "terminated", "all"].map((s) => h("option", { value: s }, s)),
  );
  const participantInput = h("input", { id: "filter-participant", placeholder: "participant", "aria-label": "participant", autocomplete: "off" });
  const counts = h("div", { class: "chips counts", id: "counts", "aria-label": "live threds per pattern" });
  const body = h("tbody", { id: "threds-body" });
  const summary = h("span", { id: "threds-summary", class: "hint" });
  const prev = h("button", { type: "button", id: "page-prev", class: "quiet" }, "← Previous");
  const next = h("button", { type: "button", id: "page-next", class: "quiet" }, "Next →");
  const onFilter = () => {
    filters.pattern = patternSelect.value;
    filters.status = statusSelect.value;
    filters.participant = participantInput.value.trim();
    page = 0;
    render();
  };
  patternSelect.addEventListener("change", onFilter);
  statusSelect.addEventListener("change", onFilter);
  participantInput.addEventListener("input", onFilter);
  prev.addEventListener("click", () => {
    page = Math.max(0, page - 1);
    render();
  });
  next.addEventListener("click", () => {
    page += 1;
    render();
  });
  main.append(
    h("h1", {}, session.me.admin ? "Live threds" : "Your threds"),
    counts,
    h("div", { class: "row filters" }, patternSelect, statusSelect, participantInput),
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        { id: "threds", class: "threds" },
        h(
          "thead",
          {},
          h("tr", {}, h("th", { class: "c-id" }, "Thred"), h("th", { class: "c-pattern" }, "Pattern"), h("th", { class: "c-reaction" }, "Reaction"), h("th", { class: "c-status" }, "Status"), h("th", { class: "c-people" }, "Participants"), h("th", { class: "c-time" }, "Updated")),
        ),
        body,
      ),
    ),
    h("div", { class: "row pager" }, prev, summary, next),
  );
  let shownPatterns = "";
  let shownRows = null;
  function render() {
    const all = [...store.threds.values()];
    // Counts per pattern (live threds) and the pattern filter's choices.
    const perPattern = new Map();
    for (const t of all) {
      if (statusOf(t) !== "terminated") perPattern.set(t.patternId, (perPattern.get(t.patternId) || 0) + 1);
    }
    const names = [...new Set(all.map((t) => t.patternId))].sort();
    if (names.join("\n") !== shownPatterns) {
      shownPatterns = names.join("\n");
      patternSelect.replaceChildren(h("option", { value: "" }, "every pattern"), ...names.map((n) => h("option", { value: n }, n)));
      patternSelect.value = filters.pattern;
    }
    counts.replaceChildren(
      ...[...perPattern.entries()].sort().map(([name, n]) =>
        h("button", { type: "button", class: "count", "data-pattern": name, onclick: () => { patternSelect.value = name; onFilter(); } }, name, h("span", { class: "badge" }, n.toLocaleString())),
      ),
    );
    const wanted = all.filter(
      (t) =>
        (!filters.pattern || t.patternId === filters.pattern) &&
        (filters.status === "all" || (filters.status === "terminated") === (statusOf(t) === "terminated")) &&
        (!filters.participant || ((t.context && t.context.participants) || []).some((p) => p.includes(filters.participant))),
    );
    wanted.sort((a, b) => (b.lastUpdateTime || 0) - (a.lastUpdateTime || 0) || (a.id < b.id ? -1 : 1));
    const pages = Math.max(1, Math.ceil(wanted.length / PAGE_ROWS));
    page = Math.min(page, pages - 1);
    const rows = wanted.slice(page * PAGE_ROWS, (page + 1) * PAGE_ROWS);
    // Rows are rebuilt only when what they show changed, and keep the keyboard focus.
    const signature = rows.map((t) => `${t.id}|${t.lastUpdateTime}|${t.status}|${t.context ? t.context.participants.length : -1}`).join("\n") + store.loading;
    if (signature !== shownRows) {
      shownRows = signature;
      const focused = document.activeElement && document.activeElement.closest && document.activeElement.closest("#threds-body tr[data-thred]");
      const focusedId = focused ? focused.dataset.thred : null;
      drawRows(rows);
      if (focusedId) {
        const again = body.querySelector(`tr[data-thred="${CSS.escape(focusedId)}"] a`);
        if (again) again.focus();
      }
    }
    const from = wanted.length ? page * PAGE_ROWS + 1 : 0;
    summary.textContent = `${from.toLocaleString()}–${(page * PAGE_ROWS + rows.length).toLocaleString()} of ${wanted.length.toLocaleString()}${store.loading ? " (loading…)" : ""}`;
    prev.disabled = page === 0;
    next.disabled = page >= pages - 1;
    main.dataset.rendered = String(wanted.length);
    if (!main.dataset.firstRender && rows.length) {
      main.dataset.firstRender = String(Math.round(performance.now()));
    }
  }
  function drawRows(rows) {
    body.replaceChildren(
      ...rows.map((t) =>
        h(
          "tr",
          { "data-thred": t.id, "data-status": statusOf(t) },
          h("td", { class: "c-id" }, h("a", { href: `#/thred/${encodeURIComponent(t.id)}` }, t.id)),
          h("td", { class: "c-pattern" }, t.patternId, t.patternVersion ? h("span", { class: "hint" }, ` v${t.patternVersion}`) : null),
          h("td", { class: "c-reaction" }, (t.currentReaction && t.currentReaction.reactionName) || "—"),
          h("td", { class: "c-status" }, h("span", { class: `status s-${statusOf(t)}` }, statusOf(t))),
          h("td", { class: "c-people" }, ((t.context && t.context.participants) || []).join(", ")),
          h("td", { class: "c-time" }, time(t.lastUpdateTime)),
        ),
      ),
    );
    if (rows.length === 0) {
      body.append(h("tr", { class: "empty" }, h("td", { colspan: 6 }, store.loading ? "Loading…" : "No threds match.")));
    }
  }
  store.onChange = render;
  render();
};

/** The pattern `id` at `version` (the active one without), from the registry (admins). */
async function patternSource(id, version) {
  const answer = await admin({ op: "listPatternVersions", patternId: id, withSource: true });
  const entry = (answer.patterns || [])[0];
  if (!entry) throw new Error(`pattern ${id} is not loaded`);
  const wanted = entry.versions.find((v) => v.version === (version || entry.active)) || entry.versions.find((v) => v.active);
  if (!wanted) throw new Error(`pattern ${id} has no version ${version}`);
  return JSON.parse(wanted.source);
}

async function loadThred(id) {
  if (session.me.admin) {
    const live = await admin({ op: "getThreds", thredIds: [id], withContext: true });
    if (live.threds && live.threds.length) return live.threds[0];
    const archived = await admin({ op: "getThreds", status: "terminated", terminatedMatcher: { "thred.id": id }, limit: 1 });
    if (archived.threds && archived.threds.length) return archived.threds[0];
  } else {
    const mine = await user({ op: "getThreds", status: "all", limit: SERVER_PAGE, withContext: true });
    const found = (mine.results || []).find((r) => r.thred && r.thred.id === id);
    if (found) return found.thred;
  }
  return store.threds.get(id) || null;
}

views.thred = async (main, id) => {
  const generation = store.generation;
  main.append(h("p", { class: "hint" }, h("a", { href: "#/threds" }, "← threds")), h("h1", {}, "Thred ", h("code", {}, id)));
  const head = h("div", { class: "facts", id: "thred-facts" });
  const graphBox = h("div", { class: "panel graph-box", id: "thred-graph" }, h("p", { class: "hint" }, "Loading the pattern…"));
  const locals = h("div", { class: "panel", id: "thred-locals" });
  const timeline = h("ol", { class: "timeline", id: "thred-timeline" });
  const actions = h("div", { class: "row actions", id: "thred-actions" });
  main.append(
    head,
    actions,
    h("div", { class: "split" }, graphBox, h("div", {}, h("h2", {}, "Locals"), locals)),
    h("h2", {}, "History"),
    timeline,
  );
  let thred;
  let pattern = null;
  const drawFacts = () => {
    const status = statusOf(thred);
    head.replaceChildren(
      fact("Pattern", `${thred.patternId}${thred.patternVersion ? ` v${thred.patternVersion}` : ""}`),
      fact("Status", h("span", { class: `status s-${status}`, id: "thred-status" }, status)),
      fact("Reaction", h("span", { id: "thred-reaction" }, (thred.currentReaction && thred.currentReaction.reactionName) || "—")),
      fact("Started", time(thred.startTime)),
      fact("Updated", time(thred.lastUpdateTime)),
      fact("Participants", ((thred.context && thred.context.participants) || []).join(", ") || "—"),
    );
    const values = (thred.context && thred.context.locals) || {};
    locals.replaceChildren(
      Object.keys(values).length
        ? h("dl", { class: "locals" }, Object.entries(values).map(([k, v]) => [h("dt", {}, k), h("dd", {}, h("pre", {}, pretty(v)))]))
        : h("p", { class: "hint" }, thred.context ? "No locals." : "Locals are not kept for terminated threds."),
    );
    if (pattern) {
      graphBox.replaceChildren(drawPattern(pattern, status === "terminated" ? null : thred.currentReaction && thred.currentReaction.reactionName));
    }
    drawActions();
  };
  const drawActions = () => {
    actions.replaceChildren();
    if (!session.me.admin || statusOf(thred) === "terminated") return;
    const choices = pattern ? pattern.reactions.map((r) => r.name) : [];
    const target = h("select", { id: "transition-target", "aria-label": "transition to" }, [...choices, "$next", "$terminate"].map((n) => h("option", { value: n }, n)));
    actions.append(
      h("label", { for: "transition-target" }, "Transition to"),
      target,
      h("button", {
        type: "button",
        id: "thred-transition",
        onclick: async () => {
          if (!(await confirmAction(`Move thred ${id} to ${target.value}?`, "Transition"))) return;
          try {
            await admin({ op: "transitionThred", thredId: id, transition: { name: target.value } });
            notify(`Thred ${id} moved to ${target.value}`);
            refresh();
          } catch (e) {
            notify(e.message, "error");
          }
        },
      }, "Transition…"),
      h("button", {
        type: "button",
        id: "thred-terminate",
        class: "danger",
        onclick: async () => {
          if (!(await confirmAction(`Terminate thred ${id}? It stops reacting for good.`, "Terminate"))) return;
          try {
            await admin({ op: "terminateThred", thredId: id });
            notify(`Thred ${id} terminated`);
            refresh();
          } catch (e) {
            notify(e.message, "error");
          }
        },
      }, "Terminate…"),
    );
  };
  const drawTimeline = async () => {
    try {
      const answer = await user({ op: "getEvents", thredId: id, allParticipants: session.me.admin, withRecipients: true });
      const entries = answer.events || [];
      timeline.replaceChildren(
        ...entries.map((entry) => {
          const event = entry.event || entry;
          const to = entry.to;
          const title = (event.data && event.data.title) || "";
          return h(
            "li",
            { class: to ? "out" : "in", "data-event": event.id, "data-type": event.type },
            h("time", {}, time(entry.timestamp || event.time)),
            h("span", { class: "who" }, (event.source && event.source.id) || "?"),
            h("span", { class: "arrow", "aria-hidden": "true" }, to ? "→" : "⇢"),
            h("span", { class: "what" }, h("code", {}, event.type), title ? ` ${title}` : ""),
            to ? h("span", { class: "to" }, `to ${[].concat(to).join(", ")}`) : h("span", { class: "to hint" }, "event in"),
            h("details", {}, h("summary", {}, "JSON"), h("pre", {}, pretty(event))),
          );
        }),
      );
      if (!entries.length) timeline.append(h("li", { class: "hint" }, "No events recorded (is [engine] history off?)."));
    } catch (e) {
      timeline.replaceChildren(h("li", { class: "hint" }, `History unavailable: ${e.message}`));
    }
  };
  const refresh = async () => {
    try {
      const fresh = await loadThred(id);
      if (generation !== store.generation) return;
      if (!fresh) {
        head.replaceChildren(h("p", { class: "hint" }, `Thred ${id} is not live, not archived, or not yours.`));
        return;
      }
      thred = fresh;
      store.upsert([thred], false);
      drawFacts();
      drawTimeline();
    } catch (e) {
      notify(e.message, "error");
    }
  };
  await refresh();
  if (!thred) return;
  if (session.me.admin) {
    try {
      pattern = await patternSource(thred.patternId, thred.patternVersion);
      drawFacts();
    } catch (e) {
      graphBox.replaceChildren(h("p", { class: "hint" }, `Pattern unavailable: ${e.message}`));
    }
  } else {
    graphBox.replaceChildren(h("p", { class: "hint" }, "Pattern graphs are shown to admins."));
  }
  // Changes to this thred (watch notifications, messages) redraw it.
  let last = thred.lastUpdateTime;
  store.onChange = () => {
    const known = store.threds.get(id);
    if (known && (known.lastUpdateTime !== last || statusOf(known) !== statusOf(thred))) {
      last = known.lastUpdateTime;
      thred = { ...thred, ...known };
      drawFacts();
      drawTimeline();
    }
  };
};

function fact(label, value) {
  return h("div", { class: "fact" }, h("span", { class: "label" }, label), h("span", { class: "value" }, value));
}

views.patterns = async (main, selected) => {
  main.append(h("h1", {}, "Patterns"));
  if (!session.me.admin) {
    main.append(h("p", { class: "hint" }, "Patterns are shown to admins."));
    return;
  }
  const list = h("ul", { class: "pattern-list", id: "pattern-list" });
  const detail = h("div", { class: "pattern-detail", id: "pattern-detail" });
  main.append(h("div", { class: "split wide-right" }, list, detail));
  let answer;
  try {
    answer = await admin({ op: "listPatternVersions", withSource: true });
  } catch (e) {
    list.append(h("li", { class: "hint" }, e.message));
    return;
  }
  const patterns = answer.patterns || [];
  for (const p of patterns) {
    const active = p.versions.find((v) => v.active) || p.versions[p.versions.length - 1];
    const live = p.versions.reduce((n, v) => n + (v.liveThreds || 0), 0);
    list.append(
      h("li", {}, h("a", { href: `#/patterns/${encodeURIComponent(p.patternId)}`, "aria-current": p.patternId === selected ? "page" : "false" }, p.patternId, h("span", { class: "hint" }, ` v${active ? active.version : "?"} · ${live} live`))),
    );
  }
  const chosen = patterns.find((p) => p.patternId === selected) || patterns[0];
  if (!chosen) {
    detail.append(h("p", { class: "hint" }, "No patterns are loaded."));
    return;
  }
  const version = chosen.versions.find((v) => v.active) || chosen.versions[chosen.versions.length - 1];
  let pattern = null;
  let parsed = "";
  try {
    pattern = JSON.parse(version.source);
  } catch (e) {
    parsed = e.message;
  }
  detail.append(
    h("h2", {}, (pattern && pattern.name) || chosen.patternId, h("span", { class: "hint" }, ` ${chosen.patternId} v${version.version}`)),
    pattern && pattern.description ? h("p", {}, pattern.description) : null,
    h(
      "p",
      { id: "pattern-validation", class: parsed ? "invalid" : "valid" },
      parsed
        ? `Its source does not parse: ${parsed}`
        : `Valid: the engine validated version ${version.version} (${version.hash ? version.hash.slice(0, 12) : "no hash"}) when it was ${version.origin ? `loaded from ${version.origin}` : "loaded"}; a pattern that fails validation is never loaded.`,
    ),
    h("div", { class: "facts" }, chosen.versions.map((v) => fact(`v${v.version}${v.active ? " (active)" : ""}`, `${v.liveThreds || 0} live · ${time(v.pushedAt)}`))),
    pattern ? h("div", { class: "panel graph-box", id: "pattern-graph" }, drawPattern(pattern, null)) : null,
    h("details", { open: true }, h("summary", {}, "Source"), h("pre", { class: "source", id: "pattern-source" }, pattern ? pretty(pattern) : version.source)),
  );
};

views.send = (main) => {
  const me = session.me.participant;
  const type = h("input", { id: "send-type", value: "org.wt.echo", required: true, autocomplete: "off" });
  const thredId = h("input", { id: "send-thred", placeholder: "empty: a new thred", autocomplete: "off" });
  const values = h("textarea", { id: "send-values", rows: 8, spellcheck: "false" });
  values.value = pretty({ echoTo: [me], echoTitle: "hello", echoContent: `hi from ${me}` });
  const results = h("ol", { class: "timeline", id: "send-results", "aria-live": "polite" });
  let sentId = null;
  let sentThred = null;
  const form = h(
    "form",
    { class: "panel", id: "send-form" },
    h("h1", {}, "Send an event"),
    h("label", { for: "send-type" }, "Type"),
    type,
    h("label", { for: "send-thred" }, "Thred"),
    thredId,
    h("label", { for: "send-values" }, "Values (JSON object: data.content.values)"),
    values,
    h("div", { class: "row" }, h("button", { type: "submit", id: "send-submit" }, "Send")),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    let content;
    try {
      content = JSON.parse(values.value || "{}");
      if (typeof content !== "object" || Array.isArray(content) || content === null) throw new Error("must be a JSON object");
    } catch (err) {
      notify(`Values: ${err.message}`, "error");
      values.focus();
      return;
    }
    const event = { type: type.value.trim(), data: { content: { values: content } } };
    if (thredId.value.trim()) event.thredId = thredId.value.trim();
    try {
      sentId = send(event);
      sentThred = event.thredId || null;
      results.replaceChildren(
        h(
          "li",
          { class: "in", "data-sent": sentId },
          h("time", {}, time(Date.now())),
          h("span", { class: "who" }, me),
          h("span", { class: "arrow", "aria-hidden": "true" }, "⇢"),
          h("span", { class: "what" }, h("code", {}, event.type), " ", h("code", { class: "hint" }, sentId)),
          h("span", { class: "to hint", id: "send-ack" }, "waiting for the ack…"),
        ),
      );
    } catch (err) {
      notify(err.message, "error");
    }
  });
  const listener = (frame) => {
    if (frame.ack) {
      if (frame.ack === sentId) {
        const ack = $("#send-ack");
        if (ack) ack.textContent = "accepted";
      }
      return;
    }
    const event = frame.event || {};
    // The server names the event whose step sent a message (`cause`).
    if (!sentId || frame.cause !== sentId) return;
    sentThred = sentThred || event.thredId;
    results.append(
      h(
        "li",
        { class: "out", "data-caused": event.id },
        h("time", {}, time(event.time || Date.now())),
        h("span", { class: "who" }, (event.source && event.source.id) || "?"),
        h("span", { class: "arrow", "aria-hidden": "true" }, "→"),
        h("span", { class: "what" }, h("code", {}, event.type), ` ${(event.data && event.data.title) || ""}`),
        h(
          "span",
          { class: "to" },
          `to ${(frame.to || []).join(", ")} `,
          event.thredId ? h("a", { href: `#/thred/${encodeURIComponent(event.thredId)}`, class: "open-thred" }, "open thred") : null,
        ),
      ),
    );
  };
  session.listeners.add(listener);
  teardown = () => session.listeners.delete(listener);
  main.append(form, h("h2", {}, "What it caused"), results);
};

/** Prometheus text → samples `{name, labels, value}`. */
function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const pair of (m[3] || "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[pair[1]] = pair[2];
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return samples;
}

const sum = (samples, name) => samples.filter((s) => s.name === name).reduce((n, s) => n + s.value, 0);

views.health = (main) => {
  const tiles = h("div", { class: "tiles", id: "health-tiles" });
  const note = h("p", { class: "hint" }, "From this node's /metrics, every 2 s. A session node of a distributed deployment reports its own figures; the engines' are on theirs.");
  main.append(h("h1", {}, "Health"), tiles, note);
  let before = null;
  const tile = (id, label, value) => h("div", { class: "tile", id }, h("span", { class: "label" }, label), h("span", { class: "value" }, value));
  const poll = async () => {
    try {
      const text = await (await fetch("/metrics")).text();
      const samples = parseMetrics(text);
      const now = performance.now();
      const consumed = sum(samples, "threds_steps_total");
      const rate = before ? Math.max(0, (consumed - before.consumed) / ((now - before.at) / 1000)) : null;
      before = { consumed, at: now };
      tiles.replaceChildren(
        tile("health-rate", "events/s", rate === null ? "…" : rate.toFixed(1)),
        tile("health-lag", "consumer lag", sum(samples, "threds_consumer_lag").toLocaleString()),
        tile("health-dead", "dead letters", sum(samples, "threds_dead_letters_total").toLocaleString()),
        tile("health-live", "live threds", sum(samples, "threds_live_threds").toLocaleString()),
        tile("health-connections", "WebSocket connections", sum(samples, "threds_websocket_connections").toLocaleString()),
        tile("health-outbox", "outbox backlog", sum(samples, "threds_outbox_backlog").toLocaleString()),
      );
    } catch (e) {
      note.textContent = `Metrics unavailable: ${e.message}`;
    }
  };
  poll();
  const timer = setInterval(poll, 2000);
  teardown = () => clearInterval(timer);
};

// ---------------------------------------------------------------- start

window.addEventListener("hashchange", route);
async function start() {
  if (session.token) {
    try {
      await signIn(session.token);
    } catch {
      session.token = "";
      sessionStorage.removeItem("threds.token");
    }
  }
  renderWho();
  route();
}
start();
