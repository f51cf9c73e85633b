//! Evaluation (docs/evaluation.md): the protocols (`warm`, `cold`, `transfer`), full-ranking metrics
//! (Recall@10/50, NDCG@10/50, MRR@10; unmasked = primary, and history-masked), the model-free
//! baselines, and the report.
//!
//! Everything a model needs to be judged is the [`Scorer`] trait: histories in, `[b, n_items]`
//! scores out. The path: [`EvalPlan::new`] (dataset + protocol → training split + test cases) →
//! train on `plan.split` → [`EvalPlan::run`] per scorer (one pass gives unmasked and masked ranks)
//! → [`Report`]; [`quality`] adds the data-quality and exposure analysis and (native)
//! [`report_html`] the self-contained `RUN/report.html`; [`evaluate_approximate`] judges a bundle
//! index's approximate path against the exact ranking (`omakase eval --index`). Pure and deterministic: same scores ⇒ same figures, to the bit.

mod approximate;
mod baselines;
mod error;
mod metrics;
mod protocol;
pub mod quality;
mod report;
#[cfg(feature = "native")]
pub mod report_html;
mod scorer;
pub mod significance;

pub use approximate::{evaluate_approximate, Approximate, EvalIndex, IndexReport, ProbeFigures, RECALL_K};
pub use baselines::{ContentKnn, Modality, Popularity};
pub use error::EvalError;
pub use metrics::{mask_history, mrr_at, ndcg_at, rank, rank_masked, recall_at, MetricRatios, Metrics, CUTOFFS};
pub use protocol::{EvalPlan, EvalProtocol, ProtocolResult};
pub use report::{Against, CaseFigures, Report};
pub use scorer::{evaluate, Evaluation, RecommenderScorer, Scorer, UserVectors};
