// <omakase-recs>: recommendations computed in the shopper's browser (ARCHITECTURE.md § Browser runtime, § Invariants;
// www/README.md § Add the element to a shop: hosting, CSP, CORS, styling, events).
//
//   <script type="module" src="/omakase/widget/omakase-recs.js"></script>
//   <omakase-recs bundle="/bundle/manifest.json" k="10" product="1"></omakase-recs>
//
// Attributes: the table in www/widget/attributes.js (bundle, k, product, backend, base, worker,
// link-template, heading, heading-level, experiment, control-share, control-items, scenario, filter,
// boost, exclude, pin, diversity, facts); their types in
// www/widget/types.d.ts. Hosting: the runtime (runtime/), the wasm (pkg/) and the worker
// (widget/worker.js) are found from one base, by default the folder above this file's widget/
// (so a sub-path such as /shop/omakase/ works as it is); `base` names another. A worker must come
// from the page's origin: when the base is on another origin (a CDN), `worker` names a one-line
// module on the shop's origin, `import 'https://cdn.example/omakase/widget/worker.js';`.
//
// A product added after the export reaches visitors as a delta shard of the bundle (`omakase delta`,
// or the admin page www/demo/admin.html): a few KB, no encoders. A delta left out (tampered, of
// another model…) fires "omakase-error" { kind, file, message } and the list is shown without it.
// Opt-in (attribute embed-new), a product neither holds is embedded on this device from its words
// and picture when the element carries them (the encoders, ~25 MB, are downloaded once):
//   data-title, data-description   its text (rendered into the bundle's text template)
//   data-image                     its picture's URL (fetched by the worker, a static GET)
//   data-metadata                  optional JSON object of other fields the template reads, e.g.
//                                  {"year": 2026, "genres": ["Drama"]}
// or from JavaScript: `element.addProduct({ id, title, description, image, ...metadata })`. The first
// such product downloads the quantized encoders (cached afterwards); its vector is kept on this
// device (localStorage "omakase.products", the last 20) so it keeps counting on later pages.
//
// Styling (www/widget/style.js): CSS custom properties and ::part()s; the heading is replaced by a
// child with slot="heading"; a child <template data-card> replaces each card's content (its
// [data-field=title|image|price|cta|...] elements are filled as text); `element.itemDetails =
// (item) => ({ price, cta })` gives the shop's own fields; `element.strings = { ... }` (or page-wide
// `OmakaseRecs.strings`) translates the element's words.
//
// Views are kept in this browser's localStorage (the last 50, key "omakase.views"); `omakase.forget()`
// (window.omakase, also exported) clears them. The worker (www/runtime/) downloads only the bundle's
// static files; the session never leaves the device, and no event carries it. Every product text
// is set with textContent.
//
// Events (on the element, bubbling; details typed in www/widget/types.d.ts): "omakase-impression"
// { listId, scenario, variant, experiment, items: [{ itemId, position }], count } once a rendered
// list comes into view, "omakase-click" { listId, scenario, variant, experiment, itemId, position,
// href } when a card is followed, "omakase-update" { listId, scenario, variant, experiment, backend,
// ms, count, sessionLength, downloaded, bundleBytes, loadMs, note, choice } after each render,
// "omakase-new-product" { id, tokens, hasImage, timings, encoderStats } after embedding a new
// product, "omakase-error" { kind, message } on failure ("Cors" when a server did not allow this
// origin to read a file).

import { Omakase, OmakaseError } from '../runtime/omakase.js';
import { OBSERVED, readConfig } from './attributes.js';
import { bucket, forgetSeed, randomId } from './measure.js';
import { STRINGS, format, styleSheet, widthClass } from './style.js';

