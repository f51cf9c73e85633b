//! The model's hyper-parameters: one serde struct that reads from the `[model]` table of the
//! training TOML (`--config FILE`) and travels in the bundle manifest, so the runtime rebuilds the
//! same shapes. Every field has a documented default; unknown keys are refused so a typo in a
//! config file is an error, not a silently ignored setting.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A setting no model can be built from, naming the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("model config: `{field}` {reason}")]
pub struct ConfigError {
    pub field: &'static str,
    pub reason: String,
}

/// Which modalities the item tower may read: MMSRec's dropout views and the ablations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemView {
    /// Every modality the item has (the normal view).
    #[serde(rename = "both")]
    Both,
    /// The text only, as if the item had no image.
    #[serde(rename = "text")]
    TextOnly,
    /// The image only, as if the item had no text.
    #[serde(rename = "image")]
    ImageOnly,
}

impl ItemView {
    pub fn reads_text(self) -> bool {
        self != ItemView::ImageOnly
    }

    pub fn reads_image(self) -> bool {
        self != ItemView::TextOnly
    }
}

impl fmt::Display for ItemView {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            ItemView::Both => "image+text",
            ItemView::TextOnly => "text-only",
            ItemView::ImageOnly => "image-only",
        })
    }
}

/// How the item tower maps the frozen text feature to `d` (ARCHITECTURE.md § Model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextAdaptor {
    /// One `Linear(text_dim → d)` (`item_tower.text_projection`): the tower as it always was.
    #[default]
    Linear,
    /// UniSRec's parametric whitening and mixture-of-experts adaptor (arXiv 2206.05941 § 3.2):
    /// `Σ_e g_e(x) (x − b_e) W_e` with `g = softmax(x W_g + c_g)` over `adaptor_experts` experts
    /// (`item_tower.text_adaptor`).
    Moe,
}

impl TextAdaptor {
    pub fn is_linear(&self) -> bool {
        *self == TextAdaptor::Linear
    }
}

const DEFAULT_ADAPTOR_EXPERTS: usize = 8;

fn is_default_experts(experts: &usize) -> bool {
    *experts == DEFAULT_ADAPTOR_EXPERTS
}

/// Most experts a `moe` text adaptor may have: far above what helps (UniSRec uses 8), low enough
/// that a manifest cannot make the browser allocate `experts × d × text_dim` without bound.
pub const MAX_ADAPTOR_EXPERTS: usize = 64;

