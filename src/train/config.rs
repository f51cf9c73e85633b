//! The training config: one TOML file (`omakase train --config FILE`), every field optional with a
//! documented default, unknown keys refused (a typo is an error, not a silently ignored setting).
//! The full effective config — defaults written out — is saved as `RUN/config.toml`, so a run
//! says exactly how it was made and a resumed run checks it is continuing the same one.
//!
//! ```toml
//! [model]     # omakase::model::ModelConfig: widths, layers, dropout, temperatures
//! [pretrain]  # self-supervised item-tower epochs on catalogues (no behaviour needed)
//! [train]     # the sequence tower on users' histories: epochs, batch, lr, warm-up, clipping...
//! [data]      # protocol = "warm" | "cold"
//! [encode]    # where the frozen features live, text template, encoder batches
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::TrainError;
use crate::data::split::Protocol;
use crate::encoders::text::ItemTextTemplate;
use crate::model::ModelConfig;

/// Everything `omakase train` reads from `--config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The model's shapes and losses (see `omakase::model::ModelConfig` for every field); the
    /// training defaults are [`training_model_defaults`].
    pub model: ModelConfig,
    pub pretrain: PretrainConfig,
    pub train: SequenceTrainingConfig,
    pub data: DataConfig,
    pub encode: EncodeConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            model: training_model_defaults(),
            pretrain: PretrainConfig::default(),
            train: SequenceTrainingConfig::default(),
            data: DataConfig::default(),
            encode: EncodeConfig::default(),
        }
    }
}

/// The `[model]` defaults of a training run: `ModelConfig::default()` except where tuning on
/// ml100k-mm and amazon-office (validation NDCG@10, README of the train module) found better and
/// cheaper settings:
/// - `dim = 64` (256: 4–6× the CPU time per epoch, no better within the same time),
/// - `num_layers = 1` (2 layers: slower per epoch and no better on these catalogues),
/// - `next_item_temperature = 0.1` (0.05: −0.004, 0.07: −0.002, 0.15 ≈, 0.2: −0.004).
pub fn training_model_defaults() -> ModelConfig {
    ModelConfig { dim: 64, num_layers: 1, next_item_temperature: 0.1, ..ModelConfig::default() }
}

/// Self-supervised pretraining of the item tower (ARCHITECTURE.md § Model): MMSRec's four symmetric InfoNCE terms
/// over in-batch negatives, on the items that have both text and image. Items new under the cold
/// protocol are left out. A catalogue without such items (text only) skips this stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainConfig {
    /// Passes over the paired items; 0 switches pretraining off. Default 30.
    pub epochs: usize,
    /// Items per InfoNCE batch (the other items of the batch are the negatives). Default 256.
    pub batch: usize,
    /// Peak AdamW learning rate. Default 1e-3.
    pub lr: f64,
    /// Linear warm-up, in optimiser steps, before the cosine decay. Default 20.
    pub warmup_steps: usize,
    /// Decoupled AdamW weight decay (matrices only; biases, norms and embeddings are not decayed).
    /// Default 0.01.
    pub weight_decay: f64,
    /// Global gradient-norm clipping threshold; 0 switches clipping off. Default 1.0.
    pub clip: f64,
    /// More catalogues to pretrain on, beside the training dataset's: features files written by
    /// `omakase encode` (relative paths are relative to the working directory). Default none.
    pub catalogues: Vec<PathBuf>,
}

impl Default for PretrainConfig {
    fn default() -> Self {
        PretrainConfig {
            epochs: 30,
            batch: 256,
            lr: 1e-3,
            warmup_steps: 20,
            weight_decay: 0.01,
            clip: 1.0,
            catalogues: Vec::new(),
        }
    }
}

/// Whether sequence training updates the item tower.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemTowerTraining {
    /// The item tower keeps its (pretrained) weights: item vectors are computed once, without
    /// dropout, and only the sequence tower learns.
    Frozen,
    /// The item tower learns too, at its own (smaller) learning rate `item_tower_lr`.
    Finetune,
}

/// Learning-rate shape after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decay {
    /// Cosine from the peak down to 0 at the last step of the last allowed epoch.
    Cosine,
    /// Keep the peak.
    Constant,
}

