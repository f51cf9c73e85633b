// The Web Worker that owns the omakase wasm module (DESIGN §7: inference off the page's thread).
// The page talks to it through www/runtime/omakase.js: requests { id, op, args }, answers
// { id, ok, result } or { id, ok: false, error }, progress { id, progress }. Typed arrays of answers
// are transferred, not copied. Calls run one after another (the module is single-threaded).

let wasm = null; // the wasm-bindgen module (pkg/omakase.js)
let moduleUrl = null;
let recommender = null;
let manifestUrl = null; // of the loaded bundle: the encoders are listed in its manifest
// The second module (pkg/encoders/), imported only when a product outside the bundle is embedded:
// { instance: ProductEncoder, loadMs, stats }. Shops whose pages show only bundle products never
// download it.
let encoder = null;
let queue = Promise.resolve();

self.onmessage = (event) => {
  const message = event.data;
  queue = queue.then(() => handle(message));
};

async function handle({ id, op, args }) {
  try {
    const handler = ops[op];
    if (!handler) throw Object.assign(new Error(`unknown worker operation ${op}`), { name: 'OmakaseError', kind: 'BadArgument' });
    const { result, transfer = [] } = (await handler(id, ...(args || []))) || {};
    self.postMessage({ id, ok: true, result }, transfer);
  } catch (e) {
    const error = e instanceof Error
      ? { name: e.name, kind: e.kind || 'Internal', file: e.file, message: e.message }
      : { name: 'OmakaseError', kind: 'Internal', message: String(e) };
    self.postMessage({ id, ok: false, error });
  }
}

function needRecommender() {
  if (!recommender) throw Object.assign(new Error('no bundle loaded (call load first)'), { name: 'OmakaseError', kind: 'BadArgument' });
  return recommender;
}

function fail(kind, message) {
  return Object.assign(new Error(message), { name: 'OmakaseError', kind });
}

async function needEncoder(id, options) {
  needRecommender();
  // Reused for the same bundle unless another text backend is asked for.
  const asked = options && options.textBackend;
  if (encoder && encoder.manifestUrl === manifestUrl && (!asked || encoder.asked === asked)) return encoder;
  if (encoder) encoder.instance.free();
  encoder = null;
  const started = performance.now();
  const module = await import(new URL('encoders/omakase_encoders.js', moduleUrl).toString());
  const exports = await module.default();
  const instance = await module.ProductEncoder.load(manifestUrl, withProgress(id, options));
  const stats = { ...instance.loadStats(), memoryBytes: exports.memory.buffer.byteLength, textBackend: instance.textBackend(), textBackendNote: instance.textBackendNote() };
  encoder = { instance, manifestUrl, asked: asked || 'auto', loadMs: performance.now() - started, stats };
  return encoder;
}

