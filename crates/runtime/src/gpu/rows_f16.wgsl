// f16 rows, a row padded with zeros to whole 16-byte words (8 values); the half reader defines `rows`
// and `low(word)` / `high(word)` (values 0..4 and 4..8 of a word). Sums in f32 in eight lanes (lane l
// takes values j ≡ l mod 8), reduced as the CPU reference's `dot_lanes8`:
// ((l0+l4)+(l1+l5)) + ((l2+l6)+(l3+l7)).

@group(0) @binding(2) var<storage, read> query: array<vec4<f32>>;

fn row_score(r: u32) -> f32 {
    let base = r * params.row_words;
    var lanes_low = vec4<f32>(0.0);
    var lanes_high = vec4<f32>(0.0);
    for (var c = 0u; c < params.row_words; c++) {
        lanes_low += low(base + c) * query[2u * c];
        lanes_high += high(base + c) * query[2u * c + 1u];
    }
    let l = lanes_low;
    let h = lanes_high;
    return ((l.x + h.x) + (l.y + h.y)) + ((l.z + h.z) + (l.w + h.w));
}
