// The eventconfig web console: plain browser JavaScript over the gateway's /v1 API, no build step.
//
// State flows one way: the watch stream (Server-Sent Events read with fetch, so it can carry the
// Authorization header) says which version exists; every read passes min_version so the page never
// shows something older than a change it was told about. Edits are PUTs with If-Match: a 412 shows
// the conflict and keeps the draft.
"use strict";

const $ = id => document.getElementById(id);

const state = {
  workspace: null,     // selected workspace
  type: null, key: null,
  item: null,          // {value, version} of the selected key as last read
  editing: false,
  baseVersion: null,   // the version an edit is based on (its If-Match)
  seen: 0,             // highest version the watch stream reported
  mode: null,          // "development" | "production"
  historyNext: null,   // next page of the workspace history
};

// --- DOM helpers ------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function show(id, visible) { $(id).hidden = !visible; }

let toastTimer = null;
function toast(text) {
  const box = $("toast");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

function when(ms) { return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC"); }

// --- the API ----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

function authHeaders() {
  const headers = {};
  const auth = sessionStorage.getItem("eventconfig.authorization");
  if (auth) headers["Authorization"] = auth;
  const actor = localStorage.getItem("eventconfig.actor");
  if (actor && state.mode !== "production") headers["X-Eventconfig-Actor"] = actor;
  return headers;
}

async function problemOf(response) {
  try { return new ApiError(response.status, await response.json()); }
  catch (e) { return new ApiError(response.status, {detail: `HTTP ${response.status}`}); }
}

async function api(path, {method = "GET", body, headers = {}} = {}) {
  const init = {method, headers: {...authHeaders(), ...headers}};
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    signIn();
    throw await problemOf(response);
  }
  if (!response.ok) throw await problemOf(response);
  return response.json();
}

function query(params) {
  const q = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value !== null && value !== undefined) q.set(name, value);
  const text = q.toString();
  return text ? `?${text}` : "";
}

const enc = encodeURIComponent;
const itemPath = (ws, type, key) => `/v1/workspaces/${enc(ws)}/config/${enc(type)}/${key.split("/").map(enc).join("/")}`;

// --- identity ---------------------------------------------------------------------------------

async function loadIdentity() {
  try {
    const me = await api("/v1/whoami");
    state.mode = me.mode;
    $("identity").textContent = me.verified ? `signed in as ${me.actor}` : "development mode (unverified)";
    show("actor-box", me.mode === "development");
    show("sign-out", me.mode === "production");
    return true;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return false;
    toast(`The gateway does not answer: ${e.message}`);
    return true;
  }
}

function signIn() {
  const dialog = $("sign-in");
  if (!dialog.open) dialog.showModal();
}

$("sign-in-form").addEventListener("submit", async event => {
  event.preventDefault();
  const token = $("sign-in-token").value.trim();
  const user = $("sign-in-user").value.trim();
  const auth = token ? `Bearer ${token}` : `Basic ${btoa(unescape(enc(`${user}:${$("sign-in-password").value}`)))}`;
  sessionStorage.setItem("eventconfig.authorization", auth);
  if (await loadIdentity()) {
    $("sign-in").close();
    start();
  } else {
    $("sign-in-status").textContent = "Those credentials were not accepted.";
  }
});

$("sign-out").addEventListener("click", () => {
  sessionStorage.removeItem("eventconfig.authorization");
  location.reload();
});

$("actor-input").value = localStorage.getItem("eventconfig.actor") || "";
$("actor-input").addEventListener("change", e => localStorage.setItem("eventconfig.actor", e.target.value.trim()));

// --- workspaces and the tree ------------------------------------------------------------------

async function loadWorkspaces() {
  const data = await api(`/v1/workspaces${query({min_version: state.seen || null})}`);
  const list = $("workspaces");
  list.replaceChildren(...data.workspaces.map(ws => el("li", {
    dataset: {workspace: ws}, class: ws === state.workspace ? "selected" : "",
    onclick: () => { location.hash = `#/${enc(ws)}`; },
  }, ws)));
  if (!data.workspaces.length) list.append(el("li", {class: "muted"}, "no workspaces yet"));
}

