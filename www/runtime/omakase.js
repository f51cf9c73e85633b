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
//
// Types: the argument and answer types of every call are those of the worker's operation table
// (www/runtime/worker.js), whose own types come from the wasm module's generated pkg/omakase.d.ts.

/** @typedef {import('./worker.js').Operation} Operation */
/** @typedef {import('./worker.js').RuntimeOps} RuntimeOps */
/** @typedef {import('./worker.js').Answer} Answer */
/** @typedef {import('./worker.js').Progress} Progress */
/** @typedef {import('./worker.js').Product} Product */
/** @typedef {import('../../pkg/omakase.js').LoadOptions} LoadOptions */
/** @typedef {import('../../pkg/omakase.js').ItemMeta} ItemMeta */
/** @typedef {import('../../pkg/encoders/omakase_encoders.js').EncoderLoadOptions} EncoderLoadOptions */
/** The arguments of an operation (after the request id the worker passes first).
 *  @template {Operation} F
 *  @typedef {F extends (id: number, ...args: infer A) => unknown ? A : never} ArgsOf */
/** What an operation's call resolves to (its reply's `result`).
 *  @template {Operation} F
 *  @typedef {Extract<Awaited<ReturnType<F>>, { result: unknown }>['result']} ResultOf */
/** @typedef {{ workerUrl?: string | URL, moduleUrl?: string, base?: string | URL }} StartOptions */
/** @typedef {{ resolve: (value: unknown) => void, reject: (error: OmakaseError) => void, onProgress: ((p: Progress) => void) | undefined }} Pending */

/** @typedef {import('../../pkg/omakase.js').OmakaseError} OmakaseErrorShape the wasm module's rejections */

/** @implements {OmakaseErrorShape} */
export class OmakaseError extends Error {
  /** @param {{ kind: string, file?: string, message: string }} error */
  constructor({ kind, file, message }) {
    super(message);
    this.name = 'OmakaseError';
    this.kind = kind;
    if (file !== undefined) this.file = file;
  }
}

/** The client typed by the runtime's operations, which every worker has.
 *  @param {Omakase<any>} client any table: each extends the runtime's
 *  @returns {Omakase<RuntimeOps>} */
function runtime(client) {
  return client;
}

/**
 * A client of an omakase worker whose operation table is `T`: the runtime's by default; a worker
 * that adds operations (www/widget/worker.js, www/bench/worker.js) names its own table.
 * @template {Record<string, Operation>} [T=RuntimeOps]
 */
export class Omakase {
  /**
   * @param {Worker} worker
   * @param {string} [script] the worker's URL, for error messages
   */
  constructor(worker, script = '') {
    this.worker = worker;
    this.next = 1;
    /** @type {Map<number, Pending>} */
    this.pending = new Map();
    /** The init call's answer, set by start: { initMs } (NaN before).
     *  @type {ResultOf<RuntimeOps['init']>} */
    this.init = { initMs: NaN };
    worker.onmessage = (event) => this.receive(event.data);
    worker.onerror = (event) => {
      // A module worker that cannot load says nothing more than that it failed.
      const message = event.message
        ? `worker failed: ${event.message}`
        : `the worker ${script || 'script'} (or a module it imports) could not be loaded: check that it is served as JavaScript and, `
          + 'when it imports modules from another origin, that their server allows this one (CORS) and that the Content-Security-Policy '
          + 'allows that origin in script-src and worker-src (www/README.md, "Hosting")';
      const error = new OmakaseError({ kind: 'Worker', message });
      for (const { reject } of this.pending.values()) reject(error);
      this.pending.clear();
    };
  }

  // Starts the worker and instantiates the wasm module. One base locates both: `base` is the folder
  // holding runtime/ and pkg/ (by default the folder above this file's runtime/: the site root when
  // www/ is served as it, /shop/omakase/ under a sub-path, the package's root from npm);
  // `workerUrl` (default base + runtime/worker.js) and `moduleUrl` (default base + pkg/omakase.js)
  // override one each. A worker must come from the page's origin (www/README.md, "Hosting").
  // A subclass's start makes an instance of that subclass (`new this`).
  /**
   * @param {StartOptions} [options]
   * @returns {Promise<Omakase>}
   */
  static async start({ workerUrl, moduleUrl, base } = {}) {
    const root = base ? new URL(base, globalThis.location?.href) : new URL('../', import.meta.url);
    if (!root.pathname.endsWith('/')) root.pathname += '/';
    const script = new URL(workerUrl || new URL('runtime/worker.js', root), globalThis.location?.href);
    const worker = new Worker(script, { type: 'module' });
    const client = runtime(new this(worker, script.href));
    const module = moduleUrl || new URL('pkg/omakase.js', root).toString();
    client.init = await client.call('init', [module]);
    return client;
  }

  /** @param {Answer} answer */
  receive(answer) {
    const call = this.pending.get(answer.id);
    if (!call) return;
    if ('progress' in answer && answer.progress) {
      if (call.onProgress) call.onProgress(answer.progress);
      return;
    }
    this.pending.delete(answer.id);
    if ('ok' in answer && answer.ok) call.resolve(answer.result);
    else call.reject(new OmakaseError(/** @type {{ error: import('./worker.js').ErrorReply }} */ (answer).error));
  }

