// End-to-end test of the demo shop on a large streamed catalogue (issue 17), in headless Chromium:
// www/demo served with a synthetic bundle of many items (examples/synthetic_bundle.rs, indexed, with
// the streamed reader's files), whose widget loads it streamed (the default for such a bundle):
//   1. a product page's widget shows recommendations, and the page downloaded far less than the
//      bundle: under 25 % of what a whole-bundle reader fetches (towers, items.json, every row,
//      popularity.json, columns.json, centroids), and never items.json or popularity.json
//   2. clicking a recommended product opens its page, whose widget shows an updated list (the
//      session now holds both products; neither is recommended)
//   3. a tampered partition (one byte changed, same size) among those the product's answer probes,
//      served by the test server: the widget reports an error naming the file and still shows
//      recommendations, none of them from that partition
//
// A shop with this many products renders each product page from its own server; the test server
// plays that part: /site/catalog.json (what the demo's pages read for the page's own product) holds
// the products about to be visited, not the whole catalogue. Posters come from the dataset's images.
//
// node tests/browser/stream-demo.mjs --bundle SYNTHETIC --data DIR --omakase BIN [--out DIR]
//   SYNTHETIC: e.g. `cargo run --example synthetic_bundle -- BUNDLE --items 150000 --out SYNTHETIC
//   --no-encoders`; BIN: the native CLI (its `recommend --json` names the partitions a session probes).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './server.mjs';
import { launch } from './chromium.mjs';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
if (!args.bundle || !args.data || !args.omakase) {
  console.error('usage: node tests/browser/stream-demo.mjs --bundle SYNTHETIC --data DIR --omakase BIN [--out DIR]');
  process.exit(2);
}
const BUNDLE = path.resolve(args.bundle);
const OUT = args.out ? path.resolve(args.out) : null;
if (OUT) fs.mkdirSync(OUT, { recursive: true });

let failures = 0;
function check(condition, what) {
  console.log(`${condition ? 'ok  ' : 'FAIL'} ${what}`);
  if (!condition) failures++;
}

const manifest = JSON.parse(fs.readFileSync(path.join(BUNDLE, 'manifest.json'), 'utf8'));
if (!manifest.index || !manifest.index.metadata || !manifest.index.directory) {
  console.error(`${BUNDLE}: not a streamed bundle (its manifest has no index.metadata / index.directory)`);
  process.exit(2);
}
// What a whole-bundle reader downloads (Manifest::files: everything but the encoders and the streamed
// reader's own files).
const wholeFiles = [manifest.sequence_tower, manifest.items, manifest.popularity, manifest.columns, manifest.item_tower,
  ...manifest.shards.map((s) => s.file), ...(manifest.explain ? [...manifest.explain.text, ...manifest.explain.image].map((s) => s.file) : []),
  manifest.index.centroids].filter(Boolean);
const wholeBytes = wholeFiles.reduce((sum, f) => sum + f.bytes, 0);
const items = JSON.parse(fs.readFileSync(path.join(BUNDLE, manifest.items.path), 'utf8'));
const rowOf = new Map(items.map((m, row) => [m.id, row]));
const partitionOf = (row) => manifest.shards.findIndex((s) => row >= s.first_row && row < s.first_row + s.rows);
console.log(`${BUNDLE}: ${items.length} items, ${manifest.index.partitions} partitions, nprobe ${manifest.index.nprobe}; a whole-bundle reader fetches ${(wholeBytes / 1e6).toFixed(1)} MB`);

// The shop's catalogue entries of `ids` (the demo's CatalogItem), written where /site/ is served.
const site = fs.mkdtempSync(path.join(os.tmpdir(), 'omakase-stream-site-'));
function catalog(ids) {
  const entries = ids.map((id) => {
    const m = items[rowOf.get(id)];
    return { id, title: m.title, year: null, genres: null, description: null, director: null, image: m.image ?? null };
  });
  fs.writeFileSync(path.join(site, 'catalog.json'), JSON.stringify(entries));
}

function mounts(bundleDir) {
  return [['/pkg/', path.join(repo, 'pkg')], ['/bundle/images/', path.join(args.data, 'images')], ['/bundle/', bundleDir],
    ['/site/', site], ['/', path.join(repo, 'www')]];
}

// Records the widgets' events from the page's start (each page load starts a fresh list).
const RECORD = () => {
  window.__updates = [];
  window.__errors = [];
  document.addEventListener('omakase-update', (e) => window.__updates.push({ id: e.target.id || e.target.parentElement?.id || '', detail: JSON.parse(JSON.stringify(e.detail)) }));
  document.addEventListener('omakase-error', (e) => window.__errors.push(JSON.parse(JSON.stringify(e.detail))));
};

// The product page's for-you widget (#recs) once it has answered: state and cards.
async function recs(page) {
  await page.waitForFunction(() => {
    const w = document.querySelector('#recs omakase-recs');
    return w && ['ready', 'error', 'empty'].includes(w.getAttribute('state'));
  }, null, { timeout: 120000 });
  return page.evaluate(() => {
    const w = document.querySelector('#recs omakase-recs');
    const cards = [...w.shadowRoot.querySelectorAll('.card')];
    return { state: w.getAttribute('state'), ids: cards.map((c) => c.dataset.id), errors: window.__errors };
  });
}

const bundleBytesServed = (server) => server.served.filter((s) => s.url.startsWith('/bundle/') && !s.url.startsWith('/bundle/images/'));
const product = `syn-${String(Math.floor(items.length * 0.37)).padStart(Math.max(6, String(items.length - 1).length), '0')}`;
if (!rowOf.has(product)) throw new Error(`${product} is not in ${BUNDLE}`);

