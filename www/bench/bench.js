// The benchmark page's driver. Results go to the table and to window.benchResults (read by
// tests/browser/bench.mjs); window.benchDone is true when it has finished (or benchError is set).
import { Omakase } from '../runtime/omakase.js';

const params = new URLSearchParams(location.search);
const manifest = params.get('manifest') || '/bundle/manifest.json';
const sizes = (params.get('sizes') || '10000,100000,1000000').split(',').map(Number);
const reps = Number(params.get('reps') || 20);
const warmup = Number(params.get('warmup') || 3);
const session = ['syn-1', 'syn-2', 'syn-3', 'syn-4', 'syn-5'];
const K = 10;

const status = document.getElementById('status');
const body = document.querySelector('#results tbody');
window.benchResults = { rows: [], load: null };

function summary(times) {
  const sorted = [...times].sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { median: q(0.5), min: sorted[0], p90: q(0.9) };
}

function show(row) {
  window.benchResults.rows.push(row);
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
  window.benchResults.load = [];
  for (const backend of ['auto', 'wasm']) {
    const started = performance.now();
    const cold = await Omakase.start();
    const info = await cold.load(manifest, { backend, cache: false });
    window.benchResults.load.push({ totalMs: performance.now() - started, initMs: cold.init.initMs, loadMs: info.loadMs, bundleBytes: info.stats.downloaded, backend: info.backend, note: info.note });
    cold.terminate();
  }
  document.getElementById('load').textContent = `first load: ${JSON.stringify(window.benchResults.load)}`;

  const client = await Omakase.start();
  for (const items of sizes) {
    for (const backend of ['webgpu', 'wasm']) {
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
  window.benchDone = true;
}

run().catch((e) => {
  window.benchError = `${e.name}: ${e.kind || ''} ${e.message}`;
  status.textContent = window.benchError;
});
