//! Training the item tower's projections on standardized features, saving them for raw features.
//!
//! The frozen features are badly scaled for learning: MiniLM vectors have unit length (each of the
//! 384 dimensions ≈ ±0.05) and products of one shop differ from each other in a few small
//! directions, EfficientNet's pooled features are non-negative with very uneven spreads. The
//! item tower must separate similar products quickly (it stands in for ID embeddings), and Adam
//! moves a projection weight by about the learning rate whatever the input's scale, so a dimension
//! that varies by 0.01 across the catalogue learns 100× slower than one that varies by 1.
//!
//! So training feeds the tower per-dimension z-scores, `x' = (x − μ) ⊙ s` with `s = 1/σ` (μ, σ over
//! the training catalogue's items that have the modality; a constant dimension gets `s = 0`), and
//! the saved model is folded back onto raw features — `W_raw = W ⊙ s` (column `j` scaled by `s_j`),
//! `b_raw = b − W (μ ⊙ s)` — so `RUN/model.safetensors` is the plain `MultimodalRecommender` every
//! other step (eval, export, the browser) runs on raw features, with the same outputs (up to float
//! rounding). It is a reparametrisation for the optimiser, not a change of model. Absent
//! modalities are zeroed by the tower before its projection in either space, and their tokens never
//! reach the output, so folding is exact for them too.
//!
//! The `moe` text adaptor (`model::MoeAdaptor`) folds the same way: its experts are one Linear
//! (folded as above), its whitening shifts become `b_raw = b ⊙ (1/s)` (0 where `s = 0`), and the part
//! of `b W_eᵀ` on constant dimensions — which standardized inputs never cancel — moves into the
//! experts' bias; its gate is a Linear too.

use std::collections::HashMap;

use candle_core::Tensor;
use candle_nn::VarMap;

use super::error::TrainError;
use crate::encoders::features::{Features, ModalityFeatures};

/// The projections a [`FeatureScaling`] applies to, with the modality they read.
const TEXT_PROJECTION: &str = "item_tower.text_projection";
const IMAGE_PROJECTION: &str = "item_tower.image_projection";
/// The `moe` text adaptor's parameters (`model::MoeAdaptor`), which read the text feature too.
const TEXT_ADAPTOR_EXPERTS: &str = "item_tower.text_adaptor.experts";
const TEXT_ADAPTOR_GATE: &str = "item_tower.text_adaptor.gate";
const TEXT_ADAPTOR_WHITENING: &str = "item_tower.text_adaptor.whitening";

/// Per-dimension shift and scale of one modality.
#[derive(Debug, Clone, PartialEq)]
pub struct Standardization {
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
}

impl Standardization {
    /// Mean and 1/std (population) of each dimension over `rows` that have the modality; the
    /// identity when none has it. Sums in f64.
    pub fn fit(modality: &ModalityFeatures, rows: &[u32]) -> Self {
        let dim = modality.dim;
        let present: Vec<usize> = rows.iter().map(|&r| r as usize).filter(|&r| modality.present[r]).collect();
        if present.is_empty() {
            return Standardization::identity(dim);
        }
        let mut sum = vec![0f64; dim];
        let mut sum_sq = vec![0f64; dim];
        for &r in &present {
            for (j, &v) in modality.row(r).iter().enumerate() {
                sum[j] += v as f64;
                sum_sq[j] += (v as f64) * (v as f64);
            }
        }
        let n = present.len() as f64;
        let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let scale = (0..dim)
            .map(|j| {
                let variance = (sum_sq[j] / n - mean[j] * mean[j]).max(0.0);
                if variance.sqrt() > 1e-6 {
                    (1.0 / variance.sqrt()) as f32
                } else {
                    0.0
                }
            })
            .collect();
        Standardization { mean: mean.iter().map(|&m| m as f32).collect(), scale }
    }

    pub fn identity(dim: usize) -> Self {
        Standardization { mean: vec![0.0; dim], scale: vec![1.0; dim] }
    }

    /// The modality with every present row standardized (absent rows stay zero).
    fn apply(&self, modality: &ModalityFeatures) -> ModalityFeatures {
        let mut out = modality.clone();
        for (r, &present) in modality.present.iter().enumerate() {
            let row = &mut out.values[r * modality.dim..(r + 1) * modality.dim];
            if present {
                for (j, v) in row.iter_mut().enumerate() {
                    *v = (*v - self.mean[j]) * self.scale[j];
                }
            }
        }
        out
    }

