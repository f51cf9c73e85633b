//! A fully connected layer over token rows, whose weight is dense f32 or quantized (GGML block types).
//!
//! The encoder is written against this one type so that quantizing it (for the browser download)
//! swaps the weight storage without touching the model code.
//!
//! Natively a quantized weight is expanded back to f32 once, when quantized: the products then run
//! on the same f32 kernel as the plain model. candle's block kernels are compiled in only for the
//! target features the crate is built with (AVX for x86-64), so on a default build they took the
//! scalar path and Q8_0 ran 2-3× slower than f32 (bench/README.md); natively, Q8_0 is only a download
//! format, and the expanded weights give the same results as the blocks' dequantized values. In wasm32
//! `quantized` keeps the blocks (a quarter of the memory) and candle multiplies them with simd128; the
//! browser's encoder module does not use that path: expanded f32 ran 1.6–1.9× faster there
//! (src/wasm/encoders.rs has the figures).

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

use crate::encoders::kernels::matmul::{matmul, MatMut, MatRef, Threads};

/// `y = x · Wᵀ + b`, with `W` [out, in] and `b` [out]; `x` is [tokens, in] row-major, `y` [tokens, out].
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Weight,
    bias: Vec<f32>,
    inputs: usize,
}

#[derive(Debug, Clone)]
enum Weight {
    /// `[in, out]` row-major: the transpose of PyTorch's `[out, in]`, the layout `gemm` reads without
    /// repacking it on every call (measured: packing the weights was 40% of the time at batch 1).
    Transposed(Vec<f32>),
    /// GGML blocks along `in` (wasm32 only; see the module docs).
    #[cfg(target_arch = "wasm32")]
    Blocks(candle_core::quantized::QMatMul),
}

impl Linear {
    /// A dense layer from `weight` [out, in] and `bias` [out] (f32).
    pub fn new(weight: &Tensor, bias: &Tensor) -> candle_core::Result<Self> {
        let (outputs, inputs) = weight.dims2()?;
        let bias = bias.to_vec1::<f32>()?;
        if bias.len() != outputs {
            candle_core::bail!("linear layer: {} biases for {outputs} outputs", bias.len());
        }
        Ok(Linear { weight: Weight::Transposed(weight.t()?.flatten_all()?.to_vec1()?), bias, inputs })
    }

    pub fn outputs(&self) -> usize {
        self.bias.len()
    }

    /// The same layer with its weight quantized to `dtype` (the bias stays f32); natively expanded back
    /// to f32 at once (module docs). `in` must be a multiple of the block size of `dtype` (32 for Q8_0/Q4_0).
    pub fn quantized(&self, dtype: GgmlDType) -> candle_core::Result<Self> {
        let blocks = QTensor::quantize(&self.dense_weight()?, dtype)?;
        #[cfg(target_arch = "wasm32")]
        let weight = Weight::Blocks(candle_core::quantized::QMatMul::from_qtensor(blocks)?);
        #[cfg(not(target_arch = "wasm32"))]
        let weight = Weight::Transposed(blocks.dequantize(&Device::Cpu)?.t()?.flatten_all()?.to_vec1()?);
        Ok(Linear { weight, ..self.clone() })
    }

    /// The weight as an f32 tensor [out, in].
    fn dense_weight(&self) -> candle_core::Result<Tensor> {
        match &self.weight {
            Weight::Transposed(values) => Tensor::from_slice(values, (self.inputs, self.outputs()), &Device::Cpu)?.t(),
            #[cfg(target_arch = "wasm32")]
            Weight::Blocks(candle_core::quantized::QMatMul::QTensor(q)) => q.dequantize(&Device::Cpu),
            #[cfg(target_arch = "wasm32")]
            Weight::Blocks(candle_core::quantized::QMatMul::Tensor(w)) => Ok(w.clone()),
            #[cfg(target_arch = "wasm32")]
            Weight::Blocks(candle_core::quantized::QMatMul::TensorF16(w)) => w.to_dtype(candle_core::DType::F32),
        }
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
        match &self.weight {
            Weight::Transposed(weight_t) => {
                let w_t = MatRef::new(weight_t, self.inputs, outputs, outputs);
                let x = MatRef::new(x, tokens, self.inputs, self.inputs);
                matmul(MatMut::new(y, tokens, outputs, outputs), x, w_t, true, 1.0, Threads::All);
            }
            #[cfg(target_arch = "wasm32")]
            Weight::Blocks(q) => {
                use candle_core::Module;
                let product = q.forward(&Tensor::from_slice(x, (tokens, self.inputs), &Device::Cpu)?)?;
                for (out, p) in y.iter_mut().zip(product.flatten_all()?.to_vec1::<f32>()?) {
                    *out += p;
                }
            }
        }
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
