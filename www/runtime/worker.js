// The Web Worker that owns the omakase wasm module (inference off the page's thread:
// ARCHITECTURE.md § Browser runtime).
// The page talks to it through www/runtime/omakase.js: requests { id, op, args }, answers
// { id, ok, result } or { id, ok: false, error }, progress { id, progress }. Typed arrays of answers
// are transferred, not copied. Calls run one after another (the module is single-threaded).
//
// Operations are a table, `ops` (name → async handler), read by one dispatcher. A worker that needs
// more operations imports this module and adds entries: www/widget/worker.js ("resources"),
// www/bench/worker.js (the benchmark's timings and the tests' simulated GPU loss).

/** @typedef {typeof import('../../pkg/omakase.js')} WasmModule */
/** @typedef {import('../../pkg/omakase.js').Recommender} Recommender */
/** @typedef {import('../../pkg/omakase.js').LoadOptions} LoadOptions */
/** @typedef {import('../../pkg/omakase.js').Recommendations} Recommendations */
/** @typedef {typeof import('../../pkg/encoders/omakase_encoders.js')} EncodersModule */
/** @typedef {import('../../pkg/encoders/omakase_encoders.js').ProductEncoder} ProductEncoder */
/** @typedef {import('../../pkg/encoders/omakase_encoders.js').EncoderLoadOptions} EncoderLoadOptions */
/** @typedef {import('../../pkg/encoders/omakase_encoders.js').ProductFields} ProductFields */

/** A byte-progress event of a download ({ file, loaded, total }), posted as { id, progress }.
 *  @typedef {Parameters<NonNullable<LoadOptions['onProgress']>>[0]} Progress */
/** Load options as they cross to the worker: the worker reports progress itself.
 *  @typedef {Omit<LoadOptions, 'onProgress'>} WorkerLoadOptions */
/** @typedef {Omit<EncoderLoadOptions, 'onProgress'>} WorkerEncoderOptions */
/** A product the bundle does not hold: its fields for the text template, its picture's URL and
 *  its page's link.
 *  @typedef {ProductFields & { id: string, image?: string, link?: string }} Product */
/** @typedef {ReturnType<ProductEncoder['loadStats']> & { memoryBytes: number, textBackend: string, textBackendNote: string, imageBackend: string, imageBackendNote: string }} EncoderStats */
/** @typedef {{ instance: ProductEncoder, manifestUrl: string | null, asked: string, loadMs: number, stats: EncoderStats }} LoadedEncoder */

/** What an operation resolves to: the answer's `result` and the buffers transferred with it.
 *  @template [R=unknown]
 *  @typedef {{ result: R, transfer?: Transferable[] }} Reply */
/** An operation: the request's id (for progress messages), then the request's `args`. The args
 *  arrive by structured clone, unchecked, so the table's type accepts any; each handler declares
 *  its own.
 *  @typedef {(id: number, ...args: any[]) => Promise<Reply | void>} Operation */
/** An error as it crosses to the page (an OmakaseError there).
 *  @typedef {{ name: string, kind: string, file?: string, message: string }} ErrorReply */
/** A message to the page.
 *  @typedef {{ id: number, ok: true, result: unknown } | { id: number, ok: false, error: ErrorReply } | { id: number, progress: Progress }} Answer */
/** A message from the page.
 *  @typedef {{ id: number, op: string, args?: unknown[] }} Request */

/** The worker's global scope, by the members used here. The files of www/ are type-checked as one
 *  program whose lib is the DOM's (the pages'), where `self` is a Window.
 *  @typedef {{ postMessage(message: Answer, transfer?: Transferable[]): void, onmessage: ((event: MessageEvent<Request>) => void) | null, location: { href: string }, origin?: string }} WorkerScope */
const scope = /** @type {WorkerScope} */ (/** @type {unknown} */ (self));

