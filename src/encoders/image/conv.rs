//! A dense k×k convolution with TF SAME padding and its BatchNorm folded in (the stem).

use candle_core::Tensor;

use super::batch_norm::{load_folded, Folded};
use super::bias_act::{add_bias_activate, Activation};
use super::error::Result;
use super::same_pad::Padding;
use super::state_dict::StateDict;

/// Conv (no bias) + BatchNorm + activation. `[n, c_in, h, w]` → `[n, c_out, ceil(h/s), ceil(w/s)]`.
#[derive(Debug, Clone)]
pub struct ConvBn {
    folded: Folded,
    kernel: usize,
    stride: usize,
    activation: Activation,
}

impl ConvBn {
    /// Reads `{conv}.weight` `[c_out, c_in, k, k]` and the BatchNorm `{bn}.*`.
    pub fn load(
        state: &StateDict,
        (conv, bn): (&str, &str),
        (c_in, c_out, kernel, stride): (usize, usize, usize, usize),
        activation: Activation,
    ) -> Result<Self> {
        let folded = load_folded(state, conv, bn, (c_out, c_in, kernel, kernel))?;
        Ok(Self { folded, kernel, stride, activation })
    }

    pub fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let (_, _, h, w) = x.dims4()?;
        let (x, padding) = Padding::same(h, w, self.kernel, self.stride).apply(x)?;
        let y = x.conv2d(&self.folded.weight, padding, self.stride, 1, 1)?;
        add_bias_activate(&y, &self.folded.bias, self.activation)?;
        Ok(y)
    }
}