const browser = await launch({ webgpu: false });
try {
  // 1 and 2: the streamed catalogue, untouched.
  {
    const server = await serve(mounts(BUNDLE));
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.addInitScript(RECORD);
    catalog([product]);
    await page.goto(`${server.url}/demo/product.html?id=${product}`);
    const first = await recs(page);
    check(first.state === 'ready' && first.ids.length > 0, `product ${product}: the widget shows recommendations (state ${first.state}, ${first.ids.length} cards)`);
    const fetched = bundleBytesServed(server);
    const bytes = fetched.reduce((sum, s) => sum + s.bytes, 0);
    check(bytes < 0.25 * wholeBytes, `the page fetched ${(bytes / 1e6).toFixed(2)} MB of the bundle in ${fetched.length} files: under 25 % of the ${(wholeBytes / 1e6).toFixed(1)} MB a whole-bundle reader fetches (${((100 * bytes) / wholeBytes).toFixed(1)} %)`);
    const whole = fetched.filter((s) => ['/bundle/items.json', '/bundle/popularity.json'].includes(s.url.split('?')[0]));
    check(whole.length === 0, `items.json and popularity.json are never fetched${whole.length ? ` (fetched: ${whole.map((s) => s.url).join(', ')})` : ''}`);
    if (OUT) await page.screenshot({ path: path.join(OUT, 'stream-product.png'), fullPage: true });

    // 2: click the first recommendation.
    const next = first.ids[0];
    catalog([product, next]);
    const link = page.locator('#recs omakase-recs').locator(`.card[data-id="${next}"] a`).first();
    await Promise.all([page.waitForURL((url) => url.searchParams.get('id') === next, { timeout: 60000 }), link.click()]);
    const second = await recs(page);
    const views = await page.evaluate(() => JSON.parse(localStorage.getItem('omakase.views') || '[]'));
    check(views.includes(product) && views.includes(next), `after the click the session holds both products (${views.join(', ')})`);
    check(second.state === 'ready' && second.ids.length > 0, `product ${next}: the widget shows recommendations (${second.ids.length} cards)`);
    check(JSON.stringify(second.ids) !== JSON.stringify(first.ids) && !second.ids.includes(product) && !second.ids.includes(next),
      'the list changed with the session, and neither viewed product is recommended');
    check(pageErrors.length === 0, `no page errors${pageErrors.length ? `: ${pageErrors.join(' | ')}` : ''}`);
    const after = bundleBytesServed(server).reduce((sum, s) => sum + s.bytes, 0);
    console.log(`     (two product pages: ${(after / 1e6).toFixed(2)} MB of the bundle fetched in all)`);
    await context.close();
    await server.close();
  }

  // 3: a tampered partition among those the product's answer probes (not the product's own: its
  // row's vector is the session), served in place of the real one.
  {
    const native = JSON.parse(execFileSync(args.omakase, ['recommend', '--bundle', BUNDLE, '--item', product, '--json'], { maxBuffer: 1 << 26 }).toString());
    const own = partitionOf(rowOf.get(product));
    const probed = (native.search && native.search.probed) || [];
    const target = probed.find((p) => p !== own);
    check(target !== undefined, `omakase recommend names the partitions ${product} probes (${probed.slice(0, 5).join(', ')}…; its own is ${own})`);
    const file = manifest.shards[target].file.path;
    const tampered = fs.mkdtempSync(path.join(os.tmpdir(), 'omakase-stream-tampered-'));
    for (const name of fs.readdirSync(BUNDLE)) {
      if (name !== file) fs.symlinkSync(path.join(BUNDLE, name), path.join(tampered, name));
    }
    const bytes = fs.readFileSync(path.join(BUNDLE, file));
    bytes[bytes.length >> 1] ^= 0x5a;
    fs.writeFileSync(path.join(tampered, file), bytes);
    const partitionIds = new Set(items.slice(manifest.shards[target].first_row, manifest.shards[target].first_row + manifest.shards[target].rows).map((m) => m.id));

    const server = await serve(mounts(tampered));
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await page.addInitScript(RECORD);
    catalog([product]);
    await page.goto(`${server.url}/demo/product.html?id=${product}`);
    const shown = await recs(page);
    await page.waitForFunction((f) => window.__errors.some((e) => `${e.file || ''} ${e.message}`.includes(f)), file, { timeout: 30000 }).catch(() => {});
    const errors = await page.evaluate(() => window.__errors);
    const named = errors.filter((e) => `${e.file || ''} ${e.message}`.includes(file));
    check(named.length > 0, `the tampered ${file} is refused naming the file (${named.map((e) => `${e.kind}: ${e.message}`).join(' | ') || `errors: ${JSON.stringify(errors)}`})`);
    check(shown.state === 'ready' && shown.ids.length > 0, `the widget still shows recommendations (${shown.ids.length} cards)`);
    check(!shown.ids.some((id) => partitionIds.has(id)), `none of them from the refused partition ${target}`);
    if (OUT) await page.screenshot({ path: path.join(OUT, 'stream-tampered.png'), fullPage: true });
    await context.close();
    await server.close();
    fs.rmSync(tampered, { recursive: true, force: true });
  }
} finally {
  await browser.close();
  fs.rmSync(site, { recursive: true, force: true });
}
console.log(failures ? `\n${failures} check(s) failed` : '\nall streamed-catalogue checks passed');
process.exit(failures ? 1 : 0);
