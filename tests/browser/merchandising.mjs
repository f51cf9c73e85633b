// End-to-end tests of merchandising rules and scenarios (issue 16, points 1 and 2) in headless
// Chromium (playwright-core), against `omakase recommend` on the same bundle with the same text:
//   rules   filter, boost, exclude, pin (with a viewed and an unknown id), diversity, facts (a file
//           and inline JSON): the element's list equals the CLI's, card reasons for pins
//   scenes  for-you, similar (no history; "why" from the pair's text / image similarity), popular,
//           recently-viewed; a first visit and an unknown product get the popular list and say so
//   bad     an unknown scenario, a rule on a field the bundle lacks, a malformed rule, an unreadable
//           facts file: "omakase-error" { kind: "Rule", attribute } and the best list still shown
//   privacy no event detail and no request carries the view history
// The pages are tests/browser/pages/shop.html (settings in the fragment: `a.NAME` attributes); views
// are seeded in localStorage before each page loads.
//
//   node tests/browser/merchandising.mjs --bundle DIR --omakase BIN [--only rules,scenes,bad]
// The bundle must have columns.json with a `genres` category and a `year` number and popularity.json
// (`omakase export` writes both for ML-100K and ml100k-mm). Exit status 0 when every check passes.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serve } from './server.mjs';
import { launch } from './chromium.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '../..');
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
if (!args.bundle || !args.omakase) {
  console.error('usage: node tests/browser/merchandising.mjs --bundle DIR --omakase BIN [--only rules,scenes,bad]');
  process.exit(2);
}
const BUNDLE = path.resolve(args.bundle);
const only = args.only ? args.only.split(',') : null;
const ITEMS = JSON.parse(fs.readFileSync(path.join(BUNDLE, 'items.json'), 'utf8'));
// Text and image shares in "why" need both modalities; a text-only catalogue (the newcomer's
// ML-100K, no posters) says the similarity is overall.
const HAS_EXPLAIN = Boolean(JSON.parse(fs.readFileSync(path.join(BUNDLE, 'manifest.json'), 'utf8')).explain) && ITEMS.some((i) => i.image);
const COLUMNS = JSON.parse(fs.readFileSync(path.join(BUNDLE, 'columns.json'), 'utf8'));
const genres = COLUMNS.columns.find((c) => c.name === 'genres');
/** The genre names of an item, from columns.json. */
const genresOf = (id) => {
  const row = ITEMS.findIndex((i) => i.id === id);
  const cell = genres.rows[row];
  return (cell === null ? [] : Array.isArray(cell) ? cell : [cell]).map((c) => genres.values[c]);
};
const VIEWS = [ITEMS[0].id, ITEMS[49].id, ITEMS[171].id];

let failures = 0;
function check(condition, what) {
  console.log(`${condition ? 'ok  ' : 'FAIL'} ${what}`);
  if (!condition) failures++;
}

// ---- servers, the CLI -----------------------------------------------------------------------------

const factsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'omakase-facts-'));
const shop = await serve([
  ['/shop/omakase/pkg/', path.join(repo, 'pkg')],
  ['/shop/omakase/', path.join(repo, 'www')],
  ['/shop/', path.join(here, 'pages')],
  ['/bundle/', BUNDLE],
  ['/facts/', factsDir],
]);

/** `omakase recommend --json` on the bundle: the ids, and the whole answer. */
function cli(flags) {
  const out = execFileSync(args.omakase, ['recommend', '--bundle', BUNDLE, '--json', ...flags], { encoding: 'utf8' });
  const json = JSON.parse(out);
  return { ids: json.recommendations.map((r) => r.id), json };
}

/** The session the element sends for `views` on the page of `product` (the product is a view too). */
const sessionOf = (views, product) => (product ? [...views.filter((v) => v !== product), product] : views);

