// <omakase-recs>: recommendations computed in the shopper's browser (ARCHITECTURE.md § Browser runtime, § Invariants).
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
// bundleBytes, loadMs, note, choice } after each render (choice: how the backend was chosen at load,
// { backend, reason, cpuMs, gpuMs, ... }: under "auto" the faster of WebGPU and wasm-simd, measured
// once per bundle and device), "omakase-new-product" { id, tokens, hasImage, timings,
// encoderStats } after embedding a new product, "omakase-error" { kind, message } on failure.

import { Omakase } from '../runtime/omakase.js';

/** @typedef {import('./worker.js').WidgetOps} WidgetOps */
/** @typedef {import('../runtime/worker.js').RuntimeOps} RuntimeOps */
/** @typedef {import('../runtime/worker.js').Product} Product */
/** @typedef {import('../../pkg/omakase.js').Recommendations} Recommendations */
/** @typedef {import('../../pkg/omakase.js').LoadOptions} LoadOptions */
/** @template {import('../runtime/worker.js').Operation} F @typedef {import('../runtime/omakase.js').ResultOf<F>} ResultOf */
/** @typedef {ResultOf<RuntimeOps['load']>} LoadInfo */
/** @typedef {ResultOf<RuntimeOps['addProduct']>} AddedProduct */
/** The worker of one bundle and backend, shared by the page's elements; `adding`: the products
 *  being (or already) embedded, by id.
 *  @typedef {{ client: Omakase<WidgetOps>, info: LoadInfo, adding: Map<string, Promise<AddedProduct | null>> }} Engine */
/** A product embedded on this device, as kept in localStorage: its vector `v`, its card, when.
 *  @typedef {{ v: number[], title?: string, image?: string, link?: string, at?: number }} StoredProduct */
/** The detail of "omakase-update".
 *  @typedef {{ backend: string, ms: number, count: number, session: string[], downloaded: number, bundleBytes: number, loadMs: number, note: string, choice: import('../../pkg/omakase.js').BackendChoice }} UpdateDetail */
/** The detail of "omakase-new-product".
 *  @typedef {{ id: string, tokens: number, hasImage: boolean, timings: AddedProduct['timings'], encoderStats: AddedProduct['encoderStats'] }} NewProductDetail */
/** The detail of "omakase-error" (`product`: the page's product that could not be embedded).
 *  @typedef {{ kind: string, message: string, product?: string }} ErrorDetail */

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

/** @param {string} id */
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
// Read from storage, so checked where used (storedProducts).
/** @returns {Record<string, Record<string, StoredProduct>>} */
function readProducts() {
  try {
    const all = JSON.parse(localStorage.getItem(PRODUCTS_KEY) || '{}');
    return all && typeof all === 'object' && !Array.isArray(all) ? all : {};
  } catch {
    return {};
  }
}

/**
 * @param {string} manifestUrl
 * @returns {[string, StoredProduct][]}
 */
function storedProducts(manifestUrl) {
  const mine = readProducts()[manifestUrl];
  if (!mine || typeof mine !== 'object') return [];
  return Object.entries(mine).filter(([id, p]) => typeof id === 'string' && p && Array.isArray(p.v) && p.v.every(Number.isFinite));
}

/**
 * @param {string} manifestUrl
 * @param {string} id
 * @param {Float32Array} vector
 * @param {{ title?: string, image?: string, link?: string }} meta
 */
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
    // Elements not upgraded yet (defined later) have no refresh.
    const elements = /** @type {NodeListOf<Element & Partial<Pick<OmakaseRecs, 'refresh'>>>} */ (document.querySelectorAll('omakase-recs'));
    for (const element of elements) element.refresh?.();
  },
  /** Every resource the widgets' workers fetched: [{ url, initiator, transferSize, bodySize, ms }].
   *  @returns {Promise<import('./worker.js').Resource[]>} */
  async requests() {
    const lists = await Promise.all([...engines.values()].map((started) =>
      started.then(({ client }) => client.call('resources', [])).catch(() => [])));
    return lists.flat();
  },
};
if (typeof window !== 'undefined') {
  const page = /** @type {Window & { omakase?: Partial<typeof omakase> }} */ (window);
  page.omakase = Object.assign(page.omakase || {}, omakase);
}

