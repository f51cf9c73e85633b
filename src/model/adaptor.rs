//! UniSRec's text adaptor (Hou et al., "Towards Universal Sequence Representation Learning for
//! Recommender Systems", KDD 2022, arXiv 2206.05941 § 3.2): parametric whitening and a mixture of
//! experts, the item tower's alternative to one `Linear` on the frozen text feature
//! (`[model] text_adaptor = "moe"`).
//!
//! For a text feature `x` (`[k]`, `k = text_dim`) and `E` experts:
//!
//! ```text
//! expert e:  y_e = (x − b_e) W_eᵀ + a_e      b_e [k] (learned whitening shift), W_e [d, k], a_e [d]
//! gate:      g   = softmax(x W_gᵀ + c_g)     W_g [E, k], c_g [E]
//! output:    Σ_e g_e y_e                     [d]
//! ```
//!
//! The experts give the tower several learned "whitenings" of a frozen space that was not made for
//! this shop, and the gate picks among them per item. Two departures from UniSRec, both so that
//! training on standardized features (`train::standardize`) folds exactly back onto raw ones: the
//! gate has a bias `c_g`, and each expert an output bias `a_e` (a feature dimension that is constant
//! over the catalogue is 0 after standardizing, and its share of `b_e W_eᵀ` must go somewhere).
//! As a function of `x`, `b_e W_eᵀ` is itself an output bias: the whitening shift changes how the
//! optimiser moves, not what the layer can express. UniSRec also adds Gaussian noise to the gate
//! logits in training; this adaptor does not (the tower's dropout follows it).
//!
//! Parameters under its prefix (`item_tower.text_adaptor`): `whitening` `[E, k]` (row e = b_e),
//! `experts.weight` `[E·d, k]` (rows e·d..(e+1)·d = W_e), `experts.bias` `[E·d]` (a_e),
//! `gate.weight` `[E, k]`, `gate.bias` `[E]`. The experts are one Linear, so the export quantizes
//! them like any projection and the forward is one matrix product: `y_e = x W_eᵀ + a_e − b_e W_eᵀ`.

use candle_core::{Module, Tensor, D};
use candle_nn::{Init, Linear, VarBuilder};

use super::error::ModelError;

/// The mixture-of-experts text adaptor (see the module documentation).
#[derive(Debug, Clone)]
pub struct MoeAdaptor {
    whitening: Tensor,
    experts_linear: Linear,
    gate: Linear,
    experts: usize,
    dim: usize,
}

impl MoeAdaptor {
    /// `in_dim → dim` with `experts` experts. Init: whitening 0, experts as `candle_nn::linear`,
    /// gate 0 (every expert weighs 1/E at first, as UniSRec's zero-initialised gate).
    pub fn new(in_dim: usize, dim: usize, experts: usize, vb: VarBuilder) -> Result<Self, ModelError> {
        let whitening = vb.get_with_hints((experts, in_dim), "whitening", Init::Const(0.0))?;
        let experts_linear = candle_nn::linear(in_dim, experts * dim, vb.pp("experts"))?;
        let gate_vb = vb.pp("gate");
        let gate_weight = gate_vb.get_with_hints((experts, in_dim), "weight", Init::Const(0.0))?;
        let gate_bias = gate_vb.get_with_hints(experts, "bias", Init::Const(0.0))?;
        Ok(MoeAdaptor { whitening, experts_linear, gate: Linear::new(gate_weight, Some(gate_bias)), experts, dim })
    }

    /// `x: [n, k]` → `[n, d]`.
    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let n = x.dim(0)?;
        let (experts, d) = (self.experts, self.dim);
        // b_e W_eᵀ for every expert: [E, d, k] × [E, k, 1] → [E·d].
        let per_expert = self.experts_linear.weight().reshape((experts, d, ()))?;
        let shift = per_expert.matmul(&self.whitening.unsqueeze(2)?)?.flatten_all()?;
        let outputs = self.experts_linear.forward(x)?.broadcast_sub(&shift)?.reshape((n, experts, d))?;
        let gate = candle_nn::ops::softmax(&self.gate.forward(x)?, D::Minus1)?; // [n, E]
        outputs.broadcast_mul(&gate.unsqueeze(2)?)?.sum(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    /// The adaptor against its definition written out expert by expert.
    #[test]
    fn forward_is_the_gated_sum_of_whitened_experts() {
        let dev = Device::Cpu;
        let (k, d, experts, n) = (5, 3, 4, 6);
        let varmap = VarMap::new();
        let adaptor = MoeAdaptor::new(k, d, experts, crate::model::seeded_var_builder(&varmap, 3, &dev)).unwrap();
        // Non-trivial whitening and gate (their init is 0).
        for (name, shape) in [("whitening", (experts, k)), ("gate.weight", (experts, k))] {
            let values = Tensor::randn(0f32, 1.0, shape, &dev).unwrap();
            varmap.data().lock().unwrap()[name].set(&values).unwrap();
        }
        varmap.data().lock().unwrap()["gate.bias"].set(&Tensor::new(&[0.3f32, -0.2, 0.0, 1.0], &dev).unwrap()).unwrap();
        let x = Tensor::randn(0f32, 1.0, (n, k), &dev).unwrap();
        let got = adaptor.forward(&x).unwrap().to_vec2::<f32>().unwrap();

        let vars = varmap.data().lock().unwrap();
        let get = |name: &str| vars[name].as_tensor().to_dtype(DType::F32).unwrap();
        let (b, w, a, gw, gb) = (
            get("whitening").to_vec2::<f32>().unwrap(),
            get("experts.weight").to_vec2::<f32>().unwrap(),
            get("experts.bias").to_vec1::<f32>().unwrap(),
            get("gate.weight").to_vec2::<f32>().unwrap(),
            get("gate.bias").to_vec1::<f32>().unwrap(),
        );
        let x = x.to_vec2::<f32>().unwrap();
        for (row, x) in x.iter().enumerate() {
            let logits: Vec<f32> = (0..experts).map(|e| gb[e] + (0..k).map(|j| x[j] * gw[e][j]).sum::<f32>()).collect();
            let max = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let total: f32 = logits.iter().map(|l| (l - max).exp()).sum();
            for i in 0..d {
                let expected: f32 = (0..experts)
                    .map(|e| {
                        let g = (logits[e] - max).exp() / total;
                        g * (a[e * d + i] + (0..k).map(|j| (x[j] - b[e][j]) * w[e * d + i][j]).sum::<f32>())
                    })
                    .sum();
                assert!((got[row][i] - expected).abs() < 1e-4, "row {row} dim {i}: {} vs {expected}", got[row][i]);
            }
        }
    }
}
