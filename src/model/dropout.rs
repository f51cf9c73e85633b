//! Forward modes and seeded dropout.
//!
//! Dropout draws its masks from a [`DropoutRng`] the caller owns instead of `candle_nn::ops::dropout`
//! (whose masks come from the CPU thread RNG that cannot be seeded), so a training run with a
//! seed is repeatable. Inference passes [`Mode::Eval`] and never touches a generator.

use std::cell::RefCell;

use candle_core::{Result, Tensor};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded source of dropout masks for one training run (one per thread).
#[derive(Debug)]
pub struct DropoutRng(RefCell<ChaCha8Rng>);

impl DropoutRng {
    pub fn new(seed: u64) -> Self {
        DropoutRng(RefCell::new(ChaCha8Rng::seed_from_u64(seed)))
    }

    /// `count` uniform draws in [0, 1) with 24 random bits each (an `f32` mantissa's worth); also
    /// whole-row masks (the ID residuals' dropout).
    pub fn uniform(&self, count: usize) -> Vec<f32> {
        let mut rng = self.0.borrow_mut();
        (0..count).map(|_| (rng.next_u32() >> 8) as f32 * (1.0 / (1u32 << 24) as f32)).collect()
    }
}

/// How a forward pass runs: inference (no dropout) or training (dropout from the given generator).
#[derive(Debug, Clone, Copy)]
pub enum Mode<'a> {
    Eval,
    Train(&'a DropoutRng),
}

/// Inverted dropout: in training, zero each element with probability `p` and scale the rest by
/// 1/(1−p); identity in evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Dropout {
    p: f32,
}

impl Dropout {
    pub fn new(p: f32) -> Self {
        Dropout { p }
    }

    pub fn forward(&self, xs: &Tensor, mode: Mode) -> Result<Tensor> {
        let Mode::Train(rng) = mode else { return Ok(xs.clone()) };
        if self.p == 0.0 {
            return Ok(xs.clone());
        }
        let keep_scale = 1.0 / (1.0 - self.p);
        let mask: Vec<f32> =
            rng.uniform(xs.elem_count()).into_iter().map(|u| if u < self.p { 0.0 } else { keep_scale }).collect();
        let mask = Tensor::from_vec(mask, xs.shape(), xs.device())?.to_dtype(xs.dtype())?;
        xs.mul(&mask)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn eval_is_identity_and_train_is_seeded() {
        let xs = Tensor::ones((4, 1000), candle_core::DType::F32, &Device::Cpu).unwrap();
        let dropout = Dropout::new(0.25);
        let eval = dropout.forward(&xs, Mode::Eval).unwrap();
        assert_eq!(eval.to_vec2::<f32>().unwrap(), xs.to_vec2::<f32>().unwrap());

        let run = |seed| {
            let rng = DropoutRng::new(seed);
            dropout.forward(&xs, Mode::Train(&rng)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        let a = run(3);
        assert_eq!(a, run(3));
        assert_ne!(a, run(4));
        let zeros = a.iter().filter(|v| **v == 0.0).count() as f32 / a.len() as f32;
        assert!((zeros - 0.25).abs() < 0.03, "dropped fraction {zeros}");
        let mean = a.iter().sum::<f32>() / a.len() as f32;
        assert!((mean - 1.0).abs() < 0.05, "mean {mean}: inverted dropout keeps the expectation");
    }
}
