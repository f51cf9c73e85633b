//! The query of an int8 scan, quantized once to i16 so that the scan runs on integers.
//!
//! Why: the dot product of an int8 row with an f32 query needs a conversion of every row byte to f32
//! (three instructions per 8 values); with the query as i16, one `pmaddwd` / `i32x4.dot_i16x8`
//! multiplies and pair-sums 16 values, and integer sums are exact, so the scalar, AVX2 and simd128
//! paths give bit-identical scores. The query keeps ≥ 15 significant bits for dims ≤ 512 (its error is
//! ≤ max|q| / (2·qmax) per value, next to the rows' own int8 rounding of max|row| / 254).

/// A query `q` as `values[j] · scale ≈ q[j]`, with |values[j]| ≤ qmax, where qmax is chosen so that
/// Σ_j |row_j · values[j]| ≤ 128 · qmax · dim fits in an i32 (no overflow in any summation order).
#[derive(Debug, Clone, PartialEq)]
pub struct QuantizedQuery {
    pub values: Vec<i16>,
    pub scale: f32,
}

impl QuantizedQuery {
    /// Largest |value| for a query of `dim` values: min(32767, ⌊(2³¹ − 1) / (128 · dim)⌋), at least 1.
    pub fn qmax(dim: usize) -> i32 {
        let bound = (i32::MAX as usize) / (128 * dim.max(1));
        bound.clamp(1, i16::MAX as usize) as i32
    }

    /// Symmetric quantization by the largest |q[j]|. An all-zero query gives scale 0 (every score 0);
    /// a query with NaN or ±∞ gives a NaN scale (every score NaN, so a top-K keeps nothing).
    pub fn new(query: &[f32]) -> Self {
        let qmax = Self::qmax(query.len());
        let max_abs = query.iter().fold(0f32, |m, &v| if v.abs() > m || v.is_nan() { v.abs() } else { m });
        if !max_abs.is_finite() {
            return QuantizedQuery { values: vec![0; query.len()], scale: f32::NAN };
        }
        if max_abs == 0.0 {
            return QuantizedQuery { values: vec![0; query.len()], scale: 0.0 };
        }
        let inverse = qmax as f32 / max_abs;
        let values = query.iter().map(|&v| (v * inverse).round().clamp(-qmax as f32, qmax as f32) as i16).collect();
        QuantizedQuery { values, scale: max_abs / qmax as f32 }
    }
}
