// The benchmark page's driver. Results go to the table and to window.benchResults (read by
// tests/browser/bench.mjs); window.benchDone is true when it has finished (or benchError is set).
// The first loads start the runtime's own worker (what a shop loads); the timings run on the bench
// worker (www/bench/worker.js: the runtime's plus the timing operations).
import { Omakase } from '../runtime/omakase.js';
import { BenchOmakase } from './client.js';

/** @typedef {{ median: number, min: number, p90: number }} Summary */
/** One line of the table: a catalogue size on one path.
 *  @typedef {Summary & { items: number, path: string, setupMs: number, top?: string[], dim?: number, sameTop?: boolean }} Row */
/** @typedef {{ totalMs: number, initMs: number, loadMs: number, bundleBytes: number, backend: string, note: string }} FirstLoad */
/** What tests/browser/bench.mjs reads from the page.
 *  @typedef {{ benchResults?: { rows: Row[], load: FirstLoad[] | null }, benchDone?: boolean, benchError?: string }} BenchGlobals */
const page = /** @type {Window & BenchGlobals} */ (window);

/** @param {string} selector */
function need(selector) {
  const node = document.querySelector(selector);
  if (!node) throw new Error(`the page has no ${selector}`);
  return node;
}

const params = new URLSearchParams(location.search);
const manifest = params.get('manifest') || '/bundle/manifest.json';
const sizes = (params.get('sizes') || '10000,100000,1000000').split(',').map(Number);
const reps = Number(params.get('reps') || 20);
const warmup = Number(params.get('warmup') || 3);
const session = ['syn-1', 'syn-2', 'syn-3', 'syn-4', 'syn-5'];
const K = 10;

const status = need('#status');
const body = need('#results tbody');
/** @type {NonNullable<BenchGlobals['benchResults']>} */
const results = { rows: [], load: null };
page.benchResults = results;

/**
 * @param {number[]} times
 * @returns {Summary}
 */
function summary(times) {
  const sorted = [...times].sort((a, b) => a - b);
  /** @param {number} p */
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { median: q(0.5), min: sorted[0], p90: q(0.9) };
}

/** @param {Row} row */
function show(row) {
  results.rows.push(row);
  const tr = document.createElement('tr');
  for (const v of [row.items, row.path, row.median, row.min, row.p90, row.setupMs]) {
    const td = document.createElement('td');
    td.textContent = typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(2) : String(v);
    tr.appendChild(td);
  }
  body.appendChild(tr);
}

async function run() {
  // First load on each backend: a fresh worker, the wasm module, the bundle without the Cache API.
  /** @type {FirstLoad[]} */
  const loads = [];
  results.load = loads;
  for (const backend of /** @type {const} */ (['auto', 'wasm'])) {
    const started = performance.now();
    const cold = await Omakase.start();
    const info = await cold.load(manifest, { backend, cache: false });
    loads.push({ totalMs: performance.now() - started, initMs: cold.init.initMs, loadMs: info.loadMs, bundleBytes: info.stats.downloaded, backend: info.backend, note: info.note });
    cold.terminate();
  }
  need('#load').textContent = `first load: ${JSON.stringify(results.load)}`;

  const client = await BenchOmakase.start();
  for (const items of sizes) {
    for (const backend of /** @type {const} */ (['webgpu', 'wasm'])) {
      status.textContent = `${items} items on ${backend}…`;
      const t = performance.now();
      const built = await client.synthetic(manifest, items, 7, { backend, cache: true });
      const setupMs = performance.now() - t;
      if (backend === 'webgpu' && !built.backend.startsWith('webgpu')) {
        show({ items, path: `webgpu unavailable (${built.note})`, median: NaN, min: NaN, p90: NaN, setupMs });
        continue;
      }
      const timed = await client.timeRecommend(session, K, warmup, reps);
      show({ items, path: timed.backend, ...summary(timed.times), setupMs, top: timed.ids, dim: built.dim });
      if (backend === 'wasm') {
        const js = await client.timePlainJs(session, K, 1, Math.max(3, Math.ceil(reps / 4)));
        show({ items, path: 'plain-js', ...summary(js.times), setupMs: 0, top: js.ids, dim: built.dim, sameTop: JSON.stringify(js.ids) === JSON.stringify(timed.ids) });
      }
    }
  }
  client.terminate();
  status.textContent = 'done';
  page.benchDone = true;
}

run().catch((/** @type {Error & { kind?: string }} */ e) => {
  page.benchError = `${e.name}: ${e.kind || ''} ${e.message}`;
  status.textContent = page.benchError;
});