/** @type {WasmModule | null} the wasm-bindgen module (pkg/omakase.js) */
let wasm = null;
/** @type {string | null} */
let moduleUrl = null;
/** @type {Recommender | null} */
let recommender = null;
/** @type {string | null} of the loaded bundle: the encoders are listed in its manifest */
let manifestUrl = null;
// The second module (pkg/encoders/), imported only when a product outside the bundle is embedded:
// { instance: ProductEncoder, loadMs, stats }. Shops whose pages show only bundle products never
// download it.
/** @type {LoadedEncoder | null} */
let encoder = null;
/** @type {Promise<void>} */
let queue = Promise.resolve();

/** Operations answered at once rather than after the calls before them: only those that do not
 *  touch the wasm module or this worker's state (e.g. the widget's "resources").
 *  @type {Set<string>} */
export const unqueued = new Set();

scope.onmessage = (event) => {
  const message = event.data;
  if (message && unqueued.has(message.op)) handle(message);
  else queue = queue.then(() => handle(message));
};

/** @param {Request} request */
async function handle({ id, op, args }) {
  try {
    const handler = ops[op];
    if (!handler) throw Object.assign(new Error(`unknown worker operation ${op}`), { name: 'OmakaseError', kind: 'BadArgument' });
    const { result, transfer = [] } = (await handler(id, ...(args || []))) || {};
    scope.postMessage({ id, ok: true, result }, transfer);
  } catch (e) {
    const error = e instanceof Error
      ? { name: e.name, kind: /** @type {Partial<WorkerError>} */ (e).kind || 'Internal', file: /** @type {Partial<WorkerError>} */ (e).file, message: e.message }
      : { name: 'OmakaseError', kind: 'Internal', message: String(e) };
    scope.postMessage({ id, ok: false, error });
  }
}

/** An error of the runtime: `kind` the cause, `file` the bundle file at fault (the wasm module's
 *  rejections carry both).
 *  @typedef {Error & { kind: string, file?: string }} WorkerError */

/** The loaded bundle's recommender; throws BadArgument before a load. */
export function needRecommender() {
  if (!recommender) throw Object.assign(new Error('no bundle loaded (call load first)'), { name: 'OmakaseError', kind: 'BadArgument' });
  return recommender;
}

/** The wasm module; throws BadArgument before init. */
function needWasm() {
  if (!wasm) throw fail('BadArgument', 'the wasm module is not initialised (call init first)');
  return wasm;
}

/**
 * @param {string} kind
 * @param {string} message
 * @returns {WorkerError}
 */
export function fail(kind, message) {
  return Object.assign(new Error(message), { name: 'OmakaseError', kind });
}

/**
 * The encoders of the loaded bundle, imported and fetched on first use.
 * @param {number} id the request, for progress messages
 * @param {WorkerEncoderOptions} [options]
 * @returns {Promise<LoadedEncoder>}
 */
export async function needEncoder(id, options) {
  needRecommender();
  // Reused for the same bundle unless another text or image backend is asked for.
  const asked = `${(options && options.textBackend) || 'auto'}/${(options && options.imageBackend) || 'auto'}`;
  const askedAnything = !!(options && (options.textBackend || options.imageBackend));
  if (encoder && encoder.manifestUrl === manifestUrl && (!askedAnything || encoder.asked === asked)) return encoder;
  if (encoder) encoder.instance.free();
  encoder = null;
  const started = performance.now();
  const module = /** @type {EncodersModule} */ (await import(new URL('encoders/omakase_encoders.js', needModuleUrl()).toString()));
  const exports = await module.default();
  const instance = await module.ProductEncoder.load(/** @type {string} */ (manifestUrl), withProgress(id, options));
  const stats = { ...instance.loadStats(), memoryBytes: exports.memory.buffer.byteLength, textBackend: instance.textBackend(), textBackendNote: instance.textBackendNote(), imageBackend: instance.imageBackend(), imageBackendNote: instance.imageBackendNote() };
  encoder = { instance, manifestUrl, asked, loadMs: performance.now() - started, stats };
  return encoder;
}

/** The URL init was given (pkg/omakase.js): the encoder module lies beside it. */
function needModuleUrl() {
  if (moduleUrl === null) throw fail('BadArgument', 'the wasm module is not initialised (call init first)');
  return moduleUrl;
}

