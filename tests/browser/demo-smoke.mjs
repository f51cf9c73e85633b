// The newcomer's check of the running demo (.ci/run): opens the shop's home page, then a product
// page, in headless Chromium, and waits until the widget shows at least one recommendation; then the
// results page, which must say which model it serves. Exits non-zero, saying why, otherwise.
//
//   node tests/browser/demo-smoke.mjs --url http://127.0.0.1:PORT [--product ID] [--out DIR]

import fs from 'node:fs';
import path from 'node:path';
import { launch, widgetSettled } from './chromium.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
if (!args.url) {
  console.error('usage: node tests/browser/demo-smoke.mjs --url http://127.0.0.1:PORT [--product ID] [--out DIR]');
  process.exit(2);
}
const product = args.product || '1';
const out = args.out ? path.resolve(args.out) : null;
if (out) fs.mkdirSync(out, { recursive: true });

let failures = 0;
function check(condition, what) {
  console.log(`${condition ? 'ok  ' : 'FAIL'} ${what}`);
  if (!condition) failures++;
}

// What the page's widget shows once it has answered (state ready, error or empty).
async function widget(page) {
  await widgetSettled(page, 120000);
  return page.evaluate(() => {
    const w = document.querySelector('omakase-recs');
    return { state: w.getAttribute('state'), cards: w.shadowRoot.querySelectorAll('.card').length };
  });
}

const browser = await launch({ webgpu: false });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));

  const home = await page.goto(`${args.url}/demo/`);
  check(home?.ok(), `GET /demo/ answers ${home?.status()}`);
  const title = await page.title();
  check(title.length > 0, `the home page has a title ("${title}")`);

  await page.goto(`${args.url}/demo/product.html?id=${encodeURIComponent(product)}`);
  const shown = await widget(page);
  check(shown.state === 'ready' && shown.cards > 0, `product ${product}: the widget shows recommendations (state ${shown.state}, ${shown.cards} cards)`);
  if (out) await page.screenshot({ path: path.join(out, 'newcomer-product.png'), fullPage: true });

  await page.goto(`${args.url}/demo/results.html`);
  await page.waitForSelector('.model-summary, .notice', { timeout: 30000 });
  const summary = await page.evaluate(() => document.querySelector('.model-summary')?.textContent || '');
  check(/NDCG@10/.test(summary) && /min of training/.test(summary), 'the results page says which model it serves and how long it trained');
  if (out) await page.screenshot({ path: path.join(out, 'newcomer-results.png'), fullPage: true });

  check(errors.length === 0, `no page errors${errors.length ? `: ${errors.join(' | ')}` : ''}`);
} finally {
  await browser.close();
}
console.log(`demo smoke: ${failures === 0 ? 'passed' : `${failures} check(s) failed`}`);
process.exit(failures === 0 ? 0 : 1);
