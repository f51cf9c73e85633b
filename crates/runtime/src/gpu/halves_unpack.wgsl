// f16 rows read as u32 pairs and widened with unpack2x16float (no shader-f16 needed).
@group(0) @binding(1) var<storage, read> rows: array<vec4<u32>>;

fn low(word: u32) -> vec4<f32> {
    let w = rows[word];
    return vec4<f32>(unpack2x16float(w.x), unpack2x16float(w.y));
}

fn high(word: u32) -> vec4<f32> {
    let w = rows[word];
    return vec4<f32>(unpack2x16float(w.z), unpack2x16float(w.w));
}