    /// `(W, b)` trained on standardized inputs → the same map on raw inputs.
    fn fold(&self, weight: &Tensor, bias: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let device = weight.device();
        let scale = Tensor::new(self.scale.as_slice(), device)?.unsqueeze(0)?; // [1, in]
        let shift: Vec<f32> = self.mean.iter().zip(&self.scale).map(|(m, s)| m * s).collect();
        let shift = Tensor::new(shift.as_slice(), device)?.unsqueeze(1)?; // [in, 1]
        let raw_weight = weight.broadcast_mul(&scale)?;
        let raw_bias = (bias - weight.matmul(&shift)?.squeeze(1)?)?;
        Ok((raw_weight, raw_bias))
    }

    /// The `moe` adaptor's experts `(W [E·d, k], a [E·d])` and whitening `b [E, k]` trained on
    /// standardized inputs → the same map on raw inputs (see the module documentation).
    fn fold_adaptor(&self, weight: &Tensor, bias: &Tensor, whitening: &Tensor) -> candle_core::Result<[Tensor; 3]> {
        let (raw_weight, linear_bias) = self.fold(weight, bias)?;
        let raw_whitening = whitening.broadcast_mul(&self.inverse_scale(weight.device())?)?;
        let lost = constant_share(weight, whitening, &self.constant_dims(weight.device())?)?;
        Ok([raw_weight, (linear_bias - lost)?, raw_whitening])
    }

    /// The inverse of [`fold_adaptor`](Self::fold_adaptor) (exact on inputs whose constant
    /// dimensions hold their mean, as every training-catalogue item's do).
    fn unfold_adaptor(&self, weight: &Tensor, bias: &Tensor, whitening: &Tensor) -> candle_core::Result<[Tensor; 3]> {
        let device = weight.device();
        let (weight_std, linear_bias) = self.unfold(weight, bias)?;
        let scale = Tensor::new(self.scale.as_slice(), device)?.unsqueeze(0)?;
        let whitening_std = whitening.broadcast_mul(&scale)?;
        let lost = constant_share(weight, whitening, &self.constant_dims(device)?)?;
        Ok([weight_std, (linear_bias - lost)?, whitening_std])
    }

    /// `[1, in]`: `1/s`, 0 where `s = 0`.
    fn inverse_scale(&self, device: &candle_core::Device) -> candle_core::Result<Tensor> {
        let inverse: Vec<f32> = self.scale.iter().map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 }).collect();
        Tensor::new(inverse.as_slice(), device)?.unsqueeze(0)
    }

    /// `[1, in]`: 1 where the dimension is constant (`s = 0`), else 0.
    fn constant_dims(&self, device: &candle_core::Device) -> candle_core::Result<Tensor> {
        let constant: Vec<f32> = self.scale.iter().map(|&s| if s > 0.0 { 0.0 } else { 1.0 }).collect();
        Tensor::new(constant.as_slice(), device)?.unsqueeze(0)
    }

    /// The inverse of [`fold`](Self::fold): raw-space `(W, b)` → standardized space. Columns of
    /// constant dimensions (scale 0) become 0: those inputs are 0 in standardized space.
    fn unfold(&self, weight: &Tensor, bias: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let device = weight.device();
        let inverse: Vec<f32> = self.scale.iter().map(|&s| if s > 0.0 { 1.0 / s } else { 0.0 }).collect();
        let inverse = Tensor::new(inverse.as_slice(), device)?.unsqueeze(0)?;
        let mean = Tensor::new(self.mean.as_slice(), device)?.unsqueeze(1)?;
        let weight_std = weight.broadcast_mul(&inverse)?;
        let bias_std = (bias + weight.matmul(&mean)?.squeeze(1)?)?;
        Ok((weight_std, bias_std))
    }
}

/// `[E·d]`: each expert's `W_e (b_e ⊙ constant)`, the constant dimensions' share of `b_e W_eᵀ`.
fn constant_share(weight: &Tensor, whitening: &Tensor, constant: &Tensor) -> candle_core::Result<Tensor> {
    let (experts, k) = whitening.dims2()?;
    let per_expert = weight.reshape((experts, (), k))?; // [E, d, k]
    per_expert.matmul(&whitening.broadcast_mul(constant)?.unsqueeze(2)?)?.flatten_all()
}

/// The standardization of both modalities (`identity` when switched off).
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureScaling {
    pub text: Standardization,
    pub image: Standardization,
}

impl FeatureScaling {
    /// Fitted on the catalogue rows `rows` (the training catalogue: cold-new items left out).
    pub fn fit(features: &Features, rows: &[u32]) -> Self {
        FeatureScaling {
            text: Standardization::fit(&features.text, rows),
            image: Standardization::fit(&features.image, rows),
        }
    }

    pub fn identity(features: &Features) -> Self {
        FeatureScaling {
            text: Standardization::identity(features.text.dim),
            image: Standardization::identity(features.image.dim),
        }
    }

