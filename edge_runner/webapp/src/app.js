// edgekit in the browser: the model runs in this page (LiteRT.js, WebAssembly; engine.js).
// Camera frames and picked photos are classified here; after the first load nothing is fetched per frame,
// and a service worker keeps every file for offline use. Plain JavaScript, no framework.

import { loadEngine } from "./engine.js";
import { decodePhoto, pixelsOf } from "./photo.js";
import { fitRgb } from "./resample.js";
import { readMetadata } from "./tflite.js";
import { $, NOTHING, addCard, el, render, status } from "./view.js";

const TOP_K = 3;

const state = { engine: null, model: null, stream: null, cameras: [], camera: -1, frames: [], frameCount: 0, looping: false };
let readyResolve, readyReject;
const ready = new Promise((resolve, reject) => { readyResolve = resolve; readyReject = reject; });

// -- the model ------------------------------------------------------------------------------------------

async function fetchBytes(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function loadModel() {
  if (typeof WebAssembly !== "object") throw new Error("this browser has no WebAssembly");
  const response = await fetch("model.json");
  if (!response.ok) throw new Error(`model.json: HTTP ${response.status}`);
  const config = await response.json();
  const bytes = await fetchBytes(config.model);
  const contract = config.contract;
  // The runner takes raw 0-255 RGB pixels only (the model's own layers normalise them); so does the page.
  const range = contract.value_range || [0, 255];
  if (range[0] !== 0 || range[1] !== 255 || (contract.color_order || "RGB") !== "RGB") {
    throw new Error(`the contract asks for ${contract.color_order} pixels in [${range}]; the page feeds RGB 0-255, as the runner does`);
  }
  const metadata = readMetadata(bytes);
  state.model = {
    file: config.model,
    name: metadata.name || contract.name,
    version: metadata.version || null,
    labels: contract.labels,
    width: contract.width,
    height: contract.height,
    resize: contract.resize,
    crop: contract.crop,
    background: contract.background_label ?? null,
    threshold: contract.threshold ?? 0,
    variant: (contract.extra && contract.extra.variant) || null,
  };
  state.engine = await loadEngine(bytes);
  await state.engine.scores(new Uint8Array(contract.width * contract.height * 3));  // warm up: the first run is slow
  const m = state.model;
  $("model").textContent = [
    m.name + (m.version ? ` ${m.version}` : ""),
    m.variant,
    `${m.labels.length} labels (${m.labels.join(", ")})`,
    m.background ? `“${m.background}” = ${NOTHING}` : null,
    `threshold ${m.threshold}`,
    `LiteRT.js, ${state.engine.build}`,
  ].filter(Boolean).join(" · ");
  $("model").dataset.name = m.name;
  $("model").dataset.version = m.version || "";
  $("model").dataset.build = state.engine.build;
}

// -- classification ---------------------------------------------------------------------------------------

// The runner's answer (edge_runner.core.model.Classifier.classify): float32 scores in label order, the best first
// (ties: the lower index), "unknown" below the contract's threshold, detected = neither background nor unknown.
function answer(scores, timings) {
  const m = state.model;
  const order = Array.from(scores, (score, index) => index).sort((a, b) => scores[b] - scores[a] || a - b);
  const best = order[0];
  const label = scores[best] >= m.threshold ? m.labels[best] : "unknown";
  return {
    label,
    score: scores[best],
    detected: label !== "unknown" && label !== m.background,
    top_k: order.slice(0, TOP_K).map((index) => ({ label: m.labels[index], score: scores[index] })),
    scores: Array.from(scores),
    timings,
  };
}

// Pixels of any size (RGBA, RGB with stride 3, BGRX with bgr) → the model's input (the contract's crop and resize) →
// LiteRT.js → an answer. inference_ms is what the runner's latency covers: quantise, run, dequantise.
async function classifyPixels(pixels, width, height, timings, stride = 4, bgr = false) {
  const m = state.model;
  let start = performance.now();
  const rgb = fitRgb(pixels, width, height, m.width, m.height, m.resize, m.crop, stride, bgr);
  timings.resize_ms = performance.now() - start;
  start = performance.now();
  const scores = await state.engine.scores(rgb);
  timings.inference_ms = performance.now() - start;
  return answer(scores, timings);
}

async function classifyFile(file) {
  await ready;
  const m = state.model;
  const { pixels, stride, bgr, width, height, how, read_ms, decode_ms } = await decodePhoto(file, [m.width, m.height]);
  const timings = { read_ms, decode_ms };
  const result = await classifyPixels(pixels, width, height, timings, stride, bgr);
  result.size = [width, height];
  result.decoder = how;
  timings.total_ms = timings.decode_ms + timings.resize_ms + timings.inference_ms;
  return result;
}

async function showFile(file) {
  const card = addCard(file);
  const body = card.querySelector(".card-body");
  try {
    const result = await classifyFile(file);
    card.querySelector(".status").remove();
    const answerNode = el("p"), detail = el("p", "nothing-detail muted small"), list = el("ol", "bars");
    render(result, state.model.background, answerNode, detail, list);
    const t = result.timings;
    body.append(answerNode, detail, list, el("p", "timing muted small",
      `inference ${t.inference_ms.toFixed(1)} ms · decode ${t.decode_ms.toFixed(1)} ms · resize ${t.resize_ms.toFixed(1)} ms`));
    card.classList.add("done");
  } catch (error) {
    card.classList.add("failed");
    const node = card.querySelector(".status");
    node.className = "status error";
    node.textContent = error.message;
  }
}

async function showFiles(files) {
  for (const file of files) await showFile(file);  // one at a time: the page stays responsive
}

// -- the camera ---------------------------------------------------------------------------------------

const frameCanvas = document.createElement("canvas");

function stopCamera() {
  if (state.stream) state.stream.getTracks().forEach((track) => track.stop());
  state.stream = null;
}

async function openCamera(index) {
  stopCamera();
  const video = index >= 0 && state.cameras[index]
    ? { deviceId: { exact: state.cameras[index].deviceId } }
    : { facingMode: { ideal: "environment" } };  // the back camera on a phone
  video.width = { ideal: 640 };
  video.height = { ideal: 480 };
  state.stream = await navigator.mediaDevices.getUserMedia({ video, audio: false });
  const element = $("video");
  element.srcObject = state.stream;
  element.hidden = false;
  await element.play();
  // Device names are only listed once the user has allowed a camera.
  state.cameras = (await navigator.mediaDevices.enumerateDevices()).filter((device) => device.kind === "videoinput");
  const current = state.stream.getVideoTracks()[0].getSettings().deviceId;
  state.camera = state.cameras.findIndex((device) => device.deviceId === current);
  $("switch").hidden = state.cameras.length < 2;
  const track = state.stream.getVideoTracks()[0];
  $("camera-note").textContent = `${track.label || "camera"} · ${element.videoWidth}×${element.videoHeight}`;
  $("start").textContent = "Stop camera";
  if (!state.looping) loop();
}

function showFrame(result, frameMs) {
  render(result, state.model.background, $("live-answer"), $("live-detail"), $("live-bars"));
  state.frameCount += 1;
  const now = performance.now();
  state.frames.push(now);
  while (state.frames.length && now - state.frames[0] > 2000) state.frames.shift();
  const span = (state.frames[state.frames.length - 1] - state.frames[0]) / 1000;
  const fps = state.frames.length > 1 && span > 0 ? (state.frames.length - 1) / span : 0;
  $("fps").textContent = `${fps.toFixed(1)} fps · ${frameMs.toFixed(1)} ms per frame ` +
    `(inference ${result.timings.inference_ms.toFixed(1)} ms)`;
  $("fps").dataset.fps = fps.toFixed(2);
}

function loop() {
  const video = $("video");
  state.looping = true;
  const next = () => {
    if (!state.stream) { state.looping = false; return; }
    if ("requestVideoFrameCallback" in video) video.requestVideoFrameCallback(step);
    else requestAnimationFrame(step);
  };
  const step = async () => {
    try {
      if (state.stream && video.readyState >= 2 && video.videoWidth) {
        const start = performance.now();
        const timings = {};
        const rgba = pixelsOf(video, video.videoWidth, video.videoHeight, frameCanvas);
        const result = await classifyPixels(rgba, video.videoWidth, video.videoHeight, timings);
        showFrame(result, performance.now() - start);
      }
    } catch (error) {
      $("camera-note").textContent = `A frame could not be classified: ${error.message}`;
    }
    next();  // one frame at a time: the next is asked for once this one is shown
  };
  next();
}

function setUpCamera() {
  const start = $("start");
  if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    $("camera-note").textContent = "The camera needs a secure page: open it over https:// (or on this device as " +
      "localhost). Photos work here.";
    return;
  }
  start.disabled = false;
  start.addEventListener("click", async () => {
    if (state.stream) {
      stopCamera();
      $("video").hidden = true;
      start.textContent = "Start camera";
      $("switch").hidden = true;
      return;
    }
    try {
      await openCamera(-1);
    } catch (error) {
      $("camera-note").textContent = `The camera cannot be opened: ${error.message}`;
    }
  });
  $("switch").addEventListener("click", async () => {
    if (state.cameras.length < 2) return;
    try {
      await openCamera((state.camera + 1) % state.cameras.length);
    } catch (error) {
      $("camera-note").textContent = `That camera cannot be opened: ${error.message}`;
    }
  });
}

