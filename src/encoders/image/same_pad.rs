//! TensorFlow "SAME" padding, which the converted EfficientNet-Lite weights were trained with.
//!
//! Output size is `ceil(input / stride)`; the total padding `max((out − 1)·stride + kernel − input, 0)`
//! is split with the smaller half before and the rest after. At stride 2 that is asymmetric (a 3×3
//! on 224 pads 0 before and 1 after), which PyTorch's symmetric `padding=1` would get wrong.

#[cfg(test)]
use candle_core::{Result, Tensor};

/// Zero padding of one spatial axis: `(before, after)`.
pub fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let output = input.div_ceil(stride);
    let total = ((output.saturating_sub(1)) * stride + kernel).saturating_sub(input);
    (total / 2, total - total / 2)
}

/// How a convolution gets its SAME padding: symmetric padding can be handed to candle's conv2d;
/// asymmetric padding is applied as an explicit zero pad first. The layers clip their loops instead;
/// the tests build their candle references with this.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Padding {
    /// Pass this to `conv2d` (same on every side).
    Symmetric(usize),
    /// Pad `[n, c, h, w]` explicitly: (top, bottom, left, right); then convolve with padding 0.
    Explicit { top: usize, bottom: usize, left: usize, right: usize },
}

#[cfg(test)]
impl Padding {
    /// The SAME padding of a `kernel`×`kernel` convolution with `stride` over an `h`×`w` input.
    pub fn same(h: usize, w: usize, kernel: usize, stride: usize) -> Self {
        let (top, bottom) = same_padding(h, kernel, stride);
        let (left, right) = same_padding(w, kernel, stride);
        if top == bottom && left == right && top == left {
            Padding::Symmetric(top)
        } else {
            Padding::Explicit { top, bottom, left, right }
        }
    }

    /// Applies the explicit part to `x` `[n, c, h, w]` and returns what is left for `conv2d`.
    pub fn apply(self, x: &Tensor) -> Result<(Tensor, usize)> {
        match self {
            Padding::Symmetric(p) => Ok((x.clone(), p)),
            Padding::Explicit { top, bottom, left, right } => {
                let x = x.pad_with_zeros(2, top, bottom)?.pad_with_zeros(3, left, right)?;
                Ok((x, 0))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_golden_readme() {
        assert_eq!(same_padding(224, 3, 2), (0, 1));
        assert_eq!(same_padding(56, 5, 2), (1, 2));
        assert_eq!(same_padding(112, 3, 1), (1, 1));
        assert_eq!(same_padding(14, 5, 1), (2, 2));
        assert_eq!(same_padding(7, 1, 1), (0, 0));
        // An odd input at stride 2 needs no extra pixel at the end.
        assert_eq!(same_padding(7, 3, 2), (1, 1));
    }

    #[test]
    fn stride_two_is_explicit_stride_one_symmetric() {
        assert_eq!(Padding::same(224, 224, 3, 2), Padding::Explicit { top: 0, bottom: 1, left: 0, right: 1 });
        assert_eq!(Padding::same(28, 28, 5, 1), Padding::Symmetric(2));
        assert_eq!(Padding::same(28, 28, 1, 1), Padding::Symmetric(0));
    }
}
