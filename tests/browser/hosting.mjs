// End-to-end tests of how a shop installs <omakase-recs> (issue 16, points 3-5), in headless Chromium
// (playwright-core) against three static servers on 127.0.0.1 (tests/browser/server.mjs): the shop
// (origin A), a second origin serving the element, runtime, wasm and bundle with CORS (B, "the
// CDN"), and a third serving the bundle without CORS (C).
//   1. a sub-path (/shop/omakase/ holds widget/, runtime/, pkg/) under the strict CSP
//      default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self'; connect-src 'self' B;
//      img-src 'self' B; style-src 'self'  — with the bundle on B: recommendations, no CSP violation
//      (securitypolicyviolation events, console), no <style> element and no style attribute;
//      measurement: one impression per list, a click with its position, list ids, no event detail
//      and no request carrying the views; cards are links named once; focus rings not clipped
//   2. the element from B (a CDN) with a one-line worker shim on A, under the strict CSP with B added
//      to script-src and worker-src; without the shim a clear WorkerOrigin error
//   3. a bundle on C (no CORS): an error of kind Cors that says what the server must send
//   4. the experiment attribute: stable local buckets, the control list, the variant on the events
//   5. restyling: custom properties, ::part, a slotted heading, heading-level, a card template with
//      the shop's price and call to action, translated strings
//   6. `npm pack` (scripts/pack-npm.sh) installed into a fresh folder and used through an import map
//
//   node tests/browser/hosting.mjs --bundle DIR [--data DATASET_DIR] [--tarball TGZ] [--out DIR] [--only 1,2,...]
// Exit status 0 when every check passes.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './server.mjs';
import { launch } from './chromium.mjs';
import { ATTRIBUTES } from '../../www/widget/attributes.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
if (!args.bundle) {
  console.error('usage: node tests/browser/hosting.mjs --bundle DIR [--data DATASET_DIR] [--tarball TGZ] [--out DIR]');
  process.exit(2);
}
const BUNDLE = path.resolve(args.bundle);
const OUT = path.resolve(args.out || 'out/hosting');
fs.mkdirSync(OUT, { recursive: true });
const ITEM_IDS = JSON.parse(fs.readFileSync(path.join(BUNDLE, 'items.json'), 'utf8')).map((i) => i.id);
const VIEWS = [ITEM_IDS[0], ITEM_IDS[126] ?? ITEM_IDS[1], ITEM_IDS[173] ?? ITEM_IDS[2]];

let failures = 0;
function check(condition, what) {
  console.log(`${condition ? 'ok  ' : 'FAIL'} ${what}`);
  if (!condition) failures++;
}

// ---- servers ------------------------------------------------------------------------------------

const images = args.data ? [['/bundle/images/', path.join(path.resolve(args.data), 'images')]] : [];
const shim = fs.mkdtempSync(path.join(os.tmpdir(), 'omakase-shim-'));
/** The shop's CSP for the current scenario (null: none). */
let policy = null;
const shop = await serve([
  ['/shop/omakase/pkg/', path.join(repo, 'pkg')],
  ['/shop/omakase/', path.join(repo, 'www')],
  ['/shop/shim/', shim],
  ['/shop/', path.join(here, 'pages')],
], { headers: () => (policy ? { 'content-security-policy': policy } : {}) });
const cdn = await serve([
  ['/cdn/omakase/pkg/', path.join(repo, 'pkg')],
  ['/cdn/omakase/', path.join(repo, 'www')],
  ...images,
  ['/bundle/', BUNDLE],
], { headers: { 'access-control-allow-origin': '*' } });
const noCors = await serve([['/bundle/', BUNDLE]]);
// The one line a shop hosts to start the CDN's worker from its own origin.
fs.writeFileSync(path.join(shim, 'omakase-worker.js'), `import '${cdn.url}/cdn/omakase/widget/worker.js';\n`);
// The strict CSP of issue 16 with B as the bundle's and images' origin; `scripts`: an origin added to
// script-src and worker-src (a CDN: a module worker's imports are fetched as "worker" requests).
const strict = (scripts = '') => `default-src 'self'; script-src 'self' 'wasm-unsafe-eval'${scripts}; worker-src 'self'${scripts}; `
  + `connect-src 'self' ${cdn.url}; img-src 'self' ${cdn.url}; style-src 'self'`;

