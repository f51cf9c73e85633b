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