/// Training the sequence tower (ARCHITECTURE.md § Model): causal next-item prediction at every position,
/// temperature-scaled softmax over the whole catalogue, early stopping on validation NDCG@10.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SequenceTrainingConfig {
    /// Most passes over the training windows (early stopping usually ends sooner). Default 200.
    pub epochs: usize,
    /// Training windows per optimiser step. Default 128.
    pub batch: usize,
    /// Peak AdamW learning rate of the sequence tower (and of the ID baseline's embeddings).
    /// Default 3e-3 (1e-3 reached the same validation NDCG@10 about twice as many epochs later).
    pub lr: f64,
    /// Linear warm-up in optimiser steps. Default 100.
    pub warmup_steps: usize,
    /// Learning rate after the warm-up. Default "constant".
    pub decay: Decay,
    /// Global gradient-norm clipping threshold; 0 switches it off. Default 1.0.
    pub clip: f64,
    /// Decoupled AdamW weight decay on weight matrices. Default 0.0 (RecBole's SASRec uses none).
    pub weight_decay: f64,
    /// Epochs without a better validation NDCG@10 before stopping. Default 10.
    pub patience: usize,
    /// Seeds the initial weights, the window order and every dropout mask: same seed, same data,
    /// same config ⇒ the same metrics. Default 42.
    pub seed: u64,
    /// `"frozen"` or `"finetune"` (default): whether the item tower learns during this stage.
    pub item_tower: ItemTowerTraining,
    /// Peak learning rate of the item tower when it is fine-tuned. Default 1e-2: the item tower has
    /// to learn what ID embeddings would, content alone misses the collaborative signal. Validation
    /// NDCG@10 on ml100k-mm after ~20 epochs (lr 1e-3, 2 layers): frozen 0.014, item_tower_lr 1e-4
    /// 0.024, 1e-3 0.049; after ~25 epochs (lr 3e-3, 1 layer): 3e-3 0.065, 1e-2 0.068, 3e-2 0.071.
    pub item_tower_lr: f64,
    /// How far apart consecutive training windows of a long history end (see
    /// `train::sequences`); 0 means `model.max_len` (non-overlapping windows, every next-item
    /// target trained exactly once per epoch). Default 0.
    pub window_stride: usize,
    /// Validation cases scored per batch. Default 256.
    pub eval_batch: usize,
    /// A wall-clock budget in seconds for this stage in one process: the stage ends, as if early
    /// stopping had fired (the best epoch so far is kept), after the epoch past which another epoch
    /// as long would end beyond the budget.
    /// 0 switches it off. Default 0. The demo's quick run uses it so that a slower machine trains
    /// fewer epochs rather than keeping a first-time user waiting; a resumed run starts a new budget.
    pub max_seconds: f64,
    /// Train the item tower's projections on per-dimension standardized features and fold the
    /// standardization into the saved weights (`train::standardize`): the same model, much faster
    /// to learn. Default true.
    pub standardize_features: bool,
    /// Learn an ID residual for every item seen in training, added to its content vector and folded
    /// into the bundle's shard at export (`model::item_residuals`); new items keep the content
    /// vector alone. Default false.
    pub id_residuals: bool,
    /// Probability that an item's residual is left out of a training step (it is then scored by
    /// content alone, as new items are). Default 0.0.
    pub id_residual_dropout: f32,
    /// Weight of the residuals' L2 penalty (mean over known items of ‖r‖²). Default 0.0.
    pub id_residual_l2: f64,
    /// Peak learning rate of the residuals; absent means `lr`.
    pub id_residual_lr: Option<f64>,
}

impl Default for SequenceTrainingConfig {
    fn default() -> Self {
        SequenceTrainingConfig {
            epochs: 200,
            batch: 128,
            lr: 3e-3,
            warmup_steps: 100,
            decay: Decay::Constant,
            clip: 1.0,
            weight_decay: 0.0,
            patience: 10,
            seed: 42,
            item_tower: ItemTowerTraining::Finetune,
            item_tower_lr: 1e-2,
            window_stride: 0,
            eval_batch: 256,
            max_seconds: 0.0,
            standardize_features: true,
            id_residuals: false,
            id_residual_dropout: 0.0,
            id_residual_l2: 0.0,
            id_residual_lr: None,
        }
    }
}

