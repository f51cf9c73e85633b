// <omakase-recs>: recommendations computed in the shopper's browser (DESIGN §1, §7, §10).
//
//   <script type="module" src="/widget/omakase-recs.js"></script>
//   <omakase-recs bundle="/bundle/manifest.json" k="10" product="1"></omakase-recs>
//
// Attributes (the only configuration):
//   bundle         URL of the bundle's manifest.json (required)
//   k              how many recommendations (default 10, at most 50)
//   product        the product on this page: counted as a view on this device, never recommended here
//   link-template  card link for items without a link in the bundle, "{id}" replaced (e.g. "/p/{id}")
//   backend        "auto" (default), "webgpu" or "wasm"
//
// A product the bundle does not hold yet (added to the shop this morning) is embedded on this device
// from its words and picture when the element carries them:
//   data-title, data-description   its text (rendered into the bundle's text template)
//   data-image                     its picture's URL (fetched by the worker, a static GET)
//   data-metadata                  optional JSON object of other fields the template reads, e.g.
//                                  {"year": 2026, "genres": ["Drama"]}
// or from JavaScript: `element.addProduct({ id, title, description, image, ...metadata })`. The first
// such product downloads the quantized encoders (cached afterwards); its vector is kept on this
// device (localStorage "omakase.products", the last 20) so it keeps counting on later pages.
//
// Styling: the cards live in a Shadow DOM; the custom property --omakase-card-min (default 140px)
// sets their minimum width.
//
// Views are kept in this browser's localStorage (the last 50, key "omakase.views"); `omakase.forget()`
// (window.omakase, also exported) clears them. The worker (www/runtime/) downloads only the bundle's
// static files; the session never leaves the device. Every product text is set with textContent.
//
// Events (on the element, bubbling): "omakase-update" { backend, ms, count, session, downloaded,
// bundleBytes, loadMs } after each render, "omakase-new-product" { id, tokens, hasImage, timings,
// encoderStats } after embedding a new product, "omakase-error" { kind, message } on failure.

import { Omakase } from '../runtime/omakase.js';

const STORAGE_KEY = 'omakase.views';
const PRODUCTS_KEY = 'omakase.products';
const MAX_VIEWS = 50;
const MAX_NEW_PRODUCTS = 20;
const MAX_K = 50;
const WORKER_URL = new URL('./worker.js', import.meta.url);

// ---- views on this device --------------------------------------------------------------------

function readViews() {
  try {
    const views = JSON.parse(localStorage.getItem(STORAGE_KEY) || '[]');
    return Array.isArray(views) ? views.filter((v) => typeof v === 'string').slice(-MAX_VIEWS) : [];
  } catch {
    return []; // storage blocked or corrupt: an empty session, not a broken page
  }
}

function recordView(id) {
  const views = readViews().filter((v) => v !== id);
  views.push(id);
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify(views.slice(-MAX_VIEWS)));
  } catch {
    // storage full or blocked: recommendations still work for this page view
  }
  return views.slice(-MAX_VIEWS);
}

// Products embedded on this device, per bundle: { [manifestUrl]: { [id]: { v: number[], title, image, link, at } } }.
function readProducts() {
  try {
    const all = JSON.parse(localStorage.getItem(PRODUCTS_KEY) || '{}');
    return all && typeof all === 'object' && !Array.isArray(all) ? all : {};
  } catch {
    return {};
  }
}

function storedProducts(manifestUrl) {
  const mine = readProducts()[manifestUrl];
  if (!mine || typeof mine !== 'object') return [];
  return Object.entries(mine).filter(([id, p]) => typeof id === 'string' && p && Array.isArray(p.v) && p.v.every(Number.isFinite));
}

function storeProduct(manifestUrl, id, vector, meta) {
  const all = readProducts();
  const mine = { ...(all[manifestUrl] || {}) };
  mine[id] = { v: Array.from(vector, (x) => Math.round(x * 1e6) / 1e6), title: meta.title, image: meta.image, link: meta.link, at: Date.now() };
  const kept = Object.entries(mine).sort((a, b) => (b[1].at || 0) - (a[1].at || 0)).slice(0, MAX_NEW_PRODUCTS);
  all[manifestUrl] = Object.fromEntries(kept);
  try {
    localStorage.setItem(PRODUCTS_KEY, JSON.stringify(all));
  } catch {
    // storage full or blocked: the product still counts on this page
  }
}

