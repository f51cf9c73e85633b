//! Item vectors in memory, as the shards store them (int8 rows + per-row scale, or f16 rows), with
//! what cosine scoring needs precomputed at load.
//!
//! Shards hold the item tower's raw vectors (the sequence tower reads them as they are); scoring is
//! cosine. So at load each row's norm is measured once on its *stored* (dequantized) values and
//! folded into a second scale (int8: `score_scale = 1 / ‖codes‖`; f16: rows rescaled to unit length,
//! their norm kept): the scan then yields the cosine of the stored direction directly, with no
//! per-query normalisation of the catalogue.

use half::f16;

use super::error::RuntimeError;
use super::kernels::{self, TopK};
use super::manifest::EmbeddingDtype;

/// `n` rows of width `dim`.
#[derive(Debug, Clone)]
pub struct ItemStore {
    dim: usize,
    rows: Rows,
}

#[derive(Debug, Clone)]
enum Rows {
    /// Row `r` is `codes[r] × scale[r]`; `score_scale[r] = 1 / ‖codes[r]‖` (0 for an absent row).
    Int8 { codes: Vec<i8>, scale: Vec<f32>, score_scale: Vec<f32> },
    /// Row `r` is `unit[r] × norm[r]` (`unit` has length 1, or is all zero for an absent row).
    F16 { unit: Vec<f16>, norm: Vec<f32> },
}