/// Which data the model may learn from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// `"warm"` (leave-one-out, default) or `"cold"` (items first seen in the last 20% of the time
    /// span are removed from every stage of training: see `omakase::data::split`).
    pub protocol: TrainProtocol,
    /// Other shops whose visitors' sequences train the model beside this dataset's (joint training,
    /// docs/evaluation.md § Transfer): dataset folders, each split with the same protocol. Their
    /// windows are batched apart from this dataset's, so every softmax runs over one catalogue
    /// (per-catalogue negatives); validation, early stopping and the saved weights stay this
    /// dataset's. Multimodal models only (the ID baseline ignores them). Default none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub joint: Vec<PathBuf>,
    /// Their features files (`omakase encode` of each folder), in the order of `joint`; a missing
    /// entry means `out/<folder name>/features.safetensors`. Joint shops are never encoded by `train`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub joint_features: Vec<PathBuf>,
}

/// The split a run trains on (`data::split::Protocol`, readable from TOML).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainProtocol {
    #[default]
    Warm,
    Cold,
}

impl TrainProtocol {
    pub fn split_protocol(self) -> Protocol {
        match self {
            TrainProtocol::Warm => Protocol::Warm,
            TrainProtocol::Cold => Protocol::Cold,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TrainProtocol::Warm => "warm",
            TrainProtocol::Cold => "cold",
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig { protocol: TrainProtocol::Warm, joint: Vec::new(), joint_features: Vec::new() }
    }
}

/// The frozen features `train` starts from (it runs `omakase encode`'s pipeline: a cache hit when
/// they exist and the items did not change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncodeConfig {
    /// The features file; empty (default) means `out/<dataset folder name>/features.safetensors`,
    /// the same file `omakase encode` writes by default, so both share one cache.
    pub features: PathBuf,
    /// Folder of the encoder weights; empty (default) means `$OMAKASE_MODELS`, else `models/`.
    pub models: PathBuf,
    /// Encode images (default true). Catalogues that name no image never load the image encoder.
    pub images: bool,
    /// Texts per forward pass of the text encoder. Default 32.
    pub batch: usize,
    /// Images per forward pass of the image encoder. Default 8.
    pub image_batch: usize,
    /// How an item's fields become its text (see `omakase::encoders::text::compose`).
    pub text_template: ItemTextTemplate,
}

impl Default for EncodeConfig {
    fn default() -> Self {
        EncodeConfig {
            features: PathBuf::new(),
            models: PathBuf::new(),
            images: true,
            batch: 32,
            image_batch: 8,
            text_template: ItemTextTemplate::default(),
        }
    }
}