// ---- helpers ------------------------------------------------------------------------------------

/** Opens `url` as a new document (a URL that differs from the current one only in its fragment would
 *  otherwise not reload the page). */
async function open(page, url) {
  await page.goto('about:blank');
  await page.goto(url);
}

/** A shop product page URL: `id` the product, `settings` the fragment (shop.js reads it). */
function shopPage(id, settings) {
  return `${shop.url}/shop/shop.html${id ? `?id=${encodeURIComponent(id)}` : ''}#${new URLSearchParams(settings)}`;
}

async function newPage(browser, log) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1400 } });
  const page = await context.newPage();
  const seen = { errors: [], console: [], requests: [] };
  page.on('pageerror', (e) => seen.errors.push(e.message));
  page.on('console', (m) => {
    seen.console.push(`${m.type()}: ${m.text()}`);
    if (log) console.log(`     [page ${m.type()}] ${m.text()}`);
  });
  context.on('request', (r) => seen.requests.push({ method: r.method(), url: r.url(), post: r.postData() }));
  return { context, page, seen };
}

// Waits for the page's element to settle (ready, error or empty); returns what it shows.
async function shown(page, timeout = 90000) {
  await page.waitForFunction(() => {
    const w = document.querySelector('omakase-recs');
    return w && ['ready', 'error', 'empty'].includes(w.getAttribute('state'));
  }, null, { timeout });
  return page.evaluate(() => {
    const w = document.querySelector('omakase-recs');
    const root = w.shadowRoot;
    const cards = [...root.querySelectorAll('li.card')];
    return {
      state: w.getAttribute('state'),
      ids: cards.map((c) => c.dataset.id),
      positions: cards.map((c) => Number(c.dataset.position)),
      links: cards.map((c) => c.querySelector('a.link')?.getAttribute('href') ?? null),
      titles: cards.map((c) => c.querySelector('[part~=title]')?.textContent ?? ''),
      listId: root.querySelector('ul.grid')?.dataset.listId ?? null,
      variant: root.querySelector('ul.grid')?.dataset.variant ?? null,
      message: root.querySelector('.state')?.textContent ?? null,
      styleElements: root.querySelectorAll('style').length + document.querySelectorAll('style').length,
      styleAttributes: root.querySelectorAll('[style]').length + document.querySelectorAll('[style]').length,
      adopted: root.adoptedStyleSheets.length,
      events: window.__events,
      violations: window.__violations || [],
    };
  });
}

/** Every string in a value (deep), with the keys met on the way. */
function walk(value, strings = [], keys = []) {
  if (typeof value === 'string') strings.push(value);
  else if (Array.isArray(value)) value.forEach((v) => walk(v, strings, keys));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) { keys.push(k); walk(v, strings, keys); }
  return { strings, keys };
}

const cspMessages = (seen) => seen.console.filter((l) => /Content Security Policy|Refused to/i.test(l));

// ---- 1. sub-path under a strict CSP, bundle on a second origin -------------------------------------

