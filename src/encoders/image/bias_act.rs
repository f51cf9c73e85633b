//! What follows each folded convolution's product, in one pass over one image's channels-last
//! `[pixels, channels]` output: the per-channel bias (the folded BatchNorm shift), the block's residual
//! when it has one, then ReLU6 (or nothing). In the reference's order: (conv + bias) + residual.

use crate::encoders::kernels::multiversion;

/// What follows the folded BatchNorm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The project convs of the MBConv blocks are linear.
    None,
    /// `min(max(x, 0), 6)`: every other conv of Lite (friendlier to quantization than swish).
    Relu6,
}

/// `out[p, c] ← activation(out[p, c] + bias[c] + residual[p, c])` for `out` `[pixels, bias.len()]`;
/// `residual` has the shape of `out`, or is empty for none.
pub fn add_bias_activate(out: &mut [f32], bias: &[f32], residual: &[f32], activation: Activation) {
    debug_assert!(residual.is_empty() || residual.len() == out.len());
    add_bias_activate_kernel(out, bias, residual, activation == Activation::Relu6);
}

multiversion! {
    fn add_bias_activate_kernel(out: &mut [f32], bias: &[f32], residual: &[f32], relu6: bool) {
        let channels = bias.len();
        for (p, pixel) in out.chunks_exact_mut(channels).enumerate() {
            for (v, b) in pixel.iter_mut().zip(bias) {
                *v += b;
            }
            if !residual.is_empty() {
                for (v, r) in pixel.iter_mut().zip(&residual[p * channels..(p + 1) * channels]) {
                    *v += r;
                }
            }
            if relu6 {
                for v in pixel.iter_mut() {
                    *v = v.clamp(0.0, 6.0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_bias_then_residual_then_clamps() {
        let mut out = vec![0.5, 7.0, 1.0, -1.0];
        add_bias_activate(&mut out, &[1.0, -2.0], &[], Activation::None);
        assert_eq!(out, vec![1.5, 5.0, 2.0, -3.0]);
        add_bias_activate(&mut out, &[0.0, 0.0], &[1.0, 2.0, 3.0, 4.0], Activation::Relu6);
        assert_eq!(out, vec![2.5, 6.0, 5.0, 1.0]);
        let mut negative = vec![-1.0];
        add_bias_activate(&mut negative, &[0.5], &[], Activation::Relu6);
        assert_eq!(negative, vec![0.0]);
    }
}