/** @typedef {import('./worker.js').WidgetOps} WidgetOps */
/** @typedef {import('../runtime/worker.js').RuntimeOps} RuntimeOps */
/** @typedef {import('../runtime/worker.js').Product} Product */
/** @typedef {import('../../pkg/omakase.js').Recommendations} Recommendations */
/** @typedef {import('../../pkg/omakase.js').List} List */
/** @typedef {import('../../pkg/omakase.js').ListRequest} ListRequest */
/** @typedef {import('../../pkg/omakase.js').LoadOptions} LoadOptions */
/** @typedef {import('../../pkg/omakase.js').ItemMeta} ItemMeta */
/** @template {import('../runtime/worker.js').Operation} F @typedef {import('../runtime/omakase.js').ResultOf<F>} ResultOf */
/** @typedef {ResultOf<RuntimeOps['load']>} LoadInfo */
/** @typedef {ResultOf<RuntimeOps['addProduct']>} AddedProduct */
/** @typedef {import('./types.js').Config} Config */
/** @typedef {import('./types.js').Strings} Strings */
/** @typedef {import('./types.js').Variant} Variant */
/** @typedef {import('./types.js').CardItem} CardItem */
/** @typedef {import('./types.js').ItemDetails} ItemDetails */
/** @typedef {import('./types.js').ItemDetailsHook} ItemDetailsHook */
/** @typedef {import('./types.js').ListDetail} ListDetail */
/** @typedef {import('./types.js').ImpressionDetail} ImpressionDetail */
/** @typedef {import('./types.js').ClickDetail} ClickDetail */
/** @typedef {import('./types.js').UpdateDetail} UpdateDetail */
/** @typedef {import('./types.js').NewProductDetail} NewProductDetail */
/** @typedef {import('./types.js').ErrorDetail} ErrorDetail */
/** @typedef {import('./types.js').OmakaseRecsElement} OmakaseRecsElement */
/** The worker of one bundle, backend and hosting, shared by the page's elements; `adding`: the
 *  products being (or already) embedded, by id.
 *  @typedef {{ client: Omakase<WidgetOps>, info: LoadInfo, adding: Map<string, Promise<AddedProduct | null>> }} Engine */
/** Where the runtime's files are: the worker script and the wasm module's JS.
 *  @typedef {{ workerUrl: URL, moduleUrl: URL }} Hosting */
/** A product embedded on this device, as kept in localStorage: its vector `v`, its card, when.
 *  @typedef {{ v: number[], title?: string, image?: string, link?: string, at?: number }} StoredProduct */
/** One card to render: the item, its position, and (Omakase's list only) its explanation's index.
 *  @typedef {{ item: CardItem, explained: number | null }} Card */

const STORAGE_KEY = 'omakase.views';
const PRODUCTS_KEY = 'omakase.products';
const MAX_VIEWS = 50;
const MAX_NEW_PRODUCTS = 20;
// Scenarios and merchandising rules (docs/rules.md): `scenario` picks the list — "for-you" (from this
// device's views; a first visit gets the popular list, and says so), "similar" (the page's product's
// neighbours), "popular" (computed at export, in the bundle), "recently-viewed" — and `filter`,
// `boost`, `exclude`, `pin`, `diversity` and `facts` (run-time values: inline JSON or a file's URL)
// apply inside the runtime's scan. A value the runtime refuses fires "omakase-error" { kind: "Rule",
// attribute, message } and the list is shown without that attribute.
/** The heading string of each scenario (the `heading` attribute replaces it).
 *  @type {Record<string, keyof Strings>} */
const SCENARIO_HEADINGS = { 'for-you': 'heading', similar: 'headingSimilar', popular: 'headingPopular', 'recently-viewed': 'headingRecent' };
/** Facts files by URL, fetched once per page (static GETs, like the bundle's files).
 *  @type {Map<string, Promise<string>>} */