impl ItemStore {
    /// An empty store of `dtype` rows.
    pub fn new(dtype: EmbeddingDtype, dim: usize) -> Self {
        let rows = match dtype {
            EmbeddingDtype::Int8 => Rows::Int8 { codes: Vec::new(), scale: Vec::new(), score_scale: Vec::new() },
            EmbeddingDtype::F16 => Rows::F16 { unit: Vec::new(), norm: Vec::new() },
        };
        ItemStore { dim, rows }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        match &self.rows {
            Rows::Int8 { scale, .. } => scale.len(),
            Rows::F16 { norm, .. } => norm.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends one shard's bytes (`rows` rows; the length was checked against the manifest).
    /// A non-finite scale or value is refused, naming the shard file and row.
    pub fn append_shard(&mut self, file: &str, bytes: &[u8], rows: usize) -> Result<(), RuntimeError> {
        let dim = self.dim;
        let bad_row = |r: usize, what: &str| RuntimeError::format(file, format!("row {r}: {what}"));
        match &mut self.rows {
            Rows::Int8 { codes, scale, score_scale } => {
                let (scales, data) = bytes.split_at(rows * 4);
                for (r, (s, row)) in scales.chunks_exact(4).zip(data.chunks_exact(dim)).enumerate() {
                    let s = f32::from_le_bytes([s[0], s[1], s[2], s[3]]);
                    if !s.is_finite() || s < 0.0 {
                        return Err(bad_row(r, &format!("scale {s} is not a finite non-negative number")));
                    }
                    let row: Vec<i8> = row.iter().map(|&b| b as i8).collect();
                    // A finite scale can still overflow the row (3e38 · 127) or its norm, which
                    // the towers and the cosine need: refused here, naming the row.
                    let squares = row.iter().map(|&c| c as f32 * s).map(|v| v * v).sum::<f32>();
                    if !squares.is_finite() {
                        return Err(bad_row(r, &format!("scale {s} makes the row's values or norm non-finite")));
                    }
                    push_int8(codes, scale, score_scale, &row, s);
                }
            }
            Rows::F16 { unit, norm } => {
                for (r, row) in bytes.chunks_exact(2 * dim).enumerate() {
                    let values: Vec<f32> =
                        row.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect();
                    if values.iter().any(|v| !v.is_finite()) {
                        return Err(bad_row(r, "a value is not finite"));
                    }
                    push_f16(unit, norm, &values);
                }
            }
        }
        Ok(())
    }

    /// Appends one f32 vector (quantized like the shards: int8 by max |v| / 127, or f16).
    pub fn push(&mut self, vector: &[f32]) {
        debug_assert_eq!(vector.len(), self.dim);
        match &mut self.rows {
            Rows::Int8 { codes, scale, score_scale } => {
                let (row, s) = quantize_int8(vector);
                push_int8(codes, scale, score_scale, &row, s);
            }
            Rows::F16 { unit, norm } => {
                let rounded: Vec<f32> = vector.iter().map(|&v| f16::from_f32(v).to_f32()).collect();
                push_f16(unit, norm, &rounded);
            }
        }
    }

    /// Whether row `r` holds a vector (explain stores mark an absent modality by an empty row).
    pub fn is_present(&self, r: usize) -> bool {
        match &self.rows {
            Rows::Int8 { score_scale, .. } => score_scale[r] > 0.0,
            Rows::F16 { norm, .. } => norm[r] > 0.0,
        }
    }

    /// Row `r` as stored (dequantized), the vector the sequence tower reads.
    pub fn vector(&self, r: usize) -> Vec<f32> {
        let d = self.dim;
        match &self.rows {
            Rows::Int8 { codes, scale, .. } => codes[r * d..(r + 1) * d].iter().map(|&c| c as f32 * scale[r]).collect(),
            Rows::F16 { unit, norm } => unit[r * d..(r + 1) * d].iter().map(|u| u.to_f32() * norm[r]).collect(),
        }
    }

    /// Row `r` at unit length (all zero for an absent row).
    pub fn unit_vector(&self, r: usize) -> Vec<f32> {
        let d = self.dim;
        match &self.rows {
            Rows::Int8 { codes, score_scale, .. } => {
                codes[r * d..(r + 1) * d].iter().map(|&c| c as f32 * score_scale[r]).collect()
            }
            Rows::F16 { unit, .. } => unit[r * d..(r + 1) * d].iter().map(|u| u.to_f32()).collect(),
        }
    }

    /// Cosine of every row with `query` (which must have unit length): `out` `[n]`.
    pub fn score_all(&self, query: &[f32], out: &mut [f32]) {
        match &self.rows {
            Rows::Int8 { codes, score_scale, .. } => kernels::score_int8(codes, score_scale, self.dim, query, out),
            Rows::F16 { unit, .. } => kernels::score_f16(unit, self.dim, query, out),
        }
    }

    /// Scans every row into `top` (cosine with the unit-length `query`).
    pub fn scan(&self, query: &[f32], top: &mut TopK) {
        if self.is_empty() {
            return;
        }
        match &self.rows {
            Rows::Int8 { codes, score_scale, .. } => kernels::scan_int8(codes, score_scale, self.dim, query, 0, top),
            Rows::F16 { unit, .. } => kernels::scan_f16(unit, self.dim, query, 0, top),
        }
    }

    /// Scans only the rows `indices` (ascending, each below [`ItemStore::len`]) into `top`, each
    /// scored exactly as [`ItemStore::scan`] scores it (a filter keeping few rows).
    pub fn scan_rows(&self, query: &[f32], indices: &mut dyn Iterator<Item = usize>, top: &mut TopK) {
        match &self.rows {
            Rows::Int8 { codes, score_scale, .. } => {
                kernels::scan_int8_rows(codes, score_scale, self.dim, query, indices, top)
            }
            Rows::F16 { unit, .. } => kernels::scan_f16_rows(unit, self.dim, query, indices, top),
        }
    }

    /// The int8 rows as scanned: codes `[n, dim]` and the cosine scales `[n]` (`1 / ‖codes_r‖`), so
    /// `cosine_r = score_scale[r] · Σ_j codes[r, j] · q_j` for a unit query (a GPU backend uploads
    /// exactly these). `None` for f16 rows.
    pub fn int8_rows(&self) -> Option<(&[i8], &[f32])> {
        match &self.rows {
            Rows::Int8 { codes, score_scale, .. } => Some((codes, score_scale)),
            Rows::F16 { .. } => None,
        }
    }

    /// The f16 rows as scanned: unit-length rows `[n, dim]` (`cosine_r = Σ_j rows[r, j] · q_j`).
    /// `None` for int8 rows.
    pub fn f16_rows(&self) -> Option<&[f16]> {
        match &self.rows {
            Rows::F16 { unit, .. } => Some(unit),
            Rows::Int8 { .. } => None,
        }
    }

    /// Bytes of the rows in memory.
    pub fn memory_bytes(&self) -> usize {
        match &self.rows {
            Rows::Int8 { codes, .. } => codes.len() + 8 * self.len(),
            Rows::F16 { unit, .. } => 2 * unit.len() + 4 * self.len(),
        }
    }
}

fn push_int8(codes: &mut Vec<i8>, scale: &mut Vec<f32>, score_scale: &mut Vec<f32>, row: &[i8], s: f32) {
    let norm = row.iter().map(|&c| (c as f32) * (c as f32)).sum::<f32>().sqrt();
    codes.extend_from_slice(row);
    scale.push(s);
    score_scale.push(if norm > 0.0 && s > 0.0 { 1.0 / norm } else { 0.0 });
}

fn push_f16(unit: &mut Vec<f16>, norms: &mut Vec<f32>, values: &[f32]) {
    let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
    let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    unit.extend(values.iter().map(|v| f16::from_f32(v * inv)));
    norms.push(norm);
}

/// Symmetric int8 quantization of one row: codes and the scale with `row ≈ codes × scale`
/// (scale = max |v| / 127; an all-zero row gets scale 0, which marks it absent).
pub fn quantize_int8(row: &[f32]) -> (Vec<i8>, f32) {
    let max = row.iter().fold(0f32, |m, v| m.max(v.abs()));
    if max == 0.0 || !max.is_finite() {
        return (vec![0; row.len()], 0.0);
    }
    let scale = max / 127.0;
    (row.iter().map(|v| (v / scale).round().clamp(-127.0, 127.0) as i8).collect(), scale)
}

/// One shard's bytes for `rows` (`[n, dim]` f32, row-major), in `dtype`'s layout (docs/bundle.md);
/// `None` rows (absent modality in an explain shard) are written empty.
pub fn encode_shard(dtype: EmbeddingDtype, dim: usize, rows: &[Option<&[f32]>]) -> Vec<u8> {
    match dtype {
        EmbeddingDtype::Int8 => {
            let quantized: Vec<(Vec<i8>, f32)> =
                rows.iter().map(|r| r.map_or_else(|| (vec![0; dim], 0.0), quantize_int8)).collect();
            let mut bytes = Vec::with_capacity(rows.len() * (dim + 4));
            quantized.iter().for_each(|(_, s)| bytes.extend_from_slice(&s.to_le_bytes()));
            quantized.iter().for_each(|(codes, _)| bytes.extend(codes.iter().map(|&c| c as u8)));
            bytes
        }
        EmbeddingDtype::F16 => rows
            .iter()
            .flat_map(|r| match r {
                Some(values) => values.iter().map(|&v| f16::from_f32(v)).collect::<Vec<_>>(),
                None => vec![f16::ZERO; dim],
            })
            .flat_map(|h| h.to_le_bytes())
            .collect(),
    }
}