// A fetch that failed outright (a TypeError, "Failed to fetch") means either that the server could
// not be reached or that it answered without allowing this origin to read the answer (CORS): the
// browser hides which. For a file on another origin, one no-cors GET of the same URL tells them
// apart (it succeeds, opaquely, when the server answered), so the error can say "Cors" and what the
// server must send. Errors of other kinds, and same-origin URLs, are returned as they are.
/**
 * @param {unknown} error
 * @param {string} url the file the failed fetch asked for
 * @returns {Promise<unknown>}
 */
export async function explainFetchFailure(error, url) {
  const e = /** @type {Partial<WorkerError> | null} */ (error);
  const failedFetch = e instanceof TypeError || (e && e.kind === 'Network' && /download failed/.test(String(e.message)));
  if (!failedFetch || !e) return error;
  let target;
  try {
    target = new URL(url, scope.location.href);
  } catch {
    return error;
  }
  if (target.origin === new URL(scope.location.href).origin) return error;
  try {
    await fetch(target.href, { mode: 'no-cors', credentials: 'omit', cache: 'no-store' });
  } catch {
    return error; // not reachable at all: a network error, as it said
  }
  const origin = scope.origin || new URL(scope.location.href).origin;
  const failure = fail('Cors', `${target.href}: the server at ${target.origin} answered but does not allow ${origin} to read it (CORS): `
    + `it must send Access-Control-Allow-Origin: ${origin} (or *) with its files (www/README.md, "Hosting")`);
  const file = /** @type {Partial<WorkerError>} */ (e).file;
  if (file !== undefined) failure.file = file;
  return failure;
}

/** The URL a bundle download failed on, from the facade's message ("… from URL"), else `fallback`.
 *  @param {unknown} error
 *  @param {string} fallback */
function failedUrl(error, fallback) {
  const match = /\bfrom (\S+)$/.exec(String(/** @type {{ message?: string } | null} */ (error)?.message || ''));
  return match ? match[1] : fallback;
}

// The picture of a new product: bytes given by the page (a picked file), else its `image` URL
// fetched here (a static GET, like the bundle's own pictures). Undefined when there is none.
/**
 * @param {Product} product
 * @param {ArrayBuffer | null | undefined} picture
 * @returns {Promise<Uint8Array | undefined>}
 */
