// Network and Cache API helpers of the wasm facade (crates/wasm/src/fetch.rs imports them; wasm-bindgen
// copies this file into pkg/snippets/). Written in JS because streaming a response body with a
// byte-level progress callback and the Cache API are a few lines here and a large web-sys surface in
// Rust. Nothing here trusts the bytes: fetch.rs checks every file's size and sha256 before use.

const CACHE_NAME = 'omakase-bundle-v1';

async function openCache() {
  // `caches` exists in windows and workers of secure contexts (https, localhost); elsewhere: no cache.
  if (typeof caches === 'undefined') return null;
  try {
    return await caches.open(CACHE_NAME);
  } catch (_) {
    return null;
  }
}

// A cache key names the content (sha256), so a re-exported bundle under the same file names never
// reads stale bytes.
function cacheKey(url, sha256) {
  const u = new URL(url);
  u.searchParams.set('omakase-sha256', sha256);
  return u.toString();
}

function fail(kind, message, file) {
  const error = new Error(message);
  error.name = 'OmakaseError';
  error.kind = kind;
  if (file !== undefined) error.file = file;
  return error;
}

// The cached bytes of `url` with content `sha256`, or null.
export async function cachedFile(url, sha256) {
  const cache = await openCache();
  if (!cache) return null;
  const hit = await cache.match(cacheKey(url, sha256));
  return hit ? new Uint8Array(await hit.arrayBuffer()) : null;
}

export async function storeFile(url, sha256, bytes) {
  const cache = await openCache();
  if (!cache) return;
  try {
    await cache.put(cacheKey(url, sha256), new Response(bytes));
  } catch (_) {
    // Quota exceeded or private mode: the file is simply downloaded again next time.
  }
}

export async function evictFile(url, sha256) {
  const cache = await openCache();
  if (cache) await cache.delete(cacheKey(url, sha256));
}

// Downloads `url` (resolved against `base`), reporting progress as
// onProgress({ file, loaded: before + bytes so far, total }) after every chunk.
export async function downloadFile(url, file, before, total, onProgress) {
  let response;
  try {
    response = await fetch(url, { credentials: 'same-origin' });
  } catch (e) {
    throw fail('Network', `${file}: download failed (${e && e.message ? e.message : e}) from ${url}`, file);
  }
  if (!response.ok) {
    const kind = response.status === 404 ? 'MissingFile' : 'Network';
    throw fail(kind, `${file}: HTTP ${response.status} ${response.statusText} from ${url}`, file);
  }
  const report = (loaded) => {
    if (typeof onProgress === 'function') onProgress({ file, loaded: before + loaded, total });
  };
  if (!response.body || typeof response.body.getReader !== 'function') {
    const bytes = new Uint8Array(await response.arrayBuffer());
    report(bytes.length);
    return bytes;
  }
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    report(loaded);
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return bytes;
}

export function resolveUrl(path, base) {
  return new URL(path, base).toString();
}

// The page's (or worker's) URL, the base of a relative manifest URL.
export function locationHref() {
  return globalThis.location ? globalThis.location.href : 'http://localhost/';
}

// The backend choice of a bundle (the runtime's RememberedChoice as JSON), kept in a cache of its
// own under the manifest's URL and a slot ("bundle", or "synthetic" for the benchmark's catalogues)
// so the next load of this bundle on this device need not measure again. Only ever a hint: no Cache
// API, an error or an unreadable entry is simply no choice. The key is never requested.
const CHOICE_CACHE_NAME = 'omakase-backend-v1';

function choiceKey(manifestUrl, slot) {
  const u = new URL(manifestUrl);
  u.searchParams.set('omakase-backend', slot);
  return u.toString();
}

async function openChoiceCache() {
  if (typeof caches === 'undefined') return null;
  try {
    return await caches.open(CHOICE_CACHE_NAME);
  } catch (_) {
    return null;
  }
}

export async function rememberedChoice(manifestUrl, slot) {
  try {
    const cache = await openChoiceCache();
    const hit = cache && await cache.match(choiceKey(manifestUrl, slot));
    return hit ? await hit.text() : null;
  } catch (_) {
    return null;
  }
}

export async function rememberChoice(manifestUrl, slot, json) {
  try {
    const cache = await openChoiceCache();
    if (cache) await cache.put(choiceKey(manifestUrl, slot), new Response(json, { headers: { 'content-type': 'application/json' } }));
  } catch (_) {
    // Quota exceeded or private mode: the next load measures again.
  }
}

// Milliseconds for timing the backends: performance.now() in windows and workers.
export function now() {
  return typeof performance !== 'undefined' && performance.now ? performance.now() : Date.now();
}
