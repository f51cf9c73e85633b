// Loads the bare kernels module and (1) checks simd128 against the scalar reference, (2) times one
// session → top-10 scan of synthetic int8 shards: the runtime (simd128), a simd128 byte sum of the same
// bytes (bandwidth bound), the Rust scalar reference, and a plain-JS loop. Medians of repeated passes.
import { readFileSync } from 'node:fs';

const [wasmPath, ...sizes] = process.argv.slice(2);
const module = await WebAssembly.compile(readFileSync(wasmPath));
// The crate's wasm32 dependencies (wasm-bindgen, getrandom) leave imports that the kernels never call:
// each is stubbed with a function that throws, so calling one would fail loudly.
const imports = {};
for (const { module: from, name, kind } of WebAssembly.Module.imports(module)) {
  if (kind !== 'function') throw new Error(`unexpected import ${from}.${name} (${kind})`);
  (imports[from] ??= {})[name] = () => { throw new Error(`kernels called the import ${from}.${name}`); };
}
const instance = await WebAssembly.instantiate(module, imports);
const k = instance.exports;
if (k.simd128_path() !== 1) { console.error('kernels do not take the simd128 path'); process.exit(1); }
const failures = k.check();
console.log(`simd128 vs scalar reference: ${failures} disagreements`);
if (failures !== 0) process.exit(1);

function median(f, passes) {
  const times = [];
  for (let i = 0; i < passes; i++) { const t = performance.now(); f(); times.push(performance.now() - t); }
  times.sort((a, b) => a - b);
  return times[times.length >> 1];
}

function plainJs(n, dim) {
  const mem = k.memory.buffer;
  const rows = new Int8Array(mem, k.bench_rows(), n * dim);
  const scales = new Float32Array(mem, k.bench_scales(), n);
  const query = new Float32Array(mem, k.bench_query(), dim);
  return () => {
    const best = []; // [score, index], kept sorted descending, at most 10
    for (let i = 0; i < n; i++) {
      if (i < 3) continue; // the session's items
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += rows[i * dim + j] * query[j];
      const score = dot * scales[i];
      if (best.length < 10 || score > best[best.length - 1][0]) {
        best.push([score, i]);
        best.sort((a, b) => b[0] - a[0] || a[1] - b[1]);
        if (best.length > 10) best.pop();
      }
    }
    return best[0][1];
  };
}

const dim = 64;
console.log('| items | top-10 ns/item | bound ns/item | Rust scalar ns/item | plain JS ns/item | top-10 / bound | plain JS / top-10 |');
console.log('|---:|---:|---:|---:|---:|---:|---:|');
for (const n of (sizes.length ? sizes : ['10000', '100000', '1000000']).map(Number)) {
  k.bench_setup(n, dim);
  const passes = n >= 1000000 ? 15 : 60;
  for (let i = 0; i < 3; i++) { k.bench_top10(); k.bench_bound(); }
  const top = median(() => k.bench_top10(), passes);
  const bound = median(() => k.bench_bound(), passes);
  const scalar = median(() => k.bench_top10_scalar(), Math.max(5, passes >> 2));
  const js = plainJs(n, dim);
  js();
  const plain = median(js, Math.max(5, passes >> 2));
  const ns = (ms) => (ms * 1e6 / n).toFixed(3);
  console.log(`| ${n.toLocaleString('en')} | ${ns(top)} | ${ns(bound)} | ${ns(scalar)} | ${ns(plain)} | ${(top / bound).toFixed(2)} | ${(plain / top).toFixed(1)} |`);
}

// Merchandising rules inside the scan (issue 16, point 1): the same workload as `cargo bench --bench
// rules` (benches/support/rules_workload.rs), timed in pairs (unfiltered, ruled) back to back, 101
// pairs after 3 warm-up pairs; the median of the per-pair ratios.
function pairs(a, b) {
  const ta = [], tb = [], ratios = [];
  for (let pass = 0; pass < 104; pass++) {
    let t = performance.now(); a(); const x = performance.now() - t;
    t = performance.now(); b(); const y = performance.now() - t;
    if (pass >= 3) { ta.push(x); tb.push(y); ratios.push(y / x); }
  }
  const med = (v) => v.sort((p, q) => p - q)[v.length >> 1];
  return [med(ta), med(tb), med(ratios)];
}
console.log('\nrules inside the scan, wasm-simd: filter "category=c3" (keeps ~10%) + boost "+0.1 sale", top-10 at d = 64');
console.log('| items | unfiltered µs | ruled µs | ruled / unfiltered | compile + ruled µs | (compile + ruled) / unfiltered | kept |');
console.log('|---:|---:|---:|---:|---:|---:|---:|');
for (const n of (sizes.length ? sizes : ['10000', '100000', '1000000']).map(Number)) {
  const kept = k.bench_rules_setup(n) / 1000;
  if (k.bench_rules_ruled() !== 10) { console.error(`ruled top-10 over ${n} items: not 10 hits kept by the filter`); process.exit(1); }
  const [plain, ruled, ratio] = pairs(() => k.bench_rules_plain(), () => k.bench_rules_ruled());
  const [plain2, both, ratio2] = pairs(() => k.bench_rules_plain(), () => k.bench_rules_compile_ruled());
  const us = (ms) => (ms * 1e3).toFixed(1);
  console.log(`| ${n} | ${us((plain + plain2) / 2)} | ${us(ruled)} | ${ratio.toFixed(2)} | ${us(both)} | ${ratio2.toFixed(2)} | ${kept.toFixed(3)} |`);
}
