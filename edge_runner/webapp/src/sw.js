// The app's service worker: on install it keeps every file of the app, MediaPipe's WebAssembly and the model
// in the Cache Storage, so the page loads and classifies with no network.
// App files (named in BUILD_FILES, stamped by the build with its hash) are served from the cache first.
// The page, model.json and the model are asked of the network first, so a server that serves a new model is
// seen at once, and taken from the cache when the network is gone.
const BUILD = "__BUILD__";
const BUILD_FILES = __FILES__;
const CACHE = `edgekit-app-${BUILD}`;
const FRESH = new Set(["./", "index.html", "model.json"]);

async function modelFile() {
  const response = await fetch("model.json", { cache: "no-cache" });
  if (!response.ok) throw new Error(`model.json: HTTP ${response.status}`);
  return (await response.json()).model;
}

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    const files = ["./", "model.json", ...BUILD_FILES, await modelFile()];
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
