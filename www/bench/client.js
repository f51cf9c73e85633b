// The page side of www/bench/worker.js: an Omakase client (www/runtime/omakase.js) whose worker has
// the benchmark's and the tests' operations too. Used by the benchmark page (bench.js) and the
// browser tests' harness (tests/browser/pages/harness.html); never by the widget or a shop.

import { Omakase } from '../runtime/omakase.js';

/** @typedef {import('./worker.js').BenchOps} BenchOps */
/** @typedef {import('../runtime/worker.js').Product} Product */
/** @typedef {import('../runtime/omakase.js').StartOptions} StartOptions */
/** @typedef {import('../../pkg/encoders/omakase_encoders.js').EncoderLoadOptions} EncoderLoadOptions */

const WORKER_URL = new URL('./worker.js', import.meta.url);

/** @extends {Omakase<BenchOps>} */
export class BenchOmakase extends Omakase {
  /**
   * Starts www/bench/worker.js (unless `workerUrl` names another) and the wasm module.
   * @param {StartOptions} [options]
   * @returns {Promise<BenchOmakase>}
   */
  static start(options = {}) {
    return /** @type {Promise<BenchOmakase>} */ (super.start({ workerUrl: WORKER_URL, ...options }));
  }

  /**
   * `reps` timings (ms) of the text and image encoders on one product, after `warmup` runs.
   * @param {Product} product
   * @param {ArrayBuffer | null} picture
   * @param {number} warmup
   * @param {number} reps
   * @param {Omit<EncoderLoadOptions, 'onProgress'>} [options]
   */
  timeEncode(product, picture, warmup, reps, options = {}) {
    return this.call('timeEncode', [product, picture, warmup, reps, options]);
  }

  /** Destroys the GPU device, as a driver reset would (tests the CPU fallback). No-op on the CPU. */
  simulateDeviceLoss() {
    return this.call('simulateDeviceLoss', []);
  }

  /**
   * `reps` samples (ms per call) of session → top-k on the loaded catalogue, after `warmup` calls.
   * @param {string[]} session
   * @param {number} k
   * @param {number} warmup
   * @param {number} reps
   */
  timeRecommend(session, k, warmup, reps) {
    return this.call('timeRecommend', [session, k, warmup, reps]);
  }

  /**
   * The same, by a plain-JS loop over the synthetic catalogue's int8 rows.
   * @param {string[]} session
   * @param {number} k
   * @param {number} warmup
   * @param {number} reps
   */
  timePlainJs(session, k, warmup, reps) {
    return this.call('timePlainJs', [session, k, warmup, reps]);
  }

  /**
   * Streamed bench: loads the bundle and answers `session` once; bytes fetched until then and the
   * time from the last byte to the answer (www/bench/stream.js).
   * @param {string} manifestUrl
   * @param {import('../runtime/worker.js').WorkerLoadOptions & { stream?: boolean }} options
   * @param {string[]} session
   * @param {number} k
   */
  firstRecommendation(manifestUrl, options, session, k) {
    return this.call('firstRecommendation', [manifestUrl, options, session, k]);
  }

  /**
   * Streamed bench: a session growing one product at a time from `start`, `steps` times; each step
   * answered at once (partial) and then in full.
   * @param {string[]} start
   * @param {number} steps
   * @param {number} k
   */
  walk(start, steps, k) {
    return this.call('walk', [start, steps, k]);
  }

  /**
   * Streamed bench: the answers of `sessions`, timed.
   * @param {string[][]} sessions
   * @param {number} k
   */
  answerAll(sessions, k) {
    return this.call('answerAll', [sessions, k]);
  }

  /** Streamed bench: the worker's wasm memory and JS heap in bytes. */
  memory() {
    return this.call('memory', []);
  }
}