async function subPathUnderCsp(browser) {
  console.log('-- 1. sub-path /shop/omakase/, strict CSP, bundle from a second origin');
  policy = strict();
  const settings = { 'a.bundle': `${cdn.url}/bundle/manifest.json`, 'a.k': '10', 'a.link-template': '/shop/shop.html?id={id}' };
  const { context, page, seen } = await newPage(browser);
  let last = null;
  const times = [];
  for (const id of VIEWS) {
    const started = Date.now();
    await open(page, shopPage(id, settings));
    last = await shown(page);
    times.push(Date.now() - started);
    check(last.violations.length === 0, `product ${id}: no securitypolicyviolation event (${last.violations.join('; ')})`);
  }
  console.log(`     navigation -> cards shown: ${times.map((t) => `${t} ms`).join(', ')} (first page: empty cache, wasm and bundle downloaded)`);
  check(last.state === 'ready' && last.ids.length === 10, `under /shop/ with the strict CSP: 10 recommendations (${last.state}${last.message ? `: ${last.message}` : ''})`);
  check(last.ids.every((id) => !VIEWS.includes(id)), 'none of them already viewed');
  check(cspMessages(seen).length === 0, `no CSP message on the console, page or worker (${cspMessages(seen).join(' | ')})`);
  check(last.styleElements === 0 && last.styleAttributes === 0 && last.adopted === 1,
    `styles by an adopted stylesheet only (${last.styleElements} <style>, ${last.styleAttributes} style attributes, ${last.adopted} adopted)`);
  const paths = seen.requests.map((r) => new URL(r.url)).filter((u) => u.origin === shop.url).map((u) => u.pathname);
  check(['/shop/omakase/widget/worker.js', '/shop/omakase/runtime/worker.js', '/shop/omakase/pkg/omakase.js', '/shop/omakase/pkg/omakase_bg.wasm'].every((p) => paths.includes(p)),
    'worker, runtime and wasm come from the sub-path\'s base');
  check(!paths.some((p) => p.startsWith('/pkg/') || p.startsWith('/widget/') || p.startsWith('/runtime/')), 'nothing asked outside the sub-path');

  // Measurement: one impression per rendered list, with its id (sent once the list is in view: the
  // next frame); a click with its position.
  await page.waitForFunction((id) => window.__events.some((e) => e.type === 'omakase-impression' && e.detail.listId === id), last.listId, { timeout: 10000 })
    .catch(() => {});
  const events = await page.evaluate(() => window.__events);
  const impressions = events.filter((e) => e.type === 'omakase-impression');
  const updates = events.filter((e) => e.type === 'omakase-update');
  const thisList = impressions.filter((e) => e.detail.listId === last.listId);
  check(thisList.length === 1 && thisList[0].detail.count === 10 && thisList[0].detail.items.map((i) => i.itemId).join() === last.ids.join()
    && thisList[0].detail.items.every((item, i) => item.position === i + 1),
  `one omakase-impression for the list on show (${last.listId}), its 10 items with positions 1-10`);
  check(updates.length === 1 && updates[0].detail.listId === last.listId && updates[0].detail.sessionLength === 3 && updates[0].detail.variant === 'omakase'
    && updates[0].detail.scenario === 'for-you' && updates[0].detail.experiment === null,
  `omakase-update names the list, counts the views (sessionLength ${updates[0]?.detail.sessionLength}), variant omakase`);
  await page.evaluate(() => document.addEventListener('click', (e) => e.preventDefault(), { capture: true }));
  await page.locator('omakase-recs a.link').nth(2).click();
  const clicks = (await page.evaluate(() => window.__events)).filter((e) => e.type === 'omakase-click');
  check(clicks.length === 1 && clicks[0].detail.position === 3 && clicks[0].detail.itemId === last.ids[2] && clicks[0].detail.listId === last.listId
    && clicks[0].detail.href === last.links[2],
  `a click on the third card: omakase-click { position 3, itemId ${clicks[0]?.detail.itemId}, the list's id }`);
  // No event detail carries the views: no "session" field, none of the viewed ids anywhere.
  const all = await page.evaluate(() => window.__events);
  const { strings, keys } = walk(all.map((e) => e.detail));
  check(!keys.includes('session') && !strings.some((s) => VIEWS.includes(s)), `no event detail carries the view history (${all.length} events: ${[...new Set(all.map((e) => e.type))].join(', ')})`);
  // No request carries it either: GETs without a body, no query but the shop's own product page.
  const odd = seen.requests.filter((r) => r.method !== 'GET' || r.post || (new URL(r.url).search && new URL(r.url).pathname !== '/shop/shop.html'));
  check(seen.requests.length > 0 && odd.length === 0, `all ${seen.requests.length} requests are GETs without a body or query (${odd.map((r) => `${r.method} ${r.url}`).join(', ')})`);

  // Cards are links, named once; focus rings are not clipped.
  check(last.links.every((h) => h && h.startsWith(`${shop.url}/shop/shop.html?id=`)), 'every card is a link to its product page (the page\'s origin)');
  const link = page.locator('omakase-recs a.link').first();
  const aria = await link.ariaSnapshot();
  const name = /link "([^"]*)"/.exec(aria)?.[1] ?? null;
  check(name === last.titles[0], `the first card's accessible name is its title, said once ("${name}" for "${last.titles[0]}")`);
  let focused = null;
  for (let i = 0; i < 20 && focused !== 'A'; i++) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.querySelector('omakase-recs').shadowRoot.activeElement?.tagName || null);
  }
  const ring = await page.evaluate(() => {
    const a = document.querySelector('omakase-recs').shadowRoot.activeElement;
    const style = getComputedStyle(a);
    const clipping = [];
    for (let n = a.parentElement; n; n = n.parentElement) {
      const s = getComputedStyle(n);
      if (s.overflowX !== 'visible' || s.overflowY !== 'visible') clipping.push(n.className || n.tagName);
    }
    const card = a.getBoundingClientRect();
    const grid = a.closest('ul').getBoundingClientRect();
    const reach = Number.parseFloat(style.outlineWidth) + Number.parseFloat(style.outlineOffset);
    return { style: style.outlineStyle, width: style.outlineWidth, clipping, room: Math.min(card.left - grid.left, card.top - grid.top), reach };
  });
  check(focused === 'A' && ring.style === 'solid' && Number.parseFloat(ring.width) >= 2, `Tab reaches a card link with a visible ring (${ring.style} ${ring.width})`);
  check(ring.clipping.length === 0 && ring.room >= ring.reach, `the ring is not clipped (clipping ancestors: ${ring.clipping.join(',') || 'none'}; room ${ring.room}px for ${ring.reach}px)`);
  await page.screenshot({ path: path.join(OUT, 'sub-path-csp.png'), fullPage: true });
  check(seen.errors.length === 0, `no page errors (${seen.errors.join('; ')})`);
  await context.close();
}