/// Hyper-parameters of the item tower, the sequence tower and their losses (ARCHITECTURE.md § Model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Width `d` of item vectors, user vectors and both transformers. Default 256.
    pub dim: usize,
    /// Attention heads in every transformer layer; must divide `dim`. Default 2 (2–4 are sensible;
    /// with d = 256 two heads of 128 keep each head wide enough on small catalogues).
    pub num_heads: usize,
    /// Transformer layers of the sequence tower. Default 2.
    pub num_layers: usize,
    /// Transformer layers fusing the modality tokens in the item tower. Default 1 (the tokens are
    /// only two: one layer lets each modality see the other).
    pub fusion_layers: usize,
    /// Hidden width of each layer's feed-forward block. Default 256 (= `dim`, SASRec's choice;
    /// the bundle's size budget is tight — ARCHITECTURE.md § Targets — and 4×d quadruples the FFN
    /// weights).
    pub ffn_dim: usize,
    /// Longest history the sequence tower reads (learned positions 0..max_len). Default 50.
    pub max_len: usize,
    /// Dropout on token embeddings and residual branches, in training only. Default 0.2
    /// (SASRec's value for dense data such as MovieLens).
    pub dropout: f32,
    /// Dropout on attention probabilities, in training only. Default 0.2.
    pub attention_dropout: f32,
    /// LayerNorm epsilon. Default 1e-5 (PyTorch's default).
    pub layer_norm_eps: f64,
    /// Width of the frozen text feature (all-MiniLM-L6-v2 pooled). Default 384.
    pub text_dim: usize,
    /// Width of the frozen image feature (EfficientNet-Lite0 pooled). Default 1280.
    pub image_dim: usize,
    /// Which modalities the item tower reads: `"both"` (default), `"text"` or `"image"`; the
    /// single-modality settings are the text-only and image-only baselines (ARCHITECTURE.md § Model).
    pub item_view: ItemView,
    /// Temperature of the pretraining InfoNCE terms. Default 0.05 (MMSRec).
    pub pretrain_temperature: f64,
    /// Temperature of the next-item softmax over cosine scores. Default 0.07.
    pub next_item_temperature: f64,
    /// Weights of the four pretraining terms (see [`PretrainWeights`]).
    pub pretrain_weights: PretrainWeights,
    /// How the text feature becomes a `d`-wide token: `"linear"` (default) or `"moe"` (UniSRec's
    /// whitening + mixture-of-experts adaptor, see [`TextAdaptor`]). The image keeps its Linear.
    /// Not written when it is the default (this field and the next), so a bundle without the
    /// adaptor has the manifest it had before the field existed and runtimes from then still read it.
    #[serde(skip_serializing_if = "TextAdaptor::is_linear")]
    pub text_adaptor: TextAdaptor,
    /// Experts of the `moe` text adaptor (1..=64). Default 8 (UniSRec's). Unused with `linear`.
    #[serde(skip_serializing_if = "is_default_experts")]
    pub adaptor_experts: usize,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            dim: 256,
            num_heads: 2,
            num_layers: 2,
            fusion_layers: 1,
            ffn_dim: 256,
            max_len: 50,
            dropout: 0.2,
            attention_dropout: 0.2,
            layer_norm_eps: 1e-5,
            text_dim: 384,
            image_dim: 1280,
            item_view: ItemView::Both,
            pretrain_temperature: 0.05,
            next_item_temperature: 0.07,
            pretrain_weights: PretrainWeights::default(),
            text_adaptor: TextAdaptor::Linear,
            adaptor_experts: DEFAULT_ADAPTOR_EXPERTS,
        }
    }
}

/// Weights of MMSRec's four item-level pretraining terms (see `losses::pretraining_loss`).
/// The total is their weighted mean, so scaling all four together changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PretrainWeights {
    /// Image-only view ↔ text-only view of the same item (cross-modal alignment). Default 1.
    pub image_text: f64,
    /// Image+text view ↔ text-only view. Default 1.
    pub fused_text: f64,
    /// Image+text view ↔ image-only view. Default 1.
    pub fused_image: f64,
    /// Image+text view ↔ a second image+text view under other dropout masks. Default 1.
    pub fused_fused: f64,
}

impl Default for PretrainWeights {
    fn default() -> Self {
        PretrainWeights { image_text: 1.0, fused_text: 1.0, fused_image: 1.0, fused_fused: 1.0 }
    }
}

impl PretrainWeights {
    fn sum(&self) -> f64 {
        self.image_text + self.fused_text + self.fused_image + self.fused_fused
    }
}

