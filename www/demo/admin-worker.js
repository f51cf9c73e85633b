// The shop admin page's worker (www/demo/admin.html): www/runtime/worker.js (which owns the wasm
// module) plus one operation, "buildDelta": new products embedded here, once, in the shop owner's
// browser with the bundle's own encoders and item tower, then written as a delta shard and the
// manifest that lists it (docs/bundle.md § Deltas). Visitors then fetch that delta, a few KB, instead
// of the encoders. Answers follow the runtime's protocol.

import { ops, needRecommender, needEncoder, productFeatures, fail } from '../runtime/worker.js';

/** @typedef {import('../runtime/worker.js').Product} Product */
/** @typedef {import('../runtime/worker.js').WorkerEncoderOptions} WorkerEncoderOptions */
/** @typedef {import('../../pkg/omakase.js').BuiltDelta} BuiltDelta */
/** @typedef {import('../../pkg/omakase.js').DeltaProduct} DeltaProduct */

const adminOps = {
  /**
   * @param {number} id
   * @param {Product[]} products each { id, title, description, image (the card's picture URL), link, ...metadata }
   * @param {(ArrayBuffer | null)[]} pictures each product's picture bytes, or null (its `image` URL is fetched)
   * @param {WorkerEncoderOptions} [options]
   * @returns {Promise<import('../runtime/worker.js').Reply<BuiltDelta & { encoderStats: import('../runtime/worker.js').EncoderStats }>>}
   */
  async buildDelta(id, products, pictures, options) {
    const r = needRecommender();
    if (!Array.isArray(products) || products.length === 0) throw fail('BadArgument', 'products: at least one is needed');
    const enc = await needEncoder(id, options);
    /** @type {DeltaProduct[]} */
    const entries = [];
    for (const [i, product] of products.entries()) {
      const f = await productFeatures(enc.instance, product, (pictures && pictures[i]) || null);
      entries.push({ id: product.id, title: product.title || '', image: product.image || null, link: product.link || null,
        textFeatures: f.textFeatures, imageFeatures: f.imageFeatures });
    }
    const built = await r.buildDelta(entries);
    return { result: { ...built, encoderStats: enc.stats }, transfer: [built.bytes.buffer] };
  },
};

/** The admin worker's operations: the runtime's and "buildDelta".
 *  @typedef {import('../runtime/worker.js').RuntimeOps & typeof adminOps} AdminOps */

Object.assign(ops, adminOps);
