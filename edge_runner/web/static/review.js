// The review page: one frame at a time; one tap or one key labels it (1..9 a label, 0 nothing, s skip, u undo).
"use strict";

const state = { pending: [], history: [], busy: false };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

async function api(url, options = {}) {
  const response = await fetch(url, { credentials: "same-origin", ...options });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

const percent = (score) => `${Math.round(score * 100)}%`;
const when = (record) => record.time.replace("T", " ").slice(0, 19);

// The answers for a record: its contract's labels of interest (keys 1..9), "nothing" (0), "skip" (s).
function choices(record) {
  const labels = record.labels.filter((label) => label !== record.background_label);
  return [...labels.slice(0, 9).map((label, i) => ({ label, key: String(i + 1), text: label })),
    { label: "nothing", key: "0", text: "nothing here", cls: "nothing" },
    { label: "skip", key: "s", text: "skip", cls: "skip" }];
}

function describe(record) {
  const kind = { visit: "visit (best frame)", close: "close to the threshold", quiet: "quiet moment" }[record.kind] || record.kind;
  return `model: ${record.model_label} ${percent(record.model_score)} · ${kind} · ${when(record)}`;
}

function render() {
  const box = $("current");
  box.replaceChildren();
  const record = state.pending[0];
  if (!record) {
    box.append(el("h2", {}, "Nothing to review"),
      el("p", { class: "muted" }, "New frames arrive as the camera sees visits, near misses and quiet moments."));
    return;
  }
  box.dataset.id = record.id;
  box.append(el("img", { class: "frame", src: record.image, alt: `frame ${record.id}` }));
  if (record.strip) box.append(el("img", { class: "strip", src: record.strip, alt: "the visit from arrival to departure" }));
  box.append(el("p", { class: "answer", id: "answer" }, describe(record)));
  box.append(el("p", { class: "small muted" }, `${record.id} · group ${record.group} · what is in this frame?`));
  const row = el("div", { class: "choices" });
  for (const choice of choices(record)) {
    row.append(el("button", { type: "button", class: choice.cls || "", "data-label": choice.label, onclick: () => answer(choice.label) },
      el("kbd", {}, choice.key), choice.text));
  }
  box.append(row);
}

async function answer(label) {
  const record = state.pending[0];
  if (!record || state.busy) return;
  state.busy = true;
  try {
    const updated = await api(`/api/review/${record.id}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ label }),
    });
    state.pending.shift();
    state.history.push({ ...record, review: updated.review });
    $("status").textContent = `${record.id}: ${label}`;
    render();
  } catch (error) {
    $("status").textContent = `not saved: ${error.message}`;
    return;
  } finally {
    state.busy = false;  // the next key works at once; the lists below refresh behind it
  }
  refresh();
}

function refresh() {
  (state.pending.length < 3 ? loadPending() : Promise.resolve()).then(loadSide).catch((error) => {
    $("status").textContent = `could not refresh: ${error.message}`;
  });
}

async function undo(record = state.history[state.history.length - 1]) {
  if (!record || state.busy) return;
  state.busy = true;
  try {
    await api(`/api/review/${record.id}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ label: null }),
    });
    state.history = state.history.filter((item) => item.id !== record.id);
    state.pending = [{ ...record, review: null }, ...state.pending.filter((item) => item.id !== record.id)];
    $("status").textContent = `${record.id}: undone`;
    render();
  } catch (error) {
    $("status").textContent = `undo failed: ${error.message}`;
    return;
  } finally {
    state.busy = false;
  }
  refresh();
}

async function loadPending() {
  const body = await api("/api/review?status=pending&limit=50");
  const shown = new Set(state.pending.map((record) => record.id));
  state.pending.push(...body.records.filter((record) => !shown.has(record.id)));
  const s = body.summary;
  $("summary").textContent = `${s.pending} to review, ${s.reviewed} reviewed`;
  render();
}

function listItem(record, extra) {
  return el("li", {}, el("img", { src: record.image, alt: "", loading: "lazy" }),
    el("span", {}, `${when(record)} · model ${record.model_label} ${percent(record.model_score)}`, extra || ""));
}

let sideSeq = 0;
async function loadSide() {
  const seq = ++sideSeq;
  const [reviewed, all] = await Promise.all([api("/api/review?status=reviewed&limit=10"), api("/api/review?status=all&limit=200")]);
  if (seq !== sideSeq) return;  // a newer refresh is on its way: never draw an older answer over it
  $("reviewed").replaceChildren(...reviewed.records.map((record) => {
    const item = listItem(record, el("strong", {}, ` → ${record.review.label}`));
    item.append(el("button", { type: "button", onclick: () => undo(record) }, "undo"));
    return item;
  }));
  const visits = all.records.filter((record) => record.kind === "visit").slice(0, 10);
  $("visits").replaceChildren(...(visits.length ? visits.map((record) => listItem(record)) :
    [el("li", { class: "muted" }, "No visits yet.")]));
  const s = reviewed.summary;
  $("summary").textContent = `${s.pending} to review, ${s.reviewed} reviewed`;
}

// The watcher's events, when this server runs it (serve --camera); a separate watch process keeps its own.
async function loadEvents() {
  const model = await api("/api/model");
  if (!model.camera) return;  // no watcher in this server: no request that could only fail
  const response = await fetch("/api/events?limit=10", { credentials: "same-origin" });
  if (!response.ok) return;
  const body = await response.json();
  $("events").replaceChildren(...body.events.map((event) => {
    const at = new Date(1000 * (event.event === "left" && event.end !== null ? event.end : event.start));
    const text = event.clock === "unix" ? at.toLocaleTimeString() : `${event.start.toFixed(1)} s`;
    return el("li", {}, `${text} · ${event.label} ${event.event} (best ${percent(event.peak_score)})`);
  }));
  $("events-panel").hidden = body.events.length === 0;
}

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest("input, textarea")) return;
  const key = event.key.toLowerCase();
  if (key === "u") { event.preventDefault(); undo(); return; }
  const record = state.pending[0];
  const choice = record && choices(record).find((item) => item.key === key);
  if (choice) { event.preventDefault(); answer(choice.label); }
});

loadEvents().catch(() => {});
Promise.all([loadPending(), loadSide()]).catch((error) => {
  $("current").replaceChildren(el("p", { class: "error" }, `The review queue could not be loaded: ${error.message}`));
});