/** The CLI flags of element attributes (same text). */
function flagsOf(attributes, views, product) {
  const flags = [];
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'facts') flags.push('--facts', value.startsWith('{') ? writeFacts('inline.json', value) : path.join(factsDir, path.basename(value)));
    else flags.push(`--${name}`, value);
  }
  const session = sessionOf(views, product);
  if (session.length) flags.push('--session', session.join(','));
  if (product) flags.push('--product', product);
  return flags;
}

function writeFacts(name, text) {
  fs.writeFileSync(path.join(factsDir, name), text);
  return path.join(factsDir, name);
}

// ---- the page ------------------------------------------------------------------------------------

/** Opens the shop page of `product` with `attributes` on the element and `views` in localStorage;
 *  resolves to what the element shows, its events and every request. */
async function show(browser, attributes, views = [], product = null) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 1400 } });
  const page = await context.newPage();
  const requests = [];
  const errors = [];
  context.on('request', (r) => requests.push({ method: r.method(), url: r.url(), post: r.postData() }));
  page.on('pageerror', (e) => errors.push(e.message));
  await context.addInitScript((v) => localStorage.setItem('omakase.views', JSON.stringify(v)), views);
  const settings = new URLSearchParams({ 'a.bundle': '/bundle/manifest.json', 'a.k': '8', ...Object.fromEntries(Object.entries(attributes).map(([k, v]) => [`a.${k}`, v])) });
  await page.goto(`${shop.url}/shop/shop.html${product ? `?id=${encodeURIComponent(product)}` : ''}#${settings}`);
  await page.waitForFunction(() => {
    const w = document.querySelector('omakase-recs');
    return w && ['ready', 'error', 'empty'].includes(w.getAttribute('state'))
      && window.__events.some((e) => e.type === 'omakase-update' || e.type === 'omakase-error');
  }, null, { timeout: 90000 });
  await page.waitForTimeout(100); // events of the same render
  const shown = await page.evaluate(() => {
    const w = document.querySelector('omakase-recs');
    const root = w.shadowRoot;
    const cards = [...root.querySelectorAll('li.card')];
    return {
      state: w.getAttribute('state'),
      ids: cards.map((c) => c.dataset.id),
      reasons: cards.map((c) => c.querySelector('[part~=reason]')?.textContent ?? ''),
      why: cards.map((c) => c.querySelector('[part~=why-body]')?.textContent ?? ''),
      heading: root.querySelector('[part~=heading]')?.textContent ?? '',
      note: root.querySelector('[part~=note]')?.hidden === false ? root.querySelector('[part~=note]').textContent : '',
      message: root.querySelector('.state')?.textContent ?? null,
      events: window.__events,
    };
  });
  await context.close();
  return { ...shown, requests, errors };
}

const same = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const allEvents = [];
const allRequests = [];
/** Pages whose event details name one of their own views (outside recently-viewed lists, which are
 *  the views by design): a recommended item is never a view, so a view id there is the history. */
const leaks = [];
/** Every string in a value (deep), and the keys met on the way. */
function walk(value, strings = [], keys = []) {
  if (typeof value === 'string') strings.push(value);
  else if (Array.isArray(value)) value.forEach((v) => walk(v, strings, keys));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) { keys.push(k); walk(v, strings, keys); }
  return { strings, keys };
}
function keep(result, views = []) {
  allEvents.push(...result.events);
  allRequests.push(...result.requests);
  for (const e of result.events) {
    if (e.detail.scenario === 'recently-viewed') continue;
    const { strings, keys } = walk(e.detail);
    if (keys.includes('session') || keys.includes('views') || strings.some((s) => views.includes(s))) leaks.push(`${e.type}: ${JSON.stringify(e.detail).slice(0, 120)}`);
  }
  return result;
}

// ---- rules ---------------------------------------------------------------------------------------