// ---- 2. the element from a second origin (a CDN) ---------------------------------------------------

async function fromCdn(browser) {
  console.log('-- 2. the element, runtime and wasm from a second origin, the worker through a same-origin shim');
  policy = strict(` ${cdn.url}`);
  const base = { widget: `${cdn.url}/cdn/omakase/widget/omakase-recs.js`, 'a.bundle': `${cdn.url}/bundle/manifest.json` };
  {
    const { context, page, seen } = await newPage(browser);
    await open(page, shopPage(VIEWS[0], { ...base, 'a.worker': '/shop/shim/omakase-worker.js' }));
    const got = await shown(page);
    const error = got.events.find((e) => e.type === 'omakase-error');
    check(got.state === 'ready' && got.ids.length === 10, `from ${cdn.url} with worker="/shop/shim/omakase-worker.js": 10 recommendations (${got.state}${error ? `: ${error.detail.kind}: ${error.detail.message}` : ''})`);
    const fromCdnFiles = seen.requests.map((r) => new URL(r.url)).filter((u) => u.origin === cdn.url).map((u) => u.pathname);
    check(['/cdn/omakase/widget/worker.js', '/cdn/omakase/runtime/worker.js', '/cdn/omakase/pkg/omakase.js', '/cdn/omakase/pkg/omakase_bg.wasm'].every((p) => fromCdnFiles.includes(p)),
      'the worker\'s modules and the wasm come from the CDN');
    check(got.violations.length === 0 && cspMessages(seen).length === 0, `no CSP violation (script-src and worker-src add the CDN) (${[...got.violations, ...cspMessages(seen)].join('; ')})`);
    check(seen.errors.length === 0, `no page errors (${seen.errors.join('; ')})`);
    await context.close();
  }
  {
    const { context, page } = await newPage(browser);
    await open(page, shopPage(VIEWS[0], base));
    const got = await shown(page);
    const error = got.events.find((e) => e.type === 'omakase-error');
    check(got.state === 'error' && error?.detail.kind === 'WorkerOrigin' && error.detail.message.includes('worker attribute'),
      `without a shim: kind WorkerOrigin, saying what to do (${error?.detail.message.slice(0, 120)}…)`);
    await context.close();
  }
  policy = null;
}

// ---- 3. a bundle server without CORS ---------------------------------------------------------------

async function withoutCors(browser) {
  console.log('-- 3. a bundle from an origin that does not allow the shop (no CORS headers)');
  policy = null;
  const { context, page } = await newPage(browser);
  await open(page, shopPage(VIEWS[0], { 'a.bundle': `${noCors.url}/bundle/manifest.json` }));
  const got = await shown(page);
  const error = got.events.find((e) => e.type === 'omakase-error');
  check(got.state === 'error' && error?.detail.kind === 'Cors' && /Access-Control-Allow-Origin/.test(error.detail.message),
    `kind Cors, naming the header to send: ${error?.detail.kind}: ${error?.detail.message}`);
  await context.close();
}

// ---- 4. experiment buckets -------------------------------------------------------------------------

