// The widget's worker: www/runtime/worker.js (which owns the wasm module) plus "list" (a scenario
// under merchandising rules: Recommender.list, docs/rules.md) and one read-only operation,
// "resources": the URLs and sizes this worker fetched (its PerformanceObserver resource entries), so
// a page can show every request the widget made. Answers follow the runtime's protocol; "resources"
// is answered at once, not after the calls queued before it.

import { needRecommender, ops, unqueued } from '../runtime/worker.js';

/** @typedef {import('../../pkg/omakase.js').ListRequest} ListRequest */
/** @typedef {import('../../pkg/omakase.js').List} List */
/** @typedef {{ attribute: string, message: string }} RuleError */

/** One file this worker fetched.
 *  @typedef {{ url: string, initiator: string, transferSize: number, bodySize: number, ms: number }} Resource */

const widgetOps = {
  // A rule the runtime refuses (kind "Rule": malformed, on a field the bundle lacks, an unknown
  // scenario) comes back as { ruleError: { attribute, message } }, not a rejection: the element
  // reports it naming the attribute and asks again without that attribute.
  /**
   * @param {number} _id
   * @param {ListRequest} request
   * @returns {Promise<import('../runtime/worker.js').Reply<List | { ruleError: RuleError }>>}
   */
  async list(_id, request) {
    let answer;
    try {
      answer = await needRecommender().list(request);
    } catch (error) {
      const e = /** @type {{ kind?: string, attribute?: string, message?: string }} */ (error);
      if (e && e.kind === 'Rule') return { result: { ruleError: { attribute: e.attribute || '', message: String(e.message) } } };
      throw error;
    }
    const e = answer.explanations;
    const transfer = [answer.rows.buffer, answer.scores.buffer, answer.used.buffer, answer.pinned.buffer, answer.explained.buffer,
      e.sessionRows.buffer, e.similarity.buffer, e.textSimilarity.buffer, e.imageSimilarity.buffer, e.textShare.buffer];
    return { result: answer, transfer };
  },
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

/** The widget worker's operations: the runtime's, "list" and "resources".
 *  @typedef {import('../runtime/worker.js').RuntimeOps & typeof widgetOps} WidgetOps */

Object.assign(ops, widgetOps);
unqueued.add('resources');
