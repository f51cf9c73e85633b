// int8 rows, 4 codes per u32 (little-endian: code j in bits 8·(j mod 4)), a row padded with zero
// codes to whole vec4<u32> words; one f32 scale per row. The query is the CPU kernels' i16
// quantization (kernels::QuantizedQuery), held as i32: the dot product is exact in i32 and the score
// is f32(dot) · query_scale · row_scale, the CPU reference's operations in its order.

@group(0) @binding(1) var<storage, read> rows: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> query: array<vec4<i32>>;
@group(0) @binding(3) var<storage, read> row_scales: array<f32>;

// The four signed bytes of `w` (arithmetic shifts sign-extend).
fn codes(w: u32) -> vec4<i32> {
    let v = bitcast<i32>(w);
    return vec4<i32>(v << 24u, v << 16u, v << 8u, v) >> vec4<u32>(24u);
}

fn row_score(r: u32) -> f32 {
    let base = r * params.row_words;
    var acc = 0i;
    for (var c = 0u; c < params.row_words; c++) {
        let w = rows[base + c];
        acc += dot(codes(w.x), query[4u * c]) + dot(codes(w.y), query[4u * c + 1u])
             + dot(codes(w.z), query[4u * c + 2u]) + dot(codes(w.w), query[4u * c + 3u]);
    }
    return f32(acc) * params.query_scale * row_scales[r];
}
