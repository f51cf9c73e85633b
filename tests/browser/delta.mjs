// End-to-end tests of delta shards (issue 16, point 6; docs/bundle.md § Deltas) in headless Chromium:
// products added after the export reach visitors as a few-KB delta, never the encoders.
//   1. `omakase delta --items` appends a twin of a catalogue film X (its words and picture, another
//      id) to a copy of the bundle; a visitor whose session puts X first is shown the twin, and the
//      visitor's browser fetched the delta and no encoder file or module. The bytes are reported.
//   2. the admin page (www/demo/admin.html) embeds a product in the owner's browser (the encoders,
//      once) and downloads the delta and the new manifest.json; uploaded, a visitor's page knows the
//      product, again without the encoders.
//   3. hostile deltas: a tampered file (sha256), a delta of another model (its item tower), an id
//      already in the catalogue: each one omakase-error naming its file, and the list still shown
//      from the bundle and the other deltas.
//   4. in-browser embedding by visitors stays available, opt-in (embed-new): without the attribute a
//      page's data-* product is not embedded and the encoders are not fetched; with it, it is.
//   5. the demo shop (`omakase demo`, with --model): its films added after the export
//      (www/demo/new-products.jsonl) are a delta shard; a new film's page shows recommendations
//      without the encoders.
//
//   node tests/browser/delta.mjs --bundle DIR --data DATASET_DIR --omakase BIN [--model RUN] [--out DIR]
// The bundle must have the encoders (`omakase export --encoders`, as ./build.sh e2e's). Exit status 0
// when every check passes.

import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './server.mjs';
import { launch } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
if (!args.bundle || !args.data || !args.omakase) {
  console.error('usage: node tests/browser/delta.mjs --bundle DIR --data DATASET_DIR --omakase BIN [--out DIR]');
  process.exit(2);
}
const BUNDLE = path.resolve(args.bundle);
const DATA = path.resolve(args.data);
const OUT = path.resolve(args.out || 'out/delta');
fs.rmSync(OUT, { recursive: true, force: true });
fs.mkdirSync(OUT, { recursive: true });
const ENCODER_FILES = /(text_encoder|image_encoder)\.gguf$|\/pkg\/encoders\//;

let failures = 0;
function check(condition, what) {
  console.log(`${condition ? 'ok  ' : 'FAIL'} ${what}`);
  if (!condition) failures++;
}

/** `omakase recommend --json`'s list of recommendations. */
const listOf = (answer) => answer.recommendations;

