// EfficientNet-Lite0's layers (efficientnet.rs): stem conv k×k stride s over the NCHW input, depthwise
// k×k stride s, pointwise 1×1 (a product over channels), each with its folded BatchNorm bias, the
// block's residual and ReLU6 fused in; then the global average pool. Activations are channels-last
// `[h, w, c]` f32, the CPU encoder's layout (src/encoders/image), so every kernel reads what its CPU
// twin reads. TF "same" padding: the caller passes the leading pad (`pad_top`, `pad_left`); taps that
// fall outside the input are skipped (zero padding), never read.
//
// One invocation per output value (stem, depthwise, pool) or per 4 pixels × 4 channels (pointwise).
// The grid is 2-D when it has more than 65535 workgroups; the index below flattens it.

struct Params {
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    c_in: u32,
    c_out: u32,
    kernel: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    relu6: u32,
    residual: u32,
    pixels: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> weight: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> residual: array<f32>;

const WG: u32 = 64u;

fn flat(wid: vec3<u32>, groups: vec3<u32>, lid: u32) -> u32 {
    return (wid.y * groups.x + wid.x) * WG + lid;
}

fn act(v: f32) -> f32 {
    if (p.relu6 != 0u) {
        return clamp(v, 0.0, 6.0);
    }
    return v;
}

// x `[c_in, in_h, in_w]` (NCHW: the network input), weight `[c_in·k·k, c_out]` (rows in (c_in, ky, kx)
// order), bias `[c_out]` → y `[out_h, out_w, c_out]`.
@compute @workgroup_size(64)
fn stem(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, groups, lid);
    if (i >= p.out_h * p.out_w * p.c_out) {
        return;
    }
    let co = i % p.c_out;
    let pixel = i / p.c_out;
    let oy = pixel / p.out_w;
    let ox = pixel % p.out_w;
    let k = p.kernel;
    var acc = 0.0;
    for (var ci = 0u; ci < p.c_in; ci++) {
        for (var ky = 0u; ky < k; ky++) {
            let iy = i32(oy * p.stride + ky) - i32(p.pad_top);
            if (iy < 0 || iy >= i32(p.in_h)) {
                continue;
            }
            for (var kx = 0u; kx < k; kx++) {
                let ix = i32(ox * p.stride + kx) - i32(p.pad_left);
                if (ix < 0 || ix >= i32(p.in_w)) {
                    continue;
                }
                let v = x[(ci * p.in_h + u32(iy)) * p.in_w + u32(ix)];
                acc += v * weight[((ci * k + ky) * k + kx) * p.c_out + co];
            }
        }
    }
    y[i] = act(acc + bias[co]);
}

// x `[in_h, in_w, c]`, weight `[k·k, c]` (each tap's weight for every channel), bias `[c]` →
// y `[out_h, out_w, c]` (c = c_out = c_in). Bias first, then the taps in row-major order, as the CPU
// kernel sums (depthwise.rs).
@compute @workgroup_size(64)
fn depthwise(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, groups, lid);
    let c = p.c_out;
    if (i >= p.out_h * p.out_w * c) {
        return;
    }
    let ch = i % c;
    let pixel = i / c;
    let oy = pixel / p.out_w;
    let ox = pixel % p.out_w;
    let k = p.kernel;
    var acc = bias[ch];
    for (var ky = 0u; ky < k; ky++) {
        let iy = i32(oy * p.stride + ky) - i32(p.pad_top);
        if (iy < 0 || iy >= i32(p.in_h)) {
            continue;
        }
        for (var kx = 0u; kx < k; kx++) {
            let ix = i32(ox * p.stride + kx) - i32(p.pad_left);
            if (ix < 0 || ix >= i32(p.in_w)) {
                continue;
            }
            acc += x[(u32(iy) * p.in_w + u32(ix)) * c + ch] * weight[(ky * k + kx) * c + ch];
        }
    }
    y[i] = act(acc);
}

fn store(pixel: u32, c0: u32, v: vec4<f32>) {
    if (pixel >= p.pixels) {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        let c = c0 + j;
        if (c < p.c_out) {
            let at = pixel * p.c_out + c;
            var out = v[j] + bias[c];
            if (p.residual != 0u) {
                out += residual[at];
            }
            y[at] = act(out);
        }
    }
}

// x `[pixels, c_in]`, weight `[c_in, c_out]` (the CPU's transposed layout), bias `[c_out]`, residual
// `[pixels, c_out]` when `p.residual` → y `[pixels, c_out]` = act((x·W + bias) + residual). Each
// invocation keeps 4 pixels × 4 channels in registers; neighbouring invocations take neighbouring
// channel groups of the same pixels, so their weight loads are contiguous and their input loads the same.
@compute @workgroup_size(64)
fn pointwise(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
             @builtin(local_invocation_index) lid: u32) {
    let i = flat(wid, groups, lid);
    let channel_groups = (p.c_out + 3u) / 4u;
    if (i >= channel_groups * ((p.pixels + 3u) / 4u)) {
        return;
    }
    let c0 = (i % channel_groups) * 4u;
    let p0 = (i / channel_groups) * 4u;
    // Out-of-range rows and columns read the last valid one (always in bounds); store() drops them.
    let last_p = p.pixels - 1u;
    let last_c = p.c_out - 1u;
    let r0 = min(p0, last_p) * p.c_in;
    let r1 = min(p0 + 1u, last_p) * p.c_in;
    let r2 = min(p0 + 2u, last_p) * p.c_in;
    let r3 = min(p0 + 3u, last_p) * p.c_in;
    let cc = min(vec4<u32>(c0, c0 + 1u, c0 + 2u, c0 + 3u), vec4<u32>(last_c));
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var a3 = vec4<f32>(0.0);
    for (var k = 0u; k < p.c_in; k++) {
        let row = k * p.c_out;
        let w = vec4<f32>(weight[row + cc.x], weight[row + cc.y], weight[row + cc.z], weight[row + cc.w]);
        a0 += x[r0 + k] * w;
        a1 += x[r1 + k] * w;
        a2 += x[r2 + k] * w;
        a3 += x[r3 + k] * w;
    }
    store(p0, c0, a0);
    store(p0 + 1u, c0, a1);
    store(p0 + 2u, c0, a2);
    store(p0 + 3u, c0, a3);
}

// x `[pixels, c_out]` → y `[c_out]`: the mean over the pixels, summed in pixel order then divided (the
// CPU's order).
@compute @workgroup_size(64)
fn pool(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let c = flat(wid, groups, lid);
    if (c >= p.c_out) {
        return;
    }
    var sum = 0.0;
    for (var pixel = 0u; pixel < p.pixels; pixel++) {
        sum += x[pixel * p.c_out + c];
    }
    y[c] = sum / f32(p.pixels);
}
