// edgekit's page: pick or drop photos, see each one's top labels; watch the live camera.
// Plain browser JavaScript, no build step and nothing fetched from elsewhere: it runs offline on a Pi.
"use strict";

const state = { model: null, maxUpload: 10 * 1024 * 1024, queue: [], running: 0 };
const PARALLEL_UPLOADS = 2;

function $(id) { return document.getElementById(id); }

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;  // textContent only: names from files are never parsed as HTML
  return node;
}

function formatSize(bytes) {
  if (bytes >= 1024 * 1024) return (bytes / (1024 * 1024)).toFixed(1) + " MB";
  if (bytes >= 1024) return Math.round(bytes / 1024) + " KB";
  return bytes + " bytes";
}

function percent(score) { return (score * 100).toFixed(1) + "%"; }

// Words for a "nothing here" answer, or null for a detection. Only a model whose contract
// names a background label says "nothing recognised"; any other model shows its labels as always.
function nothingMessage(label, detected) {
  const background = state.model ? state.model.background_label : null;
  if (background === null || background === undefined || detected !== false) return null;
  if (label === background) return "nothing recognised";
  return "nothing recognised with enough confidence";
}

// The session cookie expired or the server's token changed: reload, and the server asks for the token.
function checkAccess(response) {
  if (response.status === 401) { window.location.reload(); throw new Error("the access token is needed again"); }
  return response;
}

async function loadModel() {
  try {
    const response = checkAccess(await fetch("/api/model"));
    if (!response.ok) throw new Error("HTTP " + response.status);
    const model = await response.json();
    state.model = model;
    state.maxUpload = model.max_upload_bytes;
    $("model").textContent =
      `${model.name} · ${model.labels.length} labels (${model.labels.join(", ")}) · ${model.variant} · ` +
      `${model.runtime.name} ${model.runtime.version}`;
    $("limit").textContent = `Photos up to ${formatSize(model.max_upload_bytes)}, classified on this device` +
      (model.archive ? "; the server keeps a copy of each upload." : "; nothing is kept after the answer.");
    if (model.camera) startCamera();
  } catch (error) {
    $("model").textContent = "Cannot reach the server: " + error.message;
  }
}

// -- uploads ------------------------------------------------------------------

function addCard(file) {
  const card = el("article", "card");
  const thumb = el("img", "thumb");
  thumb.alt = file.name;
  const url = URL.createObjectURL(file);
  thumb.src = url;
  thumb.addEventListener("load", () => URL.revokeObjectURL(url), { once: true });
  thumb.addEventListener("error", () => { URL.revokeObjectURL(url); thumb.classList.add("broken"); }, { once: true });
  const body = el("div", "card-body");
  body.append(el("h3", "name", file.name || "photo"), el("p", "status muted", "waiting…"));
  card.append(thumb, body);
  $("results").prepend(card);
  return card;
}

function showError(card, message) {
  card.classList.add("failed");
  const status = card.querySelector(".status");
  status.className = "status error";
  status.textContent = message;
}

// "looks like: raccoon 71%" from the --looks-like companion's answer (null when it named nothing).
function looksLikeText(looks) {
  if (!looks) return null;
  return "looks like: " + looks.top_k.map((item) => `${item.label} ${percent(item.score)}`).join(", ");
}

function showPrediction(card, result, roundTripMs) {
  const body = card.querySelector(".card-body");
  card.querySelector(".status").remove();
  const timing = el("p", "timing muted small",
    `inference ${result.latency_ms.toFixed(1)} ms · round trip ${Math.round(roundTripMs)} ms`);
  const nothing = nothingMessage(result.label, result.detected);
  if (nothing !== null && result.label === state.model.background_label) {
    // The background class won: no bars, a plain sentence (and the score behind it).
    const looks = looksLikeText(result.looks_like);
    // "nothing recognised — looks like: raccoon 71%" when the companion named something.
    const answer = el("p", "answer nothing", looks === null ? nothing : `${nothing} — ${looks}`);
    answer.dataset.label = result.label;
    const vetoed = result.vetoed;  // --looks-like-veto: a detection the second opinion did not back
    const detail = el("p", "nothing-detail muted small", vetoed
      ? `${vetoed.label} ${percent(vetoed.score)}, vetoed: the second opinion gives it ${percent(vetoed.mass)}`
      : `${result.label} ${percent(result.score)}`);
    body.append(answer, detail, timing);
    card.classList.add("done", "nothing-card");
    return;
  }
  const list = el("ol", "bars");
  result.top_k.forEach((item, index) => {
    const row = el("li", index === 0 ? "bar top" : "bar");
    const label = el("span", "bar-label", item.label);
    const value = el("span", "bar-value", percent(item.score));
    const track = el("span", "bar-track");
    const fill = el("span", "bar-fill");
    fill.style.width = Math.max(0, Math.min(100, item.score * 100)).toFixed(1) + "%";
    track.append(fill);
    row.append(label, value, track);
    list.append(row);
  });
  const looks = nothing === null ? null : looksLikeText(result.looks_like);
  const words = nothing === null ? result.label : (looks === null ? nothing : `${nothing} — ${looks}`);
  const answer = el("p", nothing === null ? "answer" : "answer nothing", words);
  answer.dataset.label = result.label;
  body.append(answer, list, timing);
  const rescued = result.rescued;  // --looks-like-rescue: the second opinion saw what the model did not (bars: the model's)
  if (rescued) {
    answer.after(el("p", "rescued-detail muted small",
      `rescued: the model said ${rescued.label} ${percent(rescued.score)}; the second opinion sees ${result.label} ` +
      `${percent(rescued.mass)}`));
  }
  card.classList.add("done");
}

