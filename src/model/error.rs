//! The model area's one error type: bad configs and bad inputs are reported with what and where
//! (row, position, field), never a panic.

use omakase_runtime::config::ItemView;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(transparent)]
    Config(#[from] omakase_runtime::config::ConfigError),

    #[error("{what}: expected shape {expected}, got {got:?}")]
    Shape { what: &'static str, expected: String, got: Vec<usize> },

    #[error("item row {row} has no modality left in the {view} view (no text and no image): it cannot get a vector")]
    NoModality { row: usize, view: ItemView },

    #[error("history {row} is empty: a user vector needs at least one item")]
    EmptyHistory { row: usize },

    #[error("sequence {row} has {len} item(s): next-item training needs at least 2")]
    TooShort { row: usize, len: usize },

    #[error(
        "history {row}, position {position}: item index {item} is out of range (the catalogue has {n_items} items)"
    )]
    UnknownItem { row: usize, position: usize, item: u32, n_items: usize },

    #[error("{what}: length {len} of row {row} is not in 1..={max}")]
    BadLength { what: &'static str, row: usize, len: usize, max: usize },

    #[error("{what}: {len} positions exceed the model's max_len {max_len}")]
    TooLong { what: &'static str, len: usize, max_len: usize },

    #[error("pretraining needs items with both text and image; this batch has {found}")]
    NoPairs { found: usize },

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Checks a tensor's dims, naming the input in the error.
pub(crate) fn expect_dims(
    what: &'static str,
    tensor: &candle_core::Tensor,
    expected: &[Option<usize>],
) -> Result<(), ModelError> {
    let got = tensor.dims();
    let fits = got.len() == expected.len() && got.iter().zip(expected).all(|(g, e)| e.is_none_or(|e| e == *g));
    if fits {
        return Ok(());
    }
    let expected = expected.iter().map(|e| e.map_or("_".to_string(), |e| e.to_string())).collect::<Vec<_>>().join(", ");
    Err(ModelError::Shape { what, expected: format!("[{expected}]"), got: got.to_vec() })
}