impl TrainConfig {
    /// Reads a TOML config; missing fields take their defaults. Errors name the file and the key.
    pub fn load(path: &Path) -> Result<Self, TrainError> {
        let bytes = crate::fs::read_bounded(path, crate::fs::MAX_DOCUMENT_BYTES).map_err(TrainError::read)?;
        let text = String::from_utf8(bytes)
            .map_err(|_| TrainError::Config { origin: path.display().to_string(), reason: "not UTF-8 text".into() })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses TOML text (`origin` names it in errors) and checks the values.
    ///
    /// The file is laid over [`TrainConfig::default()`] key by key (tables merged, values and
    /// arrays replaced), so a partial `[model]` table keeps the *training* defaults for the keys it
    /// leaves out — not `ModelConfig::default()`'s, which differ (see [`training_model_defaults`]).
    pub fn parse(text: &str, origin: &str) -> Result<Self, TrainError> {
        let error = |reason: String| TrainError::Config { origin: origin.to_string(), reason };
        let given: toml::Table = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        let mut merged = match toml::Value::try_from(TrainConfig::default()) {
            Ok(toml::Value::Table(table)) => table,
            other => return Err(error(format!("the defaults do not serialize to a table: {other:?}"))),
        };
        merge(&mut merged, given);
        let config: TrainConfig =
            toml::Value::Table(merged).try_into().map_err(|e: toml::de::Error| error(e.to_string()))?;
        config.validate().map_err(error)?;
        Ok(config)
    }

    /// The config as TOML, every value written out, under a header saying where the fields are
    /// documented.
    pub fn to_toml(&self) -> Result<String, TrainError> {
        let body = toml::to_string_pretty(self)
            .map_err(|e| TrainError::Config { origin: "config being written".into(), reason: e.to_string() })?;
        Ok(format!(
            "# omakase training config: every field and its default is documented in src/train/config.rs\n\
             # (and omakase::model::ModelConfig for [model]).\n\n{body}"
        ))
    }

    /// Refuses values no run can use, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        self.model.validate().map_err(|e| e.to_string())?;
        let positive = [
            ("pretrain.batch", self.pretrain.batch as f64),
            ("pretrain.lr", self.pretrain.lr),
            ("train.epochs", self.train.epochs as f64),
            ("train.batch", self.train.batch as f64),
            ("train.lr", self.train.lr),
            ("train.item_tower_lr", self.train.item_tower_lr),
            ("train.eval_batch", self.train.eval_batch as f64),
            ("encode.batch", self.encode.batch as f64),
            ("encode.image_batch", self.encode.image_batch as f64),
        ];
        for (field, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                return Err(format!("`{field}` must be positive, got {value}"));
            }
        }
        let non_negative = [
            ("pretrain.weight_decay", self.pretrain.weight_decay),
            ("pretrain.clip", self.pretrain.clip),
            ("train.weight_decay", self.train.weight_decay),
            ("train.clip", self.train.clip),
            ("train.max_seconds", self.train.max_seconds),
            ("train.id_residual_l2", self.train.id_residual_l2),
        ];
        for (field, value) in non_negative {
            if !(value.is_finite() && value >= 0.0) {
                return Err(format!("`{field}` must be a non-negative number, got {value}"));
            }
        }
        if let Some(lr) = self.train.id_residual_lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
            return Err(format!("`train.id_residual_lr` must be positive, got {lr}"));
        }
        let dropout = self.train.id_residual_dropout;
        if !(0.0..1.0).contains(&dropout) {
            return Err(format!("`train.id_residual_dropout` must be in [0, 1), got {dropout}"));
        }
        if self.train.window_stride > self.model.max_len {
            return Err(format!(
                "`train.window_stride` {} exceeds model.max_len {}: windows would skip targets",
                self.train.window_stride, self.model.max_len
            ));
        }
        if self.data.joint_features.len() > self.data.joint.len() {
            return Err(format!(
                "`data.joint_features` names {} files for {} `data.joint` folders",
                self.data.joint_features.len(),
                self.data.joint.len()
            ));
        }
        if !self.data.joint.is_empty() && self.train.id_residuals {
            // The residual table has a row per item of this dataset; joint shops' items have none.
            return Err("`data.joint` cannot be combined with `train.id_residuals`".into());
        }
        Ok(())
    }

    /// The stride between training windows (`window_stride`, 0 meaning `max_len`).
    pub fn window_stride(&self) -> usize {
        match self.train.window_stride {
            0 => self.model.max_len,
            stride => stride,
        }
    }
}

/// `over` laid onto `base`: nested tables merged, anything else replaced.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(base)), toml::Value::Table(over)) => merge(base, over),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let config = TrainConfig::default();
        let text = config.to_toml().unwrap();
        assert_eq!(TrainConfig::parse(&text, "mem").unwrap(), config);
        assert!(text.contains("[train]") && text.contains("item_tower = \"finetune\""), "{text}");
    }

    #[test]
    fn partial_files_take_defaults_and_typos_are_refused() {
        let config = TrainConfig::parse("[train]\nepochs = 3\n[model]\ndim = 32\n", "a.toml").unwrap();
        assert_eq!((config.train.epochs, config.model.dim, config.train.batch), (3, 32, 128));
        // A partial [model] keeps the training defaults, not ModelConfig::default()'s.
        let defaults = training_model_defaults();
        assert_ne!(defaults.num_layers, ModelConfig::default().num_layers);
        assert_eq!(config.model.num_layers, defaults.num_layers);
        assert_eq!(config.model.next_item_temperature, defaults.next_item_temperature);
        let nested = TrainConfig::parse("[model.pretrain_weights]\nimage_text = 2.0\n", "n.toml").unwrap();
        assert_eq!((nested.model.pretrain_weights.image_text, nested.model.pretrain_weights.fused_text), (2.0, 1.0));
        assert_eq!(nested.model.dim, defaults.dim);
        let err = TrainConfig::parse("[train]\nepoch = 3\n", "a.toml").unwrap_err().to_string();
        assert!(err.contains("a.toml") && err.contains("epoch"), "{err}");
        let err = TrainConfig::parse("[data]\nprotocol = \"hot\"\n", "b.toml").unwrap_err().to_string();
        assert!(err.contains("b.toml"), "{err}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let err = TrainConfig::parse("[train]\nlr = -1.0\n", "c.toml").unwrap_err().to_string();
        assert!(err.contains("train.lr"), "{err}");
        let err = TrainConfig::parse("[model]\nnum_heads = 3\n", "c.toml").unwrap_err().to_string();
        assert!(err.contains("num_heads"), "{err}");
    }
}