async function loadTree() {
  if (!state.workspace) return;
  const data = await api(`/v1/workspaces/${enc(state.workspace)}/config${query({min_version: state.seen || null})}`);
  $("tree-title").textContent = state.workspace;
  const tree = $("tree");
  const types = Object.keys(data.config).sort();
  tree.replaceChildren(...types.map(type => el("details", {open: "", dataset: {type}},
    el("summary", {}, type, el("span", {class: "count"}, Object.keys(data.config[type]).length)),
    el("ul", {class: "list"}, ...Object.keys(data.config[type]).sort().map(key => el("li", {
      class: "key" + (type === state.type && key === state.key ? " selected" : ""),
      dataset: {type, key},
      onclick: () => { location.hash = `#/${enc(state.workspace)}/${enc(type)}/${enc(key)}`; },
    }, key))))));
  if (!types.length) tree.append(el("p", {class: "muted"}, "This workspace has no config."));
  show("tree-box", true);
  $("global-version").textContent = `version ${data.version}`;
}

// --- one key ----------------------------------------------------------------------------------

async function loadKey({keepNotice = false} = {}) {
  if (!state.key) return;
  $("key-path").textContent = `${state.workspace} / ${state.type} / ${state.key}`;
  if (!keepNotice) show("key-notice", false);
  try {
    const item = await api(itemPath(state.workspace, state.type, state.key) + query({min_version: state.seen || null}));
    state.item = item;
    $("key-version").textContent = `version ${item.version}`;
    $("key-value").textContent = prettyValue(item.value);
    $("key-value").classList.remove("missing");
    $("edit-button").disabled = $("delete-button").disabled = false;
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 404) throw e;
    state.item = null;
    $("key-version").textContent = "deleted";
    $("key-value").textContent = "This key does not exist (any more).";
    $("key-value").classList.add("missing");
    $("edit-button").disabled = $("delete-button").disabled = true;
  }
  await Promise.all([loadKeyHistory(), loadSchemas()]);
}

// --- validated config: the type's schema, drafts checked before they are sent -----------------

async function loadSchemas() {
  const data = await api(`/v1/workspaces/${enc(state.workspace)}/schemas/${enc(state.type)}` +
                         query({min_version: state.seen || null}));
  state.schemas = data.schemas;
  $("schema-text").textContent = data.schemas.map(s =>
    `${state.type}@${s.workspaces} (version ${s.version})\n${JSON.stringify(s.schema, null, 2)}`).join("\n\n");
  show("schema-box", data.schemas.length > 0);
}

/** Shows a refusal (a 422 problem: the service's, or the gateway's check of the draft) under the editor. */
function showRefusal(problem) {
  const box = $("validation");
  box.className = "validation refused";
  box.replaceChildren(el("strong", {}, "Invalid: "), problem.detail);
  show("validation", true);
}

/** Checks the draft as the writer would; true when it may be sent. */
async function checkDraft() {
  if (!state.schemas || !state.schemas.length) { show("validation", false); return true; }
  const response = await fetch(`/v1/workspaces/${enc(state.workspace)}/validate`, {
    method: "POST", headers: {...authHeaders(), "Content-Type": "application/json"},
    body: JSON.stringify({type: state.type, key: state.key, value: draftValue()}),
  });
  if (response.status === 422) { showRefusal(await response.json()); return false; }
  if (!response.ok) throw await problemOf(response);
  const box = $("validation");
  box.className = "validation ok";
  box.textContent = `Valid against ${state.schemas.map(s => `${state.type}@${s.workspaces}`).join(", ")}`;
  show("validation", true);
  return true;
}

let draftTimer = null;
$("editor").addEventListener("input", () => {
  clearTimeout(draftTimer);
  draftTimer = setTimeout(() => checkDraft().catch(() => {}), 250);
});