async function rules(browser) {
  console.log('-- rules: the element and omakase recommend on the same text');
  const plain = cli(flagsOf({ k: '8' }, VIEWS)).ids;
  const cases = [
    ['filter (category)', { filter: 'genres=Comedy' }, (r) => r.ids.every((id) => genresOf(id).includes('Comedy'))],
    ['filter (range) + boost', { filter: 'year=1990..1996', boost: '+0.2 genres=Drama' }, () => true],
    ['exclude (a basket)', { exclude: `${plain[0]} ${plain[1]}` }, (r) => !r.ids.includes(plain[0]) && !r.ids.includes(plain[1]) && r.ids.length === 8],
    ['pin (one viewed, one unknown: dropped)', { pin: `${ITEMS[300].id}@1 ${VIEWS[0]}@2 nope@3 ${ITEMS[301].id}@20` },
      (r) => r.ids[0] === ITEMS[300].id && r.ids[7] === ITEMS[301].id && r.reasons[0] === 'Featured' && !r.ids.includes(VIEWS[0])],
    ['diversity', { diversity: 'genres:1' }, (r) => new Set(r.ids.map((id) => genresOf(id)[0])).size === r.ids.length],
    ['filter keeping fewer than k', { filter: 'year<1930' }, (r) => r.ids.length < 8],
  ];
  for (const [what, attributes, extra] of cases) {
    const r = keep(await show(browser, attributes, VIEWS), VIEWS);
    const expected = cli(flagsOf({ ...attributes, k: '8' }, VIEWS)).ids;
    check(r.state === 'ready' && same(r.ids, expected), `${what}: the element's list is the CLI's (${r.ids.join(' ')} | ${expected.join(' ')})`);
    check(extra(r), `${what}: the rule holds in the list`);
  }
  // Facts at run time: the first plain item's year moved out of the filter's range, by a file and inline.
  const facts = JSON.stringify({ year: { [plain[0]]: 1920 }, in_stock: Object.fromEntries(plain.slice(1, 4).map((id) => [id, false])) });
  writeFacts('facts.json', facts);
  for (const [what, value] of [['a file', '/facts/facts.json'], ['inline JSON', facts]]) {
    const r = keep(await show(browser, { facts: value, filter: 'year>=1930; in_stock!=false' }, VIEWS), VIEWS);
    const expected = cli(flagsOf({ facts: value, filter: 'year>=1930; in_stock!=false', k: '8' }, VIEWS)).ids;
    check(r.state === 'ready' && same(r.ids, expected) && !r.ids.slice(0, 4).some((id) => plain.slice(0, 4).includes(id)),
      `facts from ${what}: the overridden items leave the list, as in the CLI (${r.ids.join(' ')})`);
  }
}

// ---- scenarios -----------------------------------------------------------------------------------

