//! A fully connected layer whose weight is either dense f32 or quantized (GGML block types).
//!
//! The encoder is written against this one type so that quantizing it (for the browser download)
//! swaps the weight storage without touching the model code.

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Module, Tensor};

/// `y = x · Wᵀ + b`, with `W` [out, in] and `b` [out]; `x` is [..., in], `y` is [..., out].
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Weight,
    bias: Tensor,
}

#[derive(Debug, Clone)]
enum Weight {
    Dense(candle_nn::Linear),
    Quantized(QMatMul),
}

impl Linear {
    /// A dense layer from `weight` [out, in] and `bias` [out].
    pub fn new(weight: Tensor, bias: Tensor) -> Self {
        Linear { weight: Weight::Dense(candle_nn::Linear::new(weight, None)), bias }
    }

    /// The same layer with its weight quantized to `dtype` (the bias stays f32).
    /// `in` must be a multiple of the block size of `dtype` (32 for Q8_0/Q4_0).
    pub fn quantized(&self, dtype: GgmlDType) -> candle_core::Result<Self> {
        let dense = match &self.weight {
            Weight::Dense(linear) => linear.weight().clone(),
            Weight::Quantized(q) => q.dequantize_f16()?.to_dtype(candle_core::DType::F32)?,
        };
        let q = QMatMul::from_qtensor(QTensor::quantize(&dense, dtype)?)?;
        Ok(Linear { weight: Weight::Quantized(q), bias: self.bias.clone() })
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let y = match &self.weight {
            Weight::Dense(linear) => linear.forward(x)?,
            Weight::Quantized(q) => q.forward(x)?,
        };
        y.broadcast_add(&self.bias)
    }
}