async function experiment(browser) {
  console.log('-- 4. the experiment attribute: local buckets, the control list');
  policy = strict();
  const control = ITEM_IDS.slice(40, 55).filter((id) => !VIEWS.includes(id));
  const base = { 'a.bundle': `${cdn.url}/bundle/manifest.json`, 'a.experiment': 'hosting-test', 'a.control-items': control.join(' ') };
  const { context, page, seen } = await newPage(browser);
  await open(page, shopPage(control[0], { ...base, 'a.control-share': '1' }));
  const ctl = await shown(page);
  const expected = control.slice(1, 11);
  const update = ctl.events.find((e) => e.type === 'omakase-update');
  check(ctl.state === 'ready' && ctl.variant === 'control' && ctl.ids.join() === expected.join(),
    `control-share 1: the control list (control-items but this page's product, k of them): ${ctl.ids.length} cards`);
  check(update?.detail.variant === 'control' && update.detail.experiment === 'hosting-test', 'the events say variant control, experiment hosting-test');
  await open(page, shopPage(control[0], { ...base, 'a.control-share': '0' }));
  const treated = await shown(page);
  check(treated.state === 'ready' && treated.variant === 'omakase' && treated.ids.join() !== expected.join(), 'control-share 0: Omakase\'s list, variant omakase');
  const variants = [];
  for (let i = 0; i < 3; i++) {
    await open(page, shopPage(control[0], { ...base, 'a.control-share': '0.5' }));
    variants.push((await shown(page)).variant);
  }
  check(new Set(variants).size === 1, `control-share 0.5: the same bucket on every page (${variants.join(', ')})`);
  const { strings, keys } = walk(await page.evaluate(() => window.__events));
  check(!keys.includes('session') && !strings.includes(control[0]), 'no event detail carries the views');
  check(seen.errors.length === 0, `no page errors (${seen.errors.join('; ')})`);
  await context.close();
  policy = null;
}

// ---- 5. restyling ----------------------------------------------------------------------------------

async function restyle(browser) {
  console.log('-- 5. restyling: custom properties, ::part, slotted heading, card template, strings');
  policy = strict();
  const { context, page } = await newPage(browser);
  await open(page, shopPage(VIEWS[0], { 'a.bundle': `${cdn.url}/bundle/manifest.json`, 'a.link-template': '/shop/shop.html?id={id}', restyle: '1', slot: '1' }));
  const got = await shown(page);
  const look = await page.evaluate(() => {
    const w = document.querySelector('omakase-recs');
    const root = w.shadowRoot;
    const slot = root.querySelector('slot[name=heading]');
    const card = root.querySelector('li.card');
    return {
      slotted: slot.assignedElements().map((e) => e.id),
      cardBg: getComputedStyle(card).backgroundColor,
      titleColor: getComputedStyle(card.querySelector('[part~=title]')).color,
      price: card.querySelector('[data-field=price]')?.textContent,
      priceWeight: getComputedStyle(card.querySelector('[data-field=price]')).fontWeight,
      cta: card.querySelector('[data-field=cta]')?.textContent,
      sub: root.querySelector('[part=subheading]').textContent,
      why: root.querySelector('summary').textContent,
      linked: card.querySelector('a.link') !== null,
    };
  });
  check(got.state === 'ready' && got.ids.length === 10, 'restyled element renders');
  check(look.slotted.join() === 'slotted', 'a child with slot="heading" replaces the heading');
  check(look.cardBg === 'rgb(4, 5, 6)' && look.titleColor === 'rgb(1, 2, 3)' && look.priceWeight === '700',
    `custom properties and ::part rules from the shop's stylesheet apply (card ${look.cardBg}, title ${look.titleColor}, price weight ${look.priceWeight})`);
  check(look.price === '€1.99' && look.cta === 'Ansehen' && look.linked, `the card template shows itemDetails' price and call to action inside the card's link (${look.price}, ${look.cta})`);
  check(look.sub === 'auf diesem Gerät berechnet' && look.why === 'warum?', `strings are translatable (${look.sub}; ${look.why})`);
  await page.screenshot({ path: path.join(OUT, 'restyled.png'), fullPage: true });
  // heading and heading-level, without a slot.
  await open(page, shopPage(VIEWS[0], { 'a.bundle': `${cdn.url}/bundle/manifest.json`, 'a.heading': 'Also worth a look', 'a.heading-level': '3' }));
  await shown(page);
  const heading = await page.evaluate(() => {
    const h = document.querySelector('omakase-recs').shadowRoot.querySelector('[part=heading]');
    return h ? `${h.tagName} ${h.textContent}` : null;
  });
  check(heading === 'H3 Also worth a look', `heading and heading-level: ${heading}`);
  await context.close();
  policy = null;
}

