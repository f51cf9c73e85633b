// The benchmark's and the browser tests' worker: www/runtime/worker.js (what ships) plus operations
// that only measure or break things, kept out of the runtime: timings of session → top-k on the
// wasm runtime and of a plain-JS loop over the same rows, timings of the encoders, and a simulated
// loss of the GPU device (tests/browser/run.mjs checks the CPU fallback with it). Started by
// www/bench/client.js (BenchOmakase); answers follow the runtime's protocol.

import { ops, needRecommender, needEncoder, refusePictureWithoutEncoder, pictureBytes, fail } from '../runtime/worker.js';

/** @typedef {import('../runtime/worker.js').Product} Product */
/** @typedef {import('../runtime/worker.js').WorkerEncoderOptions} WorkerEncoderOptions */
/** One result of the top-k, best first: [score, row].
 *  @typedef {[number, number]} Scored */

// The plain-JS reference of the benchmark: the same int8 rows and row scales, an f32 query, a
// sorted top-k array. Written the way a page author would, without tricks.
/**
 * @param {Int8Array} codes
 * @param {Float32Array} scales
 * @param {number} dim
 * @param {Float32Array} query
 * @param {number} k
 * @param {Set<number>} exclude
 * @returns {Scored[]}
 */
function plainJsTopK(codes, scales, dim, query, k, exclude) {
  /** @type {Scored[]} */
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
/**
 * @param {() => unknown} call
 * @param {number} warmup
 * @param {number} reps
 */
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

const benchOps = {
  // Benchmark: `reps` timings (ms) of the text and image encoders on one product, after `warmup`.
  /**
   * @param {number} id
   * @param {Product} product
   * @param {ArrayBuffer | null} picture
   * @param {number} warmup
   * @param {number} reps
   * @param {WorkerEncoderOptions} [options]
   */
  async timeEncode(id, product, picture, warmup, reps, options) {
    const enc = (await needEncoder(id, options || {})).instance;
    refusePictureWithoutEncoder(enc, picture);
    const bytes = enc.hasImage() ? await pictureBytes(product, picture) : undefined;
    const text = enc.composeText(product);
    /** @param {() => unknown} call */
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
  // Tests: destroys the GPU device, as a driver reset would (the CPU fallback). No-op on the CPU.
  async simulateDeviceLoss() {
    needRecommender().simulateDeviceLoss();
    return { result: null };
  },
  // Benchmark: `reps` samples of session → top-k after `warmup` untimed calls; ms per call. Timers in
  // a page without cross-origin isolation tick in 0.1 ms steps, so a sample times a batch of calls
  // lasting at least 5 ms and reports the mean per call.
  /**
   * @param {number} _id
   * @param {string[]} session
   * @param {number} k
   * @param {number} warmup
   * @param {number} reps
   */
  async timeRecommend(_id, session, k, warmup, reps) {
    const r = needRecommender();
    /** @type {import('../../pkg/omakase.js').Recommendations | null} */
    let last = null;
    const once = async () => { last = await r.recommend(session, k); };
    const times = await sample(once, warmup, reps);
    const answer = /** @type {import('../../pkg/omakase.js').Recommendations} */ (/** @type {unknown} */ (last)); // set by the calls above
    return { result: { times, backend: answer.backend, ids: answer.ids } };
  },
  // Benchmark: the plain-JS loop over the synthetic catalogue's int8 rows (user vector included,
  // computed by the wasm runtime as in the other paths).
  /**
   * @param {number} _id
   * @param {string[]} session
   * @param {number} k
   * @param {number} warmup
   * @param {number} reps
   */
  async timePlainJs(_id, session, k, warmup, reps) {
    const r = needRecommender();
    const table = r.int8Table();
    if (!table) throw fail('BadArgument', 'timePlainJs needs a synthetic catalogue');
    const exclude = new Set(session.map((s) => r.rowOf(s)).filter((x) => x !== undefined));
    /** @type {Scored[]} */
    let best = [];
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

// The streamed bench (www/bench/stream.js, issue 17): what the facade of a streamed bundle adds,
// typed here by the members used (optional: a whole-bundle load has none of them).
/** @typedef {{ path: string, nprobe?: number, probed?: number[], missing?: number[], rowsScanned?: number }} Search */
/** @typedef {{ ids: string[], search?: Search }} StreamAnswer */
/** @typedef {{ partitions: number, present: number, bytesDownloaded: number, memoryBytes: number }} StreamStats */
/** @typedef {{
 *   recommend(session: string[], k: number, options?: { partial?: boolean }): Promise<StreamAnswer>,
 *   streamed?: () => boolean,
 *   streamStats?: () => StreamStats,
 * }} StreamRecommender */

/** The wasm module's URL, as the runtime's init received it (for the memory export). */
/** @type {string | null} */
let pkgUrl = null;
const runtimeInit = ops.init;
ops.init = async (id, url) => {
  pkgUrl = url;
  return runtimeInit(id, url);
};

/** @returns {StreamRecommender} */
function streamRecommender() {
  return /** @type {StreamRecommender} */ (/** @type {unknown} */ (needRecommender()));
}

/** Bytes and end time of every resource this worker fetched so far (Resource Timing). */
function resourceTimings() {
  return performance.getEntriesByType('resource').map((e) => {
    const r = /** @type {PerformanceResourceTiming} */ (e);
    return { name: r.name, bytes: r.transferSize || r.encodedBodySize || 0, body: r.encodedBodySize, end: r.responseEnd };
  });
}
// A million-item bundle's partitions are more files than the default buffer (250) holds.
performance.setResourceTimingBufferSize(1_000_000);

// One answer, timed: ms, ids, the search it reports.
/**
 * @param {string[]} session
 * @param {number} k
 * @param {boolean} partial
 */
async function timedAnswer(session, k, partial) {
  const r = streamRecommender();
  const t = performance.now();
  const answer = partial ? await r.recommend(session, k, { partial: true }) : await r.recommend(session, k);
  const ms = performance.now() - t;
  const search = answer.search ? { ...answer.search } : null;
  return { ms, ids: [...answer.ids], search, end: performance.now() };
}

const streamOps = {
  // Streamed bench: load the bundle and answer `session` once (waiting for what it needs), timed
  // from the load's start; every byte fetched until then (Resource Timing) and the time from the
  // last byte's arrival to the answer.
  /**
   * @param {number} id
   * @param {string} url
   * @param {import('../runtime/worker.js').WorkerLoadOptions} options
   * @param {string[]} session
   * @param {number} k
   */
  async firstRecommendation(id, url, options, session, k) {
    performance.clearResourceTimings();
    const started = performance.now();
    const loaded = /** @type {{ result: { loadMs: number, stats: unknown } }} */ (await ops.load(id, url, options));
    const loadedAt = performance.now();
    const first = await timedAnswer(session, k, false);
    const resources = resourceTimings().filter((e) => e.end <= first.end);
    const lastByte = resources.reduce((m, e) => Math.max(m, e.end), started);
    const r = streamRecommender();
    return {
      result: {
        loadMs: loadedAt - started,
        firstMs: first.end - started,
        afterBytesMs: first.end - lastByte,
        answerMs: first.ms,
        bytes: resources.reduce((s, e) => s + e.bytes, 0),
        files: resources.length,
        streamed: r.streamed ? r.streamed() : false,
        stats: r.streamStats ? r.streamStats() : null,
        loadStats: loaded.result.stats,
        ids: first.ids,
        search: first.search,
      },
    };
  },
  // Streamed bench: a visitor's session growing one product at a time, from `start`: each step
  // answers at once from what is here (`partial`), then again waiting for the missing partitions;
  // the next product is the full answer's (step × 3 mod k)-th not yet viewed.
  /**
   * @param {number} _id
   * @param {string[]} start
   * @param {number} steps
   * @param {number} k
   */
  async walk(_id, start, steps, k) {
    const session = [...start];
    const out = [];
    for (let step = 0; step < steps; step++) {
      const partial = await timedAnswer(session, k, true);
      const full = await timedAnswer(session, k, false);
      out.push({ session: [...session], partial, full });
      const fresh = full.ids.filter((x) => !session.includes(x));
      if (!fresh.length) break;
      session.push(fresh[(step * 3) % fresh.length]);
    }
    const r = streamRecommender();
    return { result: { steps: out, stats: r.streamStats ? r.streamStats() : null } };
  },
  // Streamed bench: the answers of the given sessions, timed (the whole-bundle worker's reference).
  /**
   * @param {number} _id
   * @param {string[][]} sessions
   * @param {number} k
   */
  async answerAll(_id, sessions, k) {
    const out = [];
    for (const session of sessions) out.push(await timedAnswer(session, k, false));
    return { result: out };
  },
  // Streamed bench: this worker's memory. The wasm module's linear memory (all the runtime's Rust
  // data) and, where Chromium exposes it, the JS heap (performance.memory, non-standard).
  async memory() {
    if (!pkgUrl) throw fail('BadArgument', 'memory: the wasm module is not initialised');
    const module = /** @type {{ default: () => Promise<{ memory: WebAssembly.Memory }> }} */ (/** @type {unknown} */ (await import(pkgUrl)));
    const exports = await module.default(); // initialised already: returns the instance's exports
    const heap = /** @type {{ memory?: { usedJSHeapSize: number, totalJSHeapSize: number } }} */ (/** @type {unknown} */ (performance)).memory;
    return { result: { wasmBytes: exports.memory.buffer.byteLength, jsHeapUsed: heap ? heap.usedJSHeapSize : null, jsHeapTotal: heap ? heap.totalJSHeapSize : null } };
  },
};

/** The bench worker's operations: the runtime's and the ones above.
 *  @typedef {import('../runtime/worker.js').RuntimeOps & typeof benchOps & typeof streamOps} BenchOps */

Object.assign(ops, benchOps, streamOps);