    /// `features` as the training-space model reads them.
    pub fn apply(&self, features: &Features) -> Features {
        Features { text: self.text.apply(&features.text), image: self.image.apply(&features.image), ..features.clone() }
    }

    /// Every variable of `varmap`, the two projections folded onto raw features: what
    /// `model.safetensors` holds. Variables of other models (no projections) are copied as they are.
    pub fn raw_weights(&self, varmap: &VarMap) -> Result<HashMap<String, Tensor>, TrainError> {
        let mut tensors: HashMap<String, Tensor> = {
            let vars = varmap.data().lock().map_err(|_| poisoned())?;
            vars.iter().map(|(name, var)| (name.clone(), var.as_tensor().detach())).collect()
        };
        for (prefix, standardization) in LINEARS.map(|(prefix, text)| (prefix, self.modality(text))) {
            let (w, b) = (format!("{prefix}.weight"), format!("{prefix}.bias"));
            if let (Some(weight), Some(bias)) = (tensors.get(&w), tensors.get(&b)) {
                let (weight, bias) = standardization.fold(weight, bias)?;
                tensors.insert(w, weight);
                tensors.insert(b, bias);
            }
        }
        let (w, b) = (format!("{TEXT_ADAPTOR_EXPERTS}.weight"), format!("{TEXT_ADAPTOR_EXPERTS}.bias"));
        if let (Some(weight), Some(bias), Some(whitening)) =
            (tensors.get(&w), tensors.get(&b), tensors.get(TEXT_ADAPTOR_WHITENING))
        {
            let [weight, bias, whitening] = self.text.fold_adaptor(weight, bias, whitening)?;
            tensors.insert(w, weight);
            tensors.insert(b, bias);
            tensors.insert(TEXT_ADAPTOR_WHITENING.into(), whitening);
        }
        Ok(tensors)
    }

    /// Rewrites raw-space projections in `varmap` (e.g. just loaded from another run with `--init`)
    /// into this scaling's training space.
    pub fn to_training_space(&self, varmap: &VarMap) -> Result<(), TrainError> {
        let vars = varmap.data().lock().map_err(|_| poisoned())?;
        for (prefix, standardization) in LINEARS.map(|(prefix, text)| (prefix, self.modality(text))) {
            let (Some(weight), Some(bias)) =
                (vars.get(&format!("{prefix}.weight")), vars.get(&format!("{prefix}.bias")))
            else {
                continue;
            };
            let (w, b) = standardization.unfold(weight.as_tensor(), bias.as_tensor())?;
            weight.set(&w)?;
            bias.set(&b)?;
        }
        let get = |name: String| vars.get(&name);
        if let (Some(weight), Some(bias), Some(whitening)) = (
            get(format!("{TEXT_ADAPTOR_EXPERTS}.weight")),
            get(format!("{TEXT_ADAPTOR_EXPERTS}.bias")),
            get(TEXT_ADAPTOR_WHITENING.into()),
        ) {
            let [w, b, white] =
                self.text.unfold_adaptor(weight.as_tensor(), bias.as_tensor(), whitening.as_tensor())?;
            weight.set(&w)?;
            bias.set(&b)?;
            whitening.set(&white)?;
        }
        Ok(())
    }

    fn modality(&self, text: bool) -> &Standardization {
        if text {
            &self.text
        } else {
            &self.image
        }
    }
}

/// The Linear layers reading a raw feature, and whether it is the text (else the image).
const LINEARS: [(&str, bool); 3] = [(TEXT_PROJECTION, true), (IMAGE_PROJECTION, false), (TEXT_ADAPTOR_GATE, true)];

