// The widget's worker: www/runtime/worker.js (which owns the wasm module) plus one read-only
// operation, "resources": the URLs and sizes this worker fetched (its PerformanceObserver resource
// entries), so a page can show every request the widget made. Answers follow the runtime's protocol.

import '../runtime/worker.js';

const runtimeHandler = self.onmessage;

self.onmessage = (event) => {
  const { id, op } = event.data || {};
  if (op !== 'resources') return runtimeHandler(event);
  const entries = performance.getEntriesByType('resource').map((e) => ({
    url: e.name,
    initiator: e.initiatorType,
    transferSize: e.transferSize,
    bodySize: e.decodedBodySize,
    ms: e.duration,
  }));
  self.postMessage({ id, ok: true, result: entries });
};