// -- photos, offline, start-up ----------------------------------------------------------------------

function setUpPhotos() {
  const input = $("files");
  const drop = $("drop");
  input.disabled = false;
  input.addEventListener("change", () => { showFiles(Array.from(input.files)); input.value = ""; });
  ["dragenter", "dragover"].forEach((name) => drop.addEventListener(name, (event) => {
    event.preventDefault();
    drop.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((name) => drop.addEventListener(name, () => drop.classList.remove("over")));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    showFiles(Array.from(event.dataTransfer.files).filter((file) => file.type.startsWith("image/") || !file.type));
  });
}

// On the first visit the service worker downloads the app, LiteRT.js's WebAssembly and the model once and keeps
// them; the page then loads them through it (so nothing is downloaded twice), and later visits need no network.
async function cacheForOffline() {
  if (!("serviceWorker" in navigator) || !window.isSecureContext) return "online only (offline use needs https://)";
  try {
    const registration = await navigator.serviceWorker.register("sw.js");
    if (!navigator.serviceWorker.controller) {
      status("downloading the app and the model for offline use…");
      await new Promise((resolve) => {
        navigator.serviceWorker.addEventListener("controllerchange", resolve, { once: true });
        const worker = registration.installing || registration.waiting;
        if (worker) worker.addEventListener("statechange", () => { if (worker.state === "redundant") resolve(); });
        else resolve();  // active but not in charge of this page (a forced reload): load from the network
      });
    }
  } catch (error) {
    return `not available offline (${error.message})`;
  }
  if (!navigator.serviceWorker.controller) return "not available offline (the service worker did not start)";
  document.documentElement.dataset.offline = "ready";
  return "works offline";
}

async function main() {
  try {
    const started = performance.now();
    const offline = await cacheForOffline();
    status("loading the model and LiteRT.js…");
    await loadModel();
    readyResolve();
    setUpPhotos();
    setUpCamera();
    status(`ready in ${((performance.now() - started) / 1000).toFixed(1)} s, running in this browser · ${offline}`);
  } catch (error) {
    readyReject(error);
    status(`The model cannot run here: ${error.message}`, true);
    $("model").textContent = "no model";
  }
}

// For tests and the benchmark: the same functions the page uses.
window.edgekitApp = {
  ready, classifyFile, classifyPixels, answer,
  // a photo file → { pixels, stride, bgr, width, height, how, ... } (photo.js), a large JPEG drafted for `input`
  decodeFile: (file, input = [state.model.width, state.model.height]) => decodePhoto(file, input),
  get model() { return state.model; },
  get engine() { return state.engine; },
  get frames() { return state.frameCount; },
};
ready.catch(() => {});  // shown on the page by main()
main();
