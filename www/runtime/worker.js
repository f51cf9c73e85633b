// The Web Worker that owns the omakase wasm module (DESIGN §7: inference off the page's thread).
// The page talks to it through www/runtime/omakase.js: requests { id, op, args }, answers
// { id, ok, result } or { id, ok: false, error }, progress { id, progress }. Typed arrays of answers
// are transferred, not copied. Calls run one after another (the module is single-threaded).

let wasm = null; // the wasm-bindgen module (pkg/omakase.js)
let recommender = null;
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
  async init(_id, moduleUrl) {
    const started = performance.now();
    wasm = await import(moduleUrl);
    await wasm.default();
    return { result: { initMs: performance.now() - started } };
  },
  async load(id, manifestUrl, options) {
    const started = performance.now();
    recommender = await wasm.Recommender.load(manifestUrl, withProgress(id, options));
    return { result: { ...describe(recommender), loadMs: performance.now() - started } };
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
