// f16 rows read as f16 (shader-f16 granted); two vec4<f16> per 16-byte word.
enable f16;

@group(0) @binding(1) var<storage, read> rows: array<vec4<f16>>;

fn low(word: u32) -> vec4<f32> {
    return vec4<f32>(rows[2u * word]);
}

fn high(word: u32) -> vec4<f32> {
    return vec4<f32>(rows[2u * word + 1u]);
}