const factsFiles = new Map();
/** The folder holding widget/, runtime/ and pkg/ unless `base` names another. */
const DEFAULT_BASE = new URL('../', import.meta.url);

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
  /** Forgets every view (and the experiment bucket) on this device and empties the widgets on the page. */
  forget() {
    try {
      localStorage.removeItem(STORAGE_KEY);
      localStorage.removeItem(PRODUCTS_KEY);
    } catch {
      // nothing stored
    }
    forgetSeed();
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

// ---- hosting: one base for the runtime, the wasm and the worker --------------------------------

/**
 * Where the worker and the wasm module are, from the `base` and `worker` attributes.
 * @param {Config} config
 * @returns {Hosting}
 */
function hosting(config) {
  let base = DEFAULT_BASE;
  if (config.base) {
    base = new URL(config.base, document.baseURI);
    if (!base.pathname.endsWith('/')) base.pathname += '/';
  }
  const workerUrl = config.worker ? new URL(config.worker, document.baseURI) : new URL('widget/worker.js', base);
  return { workerUrl, moduleUrl: new URL('pkg/omakase.js', base) };
}

/** Browsers start a worker only from the page's origin: said plainly before the browser's own
 *  "cannot be accessed from origin" error.
 *  @param {URL} workerUrl */
function checkWorkerOrigin(workerUrl) {
  if (workerUrl.origin === location.origin || workerUrl.protocol === 'blob:') return;
  throw new OmakaseError({
    kind: 'WorkerOrigin',
    message: `the worker script ${workerUrl.href} is on another origin than this page (${location.origin}), and browsers start workers only from the page's origin: `
      + `put a one-line module on this origin, import '${workerUrl.href}';, and name it with the worker attribute (www/README.md, "Hosting")`,
  });
}

// ---- one worker per bundle, shared by every element of the page ------------------------------

/** @type {Map<string, Promise<Engine>>} `${manifest URL}|${backend}|${worker}|${module}` -> Promise<{ client, info }> */
const engines = new Map();

/**
 * @param {string} manifestUrl
 * @param {Config} config
 * @returns {Promise<Engine>}
 */
function engine(manifestUrl, config) {
  const { workerUrl, moduleUrl } = hosting(config);
  const key = `${manifestUrl}|${config.backend}|${workerUrl.href}|${moduleUrl.href}`;
  let started = engines.get(key);
  if (!started) {
    started = (async () => {
      checkWorkerOrigin(workerUrl);
      // The widget's worker: the runtime's operations and "resources".
      const client = /** @type {Omakase<WidgetOps>} */ (await Omakase.start({ workerUrl, moduleUrl: moduleUrl.href }));
      const info = await client.load(manifestUrl, { backend: config.backend });
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

/** The bundle attribute's manifest URL (elements without one show their error state first).
 *  @param {Config} config */
function manifestOf(config) {
  if (!config.bundle) throw new OmakaseError({ kind: 'BadArgument', message: 'no bundle attribute' });
  return new URL(config.bundle, document.baseURI).href;
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

/**
 * `node` with the ::part name `part` (a shop's stylesheet reaches it as omakase-recs::part(name)).
 * @template {Element} E
 * @param {E} node
 * @param {string} part
 * @returns {E}
 */
function part(node, part) {
  node.setAttribute('part', part);
  return node;
}

/** A detail value as text ("" for none).
 *  @param {ItemDetails[string]} value */
function detailText(value) {
  return value === null || value === undefined ? '' : String(value);
}

/** @implements {OmakaseRecsElement} */
export class OmakaseRecs extends HTMLElement {
  /** Page-wide replacements of the element's words (each element's `strings` go on top).
   *  @type {Partial<Strings>} */
  static strings = {};

  static get observedAttributes() {
    return OBSERVED;
  }

  constructor() {
    super();
    this.root = this.attachShadow({ mode: 'open' });
    this.root.adoptedStyleSheets = [styleSheet()];
    this.head = part(el('div', 'head'), 'header');
    this.headingSlot = el('slot');
    this.headingSlot.name = 'heading';
    this.sub = part(el('span', 'sub'), 'subheading');
    this.head.append(this.headingSlot, this.sub);
    /** Why a popular list stands in for the one asked (a first visit, a product too new). */
    this.note = part(el('p', 'note'), 'note');
    this.note.hidden = true;
    this.body = el('div');
    this.body.setAttribute('aria-live', 'polite');
    this.root.append(this.head, this.note, this.body);
    this.generation = 0;
    /** @type {string | null} the product whose view this element recorded */
    this.recorded = null;
    /** @type {Partial<Strings>} */
    this.ownStrings = {};
    /** @type {ItemDetailsHook | null} */
    this.detailsHook = null;
    /** @type {ListDetail | null} the list on show */
    this.list = null;
    /** @type {IntersectionObserver | null} watches the list on show for its impression */
    this.watcher = null;
    /** @type {LoadInfo | null} the load whose left-out delta shards this element reported */
    this.deltasReported = null;
  }

  connectedCallback() {
    this.refresh();
  }

  disconnectedCallback() {
    this.watcher?.disconnect();
    this.watcher = null;
  }

  attributeChangedCallback() {
    if (this.isConnected) this.refresh();
  }

  /** The element's words: the defaults, then OmakaseRecs.strings, then this element's.
   *  @returns {Strings} */
  get strings() {
    return { ...STRINGS, ...OmakaseRecs.strings, ...this.ownStrings };
  }

  /** @param {Partial<Strings>} value */
  set strings(value) {
    this.ownStrings = { ...(value || {}) };
    if (this.isConnected) this.refresh();
  }

  get itemDetails() {
    return this.detailsHook;
  }

  /** @param {ItemDetailsHook | null} hook */
  set itemDetails(hook) {
    this.detailsHook = typeof hook === 'function' ? hook : null;
    if (this.isConnected) this.refresh();
  }

  /** The id of the list on show, or null. */
  get listId() {
    return this.list ? this.list.listId : null;
  }

  /** This visitor's bucket in the element's experiment ("omakase" without one). */
  get variant() {
    const config = readConfig(this);
    return bucket(config.experiment, config.controlShare);
  }

  /** How many recommendations (the k attribute, 1 to 50). */
  get k() {
    return readConfig(this).k;
  }

  async refresh() {
    const generation = ++this.generation;
    const config = readConfig(this);
    const strings = this.strings;
    this.renderHead(config, strings);
    if (!config.bundle) return this.showState('error', strings.noBundle);
    const product = config.product;
    if (product && this.recorded !== product) {
      recordView(product);
      this.recorded = product;
    }
    const session = readViews();
    const variant = bucket(config.experiment, config.controlShare);
    // No views yet is an ordinary state: the runtime answers with the popular list (and says so).
    this.showLoading(config, strings);
    try {
      const manifestUrl = manifestOf(config);
      const started0 = engine(manifestUrl, config);
      const { client, info } = await started0;
      this.reportDeltas(info);
      // A product that cannot be embedded (no encoders in the bundle, picture unreadable) still
      // leaves the rest of the session to recommend from: reported, not fatal.
      if (product && config.embedNew) {
        await this.embedIfNew(await started0, manifestUrl, product).catch((error) => {
          /** @type {ErrorDetail} */
          const detail = { ...errorDetail(error), product };
          this.dispatchEvent(new CustomEvent('omakase-error', { bubbles: true, detail }));
        });
      }
      const started = performance.now();
      /** @type {Card[]} */
      let cards;
      /** @type {List | null} */
      let answer = null;
      if (variant === 'control') {
        cards = await this.controlCards(client, config, manifestUrl);
      } else {
        const got = await this.listFor(client, config, session);
        answer = got;
        cards = got.ids.map((id, i) => ({ item: this.cardItem(got.items[i] || { id, title: id, image: null, link: null }, i, config, manifestUrl), explained: got.explained[i] ? i : null }));
      }
      const ms = performance.now() - started;
      if (answer) this.reportRefused(answer);
      const why = answer ? await this.sessionTitles(client, answer.explanations.sessionRows) : new Map();
      const details = await this.details(cards);
      if (generation !== this.generation) return;
      /** @type {ListDetail} */
      const list = { listId: randomId(), scenario: config.scenario, variant, experiment: config.experiment };
      this.showNote(answer, strings);
      if (cards.length === 0 && answer) {
        // Nothing to show: a bundle without popularity on a first visit, or rules that keep nothing out.
        return this.showState('empty', answer.note || answer.fallback === 'no-history' ? strings.empty : strings.noMatch);
      }
      this.render(list, cards, details, answer, why, strings);
      /** @type {UpdateDetail} */
      const detail = { ...list, backend: info.backend, ms, count: cards.length, sessionLength: session.length, downloaded: info.stats.downloaded,
        bundleBytes: info.stats.bundle, loadMs: info.loadMs, note: info.note, choice: info.choice,
        source: answer ? answer.source : config.scenario, fallback: answer ? answer.fallback : null };
      if (answer) detail.backend = answer.backend;
      this.dispatchEvent(new CustomEvent('omakase-update', { bubbles: true, detail }));
    } catch (error) {
      if (generation !== this.generation) return;
      /** @type {ErrorDetail} */
      const detail = errorDetail(error);
      if (detail.kind === 'EmptySession') {
        this.showState('empty', strings.emptyCatalogue);
      } else {
        this.showState('error', strings.error);
      }
      this.dispatchEvent(new CustomEvent('omakase-error', { bubbles: true, detail }));
    }
  }

  /** Each file a streamed catalogue refused while answering (a truncated or tampered partition,
   *  metadata or directory file: sha256), as one "omakase-error" naming it; the list on show was
   *  made from verified data only.
   *  @param {List} answer */
  reportRefused(answer) {
    for (const { kind, file, message } of (answer.search && answer.search.refused) || []) {
      /** @type {ErrorDetail} */
      const detail = { kind, file, message };
      this.dispatchEvent(new CustomEvent('omakase-error', { bubbles: true, detail }));
    }
  }

  /** Each delta shard the load left out, as one "omakase-error" naming its file (once per load).
   *  @param {LoadInfo} info */
  reportDeltas(info) {
    if (this.deltasReported === info) return;
    this.deltasReported = info;
    for (const { kind, file, message } of info.deltas.failed) {
      /** @type {ErrorDetail} */
      const detail = { kind, file, message };
      this.dispatchEvent(new CustomEvent('omakase-error', { bubbles: true, detail }));
    }
  }

  /**
   * The list of this element's scenario under its rules. A rule the runtime refuses is reported
   * ("omakase-error", kind "Rule", naming the attribute) and the list asked for again without it,
   * so the element shows the best list it still can.
   * @param {Omakase<WidgetOps>} client
   * @param {Config} config
   * @param {string[]} session
   * @returns {Promise<List>}
   */
  async listFor(client, config, session) {
    /** @type {ListRequest} */
    const request = {
      scenario: config.scenario, session, product: config.product, k: config.k, filter: config.filter, boost: config.boost,
      exclude: config.exclude, pin: config.pin, diversity: config.diversity, facts: await this.factsText(config),
    };
    /** @type {Record<string, (r: ListRequest) => void>} how to leave each attribute out */
    const without = {
      scenario: (r) => { r.scenario = 'for-you'; },
      filter: (r) => { r.filter = null; },
      boost: (r) => { r.boost = null; },
      exclude: (r) => { r.exclude = null; },
      pin: (r) => { r.pin = null; },
      diversity: (r) => { r.diversity = null; },
      facts: (r) => { r.facts = null; },
    };
    for (let attempt = 0; attempt <= Object.keys(without).length; attempt++) {
      const got = await client.call('list', [request]);
      if (!('ruleError' in got)) return got;
      const { attribute, message } = got.ruleError;
      /** @type {ErrorDetail} */
      const detail = { kind: 'Rule', attribute, message };
      this.dispatchEvent(new CustomEvent('omakase-error', { bubbles: true, detail }));
      const leaveOut = without[attribute];
      if (!leaveOut) break;
      leaveOut(request);
    }
    throw new OmakaseError({ kind: 'Rule', message: 'the list could not be made without the rules it refused' });
  }

  /**
   * The `facts` attribute as JSON text: inline ("{...}") or the file at its URL (fetched once per
   * page); null when absent, or unreadable (reported as kind "Rule", attribute "facts").
   * @param {Config} config
   * @returns {Promise<string | null>}
   */
  async factsText(config) {
    const facts = config.facts;
    if (!facts) return null;
    if (facts.startsWith('{')) return facts;
    const url = new URL(facts, document.baseURI).href;
    let pending = factsFiles.get(url);
    if (!pending) {
      pending = fetch(url, { credentials: 'same-origin' }).then((r) => {
        if (!r.ok) throw new Error(`HTTP ${r.status}`);
        return r.text();
      });
      pending.catch(() => factsFiles.delete(url));
      factsFiles.set(url, pending);
    }
    try {
      return await pending;
    } catch (error) {
      /** @type {ErrorDetail} */
      const detail = { kind: 'Rule', attribute: 'facts', message: `facts: ${url} could not be read (${error instanceof Error ? error.message : error}); the list is shown without it` };
      this.dispatchEvent(new CustomEvent('omakase-error', { bubbles: true, detail }));
      return null;
    }
  }

  /**
   * Says why a popular list stands in for the one asked (no history yet, a product too new).
   * @param {List | null} answer
   * @param {Strings} strings
   */
  showNote(answer, strings) {
    const text = answer?.fallback === 'no-history' ? strings.fallbackNoHistory
      : answer?.fallback === 'unknown-product' || answer?.fallback === 'no-product' ? strings.fallbackUnknownProduct : '';
    this.note.textContent = text;
    this.note.hidden = !text;
  }

  /**
   * The control list: the `control-items` the catalogue holds, but this page's product, at most k.
   * @param {Omakase<WidgetOps>} client
   * @param {Config} config
   * @param {string} manifestUrl
   * @returns {Promise<Card[]>}
   */
  async controlCards(client, config, manifestUrl) {
    /** @type {Card[]} */
    const cards = [];
    for (const id of config.controlItems) {
      if (cards.length >= config.k) break;
      if (id === config.product) continue;
      const row = await client.rowOf(id);
      const meta = row === null ? undefined : await client.item(row);
      if (meta) cards.push({ item: this.cardItem(meta, cards.length, config, manifestUrl), explained: null });
    }
    return cards;
  }

  /**
   * A card's item: links are the shop's pages (resolved against this page; else the link
   * template), pictures are the bundle's files (resolved against the manifest).
   * @param {ItemMeta | { id: string, title: string, image: string | null, link: string | null }} meta
   * @param {number} index
   * @param {Config} config
   * @param {string} manifestUrl
   * @returns {CardItem}
   */
  cardItem(meta, index, config, manifestUrl) {
    const id = meta.id;
    const template = config.linkTemplate;
    const link = safeUrl(meta.link, document.baseURI) || (template ? safeUrl(template.replaceAll('{id}', encodeURIComponent(id)), document.baseURI) : null);
    return { id, title: meta.title || id, link, image: safeUrl(meta.image, manifestUrl), position: index + 1 };
  }

  /**
   * The shop's fields of each card (itemDetails), in card order; a hook that fails gives none.
   * @param {Card[]} cards
   * @returns {Promise<(ItemDetails | null)[]>}
   */
  async details(cards) {
    const hook = this.detailsHook;
    if (!hook) return cards.map(() => null);
    return Promise.all(cards.map(async ({ item }) => {
      try {
        return (await hook({ ...item })) || null;
      } catch {
        return null;
      }
    }));
  }

  /**
   * The heading: a child with slot="heading" when the page gives one, else an h1-h6 (heading-level)
   * with the heading attribute's text or the strings' ("" leaves it out).
   * @param {Config} config
   * @param {Strings} strings
   */
  renderHead(config, strings) {
    const text = config.heading !== null ? config.heading : strings[SCENARIO_HEADINGS[config.scenario] || 'heading'];
    const level = /** @type {'h1' | 'h2' | 'h3' | 'h4' | 'h5' | 'h6'} */ (`h${config.headingLevel}`);
    this.headingSlot.replaceChildren(...(text ? [part(el(level, 'heading', text), 'heading')] : []));
    this.sub.textContent = strings.subheading;
    this.sub.hidden = !strings.subheading;
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
    const config = readConfig(this);
    const { client } = await engine(manifestOf(config), config);
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
    const config = readConfig(this);
    const url = manifestUrl || manifestOf(config);
    const { client, adding } = await (started || engine(url, config));
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

  /**
   * @param {Config} config
   * @param {Strings} strings
   */
  showLoading(config, strings) {
    const grid = part(el('ul', 'grid'), 'list');
    grid.setAttribute('aria-busy', 'true');
    grid.setAttribute('aria-label', strings.loading);
    for (let i = 0; i < Math.min(config.k, 5); i++) grid.append(part(el('li', 'skeleton'), 'skeleton'));
    this.showList(null, grid);
    this.setAttribute('state', 'loading');
  }

  /**
   * @param {'empty' | 'error'} state
   * @param {string} message
   */
  showState(state, message) {
    const box = part(el('p', `state ${state}`, message), 'state');
    if (state === 'error') box.setAttribute('role', 'alert');
    this.showList(null, box);
    this.setAttribute('state', state);
  }

  /**
   * Puts `content` on show as the list `list` (null: no list), watching it for its impression.
   * @param {ListDetail | null} list
   * @param {Element} content
   * @param {ImpressionDetail['items']} [items]
   */
  showList(list, content, items = []) {
    this.watcher?.disconnect();
    this.watcher = null;
    this.list = list;
    this.body.replaceChildren(content);
    if (!list) return;
    const impression = () => {
      this.watcher?.disconnect();
      this.watcher = null;
      if (this.list !== list) return;
      /** @type {ImpressionDetail} */
      const detail = { ...list, items, count: items.length };
      this.dispatchEvent(new CustomEvent('omakase-impression', { bubbles: true, detail }));
    };
    // An empty list (a control bucket without control-items: a hold-out) counts as seen at once.
    if (items.length === 0 || typeof IntersectionObserver === 'undefined') {
      queueMicrotask(impression);
      return;
    }
    this.watcher = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) impression();
    });
    this.watcher.observe(content);
  }

  /**
   * @param {ListDetail} list
   * @param {Card[]} cards
   * @param {(ItemDetails | null)[]} details the shop's fields, per card
   * @param {List | null} answer Omakase's answer (null: the control list)
   * @param {Map<number, string>} why the session items' titles, by row
   * @param {Strings} strings
   */
  render(list, cards, details, answer, why, strings) {
    const grid = part(el('ul', 'grid'), 'list');
    grid.dataset.listId = list.listId;
    grid.dataset.variant = list.variant;
    grid.setAttribute('aria-label', strings.listLabel);
    const template = this.querySelector(':scope > template[data-card]');
    cards.forEach(({ item, explained }, i) => {
      const card = part(el('li', 'card'), 'card');
      card.dataset.id = item.id;
      card.dataset.position = String(item.position);
      /** @type {HTMLAnchorElement | HTMLDivElement} */
      let link;
      if (item.link) {
        const a = el('a', 'link');
        a.href = item.link;
        link = a;
      } else {
        link = el('div', 'link');
      }
      part(link, 'link');
      if (template instanceof HTMLTemplateElement) this.fillTemplate(link, template, item, details[i]);
      else this.defaultCard(link, item, details[i], strings);
      card.append(link);
      // Why this card is here when no explanation says it: a pin, the popular list, the visitor's views.
      const reason = !answer ? '' : answer.pinned[i] ? strings.reasonPinned
        : answer.source === 'popular' ? strings.reasonPopular : answer.source === 'recently-viewed' ? strings.reasonRecent : '';
      if (reason) card.append(part(el('span', 'reason', reason), 'reason'));
      const because = answer?.source === 'similar' ? { ...strings, because: strings.becauseSimilar } : strings;
      if (answer && explained !== null) card.append(this.explanation(answer.explanations, explained, why, because));
      grid.append(card);
    });
    // Following a card's link (mouse, keyboard, middle click) is its click.
    /** @param {MouseEvent} event */
    const clicked = (event) => {
      const target = /** @type {Element | null} */ (event.target instanceof Element ? event.target : null);
      const a = target?.closest('a.link');
      const card = a?.closest('li.card');
      if (!a || !(card instanceof HTMLElement) || this.list !== list) return;
      if (event.type === 'auxclick' && event.button !== 1) return;
      /** @type {ClickDetail} */
      const detail = { ...list, itemId: card.dataset.id || '', position: Number(card.dataset.position), href: a.getAttribute('href') };
      this.dispatchEvent(new CustomEvent('omakase-click', { bubbles: true, detail }));
    };
    grid.addEventListener('click', clicked);
    grid.addEventListener('auxclick', clicked);
    this.showList(list, grid, cards.map(({ item }) => ({ itemId: item.id, position: item.position })));
    this.setAttribute('state', 'ready');
  }

  /**
   * The default card: picture (or a placeholder), title, the shop's price and call to action. The
   * link's accessible name is the title, said once: the picture is decorative (alt="") and the
   * placeholder hidden from assistive technology, since the title is right below.
   * @param {HTMLElement} link
   * @param {CardItem} item
   * @param {ItemDetails | null} details
   * @param {Strings} strings
   */
  defaultCard(link, item, details, strings) {
    if (item.image) {
      const img = part(el('img', 'poster'), 'image');
      img.alt = '';
      img.loading = 'lazy';
      img.decoding = 'async';
      img.src = item.image;
      link.append(img);
    } else {
      const box = part(el('div', 'noimg', item.title), 'placeholder');
      box.setAttribute('aria-hidden', 'true');
      link.append(box);
    }
    link.append(part(el('div', 'title', item.title), 'title'));
    const price = detailText(details?.price);
    if (price) link.append(part(el('div', 'price', price), 'price'));
    const cta = detailText(details?.cta) || strings.cta;
    if (cta) link.append(part(el('span', 'cta', cta), 'cta'));
  }

  /**
   * A card from the page's <template data-card>: each [data-field=NAME] gets the item's NAME as text
   * (title, id, position, or a field of itemDetails); an <img data-field=image> gets the picture
   * (decorative: alt=""); an element whose field has no value is hidden.
   * @param {HTMLElement} link
   * @param {HTMLTemplateElement} template
   * @param {CardItem} item
   * @param {ItemDetails | null} details
   */
  fillTemplate(link, template, item, details) {
    const content = /** @type {DocumentFragment} */ (template.content.cloneNode(true));
    /** @type {Record<string, string>} */
    const values = { id: item.id, title: item.title, position: String(item.position) };
    for (const [key, value] of Object.entries(details || {})) values[key] = detailText(value);
    for (const node of content.querySelectorAll('[data-field]')) {
      if (!(node instanceof HTMLElement)) continue;
      const field = node.dataset.field || '';
      if (node instanceof HTMLImageElement) {
        if (field === 'image' && item.image) {
          node.alt = '';
          node.src = item.image;
        } else {
          node.hidden = true;
        }
        continue;
      }
      const value = values[field] || '';
      node.textContent = value;
      node.hidden = value === '';
    }
    // Links and scripts do not belong in a card that is itself a link.
    for (const node of content.querySelectorAll('a, script, iframe, object, embed')) node.remove();
    link.append(content);
  }

  /**
   * @param {Recommendations['explanations']} e
   * @param {number} i
   * @param {Map<number, string>} why
   * @param {Strings} strings
   */
  explanation(e, i, why, strings) {
    const details = part(el('details'), 'why');
    details.append(part(el('summary', '', strings.why), 'why-summary'));
    const box = part(el('div', 'why'), 'why-body');
    const viewed = why.get(e.sessionRows[i]) || e.sessionIds[i];
    const line = el('div');
    const [before, after = ''] = format(strings.because, { similarity: e.similarity[i].toFixed(2) }).split('{title}');
    line.append(before, el('strong', '', viewed), after);
    box.append(line);
    const share = e.textShare[i];
    if (Number.isFinite(share)) {
      const text = Math.round(share * 100);
      const values = { text, image: 100 - text };
      const bar = part(el('div', 'bar'), 'share');
      bar.setAttribute('role', 'img');
      bar.setAttribute('aria-label', format(strings.shareLabel, values));
      // Widths by class (5 % steps): no style attribute, which style-src 'self' would refuse.
      const t = el('span', `t ${widthClass(text)}`);
      const im = el('span', `i ${widthClass(100 - text)}`);
      bar.append(t, im);
      const legend = el('div', 'legend');
      legend.append(el('span', '', format(strings.shareText, values)), el('span', '', format(strings.shareImage, values)));
      box.append(bar, legend);
    } else {
      box.append(el('div', '', strings.noShare));
    }
    details.append(box);
    return details;
  }
}

if (!customElements.get('omakase-recs')) customElements.define('omakase-recs', OmakaseRecs);
