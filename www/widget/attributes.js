// The attributes of <omakase-recs>, in one table: each one's name, how its text is read (a parser
// that never throws: a bad value falls back to the default), and whether a change re-renders the
// element. The element reads its whole configuration through `readConfig` once per render, so adding
// an attribute is one entry here, one field of `Config` (www/widget/types.d.ts, which also lists them
// for shops' TypeScript) and its use where the element renders.

/** @typedef {import('./types.js').Config} Config */
/** @typedef {import('./types.js').Backend} Backend */

/**
 * One attribute: `parse` turns its value (null when absent) into the config field; `observed`:
 * whether changing it re-renders.
 * @template {keyof Config} K
 * @typedef {{ field: K, parse: (value: string | null) => Config[K], observed: boolean }} AttributeSpec
 */

export const MAX_K = 50;

/** @param {string | null} value */
const text = (value) => (value === null || value.trim() === '' ? null : value.trim());

/** Ids separated by spaces or commas (empty entries dropped, duplicates kept once).
 *  @param {string | null} value */
const idList = (value) => [...new Set((value || '').split(/[\s,]+/).filter(Boolean))];

/**
 * @param {number} fallback
 * @param {number} min
 * @param {number} max
 * @returns {(value: string | null) => number}
 */
const integer = (fallback, min, max) => (value) => {
  const n = value === null ? Number.NaN : Number.parseInt(value, 10);
  return Number.isFinite(n) && n >= min ? Math.min(n, max) : fallback;
};

/**
 * @param {number} fallback
 * @returns {(value: string | null) => number}
 */
const fraction = (fallback) => (value) => {
  const x = value === null || value.trim() === '' ? Number.NaN : Number(value);
  return Number.isFinite(x) && x >= 0 && x <= 1 ? x : fallback;
};

/** A boolean attribute: present (and not "false") is on.
 *  @param {string | null} value */
const flag = (value) => value !== null && value.trim().toLowerCase() !== 'false';

/** @param {string | null} value
 *  @returns {Backend} */
const backend = (value) => (value === 'webgpu' || value === 'wasm' ? value : 'auto');

/** Every attribute by name (data-title, data-description, data-image and data-metadata describe the
 *  page's own product and are read where it is embedded, `productFields`).
 *  @type {{ [name: string]: AttributeSpec<keyof Config> }} */
export const ATTRIBUTES = {
  // What to recommend from
  bundle: { field: 'bundle', parse: text, observed: true },
  k: { field: 'k', parse: integer(10, 1, MAX_K), observed: true },
  product: { field: 'product', parse: text, observed: true },
  backend: { field: 'backend', parse: backend, observed: true },
  // Opt-in: embed this page's product on the visitor's device (downloads the encoders) when the
  // bundle and its delta shards do not hold it
  'embed-new': { field: 'embedNew', parse: flag, observed: true },
  // Hosting: where widget/, runtime/ and pkg/ are, and the same-origin worker script
  base: { field: 'base', parse: text, observed: true },
  worker: { field: 'worker', parse: text, observed: true },
  // Which list, under which merchandising rules (docs/rules.md): read by the runtime's parser, which
  // reports a bad value naming the attribute (the element then shows its list without it)
  scenario: { field: 'scenario', parse: (v) => (v === null || v.trim() === '' ? 'for-you' : v.trim()), observed: true },
  filter: { field: 'filter', parse: text, observed: true },
  boost: { field: 'boost', parse: text, observed: true },
  exclude: { field: 'exclude', parse: text, observed: true },
  pin: { field: 'pin', parse: text, observed: true },
  diversity: { field: 'diversity', parse: text, observed: true },
  facts: { field: 'facts', parse: text, observed: true },
  // Rendering
  'link-template': { field: 'linkTemplate', parse: text, observed: true },
  heading: { field: 'heading', parse: (v) => (v === null ? null : v), observed: true },
  'heading-level': { field: 'headingLevel', parse: integer(2, 1, 6), observed: true },
  // Measurement: a local A/B split (Omakase or the shop's control list)
  experiment: { field: 'experiment', parse: text, observed: true },
  'control-share': { field: 'controlShare', parse: fraction(0.5), observed: true },
  'control-items': { field: 'controlItems', parse: idList, observed: true },
};

/** The attributes whose change re-renders the element (observedAttributes). */
export const OBSERVED = Object.entries(ATTRIBUTES).filter(([, spec]) => spec.observed).map(([name]) => name);

/**
 * The element's configuration from its attributes.
 * @param {Element} element
 * @returns {Config}
 */
export function readConfig(element) {
  /** @type {Record<string, unknown>} */
  const config = {};
  for (const [name, spec] of Object.entries(ATTRIBUTES)) config[spec.field] = spec.parse(element.getAttribute(name));
  return /** @type {Config} */ (/** @type {unknown} */ (config));
}