export const omakase = {
  /** The ids viewed on this device, oldest first. */
  views: readViews,
  /** Forgets every view on this device and empties the widgets on the page. */
  forget() {
    try {
      localStorage.removeItem(STORAGE_KEY);
      localStorage.removeItem(PRODUCTS_KEY);
    } catch {
      // nothing stored
    }
    for (const element of document.querySelectorAll('omakase-recs')) element.refresh?.();
  },
  /** Every resource the widgets' workers fetched: [{ url, initiator, transferSize, bodySize, ms }]. */
  async requests() {
    const lists = await Promise.all([...engines.values()].map((started) =>
      started.then(({ client }) => client.call('resources', [])).catch(() => [])));
    return lists.flat();
  },
};
if (typeof window !== 'undefined') window.omakase = Object.assign(window.omakase || {}, omakase);

// ---- one worker per bundle, shared by every element of the page ------------------------------

const engines = new Map(); // `${manifest URL}|${backend}` -> Promise<{ client, info }>

function engine(manifestUrl, backend) {
  const key = `${manifestUrl}|${backend}`;
  if (!engines.has(key)) {
    const started = (async () => {
      const client = await Omakase.start({ workerUrl: WORKER_URL });
      const info = await client.load(manifestUrl, { backend });
      // New products embedded on earlier pages come back by their stored vectors (no encoders).
      for (const [id, p] of storedProducts(manifestUrl)) {
        if ((await client.rowOf(id)) !== null) continue; // the bundle has it by now
        await client.addItem(id, Float32Array.from(p.v), { title: p.title, image: p.image, link: p.link }).catch(() => {});
      }
      return { client, info, adding: new Map() };
    })();
    started.catch(() => engines.delete(key)); // a later element may retry
    engines.set(key, started);
  }
  return engines.get(key);
}

// ---- safe URLs: bundle data is untrusted ------------------------------------------------------