function changeView(change) {
  const before = prettyValue(change.previous), after = prettyValue(change.value);
  if (after === null) return el("div", {class: "diff"}, el("span", {class: "del"}, "deleted"));
  if (before === null) return el("pre", {class: "diff"}, ...after.split("\n").map(line => el("span", {class: "add"}, `+ ${line}\n`)));
  return el("pre", {class: "diff"}, ...diffLines(before, after).map(({op, line}) =>
    el("span", {class: op === "+" ? "add" : op === "-" ? "del" : "same"}, `${op} ${line}\n`)));
}

function entryView(mutation, {showKeys}) {
  return el("li", {class: "entry", dataset: {version: mutation.version}},
    el("div", {class: "entry-head"},
      el("span", {class: "badge"}, `v${mutation.version}`),
      el("span", {class: "actor"}, mutation.actor || "unknown actor"),
      el("span", {class: "muted"}, `${mutation.operation} · ${when(mutation.timestamp_ms)}`)),
    ...mutation.changes.map(change => el("div", {class: "change"},
      showKeys ? el("div", {class: "change-key"}, `${change.type} / ${change.key}`) : null,
      changeView(change))));
}

async function loadKeyHistory() {
  const data = await api(`/v1/history${query({workspace: state.workspace, type: state.type, key: state.key,
                                              order: "desc", limit: 50})}`);
  $("key-history").replaceChildren(...data.items.map(m => entryView(m, {showKeys: false})));
  if (!data.items.length) $("key-history").append(el("li", {class: "muted"}, "No history held for this key."));
}

// --- editing ----------------------------------------------------------------------------------

function startEdit() {
  if (!state.item) return;
  state.editing = true;
  state.baseVersion = state.item.version;
  $("editor").value = prettyValue(state.item.value);
  $("save-status").textContent = "";
  show("editor-form", true);
  show("conflict", false);
  show("validation", false);
  $("editor").focus();
}

function stopEdit() {
  state.editing = false;
  show("editor-form", false);
  show("conflict", false);
}

/** The draft as it will be stored: JSON is re-serialized compactly when the stored value was compact JSON. */
function draftValue() {
  const text = $("editor").value;
  const original = state.item ? state.item.value : "";
  if (prettyValue(original) !== original) {
    try { return JSON.stringify(JSON.parse(text)); } catch (e) { /* not JSON any more: store the text */ }
  }
  return text;
}

async function save(event) {
  event.preventDefault();
  clearTimeout(draftTimer);  // the save checks the draft itself
  $("save-status").textContent = "checking…";
  try {
    if (!await checkDraft()) { $("save-status").textContent = "Not saved: fix the value first."; return; }
    $("save-status").textContent = "saving…";
    const response = await fetch(itemPath(state.workspace, state.type, state.key), {
      method: "PUT",
      headers: {...authHeaders(), "Content-Type": "application/json", "If-Match": `"${state.baseVersion}"`},
      body: JSON.stringify({value: draftValue()}),
    });
    if (response.status === 412) return showConflict(await response.json());
    if (response.status === 422) {  // a schema this page did not know yet: learn it, show the refusal
      const problem = await response.json();
      await loadSchemas().catch(() => {});
      showRefusal(problem);
      $("save-status").textContent = "Not saved: the service refused the value.";
      return;
    }
    if (!response.ok) throw await problemOf(response);
    const written = await response.json();
    state.seen = Math.max(state.seen, written.version);
    stopEdit();
    $("save-status").textContent = "";
    toast(`Saved: version ${written.version}`);
    await Promise.all([loadKey(), loadTree()]);
  } catch (e) {
    $("save-status").textContent = `Not saved: ${e.message}`;
  }
}

async function showConflict(problem) {
  $("save-status").textContent = "";
  $("conflict-detail").textContent = `${problem.detail}. Your edit was not saved and nothing was overwritten. ` +
    "The current value is:";
  try {
    const current = await api(itemPath(state.workspace, state.type, state.key) + query({min_version: state.seen || null}));
    state.conflictVersion = current.version;
    $("conflict-current").textContent = prettyValue(current.value);
  } catch (e) {
    state.conflictVersion = 0;
    $("conflict-current").textContent = "(the key has been deleted)";
  }
  show("conflict", true);
}