async function classify(file, card) {
  if (file.size > state.maxUpload) {
    showError(card, `${file.name}: the photo is ${formatSize(file.size)}; the limit is ${formatSize(state.maxUpload)}.`);
    return;
  }
  if (file.size === 0) {
    showError(card, `${file.name}: the file is empty.`);
    return;
  }
  card.querySelector(".status").textContent = "classifying…";
  const form = new FormData();
  form.append("file", file, file.name);
  const started = performance.now();
  let response;
  try {
    response = checkAccess(await fetch("/api/classify", { method: "POST", body: form }));
  } catch (error) {
    showError(card, `${file.name}: could not reach the server (${error.message}).`);
    return;
  }
  const roundTrip = performance.now() - started;
  let payload = null;
  try { payload = await response.json(); } catch (ignored) { /* a proxy's HTML error page */ }
  if (!response.ok) {
    const reason = payload && payload.error ? payload.error : `the server answered ${response.status} ${response.statusText}`;
    showError(card, reason);
    return;
  }
  showPrediction(card, payload, roundTrip);
  addExplainButton(card, file);
}

// "explain": ask the server for the occlusion map (POST /api/classify?explain=1) and show it over the photo.
function addExplainButton(card, file) {
  const button = el("button", "explain", "explain");
  button.type = "button";
  const note = el("p", "explain-note muted small");
  button.addEventListener("click", async () => {
    button.disabled = true;
    note.className = "explain-note muted small";
    note.textContent = "finding which part of the photo mattered…";
    const form = new FormData();
    form.append("file", file, file.name);
    try {
      const response = await fetch("/api/classify?explain=1", { method: "POST", body: form });
      const payload = await response.json();
      if (!response.ok) throw new Error(payload.error || `HTTP ${response.status}`);
      const map = payload.explanation;
      const image = el("img", "thumb heatmap");
      image.alt = `occlusion map of ${file.name}: bright = the parts that made it say ${map.label}`;
      image.src = map.png;
      card.querySelector(".thumb").replaceWith(image);
      note.textContent = `bright = hiding it lowers "${map.label}" most (${map.rows}×${map.cols} grid, ` +
        `${map.evaluations} runs, ${Math.round(map.elapsed_ms)} ms)`;
      button.remove();
    } catch (error) {
      note.className = "explain-note error small";
      note.textContent = `could not explain: ${error.message}`;
      button.disabled = false;
    }
  });
  card.querySelector(".card-body").append(button, note);
}

function pump() {
  while (state.running < PARALLEL_UPLOADS && state.queue.length) {
    const job = state.queue.shift();
    state.running += 1;
    classify(job.file, job.card).finally(() => { state.running -= 1; pump(); });
  }
}

function enqueue(files) {
  for (const file of files) {
    state.queue.push({ file, card: addCard(file) });
  }
  pump();
}

function setUpUploads() {
  const input = $("files");
  const drop = $("drop");
  input.addEventListener("change", () => { enqueue(Array.from(input.files)); input.value = ""; });
  ["dragenter", "dragover"].forEach((name) => drop.addEventListener(name, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((name) => drop.addEventListener(name, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    if (event.dataTransfer && event.dataTransfer.files.length) enqueue(Array.from(event.dataTransfer.files));
  });
  // A photo dropped beside the zone must not make the browser navigate away from the page.
  window.addEventListener("dragover", (event) => event.preventDefault());
  window.addEventListener("drop", (event) => event.preventDefault());
}

// -- live camera ----------------------------------------------------------------

function startCamera() {
  $("camera").hidden = false;
  const image = $("live");
  let snapshots = null;
  image.addEventListener("error", () => {
    // The MJPEG stream was refused (too many viewers) or dropped: fall back to snapshots.
    if (snapshots) return;
    snapshots = setInterval(() => { image.src = "/api/camera/frame.jpg?t=" + Date.now(); }, 700);
  });
  image.src = "/camera.mjpg";
  const caption = $("live-state");
  async function poll() {
    try {
      const response = checkAccess(await fetch("/api/camera"));
      const live = await response.json();
      if (live.error) {
        caption.className = "error";
        caption.textContent = live.error;
      } else if (live.label !== null && live.nothing) {
        caption.className = "nothing";
        const looks = looksLikeText(live.looks_like);
        caption.textContent = `${live.nothing}${looks === null ? "" : " — " + looks} (${live.label} ${percent(live.score)}) · ${live.fps.toFixed(1)} fps`;
      } else if (live.label !== null) {
        caption.className = "";
        caption.textContent = `${live.label} ${percent(live.score)} · ${live.fps.toFixed(1)} fps`;
      }
    } catch (error) {
      caption.className = "error";
      caption.textContent = "Cannot reach the server: " + error.message;
    }
  }
  poll();
  setInterval(poll, 1000);
}

document.addEventListener("DOMContentLoaded", () => {
  setUpUploads();
  loadModel();
});
