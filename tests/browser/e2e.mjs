// End-to-end tests of the demo shop and the <omakase-recs> widget (issue 7), in headless Chromium
// driven by playwright-core, against the real `omakase demo` server:
//   1. view three products -> 10 recommendations, none of them already viewed; "why?" names a viewed film
//   2. every request (page + worker) is a GET of a static file; no query string except the shop's own
//      product pages; the server's log agrees
//   3. with WebGPU disabled the widget still answers, on wasm-simd
//   4. a bundle whose titles hold `<img src=x onerror=...>` shows them as text and runs nothing
//   5. screenshots of the home page, a product page and the results page under --out
//   6. the new-product page: a film typed in with a poster (a catalogue film re-entered under a new
//      id) gets a vector in the browser (cosine >= 0.99 with native `omakase embed` of the same
//      fields), appears in the top 10 of a related session, and the widget recommends from it; the
//      encoders arrive as static GETs. On a dataset without posters (the text-only ML-100K that
//      build.sh fetches when ../shared is absent) the bundle has no image encoder: the page asks for
//      no poster, the film is typed in from its words only (compared with `omakase embed` without
//      --image), and a picture handed to the widget is refused (NoEncoders)
//
// Cards: on a dataset with posters each card shows its film's poster (or, for a film without one,
// a labelled placeholder); on one without, every card is a placeholder labelled with the title.
//
// node tests/browser/e2e.mjs --omakase target/debug/omakase --data DIR --model RUN [--out out/e2e]

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, widgetSettled } from './chromium.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const OUT = path.resolve(args.out || 'out/e2e');
const VIEWS = ['1', '127', '174']; // Toy Story, The Godfather, Raiders of the Lost Ark in ml100k-mm
const XSS = '<img src=x onerror="window.__xss=(window.__xss||0)+1">';
// A redistributable photo (public domain; tests/fixtures/efficientnet-lite0/README.md) for picture
// checks on a dataset without posters.
const PHOTO = fileURLToPath(new URL('../fixtures/efficientnet-lite0/photos/rocket.jpg', import.meta.url));
fs.mkdirSync(OUT, { recursive: true });

// The dataset's items: which films have a poster (ml100k-mm: nearly all; the text-only ML-100K: none).
const ITEMS = new Map(fs.readFileSync(path.join(args.data, 'items.jsonl'), 'utf8').split('\n').filter((l) => l.trim())
  .map((l) => JSON.parse(l)).map((i) => [String(i.item_id), i]));
const hasPoster = (item) => Boolean(item && typeof item.image === 'string' && item.image);
const DATASET_HAS_POSTERS = [...ITEMS.values()].some(hasPoster);
console.log(`dataset ${args.data}: ${ITEMS.size} films, ${[...ITEMS.values()].filter(hasPoster).length} with a poster`);

let failures = 0;
function check(condition, what) {
  console.log(`${condition ? 'ok  ' : 'FAIL'} ${what}`);
  if (!condition) failures++;
}

// `omakase demo` on a free port; resolves when it prints its URL.
function startDemo(name, extra = []) {
  const log = [];
  const child = spawn(args.omakase, ['demo', '--data', args.data, '--model', args.model, '--out', path.join(OUT, name), '--port', '0', '--log-requests', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stderr.on('data', (d) => log.push(...d.toString().split('\n').filter(Boolean)));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      const m = d.toString().match(/http:\/\/127\.0\.0\.1:\d+/);
      if (m) resolve({ url: m[0], log, stop: () => child.kill() });
    });
    child.on('exit', (code) => reject(new Error(`omakase demo exited with ${code}:\n${log.join('\n')}`)));
  });
}

