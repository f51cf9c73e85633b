// The sequence tower's layers on `[rows, n]` row-major f32 activations. One invocation per output
// value (linear), per row (LayerNorm, softmax) or per (position, head) (attention): the tower's
// tensors are tiny (≤ 50 positions, d = 64, ffn 256), so simplicity beats tiling here.
// Operation order follows the CPU reference (runtime::kernels, runtime::tower) so results agree to
// rounding: products summed in eight lanes as kernels::scalar::dot_lanes8, sequential sums elsewhere.

const WG: u32 = 64u;

struct Shape {
    // Rows (positions) of the input, or values for element-wise kernels.
    rows: u32,
    // Output width (linear), row width (LayerNorm, softmax), model width (attention).
    n: u32,
    // Input width (linear).
    k: u32,
    // Attention: heads. Linear: the epilogue (0: y = result; 1: y = GELU(result), the FFN's
    // up-projection; 2: y += result, a residual add), fused to save a dispatch and a pass over y.
    heads: u32,
    eps: f32,
    // Attention: 1 / sqrt(head width).
    scale: f32,
    // Attention: 1 when position i sees only 0..=i.
    causal: u32,
    // Workgroups along x of the dispatch (the grid is 2-D beyond 65535 workgroups).
    groups_x: u32,
}

@group(0) @binding(0) var<uniform> shape: Shape;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> codes: array<u32>;
@group(0) @binding(6) var<storage, read> block_scales: array<f32>;
@group(0) @binding(7) var<storage, read> keys: array<f32>;
@group(0) @binding(8) var<storage, read> vals: array<f32>;

fn invocation(lid: u32, wid: vec3<u32>) -> u32 {
    return (wid.y * shape.groups_x + wid.x) * WG + lid;
}

fn reduce_lanes(l: vec4<f32>, h: vec4<f32>) -> f32 {
    return ((l.x + h.x) + (l.y + h.y)) + ((l.z + h.z) + (l.w + h.w));
}

fn x4(at: u32) -> vec4<f32> {
    return vec4<f32>(x[at], x[at + 1u], x[at + 2u], x[at + 3u]);
}

// y[r, o] = Σ_j x[r, j] · w[o, j] + bias[o]; w is [n, k] f32.
@compute @workgroup_size(WG)
fn linear_f32(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let at = invocation(lid, wid);
    if (at >= shape.rows * shape.n) {
        return;
    }
    let r = at / shape.n;
    let o = at % shape.n;
    let xb = r * shape.k;
    let wb = o * shape.k;
    let whole = shape.k / 8u * 8u;
    var low = vec4<f32>(0.0);
    var high = vec4<f32>(0.0);
    for (var j = 0u; j < whole; j += 8u) {
        let wl = vec4<f32>(w[wb + j], w[wb + j + 1u], w[wb + j + 2u], w[wb + j + 3u]);
        let wh = vec4<f32>(w[wb + j + 4u], w[wb + j + 5u], w[wb + j + 6u], w[wb + j + 7u]);
        low += wl * x4(xb + j);
        high += wh * x4(xb + j + 4u);
    }
    var acc = reduce_lanes(low, high);
    for (var j = whole; j < shape.k; j++) {
        acc += w[wb + j] * x[xb + j];
    }
    store_linear(at, acc + bias[o]);
}

// A linear layer's output value, through the epilogue `shape.heads` selects (Shape). The value is
// rounded to f32 before the epilogue, as the CPU's separate layers round it.
fn store_linear(at: u32, value: f32) {
    if (shape.heads == 1u) {
        y[at] = gelu_of(value);
    } else if (shape.heads == 2u) {
        y[at] = y[at] + value;
    } else {
        y[at] = value;
    }
}

// The four signed bytes of `word` (arithmetic shifts sign-extend), as f32.
fn code4(word: u32) -> vec4<f32> {
    let v = bitcast<i32>(word);
    return vec4<f32>(vec4<i32>(v << 24u, v << 16u, v << 8u, v) >> vec4<u32>(24u));
}

// As linear_f32 with w in Q8_0, repacked: `codes` the int8 values 4 per u32 (row-major), one f32
// scale per block of 32 in `block_scales`; k is a multiple of 32. scale · code is exact in f32, so
// this is linear_f32 over the dequantized matrix.
@compute @workgroup_size(WG)
fn linear_q8_0(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let at = invocation(lid, wid);
    if (at >= shape.rows * shape.n) {
        return;
    }
    let r = at / shape.n;
    let o = at % shape.n;
    let xb = r * shape.k;
    let wb = o * shape.k;
    var low = vec4<f32>(0.0);
    var high = vec4<f32>(0.0);
    for (var j = 0u; j < shape.k; j += 8u) {
        let d = block_scales[(wb + j) / 32u];
        low += (d * code4(codes[(wb + j) / 4u])) * x4(xb + j);
        high += (d * code4(codes[(wb + j) / 4u + 1u])) * x4(xb + j + 4u);
    }
    store_linear(at, reduce_lanes(low, high) + bias[o]);
}