// ---- one worker per bundle, shared by every element of the page ------------------------------

/** @type {Map<string, Promise<Engine>>} `${manifest URL}|${backend}` -> Promise<{ client, info }> */
const engines = new Map();

/**
 * @param {string} manifestUrl
 * @param {string} backend the backend attribute ("auto", "webgpu" or "wasm"; the runtime refuses others)
 * @returns {Promise<Engine>}
 */
function engine(manifestUrl, backend) {
  const key = `${manifestUrl}|${backend}`;
  let started = engines.get(key);
  if (!started) {
    started = (async () => {
      // The widget's worker: the runtime's operations and "resources".
      const client = /** @type {Omakase<WidgetOps>} */ (await Omakase.start({ workerUrl: WORKER_URL }));
      const info = await client.load(manifestUrl, { backend: /** @type {LoadOptions['backend']} */ (backend) });
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
  return started;
}

/** The bundle attribute's manifest URL. Only used by elements that have one (refresh checks).
 *  @param {Element} element */
function manifestOf(element) {
  return new URL(/** @type {string} */ (element.getAttribute('bundle')), document.baseURI).href;
}

/** The kind (an OmakaseError's, else "Error") and message of a rejection.
 *  @param {unknown} error
 *  @returns {{ kind: string, message: string }} */
function errorDetail(error) {
  const e = /** @type {{ kind?: string, message?: string } | null | undefined} */ (error);
  return { kind: e?.kind || 'Error', message: String(e?.message || error) };
}

// ---- safe URLs: bundle data is untrusted ------------------------------------------------------

/**
 * @param {unknown} value
 * @param {string} base
 */
function safeUrl(value, base) {
  if (typeof value !== 'string' || value === '') return null;
  try {
    const url = new URL(value, base);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string} [className]
 * @param {string} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
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
    /** @type {string | null} the product whose view this element recorded */
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
      const manifestUrl = manifestOf(this);
      const started0 = engine(manifestUrl, this.getAttribute('backend') || 'auto');
      const { client, info } = await started0;
      // A product that cannot be embedded (no encoders in the bundle, picture unreadable) still
      // leaves the rest of the session to recommend from: reported, not fatal.
      if (product) {
        await this.embedIfNew(await started0, manifestUrl, product).catch((error) => {
          /** @type {ErrorDetail} */
          const detail = { ...errorDetail(error), product };
          this.dispatchEvent(new CustomEvent('omakase-error', { bubbles: true, detail }));
        });
      }
      const started = performance.now();
      const answer = await client.recommend(session, this.k);
      const ms = performance.now() - started;
      const why = await this.sessionTitles(client, answer.explanations.sessionRows);
      if (generation !== this.generation) return;
      this.render(answer, why, manifestUrl);
      /** @type {UpdateDetail} */
      const detail = { backend: answer.backend, ms, count: answer.ids.length, session, downloaded: info.stats.downloaded, bundleBytes: info.stats.bundle, loadMs: info.loadMs, note: info.note, choice: info.choice };
      this.dispatchEvent(new CustomEvent('omakase-update', { bubbles: true, detail }));
    } catch (error) {
      if (generation !== this.generation) return;
      /** @type {ErrorDetail} */
      const detail = errorDetail(error);
      if (detail.kind === 'EmptySession') {
        this.showState('empty', 'None of the products viewed here are in the catalogue yet.');
      } else {
        this.showState('error', 'Recommendations are unavailable right now.');
      }
      this.dispatchEvent(new CustomEvent('omakase-error', { bubbles: true, detail }));
    }
  }

  // This page's product from its data-* attributes, or null when it carries no text.
  /**
   * @param {string} id
   * @returns {Product | null}
   */
  productFields(id) {
    const title = this.dataset.title || '';
    const description = this.dataset.description || '';
    if (!title.trim() && !description.trim()) return null;
    /** @type {Record<string, unknown>} */
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

  /**
   * @param {Engine} started
   * @param {string} manifestUrl
   * @param {string} id
   */
  async embedIfNew(started, manifestUrl, id) {
    const fields = this.productFields(id);
    if (fields) await this.embed(fields, null, started, manifestUrl);
  }

  /** Embeds a product the bundle does not hold, on this device: `fields` = { id, title, description,
   *  image (URL), link, ...metadata }, `picture` = its image bytes (ArrayBuffer; else `image` is
   *  fetched). Resolves to { row, tokens, hasImage, timings, encoderStats, vector } once it can be
   *  recommended, or null when the catalogue already holds the id. A bundle without an image
   *  encoder embeds the words only and refuses `picture` bytes (kind "NoEncoders").
   *  @param {Product} fields
   *  @param {ArrayBuffer | null} [picture] */
  addProduct(fields, picture = null) {
    return this.embed(fields, picture, null, null);
  }

  /** Recommendations for any session of ids on this element's engine (the demo's "who sees it").
   *  @param {string[]} session
   *  @param {number} [k] */
  async recommendFor(session, k = this.k) {
    const manifestUrl = manifestOf(this);
    const { client } = await engine(manifestUrl, this.getAttribute('backend') || 'auto');
    return client.recommend(session, k);
  }

  /**
   * @param {Product} fields
   * @param {ArrayBuffer | null} picture
   * @param {Engine | null} started
   * @param {string | null} manifestUrl
   * @returns {Promise<AddedProduct | null>}
   */
  async embed(fields, picture, started, manifestUrl) {
    const url = manifestUrl || manifestOf(this);
    const { client, adding } = await (started || engine(url, this.getAttribute('backend') || 'auto'));
    if (!adding.has(fields.id)) {
      const pending = (async () => {
        if ((await client.rowOf(fields.id)) !== null) return null;
        const added = await client.addProduct(fields, picture);
        storeProduct(url, fields.id, added.vector, { title: fields.title, image: fields.image, link: fields.link });
        /** @type {NewProductDetail} */
        const detail = { id: fields.id, tokens: added.tokens, hasImage: added.hasImage, timings: added.timings, encoderStats: added.encoderStats };
        this.dispatchEvent(new CustomEvent('omakase-new-product', { bubbles: true, detail }));
        return added;
      })();
      adding.set(fields.id, pending);
      pending.catch(() => adding.delete(fields.id));
    }
    return /** @type {Promise<AddedProduct | null>} */ (adding.get(fields.id)); // set above
  }

  // Titles of the viewed items the explanations point to, by row (asked once per row).
  /**
   * @param {Omakase<WidgetOps>} client
   * @param {Uint32Array} rows
   * @returns {Promise<Map<number, string>>}
   */
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

  /**
   * @param {'empty' | 'error'} state
   * @param {string} message
   */
  showState(state, message) {
    const box = el('p', `state ${state}`, message);
    if (state === 'error') box.setAttribute('role', 'alert');
    this.body.replaceChildren(box);
    this.setAttribute('state', state);
  }

  /**
   * @param {Recommendations} answer
   * @param {Map<number, string>} why the session items' titles, by row
   * @param {string} manifestUrl
   */
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
      /** @type {HTMLAnchorElement | HTMLDivElement} */
      let link;
      if (href) {
        const a = el('a');
        a.href = href;
        link = a;
      } else {
        link = el('div');
      }
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

  /**
   * @param {Recommendations['explanations']} e
   * @param {number} i
   * @param {Map<number, string>} why
   */
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
