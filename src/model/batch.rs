//! Model-side batches: users' histories as item indices, right-padded (see `sequence_tower`), and
//! next-item training batches. Item indices are rows of the catalogue's item-vector matrix.

use candle_core::{Device, Tensor};

use super::error::ModelError;
use super::sequence_tower::real_position_indices;

/// `b` histories as a right-padded `[b, t]` `u32` matrix of item indices plus their lengths
/// (`t` = the longest kept history; padding holds index 0 and is never read).
#[derive(Debug, Clone)]
pub struct Histories {
    items: Tensor,
    lengths: Vec<usize>,
}

impl Histories {
    /// Keeps the last `max_len` items of each sequence (oldest first). Refuses an empty sequence
    /// or an index outside `0..n_items`, naming the row and position.
    pub fn new(sequences: &[&[u32]], max_len: usize, n_items: usize, device: &Device) -> Result<Self, ModelError> {
        let windows: Vec<&[u32]> = sequences.iter().map(|s| &s[s.len().saturating_sub(max_len)..]).collect();
        if let Some(row) = windows.iter().position(|w| w.is_empty()) {
            return Err(ModelError::EmptyHistory { row });
        }
        let offsets: Vec<usize> = sequences.iter().zip(&windows).map(|(s, w)| s.len() - w.len()).collect();
        check_items(&windows, &offsets, n_items)?;
        let (items, lengths) = pad(&windows, device)?;
        Ok(Histories { items, lengths })
    }

    /// `[b, t]` `u32` item indices.
    pub fn items(&self) -> &Tensor {
        &self.items
    }

    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    pub fn len(&self) -> usize {
        self.lengths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lengths.is_empty()
    }

    /// The histories' item vectors: `catalogue: [n_items, d]` → `[b, t, d]`.
    pub fn gather(&self, catalogue: &Tensor) -> Result<Tensor, ModelError> {
        let (b, t) = self.items.dims2()?;
        let d = catalogue.dim(1)?;
        Ok(catalogue.index_select(&self.items.flatten_all()?, 0)?.reshape((b, t, d))?)
    }
}

/// Causal next-item training examples: each sequence's window of its last `max_len + 1` items
/// gives inputs `w[..len-1]` and, at every position, the target `w[p + 1]`.
#[derive(Debug, Clone)]
pub struct NextItemBatch {
    inputs: Histories,
    targets: Tensor,
}

impl NextItemBatch {
    /// Refuses a sequence shorter than 2 or an index outside `0..n_items`.
    pub fn new(sequences: &[&[u32]], max_len: usize, n_items: usize, device: &Device) -> Result<Self, ModelError> {
        if let Some(row) = sequences.iter().position(|s| s.len() < 2) {
            return Err(ModelError::TooShort { row, len: sequences[row].len() });
        }
        let windows: Vec<&[u32]> = sequences.iter().map(|s| &s[s.len().saturating_sub(max_len + 1)..]).collect();
        let offsets: Vec<usize> = sequences.iter().zip(&windows).map(|(s, w)| s.len() - w.len()).collect();
        check_items(&windows, &offsets, n_items)?;
        let inputs: Vec<&[u32]> = windows.iter().map(|w| &w[..w.len() - 1]).collect();
        let targets: Vec<&[u32]> = windows.iter().map(|w| &w[1..]).collect();
        let (items, lengths) = pad(&inputs, device)?;
        let (targets, _) = pad(&targets, device)?;
        Ok(NextItemBatch { inputs: Histories { items, lengths }, targets })
    }

    pub fn inputs(&self) -> &Histories {
        &self.inputs
    }

    /// `[b, t]` `u32`: the item that follows position `p` (padding where `p ≥ length`).
    pub fn targets(&self) -> &Tensor {
        &self.targets
    }

    /// The targets of the real positions, row by row: `[Σ lengths]` `u32` (matches
    /// `sequence_tower::real_positions`).
    pub fn real_targets(&self) -> Result<Tensor, ModelError> {
        let t = self.targets.dim(1)?;
        let rows = real_position_indices(self.inputs.lengths(), t);
        let rows = Tensor::new(rows.as_slice(), self.targets.device())?;
        Ok(self.targets.flatten_all()?.index_select(&rows, 0)?)
    }
}

fn check_items(windows: &[&[u32]], offsets: &[usize], n_items: usize) -> Result<(), ModelError> {
    for (row, (window, offset)) in windows.iter().zip(offsets).enumerate() {
        if let Some(p) = window.iter().position(|&item| item as usize >= n_items) {
            return Err(ModelError::UnknownItem { row, position: offset + p, item: window[p], n_items });
        }
    }
    Ok(())
}

/// Right-pads with index 0 to the longest row: `[b, t]` `u32` and the lengths.
fn pad(rows: &[&[u32]], device: &Device) -> Result<(Tensor, Vec<usize>), ModelError> {
    let t = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut flat = Vec::with_capacity(rows.len() * t);
    for row in rows {
        flat.extend_from_slice(row);
        flat.extend(std::iter::repeat_n(0, t - row.len()));
    }
    let lengths = rows.iter().map(|r| r.len()).collect();
    Ok((Tensor::from_vec(flat, (rows.len(), t), device)?, lengths))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histories_keep_the_last_items_and_pad_on_the_right() {
        let h = Histories::new(&[&[1, 2, 3, 4], &[5]], 3, 10, &Device::Cpu).unwrap();
        assert_eq!(h.items().to_vec2::<u32>().unwrap(), vec![vec![2, 3, 4], vec![5, 0, 0]]);
        assert_eq!(h.lengths(), &[3, 1]);
    }

    #[test]
    fn next_item_batches_shift_by_one() {
        let batch = NextItemBatch::new(&[&[1, 2, 3, 4], &[7, 8]], 2, 10, &Device::Cpu).unwrap();
        assert_eq!(batch.inputs().items().to_vec2::<u32>().unwrap(), vec![vec![2, 3], vec![7, 0]]);
        assert_eq!(batch.targets().to_vec2::<u32>().unwrap(), vec![vec![3, 4], vec![8, 0]]);
        assert_eq!(batch.real_targets().unwrap().to_vec1::<u32>().unwrap(), vec![3, 4, 8]);
    }

    #[test]
    fn bad_sequences_are_named() {
        let err = Histories::new(&[&[1], &[]], 5, 10, &Device::Cpu).unwrap_err();
        assert!(matches!(err, ModelError::EmptyHistory { row: 1 }), "{err}");
        let err = Histories::new(&[&[1, 2, 12]], 5, 10, &Device::Cpu).unwrap_err();
        assert!(matches!(err, ModelError::UnknownItem { row: 0, position: 2, item: 12, .. }), "{err}");
        let err = NextItemBatch::new(&[&[1, 2], &[3]], 5, 10, &Device::Cpu).unwrap_err();
        assert!(matches!(err, ModelError::TooShort { row: 1, len: 1 }), "{err}");
    }
}
