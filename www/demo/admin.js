// The demo shop's admin page (www/demo/admin.html): the shop owner adds products after the export,
// embedded once in this browser (the bundle's encoders and item tower, in www/demo/admin-worker.js),
// and downloads a delta shard and the bundle's new manifest.json to upload. Visitors then fetch the
// delta, a few KB, and never the encoders. `omakase delta --bundle BUNDLE --add FILE` checks and
// appends the same file from the command line (docs/bundle.md § Deltas).

import { Omakase } from '../runtime/omakase.js';
import { BUNDLE, el } from './shop.js';

/** @typedef {import('./admin-worker.js').AdminOps} AdminOps */
/** @typedef {import('../runtime/worker.js').Product} Product */
/** @typedef {import('../runtime/omakase.js').StartOptions} StartOptions */

/** @extends {Omakase<AdminOps>} */
export class AdminOmakase extends Omakase {
  /**
   * Starts www/demo/admin-worker.js and the wasm module.
   * @param {StartOptions} [options]
   * @returns {Promise<AdminOmakase>}
   */
  static start(options = {}) {
    return /** @type {Promise<AdminOmakase>} */ (super.start({ workerUrl: new URL('./admin-worker.js', import.meta.url), ...options }));
  }

  /**
   * A delta of `products` for the loaded bundle: { name, bytes, manifest, rows, ids, encoderStats }.
   * @param {Product[]} products
   * @param {(ArrayBuffer | null)[]} pictures transferred
   * @param {(p: import('../runtime/omakase.js').Progress) => void} [onProgress] the encoders' download
   */
  buildDelta(products, pictures, onProgress) {
    return this.call('buildDelta', [products, pictures, {}], pictures.filter((p) => p !== null), onProgress);
  }
}

/** @param {number} n */
function size(n) {
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * A download link for `bytes` named `name`.
 * @param {string} name
 * @param {BlobPart} bytes
 * @param {string} type
 * @param {string} label
 */
function download(name, bytes, type, label) {
  const a = el('a', 'buy', label);
  a.href = URL.createObjectURL(new Blob([bytes], { type }));
  a.download = name;
  a.dataset.file = name;
  return a;
}

/** Runs the page: its elements by id (admin.html). */
export async function adminPage() {
  const byId = (/** @type {string} */ id) => /** @type {HTMLElement} */ (document.getElementById(id));
  const form = /** @type {HTMLFormElement} */ (byId('product'));
  const field = (/** @type {string} */ name) => /** @type {HTMLInputElement} */ (form.elements.namedItem(name));
  const status = byId('status');
  const pendingList = byId('pending');
  const result = byId('built');
  /** @type {{ product: Product, picture: ArrayBuffer | null }[]} */
  const pending = [];

  const client = await AdminOmakase.start();
  const info = await client.load(BUNDLE);
  const bundleInfo = byId('bundle');
  const loaded = info.deltas.loaded.map((d) => `${d.file} (${d.rows})`).join(', ') || 'none yet';
  bundleInfo.textContent = `${info.itemCount} products; delta shards: ${loaded}`;
  for (const failed of info.deltas.failed) bundleInfo.append(el('p', 'notice', `left out: ${failed.message}`));
  bundleInfo.dataset.items = String(info.itemCount);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const title = field('title').value.trim();
    if (!title) return;
    const id = field('id').value.trim() || `new-${Date.now().toString(36)}`;
    /** @type {Product} */
    const product = { id, title, description: field('description').value.trim() };
    const genres = field('genres').value.split(',').map((g) => g.trim()).filter(Boolean);
    if (genres.length) product.genres = genres;
    const year = Number.parseInt(field('year').value, 10);
    if (Number.isFinite(year)) product.year = year;
    const image = field('image').value.trim();
    if (image) product.image = image;
    const link = field('link').value.trim();
    if (link) product.link = link;
    const file = field('picture').files?.[0];
    pending.push({ product, picture: file ? await file.arrayBuffer() : null });
    pendingList.append(el('li', '', `${id}: ${title}${file ? ' (with its picture)' : ''}`));
    form.reset();
    byId('build').removeAttribute('disabled');
  });

  byId('build').addEventListener('click', async () => {
    if (pending.length === 0) return;
    status.textContent = 'Embedding in this browser… (the first time, the encoders download first)';
    status.removeAttribute('data-error');
    try {
      const built = await client.buildDelta(pending.map((p) => p.product), pending.map((p) => p.picture),
        (p) => { status.textContent = `Downloading the encoders: ${size(p.loaded)} of ${size(p.total)}`; });
      pending.length = 0;
      pendingList.replaceChildren();
      byId('build').setAttribute('disabled', '');
      const steps = el('ol');
      const deltaLink = download(built.name, /** @type {BlobPart} */ (built.bytes), 'application/octet-stream', `Download ${built.name} (${size(built.bytes.length)})`);
      const manifestLink = download('manifest.json', built.manifest, 'application/json', 'Download the new manifest.json');
      const first = el('li', '', ' upload it beside the bundle\'s manifest.json;');
      first.prepend(deltaLink);
      const second = el('li', '', ' replace the bundle\'s manifest.json with it (the only file that changes).');
      second.prepend(manifestLink);
      steps.append(first, second);
      const cli = el('p', 'hint', `Or from the command line: omakase delta --bundle BUNDLE --add ${built.name}`);
      result.replaceChildren(el('p', '', `${built.rows} products (${built.ids.join(', ')}) in ${built.name}: ${size(built.bytes.length)} for every visitor, instead of the encoders (${size(Number(built.encoderStats.total))}).`), steps, cli);
      result.dataset.name = built.name;
      result.dataset.bytes = String(built.bytes.length);
      result.hidden = false;
      status.textContent = 'Done: nothing was sent anywhere; upload the two files.';
    } catch (error) {
      const e = /** @type {{ kind?: string, message?: string }} */ (error);
      status.textContent = `Could not build the delta: ${e.message || error}`;
      status.dataset.error = e.kind || 'Error';
    }
  });
  status.textContent = 'Ready.';
  status.dataset.ready = 'true';
}