function safeUrl(value, base) {
  if (typeof value !== 'string' || value === '') return null;
  try {
    const url = new URL(value, base);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

const STYLE = `
:host { display: block; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2328; }
.head { display: flex; align-items: baseline; justify-content: space-between; gap: 1rem; margin: 0 0 .75rem; }
h2 { font-size: 1.15rem; margin: 0; }
.sub { color: #59636e; font-size: .8rem; }
.grid { list-style: none; margin: 0; padding: 0; display: grid; gap: 14px; grid-template-columns: repeat(auto-fill, minmax(var(--omakase-card-min, 140px), 1fr)); }
.card { background: #fff; border-radius: 10px; box-shadow: 0 1px 3px rgba(0,0,0,.12); overflow: hidden; display: flex; flex-direction: column; }
.card a { color: inherit; text-decoration: none; display: block; }
.card a:focus-visible, button:focus-visible, summary:focus-visible { outline: 3px solid #0b63ce; outline-offset: 2px; }
.poster { aspect-ratio: 2 / 3; width: 100%; object-fit: cover; display: block; background: linear-gradient(135deg, #e8e4dc, #d6d0c4); }
.noimg { aspect-ratio: 2 / 3; display: flex; align-items: center; justify-content: center; padding: 6px; text-align: center; color: #6b5f4b; background: linear-gradient(135deg, #efe9dd, #dcd2bf); font-weight: 600; font-size: .78rem; overflow: hidden; overflow-wrap: anywhere; }
.title { padding: 8px 8px 2px; font-weight: 600; font-size: .82rem; line-height: 1.3; overflow-wrap: break-word; hyphens: auto; }
details { padding: 0 10px 8px; font-size: .78rem; color: #59636e; }
summary { cursor: pointer; color: #0b63ce; list-style: none; display: inline-block; padding: 2px 0; }
summary::-webkit-details-marker { display: none; }
.why { margin-top: 4px; }
.bar { display: flex; height: 6px; border-radius: 3px; overflow: hidden; margin: 6px 0 2px; background: #eee; }
.bar .t { background: #2f81f7; } .bar .i { background: #f0883e; }
.legend { display: flex; justify-content: space-between; font-size: .72rem; }
.state { padding: 18px; border-radius: 10px; background: #f6f8fa; color: #59636e; }
.state.error { background: #fff1f0; color: #a40e26; }
.skeleton { aspect-ratio: 2 / 3; border-radius: 10px; background: linear-gradient(90deg, #eee 25%, #f6f6f6 50%, #eee 75%); background-size: 200% 100%; animation: shimmer 1.2s infinite; }
@keyframes shimmer { to { background-position: -200% 0; } }
@media (prefers-reduced-motion: reduce) { .skeleton { animation: none; } }
`;

export class OmakaseRecs extends HTMLElement {
  static get observedAttributes() {
    return ['bundle', 'k', 'product', 'backend'];
  }

  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    const style = el('style');
    style.textContent = STYLE;
    this.head = el('div', 'head');
    this.heading = el('h2', '', 'Recommended for you');
    this.sub = el('span', 'sub', 'computed on this device');
    this.head.append(this.heading, this.sub);
    this.body = el('div');
    this.body.setAttribute('aria-live', 'polite');
    this.root.append(style, this.head, this.body);
    this.generation = 0;
    this.recorded = null;
  }

  connectedCallback() {
    this.refresh();
  }

  attributeChangedCallback() {
    if (this.isConnected) this.refresh();
  }

  get k() {
    const k = Number.parseInt(this.getAttribute('k') || '10', 10);
    return Number.isFinite(k) && k > 0 ? Math.min(k, MAX_K) : 10;
  }

  async refresh() {
    const generation = ++this.generation;
    const bundle = this.getAttribute('bundle');
    if (!bundle) return this.showState('error', 'No bundle attribute: nothing to recommend from.');
    const product = this.getAttribute('product');
    if (product && this.recorded !== product) {
      recordView(product);
      this.recorded = product;
    }
    const session = readViews();
    if (session.length === 0) return this.showState('empty', 'Browse a few products and recommendations appear here. They are computed on this device.');
    this.showLoading();
    try {
      const manifestUrl = new URL(bundle, document.baseURI).href;
      const started0 = engine(manifestUrl, this.getAttribute('backend') || 'auto');
      const { client, info } = await started0;
      // A product that cannot be embedded (no encoders in the bundle, picture unreadable) still
      // leaves the rest of the session to recommend from: reported, not fatal.
      if (product) {
        await this.embedIfNew(await started0, manifestUrl, product).catch((error) => {
          this.dispatchEvent(new CustomEvent('omakase-error', { bubbles: true, detail: { kind: error?.kind || 'Error', message: String(error?.message || error), product } }));
        });
      }
      const started = performance.now();
      const answer = await client.recommend(session, this.k);
      const ms = performance.now() - started;
      const why = await this.sessionTitles(client, answer.explanations.sessionRows);
      if (generation !== this.generation) return;
      this.render(answer, why, manifestUrl);
      this.dispatchEvent(new CustomEvent('omakase-update', {
        bubbles: true,
        detail: { backend: answer.backend, ms, count: answer.ids.length, session, downloaded: info.stats.downloaded, bundleBytes: info.stats.bundle, loadMs: info.loadMs, note: info.note },
      }));
    } catch (error) {
      if (generation !== this.generation) return;
      if (error && error.kind === 'EmptySession') {
        this.showState('empty', 'None of the products viewed here are in the catalogue yet.');
      } else {
        this.showState('error', 'Recommendations are unavailable right now.');
      }
      this.dispatchEvent(new CustomEvent('omakase-error', { bubbles: true, detail: { kind: error?.kind || 'Error', message: String(error?.message || error) } }));
    }
  }

  // This page's product from its data-* attributes, or null when it carries no text.
  productFields(id) {
    const title = this.dataset.title || '';
    const description = this.dataset.description || '';
    if (!title.trim() && !description.trim()) return null;
    let metadata = {};
    if (this.dataset.metadata) {
      try {
        const parsed = JSON.parse(this.dataset.metadata);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) metadata = parsed;
      } catch {
        // not JSON: embed without it rather than not at all
      }
    }
    const image = safeUrl(this.dataset.image, document.baseURI);
    return { ...metadata, id, title, description, image: image || undefined, link: safeUrl(location.href, document.baseURI) || undefined };
  }

  async embedIfNew(started, manifestUrl, id) {
    const fields = this.productFields(id);
    if (fields) await this.embed(fields, null, started, manifestUrl);
  }

  /** Embeds a product the bundle does not hold, on this device: `fields` = { id, title, description,
   *  image (URL), link, ...metadata }, `picture` = its image bytes (ArrayBuffer; else `image` is
   *  fetched). Resolves to { row, tokens, hasImage, timings, encoderStats, vector } once it can be
   *  recommended, or null when the catalogue already holds the id. A bundle without an image
   *  encoder embeds the words only and refuses `picture` bytes (kind "NoEncoders"). */
  addProduct(fields, picture = null) {
    return this.embed(fields, picture, null, null);
  }

  /** Recommendations for any session of ids on this element's engine (the demo's "who sees it"). */
  async recommendFor(session, k = this.k) {
    const manifestUrl = new URL(this.getAttribute('bundle'), document.baseURI).href;
    const { client } = await engine(manifestUrl, this.getAttribute('backend') || 'auto');
    return client.recommend(session, k);
  }

  async embed(fields, picture, started, manifestUrl) {
    manifestUrl = manifestUrl || new URL(this.getAttribute('bundle'), document.baseURI).href;
    const { client, adding } = await (started || engine(manifestUrl, this.getAttribute('backend') || 'auto'));
    if (!adding.has(fields.id)) {
      const pending = (async () => {
        if ((await client.rowOf(fields.id)) !== null) return null;
        const added = await client.addProduct(fields, picture);
        storeProduct(manifestUrl, fields.id, added.vector, { title: fields.title, image: fields.image, link: fields.link });
        this.dispatchEvent(new CustomEvent('omakase-new-product', {
          bubbles: true,
          detail: { id: fields.id, tokens: added.tokens, hasImage: added.hasImage, timings: added.timings, encoderStats: added.encoderStats },
        }));
        return added;
      })();
      adding.set(fields.id, pending);
      pending.catch(() => adding.delete(fields.id));
    }
    return adding.get(fields.id);
  }

  // Titles of the viewed items the explanations point to, by row (asked once per row).
  async sessionTitles(client, rows) {
    const titles = new Map();
    for (const row of new Set(rows)) {
      const meta = await client.item(row);
      titles.set(row, meta ? meta.title : '');
    }
    return titles;
  }

  showLoading() {
    const grid = el('ul', 'grid');
    grid.setAttribute('aria-busy', 'true');
    grid.setAttribute('aria-label', 'Loading recommendations');
    for (let i = 0; i < Math.min(this.k, 5); i++) grid.append(el('li', 'skeleton'));
    this.body.replaceChildren(grid);
    this.setAttribute('state', 'loading');
  }

  showState(state, message) {
    const box = el('p', `state ${state}`, message);
    if (state === 'error') box.setAttribute('role', 'alert');
    this.body.replaceChildren(box);
    this.setAttribute('state', state);
  }

  render(answer, why, manifestUrl) {
    const grid = el('ul', 'grid');
    const e = answer.explanations;
    const template = this.getAttribute('link-template');
    answer.ids.forEach((id, i) => {
      const meta = answer.items[i] || { id, title: id };
      const title = meta.title || id;
      const card = el('li', 'card');
      card.dataset.id = id;
      const href = safeUrl(meta.link, manifestUrl) || (template ? safeUrl(template.replaceAll('{id}', encodeURIComponent(id)), document.baseURI) : null);
      const link = el(href ? 'a' : 'div');
      if (href) link.href = href;
      const src = safeUrl(meta.image, manifestUrl);
      if (src) {
        const img = el('img', 'poster');
        img.alt = title;
        img.loading = 'lazy';
        img.decoding = 'async';
        img.src = src;
        link.append(img);
      } else {
        const box = el('div', 'noimg', title);
        box.setAttribute('role', 'img');
        box.setAttribute('aria-label', title);
        link.append(box);
      }
      link.append(el('div', 'title', title));
      card.append(link, this.explanation(e, i, why));
      grid.append(card);
    });
    grid.setAttribute('aria-label', 'Recommended products');
    this.body.replaceChildren(grid);
    this.setAttribute('state', 'ready');
  }

  explanation(e, i, why) {
    const details = el('details');
    details.append(el('summary', '', 'why?'));
    const box = el('div', 'why');
    const viewed = why.get(e.sessionRows[i]) || e.sessionIds[i];
    const line = el('div');
    line.append('Because you viewed ', el('strong', '', viewed), ` (similarity ${e.similarity[i].toFixed(2)}).`);
    box.append(line);
    const share = e.textShare[i];
    if (Number.isFinite(share)) {
      const text = Math.round(share * 100);
      const bar = el('div', 'bar');
      bar.setAttribute('role', 'img');
      bar.setAttribute('aria-label', `${text}% from the description, ${100 - text}% from the picture`);
      const t = el('span', 't');
      t.style.width = `${text}%`;
      const im = el('span', 'i');
      im.style.width = `${100 - text}%`;
      bar.append(t, im);
      const legend = el('div', 'legend');
      legend.append(el('span', '', `text ${text}%`), el('span', '', `image ${100 - text}%`));
      box.append(bar, legend);
    } else {
      box.append(el('div', '', 'Similar overall (this catalogue has no separate text and image vectors).'));
    }
    details.append(box);
    return details;
  }
}

if (!customElements.get('omakase-recs')) customElements.define('omakase-recs', OmakaseRecs);