// Waits until the page's widget has rendered (or failed); returns what it shows.
async function widget(page) {
  await widgetSettled(page);
  return page.evaluate(() => {
    const w = document.querySelector('omakase-recs');
    const cards = [...w.shadowRoot.querySelectorAll('.card')];
    return {
      state: w.getAttribute('state'),
      ids: cards.map((c) => c.dataset.id),
      titles: cards.map((c) => c.querySelector('.title').textContent),
      why: cards.map((c) => c.querySelector('.why strong')?.textContent || ''),
      imgs: [...w.shadowRoot.querySelectorAll('img')].map((i) => ({ cls: i.className, src: i.getAttribute('src'), alt: i.alt })),
      noimg: w.shadowRoot.querySelectorAll('.noimg[aria-hidden=true]').length,
      // Per card: its poster ({ src, alt }) or its placeholder's text (hidden from assistive
      // technology: the card's title names the link, once).
      visuals: cards.map((c) => {
        const img = c.querySelector('img');
        const box = c.querySelector('.noimg[aria-hidden=true]');
        return { src: img?.getAttribute('src') ?? null, alt: img?.getAttribute('alt') ?? null, label: box?.textContent ?? null };
      }),
      links: cards.map((c) => c.querySelector('a')?.getAttribute('href') || null),
      backend: document.querySelector('.panel')?.dataset.backend || null,
      choice: document.querySelector('.panel')?.dataset.choice || null,
      backendText: document.querySelectorAll('.panel dd')[0]?.textContent || null,
      latency: document.querySelectorAll('.panel dd')[1]?.textContent || null,
    };
  });
}