// The picture of a new product: bytes given by the page (a picked file), else its `image` URL
// fetched here (a static GET, like the bundle's own pictures). Undefined when there is none.
async function pictureBytes(product, picture) {
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
function refusePictureWithoutEncoder(enc, picture) {
  if (picture && !enc.hasImage()) {
    throw fail('NoEncoders', "this bundle's model reads no pictures (no image encoder): add the product without picture bytes");
  }
}

// Frozen features (and timings) of a product: { text, tokens, textFeatures, imageFeatures, textMs, imageMs }.
async function productFeatures(enc, product, picture) {
  refusePictureWithoutEncoder(enc, picture);
  let t = performance.now();
  const text = enc.composeText(product);
  const tokens = enc.countTokens(text);
  const textFeatures = await enc.encodeText(text);
  const textMs = performance.now() - t;
  const bytes = enc.hasImage() ? await pictureBytes(product, picture) : undefined;
  let imageFeatures = null;
  let imageMs = null;
  if (bytes) {
    t = performance.now();
    imageFeatures = enc.encodeImage(bytes, product.image || 'the picked picture');
    imageMs = performance.now() - t;
  }
  return { text, tokens, textFeatures, imageFeatures, textMs, imageMs };
}

function describe(r) {
  return { backend: r.backend(), note: r.backendNote(), itemCount: r.itemCount(), dim: r.dim(), stats: r.loadStats() };
}

function buffersOf(answer) {
  const e = answer.explanations;
  return [answer.rows.buffer, answer.scores.buffer, answer.used.buffer, e.sessionRows.buffer,
    e.similarity.buffer, e.textSimilarity.buffer, e.imageSimilarity.buffer, e.textShare.buffer];
}

function withProgress(id, options) {
  return { ...(options || {}), onProgress: (p) => self.postMessage({ id, progress: p }) };
}

// The plain-JS reference of the benchmark: the same int8 rows and row scales, an f32 query, a
// sorted top-k array. Written the way a page author would, without tricks.
function plainJsTopK(codes, scales, dim, query, k, exclude) {
  const best = []; // [score, row], best first
  const n = scales.length;
  for (let r = 0; r < n; r++) {
    if (exclude.has(r)) continue;
    let dot = 0;
    const base = r * dim;
    for (let j = 0; j < dim; j++) dot += codes[base + j] * query[j];
    const score = dot * scales[r];
    if (best.length < k || score > best[best.length - 1][0]) {
      let i = best.length < k ? best.length : k - 1;
      best[i] = [score, r];
      while (i > 0 && best[i - 1][0] < score) {
        [best[i - 1], best[i]] = [best[i], best[i - 1]];
        i--;
      }
    }
  }
  return best;
}

// `reps` samples (ms per call) of `call`, each the mean over a batch lasting at least 5 ms.
async function sample(call, warmup, reps) {
  for (let i = 0; i < warmup; i++) await call();
  let t = performance.now();
  await call();
  const batch = Math.max(1, Math.ceil(5 / Math.max(performance.now() - t, 0.1)));
  const times = [];
  for (let i = 0; i < reps; i++) {
    t = performance.now();
    for (let j = 0; j < batch; j++) await call();
    times.push((performance.now() - t) / batch);
  }
  return times;
}

const ops = {
  async init(_id, url) {
    const started = performance.now();
    moduleUrl = url;
    wasm = await import(moduleUrl);
    await wasm.default();
    return { result: { initMs: performance.now() - started } };
  },
  async load(id, url, options) {
    const started = performance.now();
    const loaded = await wasm.Recommender.load(url, withProgress(id, options));
    if (recommender) recommender.free();
    recommender = loaded;
    manifestUrl = new URL(url, self.location.href).toString();
    return { result: { ...describe(recommender), loadMs: performance.now() - started } };
  },
  // Fetches the encoder module and the bundle's encoders now (else at the first new product).
  async loadEncoders(id, options) {
    const enc = await needEncoder(id, options);
    return { result: { loadMs: enc.loadMs, stats: enc.stats, hasImage: enc.instance.hasImage() } };
  },
  // A product the bundle does not hold ({ id, title, description, image?, link?, ...metadata };
  // `picture`: its image bytes, transferred, or null to fetch `image`): embedded in this worker and
  // added to the catalogue. Resolves to { row, text, tokens, vector, timings, encoderStats }.
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
    const vector = r.itemVector(row); // as stored and scored (what a later page re-adds)
    const timings = { encoderLoadMs: loadMs, textMs: f.textMs, imageMs: f.imageMs, towerMs, totalMs: performance.now() - started };
    return {
      result: { row, text: f.text, tokens: f.tokens, hasImage: f.imageFeatures !== null, vector, timings, encoderStats: enc.stats },
      transfer: [vector.buffer],
    };
  },
  // Benchmark: `reps` timings (ms) of the text and image encoders on one product, after `warmup`.
  async timeEncode(id, product, picture, warmup, reps, options) {
    const enc = (await needEncoder(id, options || {})).instance;
    refusePictureWithoutEncoder(enc, picture);
    const bytes = enc.hasImage() ? await pictureBytes(product, picture) : undefined;
    const text = enc.composeText(product);
    const time = async (call) => {
      for (let i = 0; i < warmup; i++) await call();
      const times = [];
      for (let i = 0; i < reps; i++) {
        const t = performance.now();
        await call();
        times.push(performance.now() - t);
      }
      return times;
    };
    return {
      result: {
        tokens: enc.countTokens(text),
        textBackend: enc.textBackend(),
        text: await time(() => enc.encodeText(text)),
        image: bytes ? await time(() => enc.encodeImage(bytes, 'bench')) : null,
      },
    };
  },
  async synthetic(id, manifestUrl, count, seed, options) {
    if (recommender) recommender.free();
    recommender = null;
    const started = performance.now();
    recommender = await wasm.Recommender.synthetic(manifestUrl, count, seed, withProgress(id, options));
    return { result: { ...describe(recommender), loadMs: performance.now() - started } };
  },
  async describe() {
    return { result: describe(needRecommender()) };
  },
  async recommend(_id, session, k) {
    const answer = await needRecommender().recommend(session, k);
    return { result: answer, transfer: buffersOf(answer) };
  },
  async addItem(_id, itemId, vector, meta) {
    return { result: await needRecommender().addItem(itemId, vector, meta) };
  },
  async addItemFeatures(_id, itemId, text, image, meta) {
    return { result: await needRecommender().addItemFeatures(itemId, text, image, meta) };
  },
  async rowOf(_id, itemId) {
    const row = needRecommender().rowOf(itemId);
    return { result: row === undefined ? null : row };
  },
  async userVector(_id, session) {
    const v = needRecommender().userVector(session);
    return { result: v, transfer: [v.buffer] };
  },
  async item(_id, row) {
    return { result: needRecommender().item(row) };
  },
  async simulateDeviceLoss() {
    needRecommender().simulateDeviceLoss();
    return { result: null };
  },
  // Benchmark: `reps` samples of session → top-k after `warmup` untimed calls; ms per call. Timers in
  // a page without cross-origin isolation tick in 0.1 ms steps, so a sample times a batch of calls
  // lasting at least 5 ms and reports the mean per call.
  async timeRecommend(_id, session, k, warmup, reps) {
    const r = needRecommender();
    let last = null;
    const once = async () => { last = await r.recommend(session, k); };
    return { result: { times: await sample(once, warmup, reps), backend: last.backend, ids: last.ids } };
  },
  // Benchmark: the plain-JS loop over the synthetic catalogue's int8 rows (user vector included,
  // computed by the wasm runtime as in the other paths).
  async timePlainJs(_id, session, k, warmup, reps) {
    const r = needRecommender();
    const table = r.int8Table();
    if (!table) throw Object.assign(new Error('timePlainJs needs a synthetic catalogue'), { name: 'OmakaseError', kind: 'BadArgument' });
    const exclude = new Set(session.map((s) => r.rowOf(s)).filter((x) => x !== undefined));
    let best = null;
    const run = () => {
      const user = r.userVector(session);
      let norm = 0;
      for (const v of user) norm += v * v;
      const inv = norm > 0 ? 1 / Math.sqrt(norm) : 0;
      const query = user.map((v) => v * inv);
      best = plainJsTopK(table.codes, table.scales, table.dim, query, k, exclude);
    };
    const times = await sample(run, warmup, reps);
    return { result: { times, backend: 'plain-js', ids: best.map(([, row]) => `syn-${row}`) } };
  },
};