impl ModelConfig {
    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.dim / self.num_heads
    }

    /// Refuses settings no model can be built from, naming the field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field: &'static str, reason: String| Err(ConfigError { field, reason });
        for (field, value) in [
            ("dim", self.dim),
            ("num_heads", self.num_heads),
            ("ffn_dim", self.ffn_dim),
            ("max_len", self.max_len),
            ("text_dim", self.text_dim),
            ("image_dim", self.image_dim),
        ] {
            if value == 0 {
                return bad(field, "must be at least 1".into());
            }
        }
        if !(1..=MAX_ADAPTOR_EXPERTS).contains(&self.adaptor_experts) {
            return bad("adaptor_experts", format!("{} is not in 1..={MAX_ADAPTOR_EXPERTS}", self.adaptor_experts));
        }
        if self.dim % self.num_heads != 0 {
            return bad("num_heads", format!("{} does not divide dim {}", self.num_heads, self.dim));
        }
        for (field, p) in [("dropout", self.dropout), ("attention_dropout", self.attention_dropout)] {
            if !(0.0..1.0).contains(&p) {
                return bad(field, format!("{p} is not in [0, 1)"));
            }
        }
        for (field, value) in [
            ("layer_norm_eps", self.layer_norm_eps),
            ("pretrain_temperature", self.pretrain_temperature),
            ("next_item_temperature", self.next_item_temperature),
        ] {
            if !(value.is_finite() && value > 0.0) {
                return bad(field, format!("{value} must be a positive number"));
            }
        }
        // eps only guards LayerNorm's division: PyTorch uses 1e-5, BERT 1e-12. Above 0.1 it swamps the
        // variance of unit-scale activations and the layer no longer normalises (a bundle saying 1e300
        // would score every item alike).
        if self.layer_norm_eps > 0.1 {
            return bad("layer_norm_eps", format!("{} is above 0.1", self.layer_norm_eps));
        }
        let w = &self.pretrain_weights;
        let all = [w.image_text, w.fused_text, w.fused_image, w.fused_fused];
        if all.iter().any(|v| !(v.is_finite() && *v >= 0.0)) || w.sum() <= 0.0 {
            return bad("pretrain_weights", format!("{all:?}: need non-negative numbers, not all 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_round_trip_through_json() {
        let config = ModelConfig::default();
        config.validate().unwrap();
        let text = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<ModelConfig>(&text).unwrap(), config);
    }

    #[test]
    fn missing_fields_take_defaults_and_unknown_ones_are_refused() {
        let partial: ModelConfig = serde_json::from_str(r#"{"dim": 64, "item_view": "text"}"#).unwrap();
        assert_eq!(partial.dim, 64);
        assert_eq!(partial.item_view, ItemView::TextOnly);
        assert_eq!(partial.max_len, 50);
        assert!(serde_json::from_str::<ModelConfig>(r#"{"dimm": 64}"#).is_err());
    }

    #[test]
    fn bad_values_name_their_field() {
        let config = ModelConfig { num_heads: 3, ..Default::default() };
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("num_heads"), "{message}");
        let config = ModelConfig { dropout: 1.0, ..Default::default() };
        assert!(config.validate().unwrap_err().to_string().contains("dropout"));
        for eps in [0.0, 0.5, 1e300, f64::NAN] {
            let config = ModelConfig { layer_norm_eps: eps, ..Default::default() };
            assert!(config.validate().unwrap_err().to_string().contains("layer_norm_eps"), "{eps}");
        }
        ModelConfig { layer_norm_eps: 1e-12, ..Default::default() }.validate().unwrap();
        for experts in [0, 65] {
            let config = ModelConfig { text_adaptor: TextAdaptor::Moe, adaptor_experts: experts, ..Default::default() };
            assert!(config.validate().unwrap_err().to_string().contains("adaptor_experts"), "{experts}");
        }
    }

    #[test]
    fn the_text_adaptor_reads_as_a_word_and_defaults_to_linear() {
        let moe: ModelConfig = serde_json::from_str(r#"{"text_adaptor": "moe", "adaptor_experts": 4}"#).unwrap();
        assert_eq!((moe.text_adaptor, moe.adaptor_experts), (TextAdaptor::Moe, 4));
        let old: ModelConfig = serde_json::from_str(r#"{"dim": 64}"#).unwrap();
        assert_eq!((old.text_adaptor, old.adaptor_experts), (TextAdaptor::Linear, 8));
        assert!(serde_json::from_str::<ModelConfig>(r#"{"text_adaptor": "mlp"}"#).is_err());
        // The defaults are not written: a bundle without the adaptor keeps the manifest it had.
        let text = serde_json::to_string(&ModelConfig::default()).unwrap();
        assert!(!text.contains("text_adaptor") && !text.contains("adaptor_experts"), "{text}");
        let text = serde_json::to_string(&moe).unwrap();
        assert_eq!(serde_json::from_str::<ModelConfig>(&text).unwrap(), moe);
    }
}