async function scenes(browser) {
  console.log('-- scenarios');
  const product = ITEMS[0].id;
  let r = keep(await show(browser, { scenario: 'similar' }, [], product));
  let expected = cli(flagsOf({ scenario: 'similar', k: '8' }, [], product)).ids;
  check(r.state === 'ready' && same(r.ids, expected) && !r.ids.includes(product), `similar without history: the product's neighbours, as the CLI's (${r.ids.join(' ')})`);
  check(r.why[0].includes(ITEMS[0].title) && (HAS_EXPLAIN ? /%/ : /overall/).test(r.why[0]),
    `similar: "why" names the product and ${HAS_EXPLAIN ? 'the text / image shares' : 'says the similarity is overall (no explain shards)'} (${r.why[0].slice(0, 80)})`);
  check(r.heading === 'Similar products', `similar: its heading (${r.heading})`);

  r = keep(await show(browser, { scenario: 'popular' }));
  expected = cli(flagsOf({ scenario: 'popular', k: '8' }, [])).ids;
  check(r.state === 'ready' && same(r.ids, expected) && r.reasons.every((x) => x === 'Popular'), `popular: the bundle's popularity, as the CLI's, each card saying so (${r.ids.join(' ')})`);

  r = keep(await show(browser, {}, []));
  check(r.state === 'ready' && same(r.ids, expected) && /browse a few products/i.test(r.note),
    `for-you on a first visit: the popular list, and the element says so ("${r.note}")`);
  const update = r.events.find((e) => e.type === 'omakase-update');
  check(update && update.detail.scenario === 'for-you' && update.detail.source === 'popular' && update.detail.fallback === 'no-history',
    'omakase-update: scenario for-you, source popular, fallback no-history');

  r = keep(await show(browser, { scenario: 'similar' }, [], 'not-in-the-catalogue'));
  check(r.state === 'ready' && r.ids.length === 8 && /too new/.test(r.note) && !r.events.some((e) => e.type === 'omakase-error'),
    `similar for an unknown product: the popular list, said, no error ("${r.note}")`);

  r = keep(await show(browser, { scenario: 'recently-viewed', filter: 'year>=1900' }, VIEWS, ITEMS[5].id));
  expected = cli(flagsOf({ scenario: 'recently-viewed', filter: 'year>=1900', k: '8' }, VIEWS, ITEMS[5].id)).ids;
  check(r.state === 'ready' && same(r.ids, expected) && same(r.ids, [...VIEWS].reverse()), `recently-viewed: the views, latest first, minus this page's product (${r.ids.join(' ')})`);

  r = keep(await show(browser, { scenario: 'for-you' }, VIEWS), VIEWS);
  expected = cli(flagsOf({ k: '8' }, VIEWS)).ids;
  check(r.state === 'ready' && same(r.ids, expected), `for-you with history: today's list, as the CLI's (${r.ids.join(' ')})`);
}

// ---- bad input -------------------------------------------------------------------------------------

async function bad(browser) {
  console.log('-- bad input: omakase-error naming the attribute, the best list still shown');
  const plain = cli(flagsOf({ k: '8' }, VIEWS)).ids;
  const cases = [
    ['an unknown scenario', { scenario: 'trending' }, 'scenario', plain],
    ['a rule on a field the bundle lacks', { filter: 'colour=red' }, 'filter', plain],
    ['a malformed boost, with a good filter', { boost: 'on_sale', filter: 'genres=Drama' }, 'boost', cli(flagsOf({ filter: 'genres=Drama', k: '8' }, VIEWS)).ids],
    ['a malformed pin', { pin: 'nowhere' }, 'pin', plain],
    ['an unreadable facts file', { facts: '/facts/missing.json' }, 'facts', plain],
  ];
  for (const [what, attributes, attribute, expected] of cases) {
    const r = keep(await show(browser, attributes, VIEWS), VIEWS);
    const errors = r.events.filter((e) => e.type === 'omakase-error');
    check(errors.length === 1 && errors[0].detail.kind === 'Rule' && errors[0].detail.attribute === attribute && errors[0].detail.message.includes(attribute),
      `${what}: one omakase-error { kind Rule, attribute ${attribute} } (${errors.map((e) => e.detail.message).join(' | ')})`);
    check(r.state === 'ready' && same(r.ids, expected), `${what}: the list without it is shown (${r.ids.join(' ')})`);
  }
}

// ---- run -------------------------------------------------------------------------------------------

const browser = await launch({ webgpu: false });
try {
  for (const [name, run] of [['rules', rules], ['scenes', scenes], ['bad', bad]]) {
    if (!only || only.includes(name)) await run(browser);
  }
  // No event detail carries the views, and no request does.
  check(allEvents.length > 0 && leaks.length === 0, `no event detail carries the view history (${allEvents.length} events; ${leaks.join(' | ')})`);
  const odd = allRequests.filter((r) => r.method !== 'GET' || r.post || (new URL(r.url).search && new URL(r.url).pathname !== '/shop/shop.html'));
  check(allRequests.length > 0 && odd.length === 0, `all ${allRequests.length} requests are GETs without a body or a query (${odd.map((r) => r.url).join(', ')})`);
} finally {
  await browser.close();
  shop.close();
}
console.log(failures ? `${failures} check(s) failed` : 'all merchandising checks passed');
process.exit(failures ? 1 : 0);
