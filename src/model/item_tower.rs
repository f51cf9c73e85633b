//! The item tower: frozen text and image features → one item vector, for items that have both
//! modalities or only one (ARCHITECTURE.md § Model, MMSRec's fusion).
//!
//! Per modality, `Linear + LayerNorm` projects the frozen feature to `d` (for the text, optionally
//! UniSRec's whitening + mixture-of-experts adaptor instead of the Linear: [`MoeAdaptor`],
//! `[model] text_adaptor = "moe"`) and a learned modality
//! embedding marks which modality a token is. A small transformer lets the (at most two) modality
//! tokens attend to each other, absent ones masked out as keys; the element-wise max over the
//! present tokens, then a LayerNorm, gives the item vector. An absent modality has no influence
//! at all (zero attention weight, excluded from the max), so an item that only has text gets
//! exactly the vector the text-only view gives it.

use candle_core::{DType, Device, Tensor};
use candle_nn::{Init, Linear, Module, VarBuilder};

use super::adaptor::MoeAdaptor;
use super::attention::AttentionMask;
use super::dropout::{Dropout, Mode};
use super::error::{expect_dims, ModelError};
use super::layer_norm::LayerNorm;
use super::losses::PretrainingViews;
use super::transformer::{encoder_stack, EncoderLayer};
use omakase_runtime::config::{ItemView, ModelConfig, TextAdaptor};

/// The frozen features of `n` items — the tower's input contract.
///
/// `text: [n, text_dim]`, `image: [n, image_dim]` (`f32`); `has_text: [n]`, `has_image: [n]` of any
/// dtype, non-zero = present. A missing modality's feature row may hold anything (zeros are
/// customary): it is never read.
#[derive(Debug, Clone)]
pub struct ItemFeatures {
    text: Tensor,
    image: Tensor,
    has_text: Tensor,
    has_image: Tensor,
}

impl ItemFeatures {
    pub fn new(text: Tensor, image: Tensor, has_text: &Tensor, has_image: &Tensor) -> Result<Self, ModelError> {
        let n = text.dim(0).map_err(|_| ModelError::Shape {
            what: "text features",
            expected: "[n, text_dim]".into(),
            got: text.dims().to_vec(),
        })?;
        expect_dims("text features", &text, &[Some(n), None])?;
        expect_dims("image features", &image, &[Some(n), None])?;
        expect_dims("has_text", has_text, &[Some(n)])?;
        expect_dims("has_image", has_image, &[Some(n)])?;
        Ok(ItemFeatures {
            text: text.to_dtype(DType::F32)?,
            image: image.to_dtype(DType::F32)?,
            has_text: presence(has_text)?,
            has_image: presence(has_image)?,
        })
    }

    /// A catalogue without pictures (e.g. amazon-office): every image absent.
    pub fn text_only(text: Tensor, image_dim: usize) -> Result<Self, ModelError> {
        let n = text.dim(0)?;
        let device = text.device().clone();
        let image = Tensor::zeros((n, image_dim), DType::F32, &device)?;
        let ones = Tensor::ones(n, DType::F32, &device)?;
        Self::new(text, image, &ones, &ones.zeros_like()?)
    }

    pub fn len(&self) -> usize {
        self.has_text.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn device(&self) -> &Device {
        self.text.device()
    }

    /// The rows `rows` (`u32` indices), in that order.
    pub fn select(&self, rows: &Tensor) -> Result<Self, ModelError> {
        Ok(ItemFeatures {
            text: self.text.index_select(rows, 0)?,
            image: self.image.index_select(rows, 0)?,
            has_text: self.has_text.index_select(rows, 0)?,
            has_image: self.has_image.index_select(rows, 0)?,
        })
    }

    /// Several catalogues' items as one batch (pretraining on more than one catalogue).
    pub fn concat(parts: &[&ItemFeatures]) -> Result<Self, ModelError> {
        let cat =
            |pick: fn(&ItemFeatures) -> &Tensor| Tensor::cat(&parts.iter().map(|p| pick(p)).collect::<Vec<_>>(), 0);
        Ok(ItemFeatures {
            text: cat(|p| &p.text)?,
            image: cat(|p| &p.image)?,
            has_text: cat(|p| &p.has_text)?,
            has_image: cat(|p| &p.has_image)?,
        })
    }

    /// Indices of the items having both modalities.
    pub fn rows_with_both(&self) -> Result<Vec<u32>, ModelError> {
        let both = (&self.has_text * &self.has_image)?.to_vec1::<f32>()?;
        Ok(both.iter().enumerate().filter(|(_, b)| **b > 0.0).map(|(i, _)| i as u32).collect())
    }
}

/// Any-dtype mask → `f32` 0/1.
fn presence(mask: &Tensor) -> candle_core::Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?;
    mask.ne(&mask.zeros_like()?)?.to_dtype(DType::F32)
}

/// The map from the text feature to `d`, before the text LayerNorm (`ModelConfig::text_adaptor`).
#[derive(Debug, Clone)]
enum TextInput {
    /// `text_projection`.
    Linear(Linear),
    /// `text_adaptor`.
    Moe(MoeAdaptor),
}

impl Module for TextInput {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            TextInput::Linear(linear) => linear.forward(x),
            TextInput::Moe(adaptor) => adaptor.forward(x),
        }
    }
}

