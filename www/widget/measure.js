// Measurement without egress: list ids and the experiment's local buckets. Nothing here is sent
// anywhere: the element puts the list id and the bucket on its events (omakase-impression,
// omakase-click, omakase-update) and the shop forwards them to its own analytics if it wants.

/** @typedef {import('./types.js').Variant} Variant */

const SEED_KEY = 'omakase.bucket';

/** A random hex id (list ids, the bucket seed): crypto.getRandomValues works on http pages too,
 *  unlike crypto.randomUUID. */
export function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** This device's bucket seed (random, kept in localStorage, never sent); a fresh one per page where
 *  storage is blocked (buckets are then per page, not stable). */
let pageSeed = '';
function seed() {
  try {
    let value = localStorage.getItem(SEED_KEY);
    if (!value || !/^[0-9a-f]{16}$/.test(value)) {
      value = randomId();
      localStorage.setItem(SEED_KEY, value);
    }
    return value;
  } catch {
    if (!pageSeed) pageSeed = randomId();
    return pageSeed;
  }
}

/** Forgets the bucket seed (omakase.forget()): the next experiment draws a new bucket. */
export function forgetSeed() {
  pageSeed = '';
  try {
    localStorage.removeItem(SEED_KEY);
  } catch {
    // nothing stored
  }
}

/** FNV-1a, 32 bits: a uniform-enough hash of seed and experiment name, the same on every page.
 *  @param {string} s */
function fnv1a(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The visitor's bucket in `experiment`: "control" for a `controlShare` fraction of devices, else
 * "omakase"; the same on every page of the shop for as long as the device keeps its seed. No
 * experiment: "omakase".
 * @param {string | null} experiment
 * @param {number} controlShare
 * @returns {Variant}
 */
export function bucket(experiment, controlShare) {
  if (!experiment) return 'omakase';
  const u = fnv1a(`${seed()}|${experiment}`) / 2 ** 32;
  return u < controlShare ? 'control' : 'omakase';
}
