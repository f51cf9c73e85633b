//! GGML Q8_0 weights: blocks of 32 values along a row, each stored as an f16 scale `d` (little-endian)
//! followed by 32 i8 `qs`; value = d · qs (34 bytes per block, the layout of GGUF files and of
//! candle's `BlockQ8_0`). A `[n, k]` matrix is n rows of k / 32 blocks.
//!
//! The sequence tower's products are tiny (k, n ≤ 256, ≤ 50 positions), so a weight row is expanded to
//! f32 once (exactly: an f16 times an i8 fits f32's mantissa) and multiplied by every position with
//! the f32 kernel; the result equals the f32 product with the dequantized matrix, bit for bit.

use half::f16;

/// Values per Q8_0 block.
pub const QK8_0: usize = 32;
/// Bytes per Q8_0 block: f16 scale + 32 i8.
pub const BLOCK_Q8_0_BYTES: usize = 2 + QK8_0;

/// Bytes of a Q8_0 `[n, k]` matrix (k a multiple of 32).
pub fn q8_0_bytes(n: usize, k: usize) -> usize {
    n * (k / QK8_0) * BLOCK_Q8_0_BYTES
}

/// Expands Q8_0 blocks (`blocks.len() / 34` of them) into `out` (32 values per block).
///
/// Panics if `blocks.len()` is not a multiple of 34 or `out.len() != blocks.len() / 34 · 32`.
pub fn dequantize_q8_0(blocks: &[u8], out: &mut [f32]) {
    assert_eq!(blocks.len() % BLOCK_Q8_0_BYTES, 0, "dequantize_q8_0: partial block");
    assert_eq!(out.len(), blocks.len() / BLOCK_Q8_0_BYTES * QK8_0, "dequantize_q8_0: output length");
    for (block, out) in blocks.chunks_exact(BLOCK_Q8_0_BYTES).zip(out.chunks_exact_mut(QK8_0)) {
        let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
        for (o, &q) in out.iter_mut().zip(&block[2..]) {
            *o = d * (q as i8) as f32;
        }
    }
}
