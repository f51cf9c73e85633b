//! LayerNorm that stays differentiable in training.
//!
//! `candle_nn::LayerNorm` takes a fused kernel on contiguous input, and that kernel has no
//! backward pass (`apply_op3_no_bwd`): gradients would silently stop at every LayerNorm. This
//! wrapper takes the fused kernel only when nothing needs a gradient (the runtime, loaded weights)
//! and candle's differentiable composition otherwise (VarMap variables in training).

use candle_core::{Result, Tensor};
use candle_nn::{Init, VarBuilder};

/// LayerNorm over the last dimension with a learned scale (`weight`) and shift (`bias`).
#[derive(Debug, Clone)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f64,
}

impl LayerNorm {
    /// Parameters `{prefix}.weight` and `{prefix}.bias`, both `[dim]`.
    pub fn new(dim: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get_with_hints(dim, "weight", Init::Const(1.0))?;
        let bias = vb.get_with_hints(dim, "bias", Init::Const(0.0))?;
        Ok(LayerNorm { weight, bias, eps })
    }

    /// `[..., dim]` → `[..., dim]`.
    pub fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if xs.track_op() || self.weight.track_op() || self.bias.track_op() {
            candle_nn::ops::layer_norm_slow(xs, &self.weight, &self.bias, self.eps as f32)
        } else {
            candle_nn::ops::layer_norm(&xs.contiguous()?, &self.weight, &self.bias, self.eps as f32)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use candle_nn::VarMap;

    #[test]
    fn fused_and_differentiable_paths_agree_and_gradients_flow() {
        let dev = Device::Cpu;
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
        let norm = LayerNorm::new(8, 1e-5, vb).unwrap();
        let xs = Var::from_tensor(&Tensor::randn(0f32, 3.0, (5, 8), &dev).unwrap()).unwrap();
        let tracked = norm.forward(xs.as_tensor()).unwrap();
        let plain = LayerNorm { weight: norm.weight.detach(), bias: norm.bias.detach(), eps: 1e-5 }
            .forward(&xs.as_tensor().detach())
            .unwrap();
        let diff = (&tracked - &plain).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-5, "paths differ by {diff}");

        let loss = (tracked.sqr().unwrap() * &xs.as_tensor().detach()).unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        assert!(grads.get(xs.as_tensor()).is_some(), "gradient reaches the input");
        assert!(grads.get(&norm.weight).is_some(), "gradient reaches the scale");
    }
}