// ---- 6. npm pack, installed into a fresh folder, through an import map -----------------------------

async function npmPackage(browser) {
  console.log('-- 6. npm pack -> npm install in a fresh folder -> an import map');
  const tarball = path.resolve(args.tarball || execFileSync('bash', [path.join(repo, 'scripts/pack-npm.sh'), path.join(OUT, 'npm')], { encoding: 'utf8' }).trim().split('\n').pop());
  const shopDir = fs.mkdtempSync(path.join(os.tmpdir(), 'omakase-npm-shop-'));
  try {
    fs.writeFileSync(path.join(shopDir, 'package.json'), JSON.stringify({ name: 'a-shop', private: true }));
    execFileSync('npm', ['install', '--offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: shopDir, stdio: ['ignore', 'ignore', 'inherit'] });
    const installed = path.join(shopDir, 'node_modules', 'omakase-recs');
    const pkg = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
    const targets = Object.values(pkg.exports).flatMap((v) => (typeof v === 'string' ? [v] : Object.values(v)));
    check(targets.every((t) => fs.existsSync(path.join(installed, t))), `every export of the installed package exists (${targets.length} files)`);
    check(fs.existsSync(path.join(installed, pkg.customElements)) && fs.existsSync(path.join(installed, pkg.types)), 'custom-elements.json and the types are installed');
    const manifest = JSON.parse(fs.readFileSync(path.join(installed, pkg.customElements), 'utf8'));
    const described = manifest.modules.flatMap((m) => m.declarations).find((d) => d.tagName === 'omakase-recs');
    const names = described.attributes.map((a) => a.name).filter((n) => !n.startsWith('data-'));
    check(names.sort().join() === Object.keys(ATTRIBUTES).sort().join(), `custom-elements.json lists the element's attributes (widget/attributes.js): ${names.length}`);
    const server = await serve([['/pages/', path.join(here, 'pages')], ['/bundle/', BUNDLE], ['/', shopDir]]);
    try {
      const { context, page, seen } = await newPage(browser);
      await page.goto(`${server.url}/pages/importmap.html?id=${encodeURIComponent(VIEWS[0])}#a.bundle=/bundle/manifest.json`);
      const got = await shown(page);
      check(got.state === 'ready' && got.ids.length === 10, `the installed package through an import map: 10 recommendations (${got.state}${got.message ? `: ${got.message}` : ''})`);
      const exported = await page.evaluate(() => window.__exports);
      check(exported.element === 'function' && exported.forget === 'function' && exported.client === 'function', 'the element and the runtime client import by their package names');
      const paths = seen.requests.map((r) => new URL(r.url).pathname);
      check(paths.includes('/node_modules/omakase-recs/pkg/omakase_bg.wasm') && paths.includes('/node_modules/omakase-recs/widget/worker.js'),
        'worker and wasm come from the installed package');
      check(seen.errors.length === 0, `no page errors (${seen.errors.join('; ')})`);
      await context.close();
    } finally {
      await server.close();
    }
  } finally {
    fs.rmSync(shopDir, { recursive: true, force: true });
  }
}

// ---- main ---------------------------------------------------------------------------------------

const browser = await launch({ webgpu: false });
try {
  // --only 2,5 runs those scenarios alone (while working on one).
  const only = args.only ? args.only.split(',').map(Number) : [1, 2, 3, 4, 5, 6];
  const scenarios = [subPathUnderCsp, fromCdn, withoutCors, experiment, restyle, npmPackage];
  for (const [i, scenario] of scenarios.entries()) if (only.includes(i + 1)) await scenario(browser);
} catch (e) {
  console.error(e);
  failures++;
} finally {
  await browser.close();
  await Promise.all([shop.close(), cdn.close(), noCors.close()]);
  fs.rmSync(shim, { recursive: true, force: true });
}
console.log(failures === 0 ? 'hosting: all checks passed' : `hosting: ${failures} check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
