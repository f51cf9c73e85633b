// The widget's worker: www/runtime/worker.js (which owns the wasm module) plus one read-only
// operation, "resources": the URLs and sizes this worker fetched (its PerformanceObserver resource
// entries), so a page can show every request the widget made. Answers follow the runtime's protocol;
// "resources" is answered at once, not after the calls queued before it.

import { ops, unqueued } from '../runtime/worker.js';

/** One file this worker fetched.
 *  @typedef {{ url: string, initiator: string, transferSize: number, bodySize: number, ms: number }} Resource */

const widgetOps = {
  /** @returns {Promise<import('../runtime/worker.js').Reply<Resource[]>>} */
  async resources() {
    const entries = /** @type {PerformanceResourceTiming[]} */ (performance.getEntriesByType('resource')).map((e) => ({
      url: e.name,
      initiator: e.initiatorType,
      transferSize: e.transferSize,
      bodySize: e.decodedBodySize,
      ms: e.duration,
    }));
    return { result: entries };
  },
};

/** The widget worker's operations: the runtime's and "resources".
 *  @typedef {import('../runtime/worker.js').RuntimeOps & typeof widgetOps} WidgetOps */

Object.assign(ops, widgetOps);
unqueued.add('resources');