fn poisoned() -> TrainError {
    TrainError::Stage { stage: "save", reason: "the VarMap lock is poisoned".into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn modality(rows: &[&[f32]], present: &[bool]) -> ModalityFeatures {
        let dim = rows[0].len();
        let mut m = ModalityFeatures::absent(rows.len(), dim, None);
        for (i, row) in rows.iter().enumerate() {
            if present[i] {
                m.set_row(i, row, [0; 32]);
            }
        }
        m
    }

    #[test]
    fn fit_uses_present_rows_and_constant_dimensions_get_zero_scale() {
        let m = modality(&[&[1.0, 5.0], &[3.0, 5.0], &[100.0, 100.0]], &[true, true, false]);
        let s = Standardization::fit(&m, &[0, 1, 2]);
        assert_eq!(s.mean, vec![2.0, 5.0]);
        assert_eq!(s.scale, vec![1.0, 0.0]);
        let applied = s.apply(&m);
        assert_eq!(applied.row(0), &[-1.0, 0.0]);
        assert_eq!(applied.row(2), &[0.0, 0.0], "absent rows stay zero");
        // Only the listed rows count.
        assert_eq!(Standardization::fit(&m, &[1]).mean, vec![3.0, 5.0]);
    }

    #[test]
    fn folded_weights_give_the_same_outputs_on_raw_inputs_and_unfold_inverts() {
        let dev = Device::Cpu;
        let s = Standardization { mean: vec![0.5, -2.0, 3.0], scale: vec![4.0, 0.25, 0.0] };
        let weight = Tensor::new(&[[1f32, 2.0, 3.0], [-1.0, 0.5, 7.0]], &dev).unwrap();
        let bias = Tensor::new(&[0.1f32, -0.2], &dev).unwrap();
        let raw = Tensor::new(&[[1f32, 2.0, 9.0], [0.0, -4.0, -1.0]], &dev).unwrap();
        let m = modality(&[&[1.0, 2.0, 9.0], &[0.0, -4.0, -1.0]], &[true, true]);
        let standardized = s.apply(&m).tensor(&dev).unwrap();
        let expected = standardized.matmul(&weight.t().unwrap()).unwrap().broadcast_add(&bias).unwrap();
        let (w_raw, b_raw) = s.fold(&weight, &bias).unwrap();
        let got = raw.matmul(&w_raw.t().unwrap()).unwrap().broadcast_add(&b_raw).unwrap();
        let diff = (expected - got).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "{diff}");

        let (w_back, b_back) = s.unfold(&w_raw, &b_raw).unwrap();
        let (w_again, b_again) = s.fold(&w_back, &b_back).unwrap();
        let close = |a: &Tensor, b: &Tensor| {
            (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap() < 1e-5
        };
        assert!(close(&w_again, &w_raw) && close(&b_again, &b_raw));
    }

    #[test]
    fn the_moe_adaptor_folds_onto_raw_features_and_back() {
        use crate::model::MoeAdaptor;
        use candle_nn::VarBuilder;
        let dev = Device::Cpu;
        let (k, d, experts) = (4, 3, 2);
        // Dimension 2 is constant over the catalogue (scale 0): raw inputs hold its mean there.
        let s = Standardization { mean: vec![0.5, -2.0, 3.0, 1.0], scale: vec![4.0, 0.25, 0.0, 2.0] };
        let random = |shape: &[usize]| Tensor::randn(0f32, 1.0, shape, &dev).unwrap();
        let mut trained: HashMap<String, Tensor> = HashMap::new();
        for (name, shape) in [
            ("whitening", vec![experts, k]),
            ("experts.weight", vec![experts * d, k]),
            ("experts.bias", vec![experts * d]),
            ("gate.weight", vec![experts, k]),
            ("gate.bias", vec![experts]),
        ] {
            trained.insert(format!("item_tower.text_adaptor.{name}"), random(&shape));
        }
        let adaptor = |tensors: &HashMap<String, Tensor>| {
            let vb = VarBuilder::from_tensors(tensors.clone(), candle_core::DType::F32, &dev);
            MoeAdaptor::new(k, d, experts, vb.pp("item_tower.text_adaptor")).unwrap()
        };
        let raw_rows: [&[f32]; 3] = [&[1.0, 2.0, 3.0, -1.0], &[0.0, -4.0, 3.0, 0.5], &[2.5, 1.0, 3.0, 7.0]];
        let m = modality(&raw_rows, &[true, true, true]);
        let raw = m.tensor(&dev).unwrap();
        let standardized = s.apply(&m).tensor(&dev).unwrap();
        let expected = adaptor(&trained).forward(&standardized).unwrap();

        let varmap = VarMap::new();
        for (name, tensor) in &trained {
            varmap.data().lock().unwrap().insert(name.clone(), candle_core::Var::from_tensor(tensor).unwrap());
        }
        let image = Standardization::identity(1);
        let scaling = FeatureScaling { text: s, image };
        let folded = scaling.raw_weights(&varmap).unwrap();
        let got = adaptor(&folded).forward(&raw).unwrap();
        let diff = (expected.clone() - got).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-4, "folded adaptor on raw features differs by {diff}");

        // --init: raw weights back into training space give the same outputs on standardized inputs.
        for (name, tensor) in &folded {
            varmap.data().lock().unwrap()[name].set(tensor).unwrap();
        }
        scaling.to_training_space(&varmap).unwrap();
        let back: HashMap<String, Tensor> =
            varmap.data().lock().unwrap().iter().map(|(n, v)| (n.clone(), v.as_tensor().clone())).collect();
        let again = adaptor(&back).forward(&standardized).unwrap();
        let diff = (expected - again).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-4, "unfolded adaptor differs by {diff}");
    }
}
