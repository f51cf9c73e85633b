//! ID-based SASRec, a learned baseline (ARCHITECTURE.md § Model), in its strong form (RecBole's SASRec with
//! `loss_type = CE`): a learned embedding per item ID, the same sequence tower as our model, and
//! dot-product logits over the full catalogue in a softmax cross-entropy. Unlike our model it
//! cannot score an item it never saw in training.

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use super::batch::Histories;
use super::dropout::Mode;
use super::error::ModelError;
use super::losses::Scoring;
use super::recommender::SequentialRecommender;
use super::sequence_tower::SequenceTower;
use omakase_runtime::config::{ConfigError, ModelConfig};

/// Parameters: `item_embedding` (`[n_items, d]`, N(0, 0.02) as RecBole initialises it) and
/// `sequence_tower.*`. The embedding table is both the input and the output item vectors
/// (shared, as in SASRec).
#[derive(Debug, Clone)]
pub struct SasRecId {
    item_embedding: Tensor,
    sequence_tower: SequenceTower,
}

impl SasRecId {
    pub fn new(config: &ModelConfig, n_items: usize, vb: VarBuilder) -> Result<Self, ModelError> {
        config.validate()?;
        if n_items == 0 {
            return Err(ModelError::Config(ConfigError { field: "n_items", reason: "the catalogue is empty".into() }));
        }
        let init = Init::Randn { mean: 0.0, stdev: 0.02 };
        Ok(SasRecId {
            item_embedding: vb.get_with_hints((n_items, config.dim), "item_embedding", init)?,
            sequence_tower: SequenceTower::new(config, vb.pp("sequence_tower"))?,
        })
    }

    pub fn n_items(&self) -> usize {
        self.item_embedding.dims()[0]
    }
}

impl SequentialRecommender for SasRecId {
    /// Nothing: the catalogue is the embedding table.
    type Catalogue = ();

    fn item_vectors(&self, _catalogue: &(), _mode: Mode) -> Result<Tensor, ModelError> {
        Ok(self.item_embedding.clone())
    }

    fn scoring(&self) -> Scoring {
        Scoring::Dot
    }

    fn sequence_states(&self, item_vectors: &Tensor, histories: &Histories, mode: Mode) -> Result<Tensor, ModelError> {
        self.sequence_tower.forward(&histories.gather(item_vectors)?, histories.lengths(), mode)
    }
}
