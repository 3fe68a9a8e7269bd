// The app's service worker: on install it keeps every file of the app, LiteRT.js's WebAssembly and the model
// in the Cache Storage, so the page loads and classifies with no network.
// App files (named in BUILD_FILES, stamped by the build with its hash) are served from the cache first.
// The page, model.json and the model are asked of the network first, so a server that serves a new model is
// seen at once, and taken from the cache when the network is gone.
const BUILD = "__BUILD__";
const BUILD_FILES = __FILES__;
const CACHE = `edgekit-app-${BUILD}`;
const FRESH = new Set(["./", "index.html", "model.json"]);
// LiteRT.js loads one of two WebAssembly builds (see engine.js): relaxed SIMD where the browser has it, else the
// compat build. Only that one is kept, so a first load downloads 9 MB of WebAssembly, not 19. The bytes are
// LiteRT.js's own relaxed-SIMD check (its WASM_RELAXED_SIMD_CHECK): the same test picks the same build.
const RELAXED_SIMD_CHECK = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 5, 1, 96, 0, 1, 123, 3, 2, 1, 0, 10, 15, 1,
  13, 0, 65, 1, 253, 15, 65, 2, 253, 15, 253, 128, 2, 11]);
const UNUSED_BUILD = WebAssembly.validate(RELAXED_SIMD_CHECK) ? "wasm/litert_wasm_compat_internal." : "wasm/litert_wasm_internal.";
const KEPT_FILES = BUILD_FILES.filter((name) => !name.startsWith(UNUSED_BUILD));

async function modelFile() {
  const response = await fetch("model.json", { cache: "no-cache" });
  if (!response.ok) throw new Error(`model.json: HTTP ${response.status}`);
  return (await response.json()).model;
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    const files = ["./", "model.json", ...KEPT_FILES, await modelFile()];
    await cache.addAll(files.map((url) => new Request(url, { cache: "no-cache" })));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) {
      if (name.startsWith("edgekit-app-") && name !== CACHE) await caches.delete(name);
    }
    await self.clients.claim();
  })());
});

function relative(url) {
  const path = new URL(url).pathname;
  const scope = new URL(self.registration.scope).pathname;
  return path.startsWith(scope) ? path.slice(scope.length) || "./" : null;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET" || new URL(request.url).origin !== self.location.origin) return;
  const name = relative(request.url);
  if (name === null) return;
  if (BUILD_FILES.includes(name)) {
    event.respondWith(caches.match(request, { ignoreSearch: true }).then((hit) => hit || fetch(request)));
    return;
  }
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const response = await fetch(request, { cache: "no-cache" });
      if (response.ok && (FRESH.has(name) || name.endsWith(".tflite"))) await cache.put(request, response.clone());
      return response;
    } catch (error) {
      const hit = await cache.match(request, { ignoreSearch: true });
      if (hit) return hit;
      throw error;
    }
  })());
});