$("edit-button").addEventListener("click", startEdit);
$("cancel-button").addEventListener("click", stopEdit);
$("editor-form").addEventListener("submit", save);
$("conflict-retry").addEventListener("click", () => {
  state.baseVersion = state.conflictVersion;
  show("conflict", false);
  $("save-status").textContent = `Your edit is now based on version ${state.baseVersion}: save again to apply it.`;
});
$("conflict-discard").addEventListener("click", async () => { stopEdit(); await loadKey(); });

$("delete-button").addEventListener("click", async () => {
  if (!state.item || !confirm(`Delete ${state.type}/${state.key}?`)) return;
  try {
    const written = await api(itemPath(state.workspace, state.type, state.key),
                              {method: "DELETE", headers: {"If-Match": `"${state.item.version}"`}});
    state.seen = Math.max(state.seen, written.version);
    toast(`Deleted: version ${written.version}`);
    await Promise.all([loadKey(), loadTree()]);
  } catch (e) {
    toast(`Not deleted: ${e.message}`);
  }
});

$("new-key-form").addEventListener("submit", async event => {
  event.preventDefault();
  const type = $("new-type").value.trim(), key = $("new-key-name").value.trim();
  try {
    const written = await api(itemPath(state.workspace, type, key), {
      method: "PUT", body: {value: $("new-value").value}, headers: {"If-None-Match": "*"}});
    state.seen = Math.max(state.seen, written.version);
    $("new-key-status").textContent = `Created: version ${written.version}`;
    location.hash = `#/${enc(state.workspace)}/${enc(type)}/${enc(key)}`;
  } catch (e) {
    $("new-key-status").textContent = `Not created: ${e.message}`;
  }
});

// --- workspace history and state at a version -------------------------------------------------

async function loadWorkspaceHistory(more = false) {
  $("ws-history-name").textContent = state.workspace;
  const path = more && state.historyNext ? state.historyNext
    : `/v1/history${query({workspace: state.workspace, order: "desc", limit: 25})}`;
  const data = await api(path);
  const entries = data.items.map(m => entryView(m, {showKeys: true}));
  if (more) $("ws-history").append(...entries); else $("ws-history").replaceChildren(...entries);
  state.historyNext = data.next;
  show("ws-history-more", Boolean(data.next));
}

function atParams() {
  const at = $("state-at").value.trim();
  return /^\d+$/.test(at) && at.length < 12 ? {at_version: at} : {at_time: at};
}

$("state-form").addEventListener("submit", async event => {
  event.preventDefault();
  $("state-diff-result").replaceChildren();
  try {
    const data = await api(`/v1/state${query({...atParams(), workspace: state.workspace})}`);
    $("state-summary").textContent = `As of version ${data.version}` + (data.time ? ` (${data.time})` : "");
    $("state-result").textContent = JSON.stringify(data.config, (k, v) => (typeof v === "string" ? parsedValue(v) : v), 2);
  } catch (e) {
    $("state-summary").textContent = e.message;
    $("state-result").textContent = "";
  }
});

$("state-diff").addEventListener("click", async () => {
  try {
    const at = await api(`/v1/state${query({...atParams(), workspace: state.workspace})}`);
    const now = await api(`/v1/workspaces${query({min_version: state.seen || null})}`);
    const diff = await api(`/v1/diff${query({from: at.version, to: now.version, workspace: state.workspace})}`);
    const changes = [...diff.added, ...diff.removed, ...diff.changed];
    $("state-summary").textContent = `From version ${at.version} to now (version ${now.version}): ` +
      `${diff.added.length} added, ${diff.removed.length} removed, ${diff.changed.length} changed`;
    $("state-result").textContent = "";
    $("state-diff-result").replaceChildren(...changes.map(c => el("li", {class: "entry"},
      el("div", {class: "change-key"}, `${c.kind}: ${c.type} / ${c.key}`),
      changeView({previous: c.old, value: c.new}))));
  } catch (e) {
    $("state-summary").textContent = e.message;
  }
});