// y[r] = (x[r] − mean) / sqrt(var + eps) · w + bias per row of n values (two passes, as candle's).
@compute @workgroup_size(WG)
fn layer_norm(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let r = invocation(lid, wid);
    if (r >= shape.rows) {
        return;
    }
    let n = shape.n;
    let b = r * n;
    var sum = 0.0;
    for (var j = 0u; j < n; j++) {
        sum += x[b + j];
    }
    let mean = sum / f32(n);
    var centred = 0.0;
    for (var j = 0u; j < n; j++) {
        let c = x[b + j] - mean;
        centred += c * c;
    }
    let inv = 1.0 / sqrt(centred / f32(n) + shape.eps);
    for (var j = 0u; j < n; j++) {
        y[b + j] = (x[b + j] - mean) * inv * w[j] + bias[j];
    }
}

// erfc(z) for z ≥ 0 (Abramowitz & Stegun 7.1.26, |error| ≤ 1.5e-7); WGSL has no erf. Computing the
// complement directly keeps GELU of negative inputs free of cancellation.
fn erfc_positive(z: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return poly * exp(-z * z);
}

// y = 0.5 · y · (1 + erf(y / √2)) in place (BERT's GELU), for `rows` values.
@compute @workgroup_size(WG)
fn gelu(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let at = invocation(lid, wid);
    if (at >= shape.rows) {
        return;
    }
    y[at] = gelu_of(y[at]);
}

fn gelu_of(v: f32) -> f32 {
    let e = erfc_positive(abs(v) * 0.70710678118654752);
    return select(0.5 * v * e, 0.5 * v * (2.0 - e), v >= 0.0);
}

// y += x element-wise, for `rows` values (residuals, position embeddings).
@compute @workgroup_size(WG)
fn add(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let at = invocation(lid, wid);
    if (at >= shape.rows) {
        return;
    }
    y[at] = y[at] + x[at];
}

// Softmax in place over each row of n values.
@compute @workgroup_size(WG)
fn softmax(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let r = invocation(lid, wid);
    if (r >= shape.rows) {
        return;
    }
    let b = r * shape.n;
    var m = y[b];
    for (var j = 1u; j < shape.n; j++) {
        m = max(m, y[b + j]);
    }
    var sum = 0.0;
    for (var j = 0u; j < shape.n; j++) {
        let e = exp(y[b + j] - m);
        y[b + j] = e;
        sum += e;
    }
    for (var j = 0u; j < shape.n; j++) {
        y[b + j] = y[b + j] / sum;
    }
}

fn attention_score(i: u32, j: u32, h0: u32, hd: u32) -> f32 {
    var s = 0.0;
    for (var c = 0u; c < hd; c++) {
        s += x[i * shape.n + h0 + c] * keys[j * shape.n + h0 + c];
    }
    return s * shape.scale;
}

// Multi-head scaled dot-product attention, heads side by side: queries in x, keys, values all
// [rows, n]; y [rows, n]. One invocation per (position i, head h), which owns y's values of that
// position and head: it zeroes them first (y may hold the previous call's values: the tower keeps its
// buffers). The scores are recomputed per pass instead of stored (≤ 50 positions).
@compute @workgroup_size(WG)
fn attention(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let at = invocation(lid, wid);
    if (at >= shape.rows * shape.heads) {
        return;
    }
    let i = at / shape.heads;
    let hd = shape.n / shape.heads;
    let h0 = (at % shape.heads) * hd;
    let visible = select(shape.rows, i + 1u, shape.causal == 1u);
    for (var c = 0u; c < hd; c++) {
        y[i * shape.n + h0 + c] = 0.0;
    }
    var m = attention_score(i, 0u, h0, hd);
    for (var j = 1u; j < visible; j++) {
        m = max(m, attention_score(i, j, h0, hd));
    }
    var sum = 0.0;
    for (var j = 0u; j < visible; j++) {
        sum += exp(attention_score(i, j, h0, hd) - m);
    }
    for (var j = 0u; j < visible; j++) {
        let weight = exp(attention_score(i, j, h0, hd) - m) / sum;
        for (var c = 0u; c < hd; c++) {
            y[i * shape.n + h0 + c] += weight * vals[j * shape.n + h0 + c];
        }
    }
}
