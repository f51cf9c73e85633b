// Headless Chromium through playwright-core (not --dump-dom, which returns before async work ends):
// the system /usr/bin/chromium (or $CHROMIUM), with the one flag that matters for WebGPU
// (--enable-unsafe-webgpu: SwiftShader here).

import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--enable-unsafe-webgpu',
];

// `webgpu: false` leaves the flag out: requestAdapter() then gives no adapter (a browser without WebGPU).
export async function launch({ webgpu = true } = {}) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: webgpu ? CHROMIUM_ARGS : CHROMIUM_ARGS.filter((a) => a !== '--enable-unsafe-webgpu'),
  });
}

// A page at `url` that forwards its console to ours (prefixed), failing loudly on page errors.
export async function openPage(browser, url, log = () => {}) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('console', (m) => log(`[page ${m.type()}] ${m.text()}`));
  page.on('pageerror', (e) => log(`[page error] ${e.message}`));
  await page.goto(url);
  return { page, context };
}

// Waits until the page's <omakase-recs> has answered: state ready, error or empty (the widget sets it).
export async function widgetSettled(page, timeout = 60000) {
  await page.waitForFunction(() => {
    const w = document.querySelector('omakase-recs');
    return w && ['ready', 'error', 'empty'].includes(w.getAttribute('state'));
  }, null, { timeout });
}