async function browse(browser, url, { requests, shots = false } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`); d.dismiss(); });
  if (requests) {
    context.on('request', (r) => requests.push({ method: r.method(), url: r.url(), post: r.postData() }));
  }
  await page.goto(`${url}/demo/`);
  const empty = await widget(page);
  // A first visit is an ordinary state (issue 16, point 2): the popular list, and the element says so.
  const firstNote = await page.evaluate(() => document.querySelector('omakase-recs').shadowRoot.querySelector('[part~=note]')?.textContent || '');
  check(empty.state === 'ready' && empty.ids.length === 10 && /browse a few/i.test(firstNote),
    `home before any view: the popular list, said ("${firstNote}", ${empty.state})`);
  let last = null;
  for (const id of VIEWS) {
    await page.goto(`${url}/demo/product.html?id=${id}`);
    last = await widget(page);
  }
  return { context, page, errors, last };
}

async function main() {
  const demo = await startDemo('site');
  console.log(`demo at ${demo.url}`);
  const requests = [];
  try {
    // --- 1, 2, 5: default browser (WebGPU where it has an adapter) --------------------------
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
    const { context, page, errors, last } = await browse(browser, demo.url, { requests });
    check(last.state === 'ready', `after three views the widget is ready (${last.state})`);
    check(last.ids.length === 10, `10 recommendations (${last.ids.length})`);
    check(last.ids.every((id) => !VIEWS.includes(id)), `none already viewed (${last.ids.join(',')})`);
    check(new Set(last.ids).size === last.ids.length, 'no duplicates');
    const titles = await page.evaluate(async (views) => (await (await fetch('/site/catalog.json')).json()).filter((i) => views.includes(i.id)).map((i) => i.title), VIEWS);
    check(last.why.length === 10 && last.why.every((t) => titles.includes(t)), `every "why?" names a viewed film (${[...new Set(last.why)].join(' | ')})`);
    checkCardPictures(last);
    check(last.links.every((h) => h && h.includes('/demo/product.html?id=')), 'every card is a link to its product page');
    console.log(`     backend: ${last.backendText}, update -> top-10 as the panel shows it: ${last.latency}`);
    // SwiftShader here, a CPU rasteriser: "auto" keeps wasm-simd; on a real GPU the choice is measured.
    check(last.backend === 'wasm-simd' ? ['software adapter', 'measured', 'remembered'].includes(last.choice) : ['measured', 'remembered'].includes(last.choice),
      `the panel says why the backend was chosen (${last.backendText})`);
    // Keyboard: Tab reaches the first card's link inside the shadow root, then its "why?" button.
    let focused = null;
    for (let i = 0; i < 12 && focused !== 'A'; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => document.querySelector('omakase-recs').shadowRoot.activeElement?.tagName || null);
    }
    check(focused === 'A', 'Tab reaches a card link');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    check(await page.evaluate(() => document.querySelector('omakase-recs').shadowRoot.querySelector('details').open), 'Tab + Enter opens the first "why?"');
    await page.evaluate(() => document.querySelector('.panel details').open = true);
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(OUT, 'product.png'), fullPage: true });
    await page.goto(`${demo.url}/demo/`);
    const home = await widget(page);
    check(home.state === 'ready' && home.ids.length === 10, 'home page recommends from the same session');
    await page.waitForTimeout(300);
    await page.screenshot({ path: path.join(OUT, 'home.png'), fullPage: false });
    await page.goto(`${demo.url}/demo/results.html`);
    await page.waitForTimeout(1500);
    await page.screenshot({ path: path.join(OUT, 'results.png'), fullPage: false });
    // Enter on a focused card follows its link.
    await page.goto(`${demo.url}/demo/product.html?id=${VIEWS[2]}`);
    const again = await widget(page);
    await page.evaluate(() => document.querySelector('omakase-recs').shadowRoot.querySelector('a').focus());
    await Promise.all([page.waitForNavigation(), page.keyboard.press('Enter')]);
    check(new URL(page.url()).searchParams.get('id') === again.ids[0], `Enter on the first card opens its product page (${page.url()})`);
    // The stored session is bounded: 60 stored ids + this view keep the last 50 (after this page's
    // widget has recorded its own view).
    await widget(page);
    await page.evaluate(() => localStorage.setItem('omakase.views', JSON.stringify(Array.from({ length: 60 }, (_, i) => String(i + 200)))));
    await page.goto(`${demo.url}/demo/product.html?id=${VIEWS[0]}`);
    await widget(page);
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('omakase.views')));
    check(stored.length === 50 && stored[49] === VIEWS[0] && stored[0] === '211', `the stored views are bounded to the last 50 (${stored.length})`);
    // forget() empties the session.
    await page.goto(`${demo.url}/demo/`);
    await widget(page);
    await page.click('#forget');
    // Without views the element shows the popular list again and says why.
    await page.waitForFunction(() => {
      const note = document.querySelector('omakase-recs').shadowRoot.querySelector('[part~=note]');
      return note && !note.hidden && document.querySelector('omakase-recs').getAttribute('state') === 'ready';
    });
    check(await page.evaluate(() => localStorage.getItem('omakase.views')) === null, 'omakase.forget() clears the views');
    await newProduct(page, demo.url);
    check(errors.length === 0, `no page errors (${errors.join('; ')})`);
    await context.close();
    await browser.close();

    // --- 2: the request log -----------------------------------------------------------------
    check(requests.length > 0 && requests.every((r) => r.method === 'GET' && !r.post), `all ${requests.length} browser requests are GETs without a body`);
    const queried = requests.filter((r) => new URL(r.url).search && !new URL(r.url).pathname.startsWith('/demo/product.html'));
    check(queried.length === 0, `no request but the shop's own product pages has a query string (${queried.map((r) => r.url).join(', ')})`);
    const widgetFiles = requests.map((r) => new URL(r.url).pathname).filter((p) => p.startsWith('/bundle/') && !p.startsWith('/bundle/images/'));
    check(widgetFiles.includes('/bundle/manifest.json'), 'the widget fetched the bundle manifest');
    const served = demo.log.filter((l) => /^[A-Z]+ \//.test(l));
    check(served.length > 0 && served.every((l) => l.startsWith('GET ')), `server log: ${served.length} requests, all GET`);
    const allowed = ['/demo/', '/widget/', '/runtime/', '/pkg/', '/bundle/', '/site/', '/favicon.ico'];
    const odd = served.map((l) => l.split(' ')[1]).filter((p) => !allowed.some((a) => p.startsWith(a)));
    check(odd.length === 0, `server log: only static files of the shop, the widget and the bundle (${odd.join(', ')})`);
    fs.writeFileSync(path.join(OUT, 'requests.txt'), served.join('\n') + '\n');

    // --- 3: WebGPU disabled ------------------------------------------------------------------
    const cpu = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
      args: [...CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu'), '--disable-features=WebGPU,Vulkan', '--disable-gpu'] });
    const noGpu = await browse(cpu, demo.url);
    check(noGpu.last.state === 'ready' && noGpu.last.ids.length === 10, `WebGPU disabled: 10 recommendations (${noGpu.last.state})`);
    check(noGpu.last.backend === 'wasm-simd' && noGpu.last.choice === 'no adapter', `WebGPU disabled: backend wasm-simd (${noGpu.last.backendText}, update -> top-10 ${noGpu.last.latency})`);
    await noGpu.context.close();
    await cpu.close();
  } finally {
    demo.stop();
  }

  // --- 4: hostile titles ---------------------------------------------------------------------
  const hostile = doctorBundle(path.join(OUT, 'site', 'bundle'), path.join(OUT, 'hostile-bundle'));
  const evil = await startDemo('hostile', ['--bundle', hostile]);
  try {
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
    const { context, page, errors, last } = await browse(browser, evil.url);
    check(last.state === 'ready' && last.titles.length === 10, 'hostile bundle: recommendations render');
    check(last.titles.every((t) => t.includes(XSS)), 'hostile titles show as text, markup included');
    check(last.why.every((t) => t.includes(XSS)), 'hostile "why?" titles show as text');
    check(last.imgs.every((i) => i.cls === 'poster' && i.src !== 'x') && last.imgs.length + last.noimg === 10,
      `no <img> made from a title (${last.imgs.length} posters, ${last.noimg} placeholders)`);
    check(last.visuals.every((v, i) => v.src !== null || v.label === last.titles[i]), 'hostile titles fill their placeholders as text');
    await page.waitForTimeout(500);
    check(await page.evaluate(() => window.__xss === undefined), 'no onerror handler ran');
    check(errors.length === 0, `no page errors or dialogs (${errors.join('; ')})`);
    await page.screenshot({ path: path.join(OUT, 'hostile-titles.png') });
    await context.close();
    await browser.close();
  } finally {
    evil.stop();
  }
  console.log(`screenshots: ${['home.png', 'product.png', 'results.png', 'new-product.png', 'hostile-titles.png'].map((f) => path.join(OUT, f)).join(' ')}`);
  console.log(failures === 0 ? 'e2e: all checks passed' : `e2e: ${failures} check(s) failed`);
  process.exit(failures === 0 ? 0 : 1);
}

// Each card shows its film's picture as the dataset has it: its poster (decorative, alt="": the title
// below names the card's link) when the film has one, otherwise a placeholder showing its title. On a
// dataset without posters that means ten placeholders and no <img>.
function checkCardPictures(shown) {
  const wrong = shown.ids.filter((id, i) => {
    const v = shown.visuals[i];
    const item = ITEMS.get(id);
    if (hasPoster(item)) return !(v.src && v.src.endsWith(`/bundle/${item.image}`) && v.alt === '');
    return !(v.src === null && v.label && v.label === shown.titles[i]);
  });
  const posters = shown.visuals.filter((v) => v.src).length;
  if (DATASET_HAS_POSTERS) {
    check(shown.ids.length === 10 && wrong.length === 0 && posters > 0,
      `every card shows its film's poster (alt=""), or a placeholder with its title for a film without one (${posters} posters${wrong.length ? `; wrong: ${wrong.join(',')}` : ''})`);
  } else {
    check(shown.ids.length === 10 && wrong.length === 0 && posters === 0 && shown.noimg === 10,
      `no posters in this dataset: every card is a placeholder showing its title (${shown.noimg} placeholders, ${posters} <img>${wrong.length ? `; wrong: ${wrong.join(',')}` : ''})`);
  }
}

// The new-product page's film: a catalogue film re-entered as if the shop had added it today (its
// title, year, genres, plot and poster, under a new id). Its vector then has a known place: among
// the films like it, so a related session must rank it in the top 10. Without a poster (a dataset
// without pictures, whose bundle has no image encoder) it is typed in from its words only.
const NEW_FILM_LIKE = '50'; // Star Wars in ml100k-mm and in ML-100K

async function newProduct(page, url) {
  const bundleDir = path.join(OUT, 'site', 'bundle');
  const manifest = JSON.parse(fs.readFileSync(path.join(bundleDir, 'manifest.json'), 'utf8'));
  const bundleReadsPictures = Boolean(manifest.encoders && manifest.encoders.image);
  await page.goto(`${url}/demo/new.html`);
  await page.waitForFunction(() => document.getElementById('new-product').dataset.pictures !== undefined, null, { timeout: 30000 });
  const form = await page.evaluate(() => ({
    pictures: document.getElementById('new-product').dataset.pictures === 'true',
    posterField: !document.getElementById('poster-field').hidden,
    pitch: document.getElementById('pitch').textContent,
  }));
  check(form.pictures === bundleReadsPictures && form.posterField === bundleReadsPictures,
    bundleReadsPictures ? 'the new-product page asks for a poster (the bundle has an image encoder)'
      : `the new-product page asks for no poster: the bundle has no image encoder ("${form.pitch.slice(-60)}")`);
  const NEW_FILM = await page.evaluate(async (id) => (await (await fetch('/site/catalog.json')).json()).find((i) => i.id === id), NEW_FILM_LIKE);
  await page.fill('input[name=title]', NEW_FILM.title);
  if (NEW_FILM.year) await page.fill('input[name=year]', String(NEW_FILM.year));
  await page.fill('input[name=genres]', (NEW_FILM.genres || []).join(', '));
  await page.fill('textarea[name=description]', NEW_FILM.description || '');
  const posterFile = hasPoster(ITEMS.get(NEW_FILM_LIKE)) ? path.join(args.data, ITEMS.get(NEW_FILM_LIKE).image) : null;
  const poster = bundleReadsPictures && posterFile && fs.existsSync(posterFile) ? posterFile : null;
  console.log(`     new film: "${NEW_FILM.title}", ${poster ? `poster ${poster}` : 'no poster (words only)'}`);
  if (poster) await page.setInputFiles('input[name=picture]', poster);
  const started = Date.now();
  await page.click('#add');
  await page.waitForFunction(() => !document.getElementById('result').hidden || document.getElementById('status').dataset.error, null, { timeout: 180000 });
  const shown = await page.evaluate(() => ({
    status: document.getElementById('status').textContent,
    error: document.getElementById('status').dataset.error || null,
    rank: Number(document.getElementById('who-sees-it').dataset.rank || 0),
    neighbours: document.getElementById('neighbours').textContent,
    timings: [...document.querySelectorAll('#timings dd')].map((d) => d.textContent),
    stored: JSON.parse(localStorage.getItem('omakase.products') || '{}'),
  }));
  console.log(`     new film embedded in ${Date.now() - started} ms wall (first time: encoder download included): ${shown.timings.join(' | ')}`);
  check(!shown.error, `the new film is embedded (${shown.error ? `${shown.error}: ` : ''}${shown.status})`);
  check(poster ? !/no poster/.test(shown.timings[1] || '') : shown.timings[1] === 'no poster',
    `the image encoder ${poster ? 'read the poster' : 'was not used: no poster'} (${shown.timings[1]})`);
  check(shown.rank >= 1 && shown.rank <= 10, `the new film is recommended to shoppers who viewed ${shown.neighbours} (rank ${shown.rank}; ${shown.status})`);
  const [stored] = Object.values(shown.stored).flatMap((bundle) => Object.entries(bundle));
  check(stored && stored[1].title === NEW_FILM.title && stored[1].v.length > 0, 'its vector is kept on this device (localStorage)');
  const recs = await widget(page);
  check(recs.state === 'ready' && recs.ids.length === 10 && !recs.ids.includes(stored?.[0]), `the widget recommends from the new film (${recs.state}, ${recs.ids.length} items, none of them the film itself)`);
  const panelNote = await page.evaluate(() => document.querySelector('.panel')?.dataset.newProduct || '');
  check(panelNote === stored?.[0], 'the panel reports the new product');
  await page.waitForTimeout(300);
  await page.screenshot({ path: path.join(OUT, 'new-product.png'), fullPage: true });
  // Parity with the native encoders + item tower on the same fields (and picture, when there is one).
  const metadata = JSON.stringify({ ...(NEW_FILM.year ? { year: NEW_FILM.year } : {}), genres: NEW_FILM.genres || [] });
  const native = JSON.parse(execFileSync(args.omakase, ['embed', '--bundle', bundleDir, '--title', NEW_FILM.title,
    '--description', NEW_FILM.description || '', ...(poster ? ['--image', poster] : []), '--metadata', metadata, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 }));
  const cosine = cos(stored?.[1].v || [], native.vector);
  check(cosine >= 0.99, `in-browser vector vs native omakase embed${poster ? '' : ' (no --image)'} (f32 encoders): cosine ${cosine.toFixed(5)} >= 0.99`);
  if (!bundleReadsPictures) {
    // A picture handed to a bundle whose model reads none is refused, not silently dropped (the
    // committed public-domain photo: the dataset has no posters).
    const photo = [...fs.readFileSync(PHOTO)];
    const refused = await page.evaluate(async (bytes) => {
      const w = document.getElementById('widget');
      return w.addProduct({ id: 'e2e-with-picture', title: 'A film with a picture' }, new Uint8Array(bytes).buffer)
        .then(() => null, (e) => ({ kind: e.kind, message: e.message }));
    }, photo);
    check(refused && refused.kind === 'NoEncoders', `a picture given to this bundle (no image encoder) is refused: ${JSON.stringify(refused)}`);
  }
  // What the first new product cost in bytes: every resource of the page and of the widget's worker.
  const bytes = await page.evaluate(async () => (await window.omakase.requests()).filter((r) => /encoders|_encoder\.gguf/.test(r.url)).map((r) => [new URL(r.url).pathname, r.transferSize]));
  console.log(`     encoder downloads on the first new product (worker): ${bytes.map(([p, n]) => `${p} ${n} B`).join(', ')}`);
}

function cos(a, b) {
  if (a.length !== b.length || a.length === 0) return -1;
  let ab = 0, aa = 0, bb = 0;
  for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
  return ab / Math.sqrt(aa * bb);
}

// A copy of `from` whose every title ends with XSS markup; the manifest's size and sha256 of
// items.json follow (the runtime checks them), so the bundle is valid and only the text is hostile.
function doctorBundle(from, to) {
  fs.rmSync(to, { recursive: true, force: true });
  fs.cpSync(from, to, { recursive: true });
  const items = JSON.parse(fs.readFileSync(path.join(to, 'items.json'), 'utf8'));
  for (const item of items) item.title = `${item.title} ${XSS}`;
  const body = Buffer.from(JSON.stringify(items));
  fs.writeFileSync(path.join(to, 'items.json'), body);
  const manifest = JSON.parse(fs.readFileSync(path.join(to, 'manifest.json'), 'utf8'));
  manifest.items.bytes = body.length;
  manifest.items.sha256 = crypto.createHash('sha256').update(body).digest('hex');
  fs.writeFileSync(path.join(to, 'manifest.json'), JSON.stringify(manifest, null, 2));
  return to;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
