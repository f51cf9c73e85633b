//! A fully connected layer over token rows, f32, whose weight can be rounded to a GGML block type.
//!
//! A quantized weight is expanded back to f32 at once: the products run on the same f32 kernel as the
//! plain model, and give the blocks' dequantized values' results. Q8_0 is a download format only:
//! natively candle's block kernels took a scalar path on a default build (Q8_0 2-3× slower than f32,
//! bench/README.md), and in the browser its simd128 block kernels were 1.6–1.9× slower than `gemm`'s
//! f32 ones (crates/wasm/src/encoders.rs has the figures).

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::encoders::kernels::matmul::{matmul, MatMut, MatRef, Threads};

/// `y = x · Wᵀ + b`, with `W` [out, in] and `b` [out]; `x` is [tokens, in] row-major, `y` [tokens, out].
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[in, out]` row-major: the transpose of PyTorch's `[out, in]`, the layout `gemm` reads without
    /// repacking it on every call (measured: packing the weights was 40% of the time at batch 1).
    weight_t: Vec<f32>,
    bias: Vec<f32>,
    inputs: usize,
}

impl Linear {
    /// A dense layer from `weight` [out, in] and `bias` [out] (f32).
    pub fn new(weight: &Tensor, bias: &Tensor) -> candle_core::Result<Self> {
        let (outputs, inputs) = weight.dims2()?;
        let bias = bias.to_vec1::<f32>()?;
        if bias.len() != outputs {
            candle_core::bail!("linear layer: {} biases for {outputs} outputs", bias.len());
        }
        Ok(Linear { weight_t: weight.t()?.flatten_all()?.to_vec1()?, bias, inputs })
    }

    pub fn outputs(&self) -> usize {
        self.bias.len()
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// The weight as `[in, out]` row-major (the transpose of PyTorch's), as the products read it.
    pub fn weight_t(&self) -> &[f32] {
        &self.weight_t
    }

    pub fn bias(&self) -> &[f32] {
        &self.bias
    }

    /// The same layer with its weight rounded to `dtype` blocks and expanded back to f32 (module docs;
    /// the bias stays f32). `in` must be a multiple of the block size of `dtype` (32 for Q8_0/Q4_0).
    pub fn quantized(&self, dtype: GgmlDType) -> candle_core::Result<Self> {
        let weight = Tensor::from_slice(&self.weight_t, (self.inputs, self.outputs()), &Device::Cpu)?.t()?;
        let blocks = QTensor::quantize(&weight, dtype)?;
        Ok(Linear { weight_t: blocks.dequantize(&Device::Cpu)?.t()?.flatten_all()?.to_vec1()?, ..self.clone() })
    }

    /// `x` [tokens, in] → `y` [tokens, out] (resized; its old contents are dropped).
    pub fn forward(&self, x: &[f32], y: &mut Vec<f32>) -> candle_core::Result<()> {
        let tokens = x.len() / self.inputs;
        if tokens * self.inputs != x.len() {
            candle_core::bail!("linear layer of {} inputs given {} values", self.inputs, x.len());
        }
        let outputs = self.outputs();
        y.clear();
        y.reserve(tokens * outputs);
        for _ in 0..tokens {
            y.extend_from_slice(&self.bias);
        }
        let w_t = MatRef::new(&self.weight_t, self.inputs, outputs, outputs);
        let x = MatRef::new(x, tokens, self.inputs, self.inputs);
        matmul(MatMut::new(y, tokens, outputs, outputs), x, w_t, true, 1.0, Threads::All);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_x_times_w_transposed_plus_bias_and_quantizes_close() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (5, 64), &dev)?;
        let w = Tensor::randn(0f32, 0.2, (3, 64), &dev)?;
        let b = Tensor::new(&[0.5f32, -1.0, 2.0], &dev)?;
        let layer = Linear::new(&w, &b)?;
        let mut y = vec![7.0; 2];
        layer.forward(&x.flatten_all()?.to_vec1()?, &mut y)?;
        let want = x.matmul(&w.t()?)?.broadcast_add(&b)?.flatten_all()?.to_vec1::<f32>()?;
        assert_eq!(y.len(), want.len());
        for (got, want) in y.iter().zip(&want) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
        let mut q = Vec::new();
        layer.quantized(GgmlDType::Q8_0)?.forward(&x.flatten_all()?.to_vec1()?, &mut q)?;
        let err = q.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(err > 0.0 && err < 0.05, "Q8_0 max error {err}");
        assert!(layer.forward(&[0.0; 63], &mut y).is_err());
        Ok(())
    }
}
