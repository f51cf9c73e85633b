// The page side of the omakase runtime: starts www/runtime/worker.js (which owns the wasm module)
// and turns its messages into promises. Usage:
//
//   import { Omakase } from './runtime/omakase.js';
//   const omakase = await Omakase.start();                     // worker + wasm module
//   const info = await omakase.load('/bundle/manifest.json', { onProgress: (p) => ... });
//   const recs = await omakase.recommend(['item-1', 'item-7'], 10);  // recs.ids, recs.scores (Float32Array) ...
//
// Every rejection is an OmakaseError with `kind` (e.g. "Checksum", "MissingFile", "EmptySession")
// and `file` when a bundle file is at fault. Nothing about the session leaves the device: the
// worker only fetches the bundle's files.

export class OmakaseError extends Error {
  constructor({ kind, file, message }) {
    super(message);
    this.name = 'OmakaseError';
    this.kind = kind;
    if (file !== undefined) this.file = file;
  }
}

export class Omakase {
  constructor(worker) {
    this.worker = worker;
    this.next = 1;
    this.pending = new Map();
    worker.onmessage = (event) => this.receive(event.data);
    worker.onerror = (event) => {
      const error = new OmakaseError({ kind: 'Worker', message: `worker failed: ${event.message || 'unknown error'}` });
      for (const { reject } of this.pending.values()) reject(error);
      this.pending.clear();
    };
  }

  // Starts the worker and instantiates the wasm module. `moduleUrl` is pkg/omakase.js (by default
  // resolved from this file's URL: ../../pkg/ in the repository, /pkg/ when www/ is the site root).
  static async start({ workerUrl, moduleUrl } = {}) {
    const worker = new Worker(workerUrl || new URL('./worker.js', import.meta.url), { type: 'module' });
    const client = new Omakase(worker);
    const module = moduleUrl || new URL('../../pkg/omakase.js', import.meta.url).toString();
    client.init = await client.call('init', [module]);
    return client;
  }

  receive({ id, ok, result, error, progress }) {
    const call = this.pending.get(id);
    if (!call) return;
    if (progress) {
      if (call.onProgress) call.onProgress(progress);
      return;
    }
    this.pending.delete(id);
    if (ok) call.resolve(result);
    else call.reject(new OmakaseError(error));
  }

  call(op, args, transfer = [], onProgress = undefined) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }

  // Loads a bundle; resolves to { backend, note, itemCount, dim, stats: { downloaded, bundle }, loadMs }.
  // options: backend ("auto" | "webgpu" | "wasm"), allowF16, towerOnGpu, cache, explain, itemTower, onProgress.
  load(manifestUrl, options = {}) {
    const { onProgress, ...rest } = options;
    return this.call('load', [manifestUrl, rest], [], onProgress);
  }

  // Benchmark catalogue: the bundle's model with `count` random int8 items (ids syn-0 …).
  synthetic(manifestUrl, count, seed = 1, options = {}) {
    const { onProgress, ...rest } = options;
    return this.call('synthetic', [manifestUrl, count, seed, rest], [], onProgress);
  }

  describe() {
    return this.call('describe', []);
  }

  // session: item ids, oldest first. Resolves to { rows: Uint32Array, ids, scores: Float32Array,
  // items, explanations, unknown, used, backend }.
  recommend(session, k = 10) {
    return this.call('recommend', [session, k]);
  }

  // A new product by its item vector (Float32Array [dim], transferred); resolves to its row.
  addItem(id, vector, meta = {}) {
    const v = vector instanceof Float32Array ? vector : Float32Array.from(vector);
    return this.call('addItem', [id, v, meta], [v.buffer]);
  }

  // A new product by its frozen encoder features, through the item tower (downloaded on first use).
  addItemFeatures(id, { text = null, image = null } = {}, meta = {}) {
    const transfer = [text, image].filter((x) => x instanceof Float32Array).map((x) => x.buffer);
    return this.call('addItemFeatures', [id, text, image, meta], transfer);
  }

  // Fetches the encoder module and the bundle's quantized encoders now (else at the first addProduct).
  loadEncoders(options = {}) {
    const { onProgress, ...rest } = options;
    return this.call('loadEncoders', [rest], [], onProgress);
  }

  // A product the bundle does not hold, embedded on this device from its words and picture:
  // product = { id, title, description, image (URL), link, ...metadata such as year or genres };
  // picture = its image bytes (ArrayBuffer, e.g. from a file input; transferred) or null to fetch
  // product.image. The first call downloads the encoders (options.onProgress reports bytes).
  // Resolves to { row, text, tokens, hasImage, vector (Float32Array), timings, encoderStats }.
  // A bundle without an image encoder (a text-only catalogue) embeds the words only: it refuses
  // picture bytes (kind "NoEncoders") and does not fetch product.image (hasImage false).
  // Picture bytes that do not decode are refused with kind "Image".
  addProduct(product, picture = null, options = {}) {
    const { onProgress, ...rest } = options;
    return this.call('addProduct', [product, picture, rest], picture ? [picture] : [], onProgress);
  }

  timeEncode(product, picture, warmup, reps, options = {}) {
    return this.call('timeEncode', [product, picture, warmup, reps, options]);
  }

  // The row of an item id, or null when the catalogue does not hold it.
  rowOf(id) {
    return this.call('rowOf', [id]);
  }

  userVector(session) {
    return this.call('userVector', [session]);
  }

  item(row) {
    return this.call('item', [row]);
  }

  simulateDeviceLoss() {
    return this.call('simulateDeviceLoss', []);
  }

  timeRecommend(session, k, warmup, reps) {
    return this.call('timeRecommend', [session, k, warmup, reps]);
  }

  timePlainJs(session, k, warmup, reps) {
    return this.call('timePlainJs', [session, k, warmup, reps]);
  }

  terminate() {
    this.worker.terminate();
  }
}
