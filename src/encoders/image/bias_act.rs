//! What follows each folded convolution: ReLU6 (or nothing), applied in place on one image's
//! channels-last `[h·w, channels]` output, and the per-channel bias or residual written into the output
//! before the product accumulates onto it (so neither costs a pass of its own).

use crate::encoders::kernels::multiversion;

/// What follows the folded BatchNorm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// The project convs of the MBConv blocks are linear.
    None,
    /// `min(max(x, 0), 6)`: every other conv of Lite (friendlier to quantization than swish).
    Relu6,
}

impl Activation {
    /// Applies the activation to every value in place.
    pub fn apply(self, values: &mut [f32]) {
        if self == Activation::Relu6 {
            relu6_in_place(values);
        }
    }
}

multiversion! {
    fn relu6_in_place(values: &mut [f32]) {
        for v in values.iter_mut() {
            *v = v.clamp(0.0, 6.0);
        }
    }
}

/// `out` ← `[pixels, bias.len()]` holding `bias` in every pixel, plus `residual` (same shape) when
/// given. `out` is resized; its old contents are dropped.
pub fn fill_bias(out: &mut Vec<f32>, bias: &[f32], pixels: usize, residual: Option<&[f32]>) {
    out.clear();
    match residual {
        None => {
            for _ in 0..pixels {
                out.extend_from_slice(bias);
            }
        }
        Some(residual) => {
            debug_assert_eq!(residual.len(), bias.len() * pixels);
            for pixel in residual.chunks_exact(bias.len()) {
                out.extend(pixel.iter().zip(bias).map(|(r, b)| r + b));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bias_per_channel_plus_residual_then_clamp() {
        let mut out = vec![9.0; 3];
        fill_bias(&mut out, &[1.0, -2.0], 2, None);
        assert_eq!(out, vec![1.0, -2.0, 1.0, -2.0]);
        fill_bias(&mut out, &[1.0, -2.0], 2, Some(&[0.5, 7.0, 1.0, -1.0]));
        assert_eq!(out, vec![1.5, 5.0, 2.0, -3.0]);
        Activation::Relu6.apply(&mut out);
        assert_eq!(out, vec![1.5, 5.0, 2.0, 0.0]);
        Activation::None.apply(&mut out);
        assert_eq!(out, vec![1.5, 5.0, 2.0, 0.0]);
        fill_bias(&mut out, &[7.0], 1, None);
        Activation::Relu6.apply(&mut out);
        assert_eq!(out, vec![6.0]);
    }
}