function omakase(...argv) {
  return execFileSync(args.omakase, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
}

/** A copy of the exported bundle in OUT/name (a published bundle of its own). */
function copyBundle(name) {
  const dir = path.join(OUT, name);
  fs.cpSync(BUNDLE, dir, { recursive: true });
  return dir;
}

const readJson = (file) => JSON.parse(fs.readFileSync(file, 'utf8'));
const sha256 = (bytes) => crypto.createHash('sha256').update(bytes).digest('hex');

/** The dataset's items.jsonl records by id. */
function datasetItems() {
  const byId = new Map();
  for (const line of fs.readFileSync(path.join(DATA, 'items.jsonl'), 'utf8').split('\n')) {
    if (!line.trim()) continue;
    const item = JSON.parse(line);
    byId.set(item.item_id, item);
  }
  return byId;
}

/** A static shop: the test page under /shop/ (element from /shop/omakase/), the demo's pages at /,
 *  the bundle `dir` at /bundle/ and the dataset's pictures at /bundle/images/. */
function shopServer(dir) {
  return serve([
    ['/shop/omakase/pkg/', path.join(repo, 'pkg')],
    ['/shop/omakase/', path.join(repo, 'www')],
    ['/shop/', path.join(here, 'pages')],
    ['/pkg/', path.join(repo, 'pkg')],
    ['/bundle/images/', path.join(DATA, 'images')],
    ['/bundle/', dir],
    ['/', path.join(repo, 'www')],
  ]);
}

async function newPage(browser) {
  const context = await browser.newContext({ acceptDownloads: true });
  const page = await context.newPage();
  const seen = { errors: [], requests: [] };
  page.on('pageerror', (e) => seen.errors.push(e.message));
  context.on('request', (r) => seen.requests.push(r.url()));
  return { context, page, seen };
}

/** The test shop's page of product `id` with the element's attributes `attrs`; what it shows and its events. */
async function visit(page, server, id, attrs = {}) {
  const settings = new URLSearchParams({ 'a.bundle': `${server.url}/bundle/manifest.json`, 'a.k': '10', ...Object.fromEntries(Object.entries(attrs).map(([k, v]) => [`a.${k}`, v])) });
  await page.goto('about:blank');
  await page.goto(`${server.url}/shop/shop.html?id=${encodeURIComponent(id)}#${settings}`);
  await page.waitForFunction(() => {
    const w = document.querySelector('omakase-recs');
    return w && ['ready', 'error', 'empty'].includes(w.getAttribute('state'));
  }, null, { timeout: 120000 });
  return page.evaluate(() => {
    const w = document.querySelector('omakase-recs');
    const cards = [...w.shadowRoot.querySelectorAll('li.card')];
    return { state: w.getAttribute('state'), ids: cards.map((c) => c.dataset.id), events: window.__events };
  });
}

const errorsOf = (shown) => shown.events.filter((e) => e.type === 'omakase-error').map((e) => e.detail);
const encoderRequests = (seen) => seen.requests.filter((u) => ENCODER_FILES.test(new URL(u).pathname));

// ---- 1. the CLI's delta, seen by a visitor ------------------------------------------------------

async function cliDelta(browser) {
  console.log('1. omakase delta --items: a visitor gets the new product without the encoders');
  const dir = copyBundle('cli');
  const items = readJson(path.join(dir, 'items.json'));
  const byId = datasetItems();
  // Session [A] puts X first; the twin of X (X's words and picture) should sit beside it.
  const a = items[0].id;
  const x = listOf(JSON.parse(omakase('recommend', '--bundle', dir, '--item', a, '--k', '1', '--json')))[0].id;
  const source = byId.get(x);
  const twin = { ...source, item_id: `twin-of-${x}` };
  const newDir = path.join(OUT, 'new-products');
  fs.mkdirSync(path.join(newDir, 'images'), { recursive: true });
  if (source.image) {
    twin.image = `images/${path.basename(source.image)}`;
    fs.copyFileSync(path.join(DATA, source.image), path.join(newDir, twin.image));
  }
  fs.writeFileSync(path.join(newDir, 'new.jsonl'), `${JSON.stringify(twin)}\n`);
  const manifestBefore = fs.statSync(path.join(dir, 'manifest.json')).size;
  const report = JSON.parse(omakase('delta', '--bundle', dir, '--items', path.join(newDir, 'new.jsonl'), '--json'));
  const manifestAfter = fs.statSync(path.join(dir, 'manifest.json')).size;
  check(report.rows === 1 && /^delta-[0-9a-f]{16}\.bin$/.test(report.file), `omakase delta wrote ${report.file} (${report.bytes} bytes) for ${twin.item_id}`);

  const server = await shopServer(dir);
  try {
    const { context, page, seen } = await newPage(browser);
    const shown = await visit(page, server, a);
    check(shown.state === 'ready', `the visitor's page of ${a} shows a list (${shown.state})`);
    check(shown.ids.includes(twin.item_id), `the twin of ${x} is recommended to the visitor: position ${shown.ids.indexOf(twin.item_id) + 1} of [${shown.ids.join(', ')}]`);
    check(errorsOf(shown).length === 0, `no omakase-error (${JSON.stringify(errorsOf(shown))})`);
    const own = await visit(page, server, twin.item_id);
    check(own.state === 'ready' && own.ids.length > 0 && !own.ids.includes(twin.item_id), `the new product's own page shows ${own.ids.length} recommendations`);
    check(encoderRequests(seen).length === 0, `the visitor fetched no encoder file or module (${encoderRequests(seen).join(', ') || 'none'})`);
    const deltaFetches = server.served.filter((s) => s.url.endsWith(report.file));
    check(deltaFetches.length >= 1, `the visitor fetched the delta (${deltaFetches.map((s) => s.bytes).join(', ')} bytes)`);
    // What a visitor downloads for the product added after export, against the encoders route.
    const encoders = readJson(path.join(dir, 'manifest.json')).encoders;
    const encoderBytes = encoders.text.bytes + (encoders.image ? encoders.image.bytes : 0);
    const module = fs.readdirSync(path.join(repo, 'pkg/encoders')).filter((f) => /\.(wasm|js)$/.test(f))
      .reduce((sum, f) => sum + fs.statSync(path.join(repo, 'pkg/encoders', f)).size, 0);
    const grew = manifestAfter - manifestBefore;
    console.log(`     bytes for one product added after export: delta ${report.bytes} B + manifest.json ${grew} B larger = ${report.bytes + grew} B;`
      + ` in-browser embedding instead: encoders ${encoderBytes} B + encoder module ${module} B = ${((encoderBytes + module) / 1e6).toFixed(1)} MB`);
    fs.writeFileSync(path.join(OUT, 'bytes.json'), JSON.stringify({ delta: report.bytes, manifestGrowth: grew, manifestBefore, manifestAfter, encoders: encoderBytes, encoderModule: module }, null, 2));
    check(seen.requests.every((u) => !new URL(u).search || new URL(u).pathname.endsWith('/shop.html')), 'no request carries a query string but the page itself');
    check(seen.errors.length === 0, `no page errors (${seen.errors.join('; ')})`);
    await context.close();
  } finally {
    await server.close();
  }
  return { dir, twin: twin.item_id, a };
}

// ---- 2. the admin page ---------------------------------------------------------------------------

async function adminPage(browser) {
  console.log('2. the admin page: embedded once in the owner\'s browser, uploaded, seen by a visitor');
  const dir = copyBundle('admin');
  const server = await shopServer(dir);
  try {
    const owner = await newPage(browser);
    await owner.page.goto(`${server.url}/demo/admin.html`);
    await owner.page.waitForFunction(() => document.getElementById('status')?.dataset.ready === 'true', null, { timeout: 120000 });
    const id = 'admin-harbour-lights';
    await owner.page.fill('input[name=id]', id);
    await owner.page.fill('input[name=title]', 'Harbour Lights');
    await owner.page.fill('input[name=genres]', 'Drama, Mystery');
    await owner.page.fill('input[name=year]', '2026');
    await owner.page.fill('textarea[name=description]', 'A retired codebreaker decodes a radio signal from a fishing boat lost at sea forty years ago.');
    await owner.page.fill('input[name=link]', '/p/admin-harbour-lights');
    await owner.page.click('#add');
    await owner.page.click('#build');
    await owner.page.waitForFunction(() => document.getElementById('built')?.dataset.name || document.getElementById('status')?.dataset.error, null, { timeout: 300000 });
    const built = await owner.page.evaluate(() => ({ name: document.getElementById('built').dataset.name, bytes: Number(document.getElementById('built').dataset.bytes), error: document.getElementById('status').textContent }));
    check(Boolean(built.name), `the admin page built ${built.name} (${built.bytes} bytes) ${built.name ? '' : built.error}`);
    check(encoderRequests(owner.seen).length > 0, `the owner's browser fetched the encoders once (${encoderRequests(owner.seen).length} files)`);
    if (!built.name) return;
    // The owner's downloads, uploaded: the delta beside manifest.json, then manifest.json.
    for (const selector of [`a[data-file="${built.name}"]`, 'a[data-file="manifest.json"]']) {
      const [download] = await Promise.all([owner.page.waitForEvent('download'), owner.page.click(selector)]);
      await download.saveAs(path.join(dir, download.suggestedFilename()));
    }
    await owner.context.close();
    const manifest = readJson(path.join(dir, 'manifest.json'));
    check(manifest.format_version === 2 && manifest.deltas.length === 1 && manifest.deltas[0].file.path === built.name,
      `the downloaded manifest.json lists ${built.name} (format version ${manifest.format_version})`);
    check(fs.statSync(path.join(dir, built.name)).size === built.bytes, 'the downloaded delta has the bytes the page said');
    // The CLI reads what the browser wrote.
    const native = listOf(JSON.parse(omakase('recommend', '--bundle', dir, '--item', id, '--k', '3', '--json')));
    check(native.length === 3, `omakase recommend reads the browser's delta: ${native.map((i) => i.id).join(', ')}`);

    const visitor = await newPage(browser);
    const shown = await visit(visitor.page, server, id);
    check(shown.state === 'ready' && shown.ids.length === 10, `a visitor's page of ${id} shows ${shown.ids.length} recommendations`);
    check(errorsOf(shown).length === 0, `no omakase-error (${JSON.stringify(errorsOf(shown))})`);
    check(encoderRequests(visitor.seen).length === 0, 'the visitor fetched no encoder file or module');
    const same = shown.ids.slice(0, 3).join() === native.map((i) => i.id).join();
    check(same, `the widget's top 3 are omakase recommend's (${shown.ids.slice(0, 3).join(', ')})`);
    await visitor.context.close();
  } finally {
    await server.close();
  }
}

// ---- 3. hostile deltas ---------------------------------------------------------------------------

/** The delta file's header (JSON) and rows. */
function splitDelta(bytes) {
  const h = bytes.readUInt32LE(8);
  return { header: JSON.parse(bytes.subarray(12, 12 + h).toString('utf8')), rows: bytes.subarray(12 + h) };
}

function joinDelta(header, rows) {
  const json = Buffer.from(JSON.stringify(header));
  const length = Buffer.alloc(4);
  length.writeUInt32LE(json.length);
  return Buffer.concat([Buffer.from('OMKDELTA'), length, json, rows]);
}

/** Adds `bytes` to the bundle `dir` as one more delta, listed with its true size and sha256. */
function appendRaw(dir, bytes, rows) {
  const digest = sha256(bytes);
  const name = `delta-${digest.slice(0, 16)}.bin`;
  fs.writeFileSync(path.join(dir, name), bytes);
  const manifest = readJson(path.join(dir, 'manifest.json'));
  manifest.deltas.push({ file: { path: name, bytes: bytes.length, sha256: digest }, rows });
  fs.writeFileSync(path.join(dir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return name;
}

async function hostile(browser, cli) {
  console.log('3. hostile deltas: omakase-error naming the file, the best list still shown');
  const base = readJson(path.join(cli.dir, 'manifest.json'));
  const good = base.deltas[0].file.path;
  const original = fs.readFileSync(path.join(cli.dir, good));
  const { header, rows } = splitDelta(original);
  const cases = [
    ['tampered bytes', (dir) => {
      const bytes = Buffer.from(original);
      bytes[bytes.length - 1] ^= 1;
      fs.writeFileSync(path.join(dir, good), bytes);
      return { file: good, kind: 'Checksum', says: 'sha256', twin: false };
    }],
    ['another model', (dir) => {
      fs.rmSync(path.join(dir, good));
      const manifest = readJson(path.join(dir, 'manifest.json'));
      manifest.deltas = [];
      fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest));
      const foreign = { ...header, space: { ...header.space, item_tower: '0'.repeat(64) } };
      return { file: appendRaw(dir, joinDelta(foreign, rows), 1), kind: 'Format', says: 'item tower', twin: false };
    }],
    ['an id already in the catalogue', (dir) => {
      const again = { ...header, items: [{ ...header.items[0], title: 'The same id again' }] };
      return { file: appendRaw(dir, joinDelta(again, rows), 1), kind: 'Format', says: 'already in the catalogue', twin: true };
    }],
  ];
  for (const [name, make] of cases) {
    const dir = path.join(OUT, `hostile-${name.replaceAll(' ', '-')}`);
    fs.cpSync(cli.dir, dir, { recursive: true });
    const expect = make(dir);
    const server = await shopServer(dir);
    try {
      const { context, page } = await newPage(browser);
      const shown = await visit(page, server, cli.a);
      const errors = errorsOf(shown);
      const named = errors.find((e) => e.file === expect.file);
      check(named && named.kind === expect.kind && named.message.includes(expect.file) && named.message.includes(expect.says),
        `${name}: omakase-error { kind ${named?.kind}, file ${named?.file} }: ${named?.message}`);
      check(shown.state === 'ready' && shown.ids.length === 10, `${name}: the list is still shown (${shown.state}, ${shown.ids.length} cards)`);
      check(shown.ids.includes(cli.twin) === expect.twin, `${name}: the twin is ${expect.twin ? 'still' : 'not'} recommended (from the deltas that load)`);
      await context.close();
    } finally {
      await server.close();
    }
  }
}

// ---- 4. opt-in embedding by visitors --------------------------------------------------------------

async function optIn(browser, cli) {
  console.log('4. embedding on the visitor\'s device stays available, opt-in (embed-new)');
  const server = await shopServer(cli.dir);
  try {
    // The page's product, which neither the bundle nor its delta holds, described by data-* attributes.
    const product = { 'data-title': 'Orbit of Two', 'data-description': 'Two engineers stranded on a failing space station.' };
    for (const optedIn of [false, true]) {
      const { context, page, seen } = await newPage(browser);
      const shown = await visit(page, server, 'orbit-of-two', optedIn ? { ...product, 'embed-new': '' } : product);
      const embedded = shown.events.some((e) => e.type === 'omakase-new-product' && e.detail.id === 'orbit-of-two');
      if (optedIn) {
        await page.waitForFunction(() => window.__events.some((e) => e.type === 'omakase-new-product'), null, { timeout: 300000 }).catch(() => {});
        const later = await page.evaluate(() => window.__events.some((e) => e.type === 'omakase-new-product'));
        check(later && encoderRequests(seen).length > 0, `with embed-new the page's product is embedded here (encoders fetched: ${encoderRequests(seen).length} files)`);
      } else {
        check(!embedded && encoderRequests(seen).length === 0, 'without embed-new the page\'s product is not embedded and no encoder is fetched');
      }
      await context.close();
    }
  } finally {
    await server.close();
  }
}

// ---- 5. the demo shop ----------------------------------------------------------------------------

async function demoShop(browser) {
  console.log('5. the demo shop: its films added after the export come as a delta shard');
  const log = [];
  const child = spawn(args.omakase, ['demo', '--data', DATA, '--model', args.model, '--out', path.join(OUT, 'demo'), '--port', '0', '--log-requests'], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.on('data', (d) => log.push(...d.toString().split('\n').filter(Boolean)));
  try {
    const url = await new Promise((resolve, reject) => {
      child.stdout.on('data', (d) => {
        const m = d.toString().match(/http:\/\/127\.0\.0\.1:\d+/);
        if (m) resolve(m[0]);
      });
      child.on('exit', (code) => reject(new Error(`omakase demo exited with ${code}:\n${log.join('\n')}`)));
    });
    const manifest = readJson(path.join(OUT, 'demo/bundle/manifest.json'));
    const added = fs.readFileSync(path.join(repo, 'www/demo/new-products.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l).item_id);
    check((manifest.deltas || []).length === 1 && manifest.deltas[0].rows === added.length,
      `the demo's bundle lists one delta of ${added.length} films (${(manifest.deltas || []).map((d) => `${d.file.path}, ${d.file.bytes} bytes`).join('')})`);
    const { context, page, seen } = await newPage(browser);
    await page.goto(`${url}/demo/product.html?id=${encodeURIComponent(added[0])}`);
    await page.waitForFunction(() => {
      const w = document.querySelector('omakase-recs');
      return w && ['ready', 'error', 'empty'].includes(w.getAttribute('state'));
    }, null, { timeout: 120000 });
    const shown = await page.evaluate(() => {
      const w = document.querySelector('omakase-recs');
      return { state: w.getAttribute('state'), cards: w.shadowRoot.querySelectorAll('li.card').length, title: document.querySelector('h1')?.textContent };
    });
    check(shown.state === 'ready' && shown.cards > 0, `the demo's page of ${added[0]} ("${shown.title}") shows ${shown.cards} recommendations (${shown.state})`);
    check(encoderRequests(seen).length === 0, 'the demo\'s visitor fetched no encoder file or module');
    await context.close();
  } finally {
    child.kill();
  }
}

// ---- main ----------------------------------------------------------------------------------------

const manifest = readJson(path.join(BUNDLE, 'manifest.json'));
if (!manifest.encoders) {
  console.error(`${BUNDLE}: exported without the encoders (omakase export --encoders): deltas need them`);
  process.exit(2);
}
const browser = await launch({ webgpu: false });
try {
  const cli = await cliDelta(browser);
  await adminPage(browser);
  await hostile(browser, cli);
  await optIn(browser, cli);
  if (args.model) await demoShop(browser);
} catch (e) {
  console.error(e);
  failures++;
} finally {
  await browser.close();
}
console.log(failures === 0 ? 'delta: all checks passed' : `delta: ${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
