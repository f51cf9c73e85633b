//! The protocols of docs/evaluation.md as evaluation plans: which split a model trains on, which test cases
//! it is judged on, and (cold) which cases give the warm figures the cold ones are compared with.
//!
//! - `warm`: the leave-one-out split; every test case.
//! - `cold`: the model trains on the cold split (new items removed). Every warm test case is scored
//!   once, history unchanged; the primary figures are over the cases whose target is new, the
//!   comparison figures over the others — one model, one pass, so the cold/warm ratio compares like
//!   with like.
//! - `transfer`: a model trained elsewhere is judged on this dataset's warm test cases (zero-shot, or
//!   after fine-tuning on the warm split's training part): evaluation-wise, the warm plan.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::EvalError;
use super::scorer::{evaluate, Evaluation, Scorer};
use crate::data::split::{self, Protocol, Split, TestCase};
use crate::data::Dataset;

/// `--protocol warm|cold|transfer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalProtocol {
    Warm,
    Cold,
    Transfer,
}

impl EvalProtocol {
    /// The split the evaluated model trains (or fine-tunes) on.
    pub fn split_protocol(self) -> Protocol {
        match self {
            EvalProtocol::Warm | EvalProtocol::Transfer => Protocol::Warm,
            EvalProtocol::Cold => Protocol::Cold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EvalProtocol::Warm => "warm",
            EvalProtocol::Cold => "cold",
            EvalProtocol::Transfer => "transfer",
        }
    }
}

impl fmt::Display for EvalProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EvalProtocol {
    type Err = EvalError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "warm" => Ok(EvalProtocol::Warm),
            "cold" => Ok(EvalProtocol::Cold),
            "transfer" => Ok(EvalProtocol::Transfer),
            _ => Err(EvalError::UnknownProtocol { given: s.to_string() }),
        }
    }
}

/// What one protocol evaluates on a dataset.
#[derive(Debug, Clone)]
pub struct EvalPlan {
    pub protocol: EvalProtocol,
    /// What models (and the popularity baseline) may learn from.
    pub split: Split,
    /// Every case scored, in user order (for cold: all warm test cases, histories unchanged).
    pub cases: Vec<TestCase>,
    /// Per case, whether it counts in the primary figures; `None` = all of them.
    /// (cold: the target is a new item; the other cases give the warm comparison.)
    pub primary: Option<Vec<bool>>,
}

impl EvalPlan {
    /// The plan of `protocol` on `dataset` (pure: same dataset ⇒ same plan).
    pub fn new(dataset: &Dataset, protocol: EvalProtocol) -> EvalPlan {
        let split = split::split(dataset, protocol.split_protocol());
        match protocol {
            EvalProtocol::Warm | EvalProtocol::Transfer => {
                let cases = split.test.clone();
                EvalPlan { protocol, split, cases, primary: None }
            }
            EvalProtocol::Cold => {
                let cases = split::warm(dataset).test;
                let primary = cases.iter().map(|case| split.new_items[case.target as usize]).collect();
                EvalPlan { protocol, split, cases, primary: Some(primary) }
            }
        }
    }

    /// Scores every case with `scorer` (see [`evaluate`]) and splits the ranks per the protocol.
    pub fn run(&self, scorer: &dyn Scorer, n_items: usize, batch: usize) -> Result<ProtocolResult, EvalError> {
        let all = evaluate(scorer, &self.cases, n_items, batch)?;
        Ok(match &self.primary {
            None => ProtocolResult { primary: all, comparison: None },
            Some(primary) => {
                let others: Vec<bool> = primary.iter().map(|p| !p).collect();
                ProtocolResult { primary: all.subset(primary), comparison: Some(all.subset(&others)) }
            }
        })
    }
}

/// One scorer's ranks under a protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolResult {
    /// The cases the protocol reports on.
    pub primary: Evaluation,
    /// cold: the warm-target cases of the same run, for the cold/warm ratio.
    pub comparison: Option<Evaluation>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_parse_and_print() {
        for p in [EvalProtocol::Warm, EvalProtocol::Cold, EvalProtocol::Transfer] {
            assert_eq!(p.as_str().parse::<EvalProtocol>().unwrap(), p);
        }
        let err = "hot".parse::<EvalProtocol>().unwrap_err();
        assert!(err.to_string().contains("hot"), "{err}");
    }
}
