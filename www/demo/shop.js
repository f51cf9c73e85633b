// The demo shop's own code (not part of the widget): catalogue, cards, header, and the
// "under the hood" panel. The shop's catalogue (/site/catalog.json) is written by `omakase demo`
// from the dataset; every product text is set with textContent.

import { omakase } from '../widget/omakase-recs.js';

/** A product of the shop's catalogue (`omakase demo` writes the dataset's fields; null when absent).
 *  @typedef {{ id: string, title: string | null, year: number | null, genres: string[] | null, description: string | null, director: string | null, image: string | null }} CatalogItem */
/** @typedef {{ items: CatalogItem[], byId: Map<string, CatalogItem> }} Catalog */
/** @typedef {import('../widget/types.js').UpdateDetail} UpdateDetail */
/** @typedef {import('../widget/types.js').NewProductDetail} NewProductDetail */
/** @typedef {import('../widget/types.js').ErrorDetail} ErrorDetail */

export const BUNDLE = '/bundle/manifest.json';

/** @returns {Promise<Catalog>} */
export async function loadCatalog() {
  const response = await fetch('/site/catalog.json');
  if (!response.ok) throw new Error(`catalog: HTTP ${response.status}`);
  /** @type {CatalogItem[]} */
  const items = await response.json();
  return { items, byId: new Map(items.map((item) => [item.id, item])) };
}

/**
 * A new element; `text` (unless null or undefined) as its text content.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string | null} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

// A poster URL for the dataset's relative image path (served under /bundle/ by `omakase demo`).
/** @param {CatalogItem | null | undefined} item */
export function posterUrl(item) {
  const image = item && item.image;
  if (typeof image !== 'string' || !/^[A-Za-z0-9._/-]+$/.test(image) || image.includes('..')) return null;
  return `/bundle/${image}`;
}

/** @param {string} id */
export function productUrl(id) {
  return `/demo/product.html?id=${encodeURIComponent(id)}`;
}

/**
 * @param {CatalogItem} item
 * @param {string} [className]
 */
export function poster(item, className) {
  const src = posterUrl(item);
  if (!src) {
    const box = el('div', 'noimg', item.title);
    box.setAttribute('role', 'img');
    box.setAttribute('aria-label', String(item.title));
    return box;
  }
  const img = el('img', className);
  img.alt = `Poster of ${item.title}`;
  img.src = src;
  img.loading = 'lazy';
  return img;
}

/** @param {CatalogItem} item */
export function movieCard(item) {
  const li = el('li', 'movie');
  const a = el('a');
  a.href = productUrl(item.id);
  a.append(poster(item));
  const meta = el('div', 'meta');
  meta.append(el('div', 'name', item.title), el('div', 'year', item.year ? String(item.year) : ''));
  a.append(meta);
  li.append(a);
  return li;
}

/** @param {string} active the page's link: 'home', 'new', 'results', 'admin', or '' for none */
export function header(active) {
  const top = el('header', 'top');
  const bar = el('div', 'bar');
  const logo = el('a', 'logo');
  logo.href = '/demo/';
  logo.append('Reel', el('span', '', '&'), 'Co.');
  const nav = el('nav', 'links');
  nav.setAttribute('aria-label', 'Shop');
  for (const [href, label, key] of [['/demo/', 'Shop', 'home'], ['/demo/new.html', 'Add a new film', 'new'], ['/demo/results.html', 'How well it works', 'results'], ['/demo/admin.html', 'Shop admin', 'admin']]) {
    const a = el('a', '', label);
    a.href = href;
    if (key === active) a.setAttribute('aria-current', 'page');
    nav.append(a);
  }
  bar.append(logo, nav);
  top.append(bar);
  document.body.prepend(top);
}

// The products viewed on this device, with a button that forgets them.
/**
 * @param {Element} container
 * @param {Map<string, CatalogItem>} byId
 */
export function viewedList(container, byId) {
  const render = () => {
    const views = omakase.views().slice().reverse();
    const list = el('ul', 'viewed');
    for (const id of views.slice(0, 12)) list.append(el('li', '', byId.get(id)?.title || id));
    if (views.length === 0) list.append(el('li', '', 'nothing yet'));
    container.replaceChildren(list);
  };
  render();
  return render;
}

