//! The RecBole-style contract shared by our model and the baselines, and our model: item tower +
//! sequence tower, scored by cosine over the whole catalogue (ARCHITECTURE.md § Model).

use candle_core::Tensor;
use candle_nn::VarBuilder;

use super::batch::{Histories, NextItemBatch};
use super::dropout::Mode;
use super::error::ModelError;
use super::item_residuals::ItemResiduals;
use super::item_tower::{ItemFeatures, ItemTower};
use super::losses::{next_item_loss, pretraining_loss, PretrainingLoss, Scoring};
use super::sequence_tower::{user_vectors, SequenceTower};
use omakase_runtime::config::ModelConfig;

/// A sequential recommender in RecBole's shape. Item vectors are computed once per step (or once
/// per evaluation) by [`item_vectors`](Self::item_vectors) and passed in, so training can share
/// them between the loss's inputs and its candidates, and freeze them by passing
/// `item_vectors(..)?.detach()`.
pub trait SequentialRecommender {
    /// What the model needs to build every catalogue item's vector.
    type Catalogue;

    /// Every catalogue item's vector, `[n_items, d]`; row `i` is item index `i` of the histories.
    fn item_vectors(&self, catalogue: &Self::Catalogue, mode: Mode) -> Result<Tensor, ModelError>;

    /// How user vectors score item vectors (training's softmax and ranking alike).
    fn scoring(&self) -> Scoring;

    /// RecBole's `forward`: histories → the sequence tower's states `[b, t, d]`.
    fn sequence_states(&self, item_vectors: &Tensor, histories: &Histories, mode: Mode) -> Result<Tensor, ModelError>;

    /// RecBole's `forward` proper: one user vector per history, `[b, d]`.
    fn forward(&self, item_vectors: &Tensor, histories: &Histories, mode: Mode) -> Result<Tensor, ModelError> {
        let states = self.sequence_states(item_vectors, histories, mode)?;
        user_vectors(&states, histories.lengths())
    }

    /// Next-item cross-entropy over the full catalogue at every real position (scalar).
    fn calculate_loss(&self, item_vectors: &Tensor, batch: &NextItemBatch, mode: Mode) -> Result<Tensor, ModelError> {
        let states = self.sequence_states(item_vectors, batch.inputs(), mode)?;
        next_item_loss(&states, batch, item_vectors, self.scoring())
    }

    /// A term added to the training loss (e.g. the ID residuals' L2 penalty); `None` by default.
    fn regularizer(&self) -> Result<Option<Tensor>, ModelError> {
        Ok(None)
    }

    /// Logits of every catalogue item for each history, `[b, n_items]` (inference mode; the same
    /// logits the training softmax uses, so their ranking is the recommendation).
    fn full_sort_predict(&self, item_vectors: &Tensor, histories: &Histories) -> Result<Tensor, ModelError> {
        let users = self.forward(item_vectors, histories, Mode::Eval)?;
        self.scoring().scores(&users, item_vectors)
    }
}

/// Our model: items known by their frozen text and image features, plus, optionally, an ID residual
/// for each item seen in training (see `item_residuals`). Parameters: `item_tower.*`,
/// `sequence_tower.*` (see those types) and, with residuals, `item_residuals`.
#[derive(Debug, Clone)]
pub struct MultimodalRecommender {
    item_tower: ItemTower,
    sequence_tower: SequenceTower,
    config: ModelConfig,
    residuals: Option<ItemResiduals>,
}

impl MultimodalRecommender {
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self, ModelError> {
        config.validate()?;
        Ok(MultimodalRecommender {
            item_tower: ItemTower::new(config, vb.pp("item_tower"))?,
            sequence_tower: SequenceTower::new(config, vb.pp("sequence_tower"))?,
            config: config.clone(),
            residuals: None,
        })
    }

    /// The model with ID residuals added to its catalogue's item vectors (rows = catalogue rows).
    pub fn with_residuals(self, residuals: ItemResiduals) -> Self {
        MultimodalRecommender { residuals: Some(residuals), ..self }
    }

    pub fn residuals(&self) -> Option<&ItemResiduals> {
        self.residuals.as_ref()
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn item_tower(&self) -> &ItemTower {
        &self.item_tower
    }

    pub fn sequence_tower(&self) -> &SequenceTower {
        &self.sequence_tower
    }

    /// The item tower's self-supervised loss on a batch of catalogue items (one or more
    /// catalogues: see `ItemFeatures::concat`); only items with both modalities take part.
    pub fn pretraining_loss(&self, items: &ItemFeatures, mode: Mode) -> Result<PretrainingLoss, ModelError> {
        let views = self.item_tower.pretraining_views(items, mode)?;
        pretraining_loss(&views, &self.config.pretrain_weights, self.config.pretrain_temperature)
    }
}

impl SequentialRecommender for MultimodalRecommender {
    type Catalogue = ItemFeatures;

    /// The item tower over the catalogue, through the configured `item_view`, plus the ID residuals
    /// when the model has them (the catalogue must then be the one they were made for).
    fn item_vectors(&self, catalogue: &ItemFeatures, mode: Mode) -> Result<Tensor, ModelError> {
        let content = self.item_tower.forward(catalogue, self.config.item_view, mode)?;
        match &self.residuals {
            Some(residuals) => residuals.apply(&content, mode),
            None => Ok(content),
        }
    }

    fn regularizer(&self) -> Result<Option<Tensor>, ModelError> {
        self.residuals.as_ref().map_or(Ok(None), ItemResiduals::penalty)
    }

    fn scoring(&self) -> Scoring {
        Scoring::Cosine { temperature: self.config.next_item_temperature }
    }

    fn sequence_states(&self, item_vectors: &Tensor, histories: &Histories, mode: Mode) -> Result<Tensor, ModelError> {
        self.sequence_tower.forward(&histories.gather(item_vectors)?, histories.lengths(), mode)
    }
}