export async function pictureBytes(product, picture) {
  if (picture) return new Uint8Array(picture);
  if (!product.image) return undefined;
  const response = await fetch(product.image);
  if (!response.ok) throw fail('Image', `${product.image}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

// Picture bytes given to a bundle whose model reads no pictures (no image encoder: a text-only
// catalogue) are refused, as native `omakase embed --image` refuses them: dropping them would give a
// vector that silently ignores what the page passed. A product's `image` URL is only fetched when
// the bundle has an image encoder (elsewhere it is just the card's picture).
/**
 * @param {ProductEncoder} enc
 * @param {ArrayBuffer | null | undefined} picture
 */
export function refusePictureWithoutEncoder(enc, picture) {
  if (picture && !enc.hasImage()) {
    throw fail('NoEncoders', "this bundle's model reads no pictures (no image encoder): add the product without picture bytes");
  }
}

// Frozen features (and timings) of a product: { text, tokens, textFeatures, imageFeatures, textMs, imageMs }.
/**
 * @param {ProductEncoder} enc
 * @param {Product} product
 * @param {ArrayBuffer | null | undefined} picture
 */
export async function productFeatures(enc, product, picture) {
  refusePictureWithoutEncoder(enc, picture);
  let t = performance.now();
  const text = enc.composeText(product);
  const tokens = enc.countTokens(text);
  const textFeatures = await enc.encodeText(text);
  const textMs = performance.now() - t;
  const bytes = enc.hasImage() ? await pictureBytes(product, picture) : undefined;
  /** @type {Float32Array | null} */
  let imageFeatures = null;
  /** @type {number | null} */
  let imageMs = null;
  if (bytes) {
    t = performance.now();
    imageFeatures = await enc.encodeImage(bytes, product.image || 'the picked picture');
    imageMs = performance.now() - t;
  }
  return { text, tokens, textFeatures, imageFeatures, textMs, imageMs };
}

/** @param {Recommender} r */
function describe(r) {
  return { backend: r.backend(), note: r.backendNote(), choice: r.backendChoice(), itemCount: r.itemCount(), dim: r.dim(), stats: r.loadStats(), deltas: r.deltas(), streamed: r.streamed() };
}

/**
 * @param {Recommendations} answer
 * @returns {Transferable[]}
 */
function buffersOf(answer) {
  const e = answer.explanations;
  return [answer.rows.buffer, answer.scores.buffer, answer.used.buffer, e.sessionRows.buffer,
    e.similarity.buffer, e.textSimilarity.buffer, e.imageSimilarity.buffer, e.textShare.buffer];
}

/**
 * The options with an onProgress that posts { id, progress } to the page.
 * @template {object} O
 * @param {number} id
 * @param {O | undefined} options
 * @returns {O & { onProgress: (p: Progress) => void }}
 */
function withProgress(id, options) {
  return { ...(/** @type {O} */ (options || {})), onProgress: (p) => scope.postMessage({ id, progress: p }) };
}

const runtimeOps = {
  /**
   * @param {number} _id
   * @param {string} url pkg/omakase.js
   * @returns {Promise<Reply<{ initMs: number }>>}
   */
  async init(_id, url) {
    const started = performance.now();
    moduleUrl = url;
    try {
      wasm = /** @type {WasmModule} */ (await import(url));
    } catch (e) {
      const explained = await explainFetchFailure(e, url);
      if (explained !== e) throw explained;
      throw fail('Module', `the wasm module's JS ${url} could not be loaded (${e instanceof Error ? e.message : e}): check the base the element was given (www/README.md, "Hosting")`);
    }
    const wasmUrl = new URL('omakase_bg.wasm', url).href;
    try {
      await wasm.default();
    } catch (e) {
      const explained = await explainFetchFailure(e, wasmUrl);
      if (explained !== e) throw explained;
      throw fail('Module', `the wasm module ${wasmUrl} could not be instantiated (${e instanceof Error ? e.message : e})`);
    }
    return { result: { initMs: performance.now() - started } };
  },
  /**
   * @param {number} id
   * @param {string} url the bundle's manifest.json
   * @param {WorkerLoadOptions} [options]
   */
  async load(id, url, options) {
    const started = performance.now();
    const loaded = await needWasm().Recommender.load(url, withProgress(id, options)).catch(async (e) => {
      throw await explainFetchFailure(e, failedUrl(e, url));
    });
    if (recommender) recommender.free();
    recommender = loaded;
    manifestUrl = new URL(url, scope.location.href).toString();
    return { result: { ...describe(recommender), loadMs: performance.now() - started } };
  },
  // Fetches the encoder module and the bundle's encoders now (else at the first new product).
  /**
   * @param {number} id
   * @param {WorkerEncoderOptions} [options]
   */
  async loadEncoders(id, options) {
    const enc = await needEncoder(id, options);
    return { result: { loadMs: enc.loadMs, stats: enc.stats, hasImage: enc.instance.hasImage() } };
  },
  // A product the bundle does not hold ({ id, title, description, image?, link?, ...metadata };
  // `picture`: its image bytes, transferred, or null to fetch `image`): embedded in this worker and
  // added to the catalogue. Resolves to { row, text, tokens, vector, timings, encoderStats }.
  /**
   * @param {number} id
   * @param {Product} product
   * @param {ArrayBuffer | null} picture
   * @param {WorkerEncoderOptions} [options]
   */
  async addProduct(id, product, picture, options) {
    const r = needRecommender();
    if (!product || typeof product.id !== 'string' || !product.id) throw fail('BadArgument', 'product.id: a non-empty string is needed');
    if (r.rowOf(product.id) !== undefined) throw fail('BadArgument', `product ${JSON.stringify(product.id)} is already in the catalogue`);
    const started = performance.now();
    const enc = await needEncoder(id, options);
    const loadMs = performance.now() - started;
    const f = await productFeatures(enc.instance, product, picture);
    const meta = { title: product.title || '', image: product.image, link: product.link };
    const t = performance.now();
    const row = await r.addItemFeatures(product.id, f.textFeatures, f.imageFeatures, meta);
    const towerMs = performance.now() - t; // the item tower, and adding the row
    // As stored and scored (what a later page re-adds); the row was just added, so it is there.
    const vector = /** @type {Float32Array} */ (r.itemVector(row));
    const timings = { encoderLoadMs: loadMs, textMs: f.textMs, imageMs: f.imageMs, towerMs, totalMs: performance.now() - started };
    return {
      result: { row, text: f.text, tokens: f.tokens, hasImage: f.imageFeatures !== null, vector, timings, encoderStats: enc.stats },
      transfer: [vector.buffer],
    };
  },
  /**
   * @param {number} id
   * @param {string} manifestUrl
   * @param {number} count
   * @param {number} seed
   * @param {WorkerLoadOptions} [options]
   */
  async synthetic(id, manifestUrl, count, seed, options) {
    if (recommender) recommender.free();
    recommender = null;
    const started = performance.now();
    recommender = await needWasm().Recommender.synthetic(manifestUrl, count, seed, withProgress(id, options));
    return { result: { ...describe(recommender), loadMs: performance.now() - started } };
  },
  async describe() {
    return { result: describe(needRecommender()) };
  },
  /**
   * @param {number} _id
   * @param {string[]} session
   * @param {number} k
   * @param {import('../../pkg/omakase.js').RecommendOptions} [options] a streamed catalogue's { partial, nprobe }
   */
  async recommend(_id, session, k, options) {
    const answer = await needRecommender().recommend(session, k, options);
    return { result: answer, transfer: buffersOf(answer) };
  },
  // A streamed catalogue: whole partitions fetched now, most popular first, within maxBytes
  // (resolves to { partitions, bytes, failed }); zeros on a whole bundle.
  /**
   * @param {number} _id
   * @param {number} maxBytes
   */
  async prefetch(_id, maxBytes) {
    return { result: await needRecommender().prefetch(maxBytes) };
  },
  // { partitions, present, bytesDownloaded, memoryBytes, partitionBytes } (docs: pkg/omakase.d.ts StreamStats).
  async streamStats() {
    return { result: needRecommender().streamStats() };
  },
  /**
   * @param {number} _id
   * @param {string} itemId
   * @param {Float32Array} vector
   * @param {Partial<import('../../pkg/omakase.js').ItemMeta>} [meta]
   */
  async addItem(_id, itemId, vector, meta) {
    return { result: await needRecommender().addItem(itemId, vector, meta) };
  },
  /**
   * @param {number} _id
   * @param {string} itemId
   * @param {Float32Array | null} text
   * @param {Float32Array | null} image
   * @param {Partial<import('../../pkg/omakase.js').ItemMeta>} [meta]
   */
  async addItemFeatures(_id, itemId, text, image, meta) {
    return { result: await needRecommender().addItemFeatures(itemId, text, image, meta) };
  },
  /**
   * @param {number} _id
   * @param {string} itemId
   */
  async rowOf(_id, itemId) {
    const row = needRecommender().rowOf(itemId);
    return { result: row === undefined ? null : row };
  },
  /**
   * @param {number} _id
   * @param {string[]} session
   */
  async userVector(_id, session) {
    const v = needRecommender().userVector(session);
    return { result: v, transfer: [v.buffer] };
  },
  /**
   * @param {number} _id
   * @param {number} row
   */
  async item(_id, row) {
    return { result: needRecommender().item(row) };
  },
};

/** The runtime's operations, by name, with their argument and answer types (the page's
 *  Omakase client derives its calls' types from this).
 *  @typedef {typeof runtimeOps} RuntimeOps */

/** The table the dispatcher reads: the runtime's operations, and those a worker importing this
 *  module adds (`ops.name = async (id, ...args) => ({ result, transfer })`).
 *  @type {Record<string, Operation>} */
export const ops = runtimeOps;
