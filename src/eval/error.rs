//! The evaluation area's one error type: what went wrong, with the scorer, user and item involved.

/// Why an evaluation could not produce figures.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("unknown protocol `{given}`: expected warm, cold or transfer")]
    UnknownProtocol { given: String },

    #[error("test case of user {user}: {field} item index {item} is out of range (the catalogue has {n_items} items)")]
    ItemOutOfRange { user: u32, field: &'static str, item: u32, n_items: usize },

    #[error("training sequence of user {user}: item index {item} is out of range (the catalogue has {n_items} items)")]
    TrainingItemOutOfRange { user: usize, item: u32, n_items: usize },

    #[error(
        "scorer `{scorer}` returned scores of shape {got:?} for a batch of {batch}; expected [{batch}, {n_items}]"
    )]
    ScoreShape { scorer: String, batch: usize, n_items: usize, got: Vec<usize> },

    #[error("scorer `{scorer}` gave the target item {item} of user {user} a NaN score")]
    NanTargetScore { scorer: String, user: u32, item: u32 },

    #[error("{what}: expected an [n_items, d] matrix with {n_items} rows, got shape {got:?}")]
    ItemMatrixShape { what: &'static str, n_items: usize, got: Vec<usize> },

    #[error("{what}: {len} presence flags for {n_items} items")]
    PresenceLength { what: &'static str, len: usize, n_items: usize },

    #[error("scorer `{scorer}`: {source}")]
    Scorer {
        scorer: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("{path}{}: {reason}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    ReportInput { path: String, line: Option<usize>, reason: String },

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

impl EvalError {
    /// Wraps a model's own error (e.g. `ModelError`) so a [`Scorer`](super::Scorer) can return it.
    pub fn scorer(scorer: &str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        EvalError::Scorer { scorer: scorer.to_string(), source: Box::new(source) }
    }
}
