// Runs www/bench/ in headless Chromium and prints its table (a benchmark, not a test):
//   node tests/browser/bench.mjs --bundle DIR [--sizes 10000,100000,1000000] [--reps 20]
// SwiftShader (Chromium's software WebGPU here) makes the WebGPU figures meaningless as speed.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { serve } from './server.mjs';
import { launch, openPage } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const option = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const bundle = path.resolve(option('--bundle', ''));
if (!fs.existsSync(path.join(bundle, 'manifest.json'))) {
  console.error('usage: node bench.mjs --bundle DIR [--sizes 10000,100000,1000000] [--reps 20]');
  process.exit(2);
}
const sizes = option('--sizes', '10000,100000,1000000');
const reps = option('--reps', '20');

const server = await serve([['/', path.join(repo, 'www')], ['/pkg/', path.join(repo, 'pkg')], ['/bundle/', bundle]]);
const browser = await launch();
try {
  const { page } = await openPage(browser, `${server.url}/bench/?sizes=${sizes}&reps=${reps}`, (l) => process.env.VERBOSE && console.log(l));
  await page.waitForFunction(() => window.benchDone || window.benchError, null, { timeout: 0, polling: 500 });
  const error = await page.evaluate(() => window.benchError);
  if (error) throw new Error(error);
  const { rows, load } = await page.evaluate(() => window.benchResults);
  const gpu = await page.evaluate(async () => {
    const adapter = navigator.gpu && (await navigator.gpu.requestAdapter());
    if (!adapter) return 'none';
    const info = adapter.info || {};
    return `${info.vendor || '?'} ${info.architecture || ''} ${info.description || ''}`.trim();
  });
  console.log(`\nChromium ${browser.version()}, WebGPU adapter: ${gpu}`);
  console.log('session (5 items) -> top-10, ms per call (median / min / p90); setup = building the synthetic catalogue\n');
  console.log('| items | path | median ms | min ms | p90 ms | GB/s (int8 rows + scales, median) | setup ms |');
  console.log('|---:|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const f = (v) => (Number.isFinite(v) ? v.toFixed(2) : '-');
    const gbs = r.dim ? (r.items * (r.dim + 4)) / (r.median * 1e6) : NaN;
    console.log(`| ${r.items} | ${r.path}${r.sameTop === false ? ' (top-10 differs!)' : ''} | ${f(r.median)} | ${f(r.min)} | ${f(r.p90)} | ${f(gbs)} | ${f(r.setupMs)} |`);
  }
  const speedup = (n) => {
    const by = (p) => rows.find((r) => r.items === n && r.path === p);
    const simd = by('wasm-simd'), js = by('plain-js');
    return simd && js ? (js.median / simd.median).toFixed(1) : '-';
  };
  console.log(`\nwasm-simd vs plain JS (median): ${[...new Set(rows.map((r) => r.items))].map((n) => `${n}: ${speedup(n)}x`).join(', ')}`);
  const firstLoad = server.served.filter((s) => !s.url.startsWith('/bench/'));
  const wasmFiles = firstLoad.filter((s) => !s.url.startsWith('/bundle/'));
  const unique = (list) => [...new Map(list.map((s) => [s.file, s])).values()];
  const gz = (list) => unique(list).reduce((sum, s) => sum + zlib.gzipSync(fs.readFileSync(s.file), { level: 9 }).length, 0);
  const raw = (list) => unique(list).reduce((sum, s) => sum + s.bytes, 0);
  const bundleFiles = unique(firstLoad.filter((s) => s.url.startsWith('/bundle/')));
  for (const l of load) {
    console.log(`first load on ${l.backend} (cold worker, no cache): ${l.totalMs.toFixed(0)} ms = worker + wasm init ${l.initMs.toFixed(0)} ms + bundle and backend ${l.loadMs.toFixed(0)} ms`);
  }
  console.log(`  runtime JS + wasm: ${raw(wasmFiles)} B (${gz(wasmFiles)} B gzipped); bundle: ${raw(bundleFiles)} B (${gz(bundleFiles)} B gzipped)`);
} finally {
  await browser.close();
  await server.close();
}
