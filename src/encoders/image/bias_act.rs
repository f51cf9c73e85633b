//! Per-channel bias (the folded BatchNorm shift) and optional ReLU6, applied in place on a fresh NCHW
//! convolution output: one pass over memory instead of candle's broadcast add + max + min (three passes,
//! three allocations), which cost as much as the convolutions themselves on the wide layers.

use candle_core::{CpuStorage, InplaceOp1, Layout, Tensor};

/// What follows the folded BatchNorm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The project convs of the MBConv blocks are linear.
    None,
    /// `min(max(x, 0), 6)`: every other conv of Lite (friendlier to quantization than swish).
    Relu6,
}

impl Activation {
    #[inline]
    fn apply(self, x: f32) -> f32 {
        match self {
            Activation::None => x,
            Activation::Relu6 => x.clamp(0.0, 6.0),
        }
    }
}

/// Adds `bias[c]` to every value of channel `c` of a contiguous f32 `[n, c, h, w]` tensor, then the
/// activation. The tensor must not share storage with another (a fresh op output).
pub fn add_bias_activate(x: &Tensor, bias: &[f32], activation: Activation) -> candle_core::Result<()> {
    let (_, c, _, _) = x.dims4()?;
    if c != bias.len() {
        candle_core::bail!("bias of {} channels for a tensor of {c}", bias.len());
    }
    x.inplace_op1(&BiasActivation { bias, activation })
}

struct BiasActivation<'a> {
    bias: &'a [f32],
    activation: Activation,
}

impl InplaceOp1 for BiasActivation<'_> {
    fn name(&self) -> &'static str {
        "bias-activation"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let CpuStorage::F32(data) = storage else {
            candle_core::bail!("bias-activation: f32 tensors only");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("bias-activation: the tensor must be contiguous");
        };
        let (_, channels, h, w) = layout.shape().dims4()?;
        for (i, plane) in data[start..end].chunks_exact_mut(h * w).enumerate() {
            let bias = self.bias[i % channels];
            for v in plane {
                *v = self.activation.apply(*v + bias);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn adds_the_channel_bias_then_clamps() -> candle_core::Result<()> {
        let x = Tensor::new(&[-3.0f32, 1.0, 2.0, 5.5], &Device::Cpu)?.reshape((2, 2, 1, 1))?;
        add_bias_activate(&x, &[1.0, 1.0], Activation::Relu6)?;
        assert_eq!(x.flatten_all()?.to_vec1::<f32>()?, vec![0.0, 2.0, 3.0, 6.0]);
        let y = Tensor::new(&[-3.0f32, 1.0], &Device::Cpu)?.reshape((1, 2, 1, 1))?;
        add_bias_activate(&y, &[0.5, -2.0], Activation::None)?;
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![-2.5, -1.0]);
        assert!(add_bias_activate(&y, &[0.0], Activation::None).is_err());
        Ok(())
    }
}