$("ws-history-more").addEventListener("click", () => loadWorkspaceHistory(true));

// --- tabs and navigation ----------------------------------------------------------------------

function showTab(id) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === id);
  for (const pane of ["key-pane", "ws-history-pane", "state-pane", "welcome"]) show(pane, pane === id);
  if (id === "ws-history-pane") loadWorkspaceHistory().catch(e => toast(e.message));
  if (id === "state-pane") $("state-ws-name").textContent = state.workspace;
}

for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => showTab(tab.dataset.tab));

async function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  const [workspace, type, ...key] = parts;
  if (state.editing) stopEdit();
  state.workspace = workspace || null;
  state.type = type || null;
  state.key = key.length ? key.join("/") : null;
  show("tabs", Boolean(state.workspace));
  try {
    await loadWorkspaces();
    if (!state.workspace) { show("tree-box", false); showTab("welcome"); return; }
    await loadTree();
    if (state.key) { showTab("key-pane"); await loadKey(); }
    else showTab("ws-history-pane");
  } catch (e) {
    toast(e.message);
  }
}

window.addEventListener("hashchange", route);

// --- live updates -----------------------------------------------------------------------------

function setLive(live, text) {
  const pill = $("live-status");
  pill.classList.toggle("offline", !live);
  pill.classList.toggle("live", live);
  pill.textContent = text;
}

async function onPoke(poke) {
  state.seen = Math.max(state.seen, poke.version);
  const touched = Object.entries(poke.changes).filter(([, workspaces]) => workspaces.includes(state.workspace));
  const lifecycle = poke.workspace_changes;
  if (lifecycle && (lifecycle.created.length || lifecycle.deleted.length)) await loadWorkspaces();
  if (!touched.length) return;
  toast(`version ${poke.version}: ${touched.map(([type]) => type).join(", ")} changed in ${state.workspace}`);
  await loadTree();
  if (state.key && touched.some(([type]) => type === state.type)) {
    if (state.editing) {
      const before = state.item ? state.item.version : null;
      await loadKey({keepNotice: true});
      if (state.item && state.item.version !== before) {
        $("key-notice").textContent = `Someone else saved version ${state.item.version} of this key while you ` +
          "are editing; saving your edit will show the conflict.";
        show("key-notice", true);
      }
    } else {
      await loadKey();
    }
  }
  if (!$("ws-history-pane").hidden) await loadWorkspaceHistory();
}

async function onEvent(event) {
  if (event.type === "ready" || event.type === "resync") {
    state.seen = Math.max(state.seen, Number(event.id));
    setLive(true, "live");
    if (event.type === "resync") toast("Reloaded: some changes were too old to replay one by one.");
    await route();
  } else if (event.type === "poke") {
    await onPoke(JSON.parse(event.data));
  }
}

function parseEvent(block) {
  const event = {type: "message", data: ""};
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event.type = value;
    else if (field === "data") event.data += value;
    else if (field === "id") event.id = value;
  }
  return event.data || event.id !== undefined ? event : null;
}

async function watch() {
  let lastId = null, delay = 1000;
  for (;;) {
    try {
      const headers = authHeaders();
      if (lastId !== null) headers["Last-Event-ID"] = lastId;
      const response = await fetch("/v1/watch", {headers});
      if (!response.ok) throw await problemOf(response);
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = parseEvent(buffer.slice(0, end));
          buffer = buffer.slice(end + 2);
          if (!event) continue;
          if (event.id !== undefined) lastId = event.id;
          delay = 1000;
          await onEvent(event).catch(e => toast(e.message));
        }
      }
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) { signIn(); return; }
    }
    setLive(false, "reconnecting…");
    await new Promise(resolve => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 15000);
  }
}

let started = false;
function start() {
  if (started) return;
  started = true;
  route();
  watch();  // its ready event loads the page again, at least at the version it reports
}

(async () => { if (await loadIdentity()) start(); else signIn(); })();
