// The streamed catalogue benchmark's driver (www/bench/stream.html, issue 17). Results go to the
// page and to window.streamResults (read by scripts/bench-stream.mjs); window.streamDone is true
// when it has finished (or streamError is set). Two bench workers (www/bench/worker.js): one loads
// the bundle streamed, the other whole (stream: false), as the baseline and the reference answers.
import { BenchOmakase } from './client.js';

/** @typedef {{ ms: number, ids: string[], search: { path: string, nprobe?: number, probed?: number[], missing?: number[], rowsScanned?: number } | null }} Timed */
/** @typedef {{ median: number, p95: number, max: number, mean: number }} Summary */
/** @typedef {{ streamResults?: Record<string, unknown>, streamDone?: boolean, streamError?: string }} StreamGlobals */
const page = /** @type {Window & StreamGlobals} */ (window);

const params = new URLSearchParams(location.search);
const manifestUrl = params.get('manifest') || '/bundle/manifest.json';
const steps = Number(params.get('steps') || 60);
const K = Number(params.get('k') || 10);

const status = /** @type {HTMLElement} */ (document.querySelector('#status'));
const out = /** @type {HTMLElement} */ (document.querySelector('#results'));

/** @param {number[]} values */
function summary(values) {
  const sorted = [...values].sort((a, b) => a - b);
  /** @param {number} p */
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)];
  return { median: q(0.5), p95: q(0.95), max: sorted[sorted.length - 1], mean: values.reduce((s, v) => s + v, 0) / values.length };
}

/**
 * |a ∩ exact| / |exact|.
 * @param {string[]} a
 * @param {string[]} exact
 */
function recall(a, exact) {
  return exact.length ? exact.filter((x) => a.includes(x)).length / exact.length : 1;
}

/** @param {string} text */
function say(text) {
  status.textContent = text;
}

async function run() {
  const manifest = await fetch(manifestUrl).then((r) => r.json());
  const n = /** @type {number} */ (manifest.item_count);
  // A visitor landing on some product (not a popular one): a fixed row, the same every run.
  const width = Math.max(6, String(n - 1).length);
  const start = params.get('start') || `syn-${String(Math.floor(n * 0.37)).padStart(width, '0')}`;

  say('streamed load and first recommendation…');
  const streamed = await BenchOmakase.start();
  const first = await streamed.firstRecommendation(manifestUrl, { stream: true, backend: 'wasm', cache: false }, [start], K);
  say(`streamed: ${steps} updates…`);
  const walk = await streamed.walk([start], steps, K);
  const streamedMemory = await streamed.memory();
  streamed.terminate();

  say('whole-bundle load (stream: false) and the same sessions…');
  const whole = await BenchOmakase.start();
  const wholeFirst = await whole.firstRecommendation(manifestUrl, { stream: false, backend: 'wasm', cache: false }, [start], K);
  const sessions = walk.steps.map((s) => s.session);
  const reference = /** @type {Timed[]} */ (await whole.answerAll(sessions, K));
  const wholeMemory = await whole.memory();
  whole.terminate();

  // Updates: every step after the first (the first is the landing page's answer).
  const later = walk.steps.slice(1);
  const results = {
    items: n,
    dim: manifest.dim,
    partitions: manifest.index ? manifest.index.partitions : null,
    nprobe: manifest.index ? manifest.index.nprobe : null,
    start,
    streamed: { first, memory: streamedMemory, stats: walk.stats },
    whole: { first: wholeFirst, memory: wholeMemory, referencePath: reference[0] && reference[0].search ? reference[0].search.path : 'none' },
    updates: {
      count: later.length,
      partialMs: summary(later.map((s) => s.partial.ms)),
      fullMs: summary(later.map((s) => s.full.ms)),
      wholeMs: summary(reference.slice(1).map((r) => r.ms)),
      missingPartial: summary(later.map((s) => (s.partial.search && s.partial.search.missing ? s.partial.search.missing.length : 0))),
      rowsScanned: summary(later.map((s) => (s.full.search && s.full.search.rowsScanned) || 0)),
    },
    recall: {
      full: summary(walk.steps.map((s, i) => recall(s.full.ids, reference[i].ids))),
      partial: summary(walk.steps.map((s, i) => recall(s.partial.ids, reference[i].ids))),
      firstMatchesReference: JSON.stringify(first.ids) === JSON.stringify(reference[0].ids),
    },
    // Per session: its ids and each path's answer (scripts/bench-stream.mjs compares them with the
    // native exact scan).
    sessions: walk.steps.map((s, i) => ({ session: s.session, partial: s.partial.ids, full: s.full.ids, whole: reference[i].ids })),
  };
  page.streamResults = results;
  out.textContent = JSON.stringify({ ...results, sessions: `${results.sessions.length} sessions` }, null, 1);
  say('done');
  page.streamDone = true;
}

run().catch((/** @type {Error & { kind?: string }} */ e) => {
  page.streamError = `${e.name}: ${e.kind || ''} ${e.message}`;
  say(page.streamError);
});
