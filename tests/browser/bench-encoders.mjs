// New-product encoding in the browser (a benchmark, not a test): headless Chromium loads a bundle
// exported with `--encoders`, embeds a first product (cold: encoder module and files downloaded,
// bytes counted), then times the text encoder on a ~32-token and a ~128-token product and the image
// encoder on a poster, once with WebGPU enabled (SwiftShader here) and once without.
//   node tests/browser/bench-encoders.mjs --bundle DIR [--image FILE] [--reps 20]
// The picture: FILE (build.sh passes a poster of the default dataset), else, when FILE is not given
// or not there (a dataset without posters), the public-domain photo
// tests/fixtures/efficientnet-lite0/photos/rocket.jpg. A bundle without an image encoder (a text-only
// catalogue) times the text encoder only.
// Three runs: WebGPU on with the text encoder's layers forced onto it (SwiftShader here), WebGPU on
// with "auto" (a software adapter is passed over: wasm), WebGPU off. The image encoder runs on the
// wasm CPU path (simd128) in every case: there are no WebGPU convolution kernels.

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
const reps = Number(option('--reps', '20'));
if (!fs.existsSync(path.join(bundle, 'manifest.json'))) {
  console.error('usage: node bench-encoders.mjs --bundle DIR [--image FILE] [--reps 20]');
  process.exit(2);
}
const encoders = JSON.parse(fs.readFileSync(path.join(bundle, 'manifest.json'), 'utf8')).encoders;
if (!encoders) {
  console.error(`${bundle}: exported without --encoders`);
  process.exit(2);
}
const PHOTO = path.join(repo, 'tests/fixtures/efficientnet-lite0/photos/rocket.jpg'); // public domain: tests/fixtures/efficientnet-lite0/README.md
let image = null;
if (!encoders.image) {
  console.log(`${bundle}: no image encoder (the model reads no pictures): timing the text encoder only`);
} else if (option('--image', null) && fs.existsSync(option('--image', null))) {
  image = path.resolve(option('--image', null));
} else {
  if (option('--image', null)) console.log(`${option('--image', null)}: not found (a dataset without pictures?); using ${path.relative(repo, PHOTO)}`);
  image = PHOTO;
  if (!fs.existsSync(image)) {
    console.error(`${image}: missing`);
    process.exit(2);
  }
}
if (image) console.log(`picture: ${image}`);

const PLOT = 'A retired codebreaker is pulled back into service when a coded radio broadcast from a ship lost ' +
  'forty years earlier starts repeating over the harbour. With her estranged nephew, a harbour pilot who knows ' +
  'every wreck on the coast, she follows the signal from the archives of the old naval station to a lighthouse ' +
  'island, where the families who stayed behind have kept a secret about the night the ship went down and the ' +
  'cargo nobody was supposed to find. Old rivals return, storms close the crossing, and the last message turns out ' +
  'to be addressed to her.';
const SHORT = { id: 'bench-short', title: 'Harbour Lights', year: 2026, genres: ['Drama', 'Mystery'], description: 'A retired codebreaker decodes a radio signal from a ship lost at sea.' };
const LONG = { id: 'bench-long', title: 'Harbour Lights', year: 2026, genres: ['Drama', 'Mystery', 'Thriller'], description: PLOT };

const stats = (times) => {
  const s = [...times].sort((a, b) => a - b);
  return { median: s[Math.floor(s.length / 2)], min: s[0], p90: s[Math.min(s.length - 1, Math.floor(s.length * 0.9))] };
};

async function run(webgpu, textBackend) {
  const server = await serve([['/', path.join(repo, 'www')], ['/pkg/', path.join(repo, 'pkg')], ['/test/', path.join(here, 'pages')],
    ['/bundle/', bundle], ...(image ? [['/picture/', path.dirname(image)]] : [])]);
  const browser = await launch({ webgpu });
  try {
    const { page } = await openPage(browser, `${server.url}/test/harness.html`, (l) => process.env.VERBOSE && console.log(l));
    await page.waitForFunction(() => window.harnessReady === true);
    const picture = image ? `/picture/${path.basename(image)}` : undefined;
    const result = await page.evaluate(async ([short, long, picture, reps, textBackend]) => {
      const client = await window.Omakase.start();
      const info = await client.load('/bundle/manifest.json', {});
      const options = { textBackend };
      const first = await client.addProduct({ ...short, id: 'bench-first', image: picture }, null, options);
      const a = await client.timeEncode({ ...short, image: picture }, null, 3, reps, options);
      const b = await client.timeEncode(long, null, 3, reps, options);
      return { backend: info.backend, first: first.timings, encoderStats: first.encoderStats, short: a, long: b };
    }, [SHORT, LONG, picture, reps, textBackend]);
    // Every file the browser fetched before the first new-product vector (no cache: a fresh profile).
    const files = [...new Map(server.served.filter((s) => !s.url.startsWith('/test/') && !s.url.startsWith('/picture/')).map((s) => [s.file, s])).values()];
    const raw = files.reduce((sum, s) => sum + s.bytes, 0);
    const gz = files.reduce((sum, s) => sum + zlib.gzipSync(fs.readFileSync(s.file), { level: 9 }).length, 0);
    const code = files.filter((s) => s.url.startsWith('/pkg/') || s.url.startsWith('/runtime/'));
    const codeGz = code.reduce((sum, s) => sum + zlib.gzipSync(fs.readFileSync(s.file), { level: 9 }).length, 0);
    return { ...result, webgpu, textBackend, version: browser.version(), raw, gz, codeGz };
  } finally {
    await browser.close();
    await server.close();
  }
}

const rows = [];
for (const [webgpu, textBackend] of [[true, 'webgpu'], [true, 'auto'], [false, 'auto']]) rows.push(await run(webgpu, textBackend));
const f = (x) => (x === null || x === undefined ? '-' : x.toFixed(1));
console.log(`\nChromium ${rows[0].version}; ${reps} timed runs after 3 warm-up runs; ms (median / min / p90)\n`);
console.log('| browser | textBackend asked | text encoder on | recommender backend | text, ~32 tokens | text, ~128 tokens | image 224×224 | first product: encoders ready (ms) |');
console.log('|---|---|---|---|---:|---:|---:|---:|');
for (const r of rows) {
  const cell = (times, tokens) => {
    const s = stats(times);
    return `${f(s.median)} / ${f(s.min)} / ${f(s.p90)}${tokens ? ` (${tokens} tok)` : ''}`;
  };
  console.log(`| ${r.webgpu ? 'WebGPU on (SwiftShader)' : 'WebGPU off'} | ${r.textBackend} | ${r.short.textBackend} | ${r.backend} | ${cell(r.short.text, r.short.tokens)} | ${cell(r.long.text, r.long.tokens)} | ${r.short.image ? cell(r.short.image) : "- (no image encoder)"} | ${f(r.first.encoderLoadMs)} |`);
}
for (const r of rows) console.log(`text encoder (${r.textBackend}): ${r.encoderStats.textBackendNote}`);
const r = rows[2];
console.log(`\nbytes fetched before the first new-product vector (fresh profile, WebGPU off): ${r.raw} B (${r.gz} B gzipped), ` +
  `of which code (runtime + encoder module, JS + wasm) ${r.codeGz} B gzipped; encoder files ${r.encoderStats.total} B; ` +
  `encoder module's wasm memory after loading: ${(r.encoderStats.memoryBytes / 1048576).toFixed(0)} MiB`);