/// The item tower. Parameters under its prefix: `text_projection` (or, with the `moe` text
/// adaptor, `text_adaptor.{whitening, weight, gate.weight, gate.bias}`), `text_norm`,
/// `image_projection`, `image_norm`, `modality_embedding` (`[2, d]`: row 0 text, row 1 image),
/// `fusion.{i}` (encoder layers), `output_norm`.
#[derive(Debug, Clone)]
pub struct ItemTower {
    text_projection: TextInput,
    text_norm: LayerNorm,
    image_projection: Linear,
    image_norm: LayerNorm,
    modality_embedding: Tensor,
    fusion: Vec<EncoderLayer>,
    output_norm: LayerNorm,
    dropout: Dropout,
    text_dim: usize,
    image_dim: usize,
}

impl ItemTower {
    pub fn new(config: &ModelConfig, vb: VarBuilder) -> Result<Self, ModelError> {
        config.validate()?;
        let (d, eps) = (config.dim, config.layer_norm_eps);
        Ok(ItemTower {
            text_projection: match config.text_adaptor {
                TextAdaptor::Linear => {
                    TextInput::Linear(candle_nn::linear(config.text_dim, d, vb.pp("text_projection"))?)
                }
                TextAdaptor::Moe => {
                    TextInput::Moe(MoeAdaptor::new(config.text_dim, d, config.adaptor_experts, vb.pp("text_adaptor"))?)
                }
            },
            text_norm: LayerNorm::new(d, eps, vb.pp("text_norm"))?,
            image_projection: candle_nn::linear(config.image_dim, d, vb.pp("image_projection"))?,
            image_norm: LayerNorm::new(d, eps, vb.pp("image_norm"))?,
            modality_embedding: vb.get_with_hints(
                (2, d),
                "modality_embedding",
                Init::Randn { mean: 0.0, stdev: 0.02 },
            )?,
            fusion: encoder_stack(config, config.fusion_layers, vb.pp("fusion"))?,
            output_norm: LayerNorm::new(d, eps, vb.pp("output_norm"))?,
            dropout: Dropout::new(config.dropout),
            text_dim: config.text_dim,
            image_dim: config.image_dim,
        })
    }

    /// Item vectors `[n, d]` of `features` read through `view`. Every item must keep at least one
    /// modality in that view (else [`ModelError::NoModality`] names the first row that does not).
    pub fn forward(&self, features: &ItemFeatures, view: ItemView, mode: Mode) -> Result<Tensor, ModelError> {
        expect_dims("text features", &features.text, &[None, Some(self.text_dim)])?;
        expect_dims("image features", &features.image, &[None, Some(self.image_dim)])?;
        let (has_text, has_image) = self.present_modalities(features, view)?;
        let text = self.token(&self.text_projection, &self.text_norm, &features.text, &has_text, 0)?;
        let image = self.token(&self.image_projection, &self.image_norm, &features.image, &has_image, 1)?;
        let present = Tensor::stack(&[has_text, has_image], 1)?; // [n, 2]
        let mut tokens = self.dropout.forward(&Tensor::stack(&[text, image], 1)?, mode)?; // [n, 2, d]
        let mask = AttentionMask::from_key_presence(&present)?;
        for layer in &self.fusion {
            tokens = layer.forward(&tokens, &mask, mode)?;
        }
        // Max over the present tokens only: absent ones are pushed far below any real value.
        let absent_bias = ((present - 1.0)? * 1e9)?.unsqueeze(2)?; // [n, 2, 1]
        let fused = tokens.broadcast_add(&absent_bias)?.max(1)?;
        Ok(self.output_norm.forward(&fused)?)
    }

    /// MMSRec's views of the items that have both modalities (pretraining's input): text-only,
    /// image-only and two image+text passes (different dropout masks in training).
    pub fn pretraining_views(&self, features: &ItemFeatures, mode: Mode) -> Result<PretrainingViews, ModelError> {
        let rows = features.rows_with_both()?;
        if rows.len() < 2 {
            return Err(ModelError::NoPairs { found: rows.len() });
        }
        let rows = Tensor::new(rows.as_slice(), features.device())?;
        let paired = features.select(&rows)?;
        Ok(PretrainingViews {
            text_only: self.forward(&paired, ItemView::TextOnly, mode)?,
            image_only: self.forward(&paired, ItemView::ImageOnly, mode)?,
            fused: self.forward(&paired, ItemView::Both, mode)?,
            fused_again: self.forward(&paired, ItemView::Both, mode)?,
        })
    }

    /// `[n, feature_dim]` → `[n, d]`: projection, LayerNorm, modality embedding. Rows of absent
    /// modalities are zeroed first, so whatever they hold (even NaN) cannot leak through the
    /// zero-weighted attention (NaN × 0 is NaN).
    fn token(
        &self,
        projection: &dyn Module,
        norm: &LayerNorm,
        feature: &Tensor,
        present: &Tensor,
        modality: usize,
    ) -> candle_core::Result<Tensor> {
        let keep = present.ne(0f32)?.unsqueeze(1)?.broadcast_as(feature.shape())?;
        let feature = keep.where_cond(feature, &feature.zeros_like()?)?;
        let kind = self.modality_embedding.get(modality)?;
        norm.forward(&projection.forward(&feature)?)?.broadcast_add(&kind)
    }

    /// `[n]` 0/1 masks of the text and image tokens the view keeps; refuses an item left with none.
    fn present_modalities(&self, features: &ItemFeatures, view: ItemView) -> Result<(Tensor, Tensor), ModelError> {
        let keep = |mask: &Tensor, reads: bool| if reads { Ok(mask.clone()) } else { mask.zeros_like() };
        let text = keep(&features.has_text, view.reads_text())?;
        let image = keep(&features.has_image, view.reads_image())?;
        let any = (&text + &image)?.to_vec1::<f32>()?;
        if let Some(row) = any.iter().position(|v| *v == 0.0) {
            return Err(ModelError::NoModality { row, view });
        }
        Ok((text, image))
    }
}