  /**
   * Sends operation `op` to the worker; resolves to its result, rejects with an OmakaseError.
   * `transfer`: buffers of `args` moved rather than copied; `onProgress`: the operation's progress
   * events.
   * @template {keyof T & string} K
   * @param {K} op
   * @param {ArgsOf<T[K]>} args
   * @param {Transferable[]} [transfer]
   * @param {(p: Progress) => void} [onProgress]
   * @returns {Promise<ResultOf<T[K]>>}
   */
  call(op, args, transfer = [], onProgress = undefined) {
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: /** @type {(value: unknown) => void} */ (resolve), reject, onProgress });
      this.worker.postMessage({ id, op, args }, transfer);
    });
  }

  // Loads a bundle; resolves to { backend, note, choice, itemCount, dim, stats: { downloaded, bundle }, loadMs }
  // (choice: { backend, reason, cpuMs, gpuMs, cpuCalls, gpuCalls, spentMs }, how "auto" decided).
  // options: backend ("auto" | "webgpu" | "wasm"), allowF16, towerOnGpu, cache, explain, itemTower,
  // stream (default true: an indexed bundle with the streamed reader's files is streamed), onProgress.
  /**
   * @param {string} manifestUrl
   * @param {LoadOptions} [options]
   */
  load(manifestUrl, options = {}) {
    const { onProgress, ...rest } = options;
    return runtime(this).call('load', [manifestUrl, rest], [], onProgress);
  }

  // Benchmark catalogue: the bundle's model with `count` random int8 items (ids syn-0 …).
  /**
   * @param {string} manifestUrl
   * @param {number} count
   * @param {number} [seed]
   * @param {LoadOptions} [options]
   */
  synthetic(manifestUrl, count, seed = 1, options = {}) {
    const { onProgress, ...rest } = options;
    return runtime(this).call('synthetic', [manifestUrl, count, seed, rest], [], onProgress);
  }

  describe() {
    return runtime(this).call('describe', []);
  }

  // session: item ids, oldest first. Resolves to { rows: Uint32Array, ids, scores: Float32Array,
  // items, explanations, unknown, used, backend, search }. A streamed catalogue fetches what the
  // session needs first; options { partial: true } answers at once from what is here, nprobe
  // overrides the manifest's.
  /**
   * @param {string[]} session
   * @param {number} [k]
   * @param {import('../../pkg/omakase.js').RecommendOptions} [options]
   */
  recommend(session, k = 10, options = {}) {
    return runtime(this).call('recommend', [session, k, options]);
  }

  // A streamed catalogue: fetches whole partitions (rows and metadata), most popular first, while
  // their bytes fit maxBytes; resolves to { partitions, bytes, failed }.
  /** @param {number} maxBytes */
  prefetch(maxBytes) {
    return runtime(this).call('prefetch', [maxBytes]);
  }

  // { partitions, present, bytesDownloaded, memoryBytes, partitionBytes } of a streamed catalogue
  // (a whole bundle: its shards, all present).
  streamStats() {
    return runtime(this).call('streamStats', []);
  }

  // A new product by its item vector (Float32Array [dim], transferred); resolves to its row.
  /**
   * @param {string} id
   * @param {Float32Array | ArrayLike<number>} vector
   * @param {Partial<ItemMeta>} [meta]
   */
  addItem(id, vector, meta = {}) {
    const v = vector instanceof Float32Array ? vector : Float32Array.from(vector);
    return runtime(this).call('addItem', [id, v, meta], [v.buffer]);
  }

  // A new product by its frozen encoder features, through the item tower (downloaded on first use).
  /**
   * @param {string} id
   * @param {{ text?: Float32Array | null, image?: Float32Array | null }} [features]
   * @param {Partial<ItemMeta>} [meta]
   */
  addItemFeatures(id, { text = null, image = null } = {}, meta = {}) {
    const transfer = [text, image].filter((x) => x instanceof Float32Array).map((x) => x.buffer);
    return runtime(this).call('addItemFeatures', [id, text, image, meta], transfer);
  }

  // Fetches the encoder module and the bundle's quantized encoders now (else at the first addProduct).
  /** @param {EncoderLoadOptions} [options] */
  loadEncoders(options = {}) {
    const { onProgress, ...rest } = options;
    return runtime(this).call('loadEncoders', [rest], [], onProgress);
  }

  // A product the bundle does not hold, embedded on this device from its words and picture:
  // product = { id, title, description, image (URL), link, ...metadata such as year or genres };
  // picture = its image bytes (ArrayBuffer, e.g. from a file input; transferred) or null to fetch
  // product.image. The first call downloads the encoders (options.onProgress reports bytes).
  // Resolves to { row, text, tokens, hasImage, vector (Float32Array), timings, encoderStats }.
  // A bundle without an image encoder (a text-only catalogue) embeds the words only: it refuses
  // picture bytes (kind "NoEncoders") and does not fetch product.image (hasImage false).
  // Picture bytes that do not decode are refused with kind "Image".
  /**
   * @param {Product} product
   * @param {ArrayBuffer | null} [picture]
   * @param {EncoderLoadOptions} [options]
   */
  addProduct(product, picture = null, options = {}) {
    const { onProgress, ...rest } = options;
    return runtime(this).call('addProduct', [product, picture, rest], picture ? [picture] : [], onProgress);
  }

  // The row of an item id, or null when the catalogue does not hold it.
  /** @param {string} id */
  rowOf(id) {
    return runtime(this).call('rowOf', [id]);
  }

  /** @param {string[]} session */
  userVector(session) {
    return runtime(this).call('userVector', [session]);
  }

  // The metadata of a row, or undefined.
  /** @param {number} row */
  item(row) {
    return runtime(this).call('item', [row]);
  }

  terminate() {
    this.worker.terminate();
  }
}
