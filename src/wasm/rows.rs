//! Item rows as the GPU table (and the benchmark's plain-JS loop) read them: what
//! `runtime::store::ItemStore` keeps in memory, rebuilt from the shard bytes the facade downloaded
//! (the store keeps its rows private). The arithmetic is the store's, line for line, so the GPU scans
//! the very values the CPU scans: int8 codes with `1 / ‖codes‖` as the row scale (cosine), or f16
//! rows rescaled to unit length.

use half::f16;

use crate::runtime::store::quantize_int8;
use crate::runtime::EmbeddingDtype;

/// Rows ready for scoring, `[n, dim]` row-major.
#[derive(Debug, Clone)]
pub(crate) enum ScoringRows {
    Int8 { codes: Vec<i8>, score_scales: Vec<f32> },
    F16 { unit: Vec<f16> },
}

impl ScoringRows {
    pub fn new(dtype: EmbeddingDtype) -> ScoringRows {
        match dtype {
            EmbeddingDtype::Int8 => ScoringRows::Int8 { codes: Vec::new(), score_scales: Vec::new() },
            EmbeddingDtype::F16 => ScoringRows::F16 { unit: Vec::new() },
        }
    }

    /// Appends a shard's bytes (`rows` rows of `dim`, docs/bundle.md layout; already size-checked).
    pub fn push_shard(&mut self, bytes: &[u8], rows: usize, dim: usize) {
        match self {
            ScoringRows::Int8 { codes, score_scales } => {
                let (scales, data) = bytes.split_at((rows * 4).min(bytes.len()));
                for (s, row) in scales.chunks_exact(4).zip(data.chunks_exact(dim)) {
                    let s = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                    let row: Vec<i8> = row.iter().map(|&b| b as i8).collect();
                    push_int8(codes, score_scales, &row, s);
                }
            }
            ScoringRows::F16 { unit } => {
                for row in bytes.chunks_exact(2 * dim) {
                    let values: Vec<f32> =
                        row.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
                    push_f16(unit, &values);
                }
            }
        }
    }

    /// Appends one f32 vector, quantized as `ItemStore::push` does.
    pub fn push_vector(&mut self, vector: &[f32]) {
        match self {
            ScoringRows::Int8 { codes, score_scales } => {
                let (row, s) = quantize_int8(vector);
                push_int8(codes, score_scales, &row, s);
            }
            ScoringRows::F16 { unit } => {
                let rounded: Vec<f32> = vector.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
                push_f16(unit, &rounded);
            }
        }
    }
}

fn push_int8(codes: &mut Vec<i8>, score_scales: &mut Vec<f32>, row: &[i8], s: f32) {
    let norm = row.iter().map(|&c| (c as f32) * (c as f32)).sum::<f32>().sqrt();
    codes.extend_from_slice(row);
    score_scales.push(if norm > 0.0 && s > 0.0 { 1.0 / norm } else { 0.0 });
}

fn push_f16(unit: &mut Vec<f16>, values: &[f32]) {
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    unit.extend(values.iter().map(|v| f16::from_f32(v * inv)));
}
