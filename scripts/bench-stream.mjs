#!/usr/bin/env node
// The streamed catalogue benchmark (issue 17) in headless Chromium: www/bench/stream.html on a large
// indexed bundle, e.g. a million items from examples/synthetic_bundle.rs. Prints one table: the
// streamed load against the whole-bundle load (stream: false) of the same bundle, in the same run.
//   node scripts/bench-stream.mjs --bundle DIR [--steps 60] [--omakase BIN] [--json OUT.json]
// With --omakase (the native CLI), every session is also answered by `omakase recommend --exact` (the
// full int8 scan, the same kernels as the browser's), and recall@10 is reported against it too.
// Needs pkg/ (./build.sh wasm) and tests/browser's node_modules (playwright-core; ./build.sh
// browser-test installs them), and /usr/bin/chromium or $CHROMIUM.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from '../tests/browser/server.mjs';
import { launch, openPage } from '../tests/browser/chromium.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const option = (name, fallback) => {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
};
const bundle = path.resolve(option('--bundle', ''));
if (!fs.existsSync(path.join(bundle, 'manifest.json'))) {
  console.error('usage: node scripts/bench-stream.mjs --bundle DIR [--steps 60] [--json OUT.json]');
  process.exit(2);
}
const steps = option('--steps', '60');
const jsonOut = option('--json', '');
const omakase = option('--omakase', '');

const server = await serve([['/', path.join(repo, 'www')], ['/pkg/', path.join(repo, 'pkg')], ['/bundle/', bundle]]);
const browser = await launch({ webgpu: false });
try {
  const { page } = await openPage(browser, `${server.url}/bench/stream.html?steps=${steps}`, (l) => process.env.VERBOSE && console.log(l));
  await page.waitForFunction(() => window.streamDone || window.streamError, null, { timeout: 0, polling: 500 });
  const error = await page.evaluate(() => window.streamError);
  if (error) throw new Error(error);
  const r = await page.evaluate(() => window.streamResults);
  const recall = (a, exact) => (exact.length ? exact.filter((x) => a.includes(x)).length / exact.length : 1);
  const mean = (values) => values.reduce((s, v) => s + v, 0) / values.length;
  let exactRecall = null;
  if (omakase) {
    const started = Date.now();
    const exact = r.sessions.map(({ session }) => {
      const argv = ['recommend', '--bundle', bundle, ...session.flatMap((id) => ['--item', id]), '--k', '10', '--exact', '--json'];
      return JSON.parse(execFileSync(omakase, argv, { maxBuffer: 1 << 26 }).toString()).recommendations.map((x) => x.id);
    });
    exactRecall = {
      full: mean(r.sessions.map((s, i) => recall(s.full, exact[i]))),
      partial: mean(r.sessions.map((s, i) => recall(s.partial, exact[i]))),
      whole: mean(r.sessions.map((s, i) => recall(s.whole, exact[i]))),
      seconds: (Date.now() - started) / 1000,
    };
    r.exactRecall = exactRecall;
  }
  if (jsonOut) fs.writeFileSync(jsonOut, JSON.stringify(r, null, 1));
  const bundleBytes = fs.readdirSync(bundle).reduce((s, f) => s + fs.statSync(path.join(bundle, f)).size, 0);
  const served = server.served.filter((s) => s.url.startsWith('/bundle/')).reduce((s, f) => s + f.bytes, 0);
  const mb = (b) => (b / 1e6).toFixed(2);
  const ms = (v) => (Number.isFinite(v) ? v.toFixed(1) : '-');
  const f4 = (v) => (Number.isFinite(v) ? v.toFixed(4) : '-');
  const mem = (m) => `${mb(m.wasmBytes)} MB wasm${m.jsHeapUsed != null ? ` + ${mb(m.jsHeapUsed)} MB JS heap` : ' (JS heap not exposed)'}`;
  const s = r.streamed.first, w = r.whole.first, u = r.updates;
  console.log(`\nChromium ${browser.version()}, wasm-simd; ${os.cpus().length} cores (${os.cpus()[0].model}); bundle ${bundle}`);
  console.log(`${r.items} items, d ${r.dim}, ${r.partitions} partitions, nprobe ${r.nprobe}; all files ${mb(bundleBytes)} MB; session from ${r.start}, ${u.count} updates\n`);
  console.log('| figure | streamed (stream: true) | whole bundle (stream: false) | budget |');
  console.log('|---|---:|---:|---:|');
  console.log(`| bytes before the first recommendation | ${mb(s.bytes)} MB (${s.files} files) | ${mb(w.bytes)} MB (${w.files} files) | ≤ 20 MB |`);
  console.log(`| load + first recommendation (from the load's start) | ${ms(s.firstMs)} ms | ${ms(w.firstMs)} ms | |`);
  console.log(`| first recommendation after the last byte arrived | ${ms(s.afterBytesMs)} ms | ${ms(w.afterBytesMs)} ms | ≤ 2000 ms |`);
  console.log(`| later update, answered from what is here (partial): median / p95 / max | ${ms(u.partialMs.median)} / ${ms(u.partialMs.p95)} / ${ms(u.partialMs.max)} ms | ${ms(u.wholeMs.median)} / ${ms(u.wholeMs.p95)} / ${ms(u.wholeMs.max)} ms | ≤ 15 ms |`);
  console.log(`| later update, waiting for missing partitions (localhost): median / p95 | ${ms(u.fullMs.median)} / ${ms(u.fullMs.p95)} ms | | |`);
  console.log(`| worker memory after the updates | ${mem(r.streamed.memory)} | ${mem(r.whole.memory)} | ≤ 150 MB |`);
  console.log(`| recall@10 against the whole-bundle answer (${r.whole.referencePath}), mean over ${u.count + 1} sessions: full / partial | ${f4(r.recall.full.mean)} / ${f4(r.recall.partial.mean)} | 1 | ≥ 0.98 |`);
  if (exactRecall) {
    console.log(`| recall@10 against the native exact scan (omakase recommend --exact), mean over ${u.count + 1} sessions: full / partial | ${f4(exactRecall.full)} / ${f4(exactRecall.partial)} | ${f4(exactRecall.whole)} | ≥ 0.98 |`);
  }
  if (r.streamed.stats) {
    const st = r.streamed.stats;
    console.log(`\nstreamed, after the updates: ${st.present} of ${st.partitions} partitions present, ${mb(st.bytesDownloaded)} MB downloaded, ${mb(st.partitionBytes)} MB of partitions kept (wasm memory ${mb(st.memoryBytes)} MB); partial answers missed ${ms(u.missingPartial.mean)} probed partitions on average`);
  }
  const runtime = [...new Map(server.served.filter((f) => /^\/(pkg|runtime)\/|^\/bench\/(worker|client)\.js/.test(f.url)).map((f) => [f.file, f])).values()];
  console.log(`server: ${mb(served)} MB of bundle files sent in all (both workers and the page's manifest.json); the runtime's JS and wasm module, fetched once per worker before the load and cached by a shop's pages, ${mb(runtime.reduce((t, f) => t + f.bytes, 0))} MB (not in the bytes above)`);
} finally {
  await browser.close();
  await server.close();
}