/** @param {number} n */
function bytes(n) {
  if (!Number.isFinite(n)) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KB`;
  return `${(n / 1024 / 1024).toFixed(2)} MB`;
}

/** How the backend was chosen, with both timings when measured: "measured: CPU 0.21 ms, WebGPU 1.9 ms".
 *  @param {UpdateDetail['choice']} c */
function choiceText(c) {
  const ms = (/** @type {number | null} */ v) => (v === null ? '–' : `${v < 1 ? v.toFixed(2) : v.toFixed(1)} ms`);
  return c.cpuMs === null && c.gpuMs === null ? c.reason : `${c.reason}: CPU ${ms(c.cpuMs)}, WebGPU ${ms(c.gpuMs)}`;
}

// "Under the hood": backend, latency per update, bytes, and every request this page and the
// widget's worker made (PerformanceObserver resource entries on both sides).
/** @param {Element} container */
export function panel(container) {
  const box = el('aside', 'panel');
  box.setAttribute('aria-label', 'Under the hood');
  box.append(el('h2', '', 'Under the hood — everything runs in this browser'));
  const dl = el('dl');
  /** @param {string} label */
  const field = (label) => {
    const dd = el('dd', '', '…');
    dl.append(el('dt', '', label), dd);
    return dd;
  };
  const backend = field('Backend');
  const latency = field('Update → top-10');
  const downloaded = field('Downloaded');
  const bundleSize = field('Bundle size');
  const session = field('Session sent to servers');
  const newProduct = field('New product embedded');
  newProduct.textContent = 'none on this page';
  box.append(dl);
  const details = el('details');
  const summary = el('summary', '', 'Requests made by this page and the widget');
  const table = el('table');
  details.append(summary, table);
  box.append(details);
  container.replaceChildren(box);
  box.dataset.backend = '';
  session.textContent = 'nothing';
  session.className = 'ok';

  /** @type {number[]} */
  const times = [];
  /** @type {PerformanceResourceTiming[]} */
  const pageEntries = [];
  new PerformanceObserver((list) => {
    pageEntries.push(.../** @type {PerformanceResourceTiming[]} */ (list.getEntries()));
    refreshRequests();
  }).observe({ type: 'resource', buffered: true });

  async function refreshRequests() {
    const worker = await omakase.requests();
    const rows = [
      ...pageEntries.map((e) => ({ who: 'page', url: e.name, size: e.transferSize })),
      ...worker.map((e) => ({ who: 'widget', url: e.url, size: e.transferSize })),
    ];
    const withQuery = rows.filter((r) => new URL(r.url).search !== '').length;
    // Bytes that came over the network for this page (cache hits transfer 0), page and widget.
    const total = rows.reduce((sum, r) => sum + (r.size || 0), 0);
    downloaded.textContent = `${bytes(total)} on this page`;
    summary.textContent = `${rows.length} requests, all GETs of static files; ${withQuery} with a query string`;
    const head = el('tr');
    head.append(el('th', '', 'by'), el('th', '', 'file'), el('th', '', 'bytes'));
    table.replaceChildren(head, ...rows.map((r) => {
      const tr = el('tr');
      const size = el('td', 'n', r.size ? bytes(r.size) : 'cache');
      tr.append(el('td', '', r.who), el('td', '', new URL(r.url).pathname), size);
      return tr;
    }));
    box.dataset.requests = String(rows.length);
  }

  document.addEventListener('omakase-update', (event) => {
    const d = /** @type {CustomEvent<UpdateDetail>} */ (event).detail;
    times.push(d.ms);
    backend.textContent = `${d.backend} (${choiceText(d.choice)})`;
    backend.title = d.note;
    box.dataset.backend = d.backend;
    box.dataset.choice = d.choice.reason;
    latency.textContent = `${d.ms.toFixed(1)} ms` + (times.length > 1 ? ` (${times.length} updates, best ${Math.min(...times).toFixed(1)})` : '');
    downloaded.title = `bundle ${bytes(d.bundleBytes)} in all; what is not counted here came from this browser's cache`;
    bundleSize.textContent = `${bytes(d.bundleBytes)}, once per shop`;
    refreshRequests();
  });
  document.addEventListener('omakase-new-product', (event) => {
    const detail = /** @type {CustomEvent<NewProductDetail>} */ (event).detail;
    const { timings: t, tokens, hasImage } = detail;
    newProduct.textContent = `text ${t.textMs.toFixed(0)} ms (${tokens} tokens)` + (hasImage && t.imageMs !== null ? `, image ${t.imageMs.toFixed(0)} ms` : '');
    newProduct.title = `encoders ready after ${t.encoderLoadMs.toFixed(0)} ms (download or cache, and parsing)`;
    box.dataset.newProduct = detail.id;
    refreshRequests();
  });
  document.addEventListener('omakase-error', (event) => {
    backend.textContent = `error: ${/** @type {CustomEvent<ErrorDetail>} */ (event).detail.kind}`;
  });
}
