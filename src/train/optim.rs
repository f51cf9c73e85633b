//! AdamW with per-parameter learning rates, a warm-up + decay schedule, and global-norm gradient
//! clipping.
//!
//! Why not `candle_nn::AdamW`: its moments are private, and resuming a killed run "to the same
//! result" needs them saved and restored exactly; it also has one learning rate, while the item
//! tower is fine-tuned at its own, smaller one. The update is PyTorch's `AdamW` (decoupled weight
//! decay, bias-corrected moments), so its hyper-parameters carry over.

use std::collections::HashMap;
use std::f64::consts::PI;

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

use super::config::Decay;

/// AdamW's constants (PyTorch defaults except the weight decay, set per stage).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamWSettings {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl AdamWSettings {
    pub fn with_weight_decay(weight_decay: f64) -> Self {
        AdamWSettings { beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay }
    }
}

/// One trainable tensor: its name (as in the `VarMap` and the safetensors), its peak learning rate,
/// whether weight decay applies, and its two moments.
struct Param {
    name: String,
    var: Var,
    peak_lr: f64,
    decay: bool,
    m: Tensor,
    v: Tensor,
}

/// AdamW over named variables. Parameters are kept sorted by name, so every sum over them (the
/// gradient norm) runs in one fixed order: same inputs ⇒ same bits.
pub struct AdamW {
    params: Vec<Param>,
    settings: AdamWSettings,
    /// Updates done so far (the bias correction's `t`, the schedule's position).
    step: usize,
}

impl AdamW {
    /// `vars`: (name, variable, peak learning rate). Weight decay applies to matrices only — not to
    /// biases, LayerNorm scales, nor embedding tables (names ending in `embedding`), as usual for
    /// transformers.
    pub fn new(vars: Vec<(String, Var, f64)>, settings: AdamWSettings) -> Result<Self> {
        let mut params = vars
            .into_iter()
            .map(|(name, var, peak_lr)| {
                let decay = var.rank() >= 2 && !name.ends_with("embedding");
                let m = var.as_tensor().zeros_like()?;
                let v = var.as_tensor().zeros_like()?;
                Ok(Param { name, var, peak_lr, decay, m, v })
            })
            .collect::<Result<Vec<_>>>()?;
        params.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(AdamW { params, settings, step: 0 })
    }

    pub fn step_count(&self) -> usize {
        self.step
    }

    /// Number of parameter tensors.
    pub fn len(&self) -> usize {
        self.params.len()
    }

    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// The global L2 norm of the gradients of the optimised parameters (missing gradients count 0).
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut sum = 0f64;
        for param in &self.params {
            if let Some(grad) = grads.get(param.var.as_tensor()) {
                sum += grad.sqr()?.sum_all()?.to_dtype(candle_core::DType::F64)?.to_scalar::<f64>()?;
            }
        }
        Ok(sum.sqrt())
    }

    /// One update: gradients scaled down to global norm `clip` when larger (`clip` 0 = never), each
    /// parameter's learning rate = its peak × `lr_factor`. A parameter without a gradient is left
    /// untouched, moments included. Returns the gradient norm before clipping.
    pub fn step(&mut self, grads: &GradStore, lr_factor: f64, clip: f64) -> Result<f64> {
        let norm = self.grad_norm(grads)?;
        let scale = if clip > 0.0 && norm > clip { clip / (norm + 1e-6) } else { 1.0 };
        self.step += 1;
        let AdamWSettings { beta1, beta2, eps, weight_decay } = self.settings;
        let t = self.step as i32;
        let (correction1, correction2) = (1.0 - beta1.powi(t), 1.0 - beta2.powi(t));
        for param in &mut self.params {
            let Some(grad) = grads.get(param.var.as_tensor()) else { continue };
            let grad = if scale == 1.0 { grad.clone() } else { (grad * scale)? };
            param.m = ((&param.m * beta1)? + (&grad * (1.0 - beta1))?)?;
            param.v = ((&param.v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
            let lr = param.peak_lr * lr_factor;
            let theta = param.var.as_tensor();
            let decayed =
                if param.decay && weight_decay > 0.0 { (theta * (1.0 - lr * weight_decay))? } else { theta.clone() };
            let m_hat = (&param.m / correction1)?;
            let v_hat = (&param.v / correction2)?;
            let update = (m_hat / (v_hat.sqrt()? + eps)?)?;
            param.var.set(&(decayed - (update * lr)?)?)?;
        }
        Ok(norm)
    }

    /// The moments as named tensors (`adam_m.<name>`, `adam_v.<name>`) for a checkpoint.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .flat_map(|p| [(format!("adam_m.{}", p.name), p.m.clone()), (format!("adam_v.{}", p.name), p.v.clone())])
            .collect()
    }

    /// Restores moments and step written by [`state_tensors`](Self::state_tensors); every
    /// parameter's moments must be there with its shape (else an error naming it).
    pub fn restore(&mut self, tensors: &HashMap<String, Tensor>, step: usize) -> std::result::Result<(), String> {
        for param in &mut self.params {
            for (kind, slot) in [("adam_m", &mut param.m), ("adam_v", &mut param.v)] {
                let key = format!("{kind}.{}", param.name);
                let saved = tensors.get(&key).ok_or_else(|| format!("`{key}` is missing"))?;
                if saved.shape() != param.var.shape() {
                    return Err(format!("`{key}` has shape {:?}, the parameter {:?}", saved.dims(), param.var.dims()));
                }
                *slot = saved.to_device(param.var.device()).map_err(|e| format!("`{key}`: {e}"))?;
            }
        }
        self.step = step;
        Ok(())
    }
}

/// Learning-rate factor per step: linear warm-up from `1/warmup` to 1 over `warmup` steps, then
/// [`Decay`] until `total` steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub warmup: usize,
    pub total: usize,
    pub decay: Decay,
}

impl Schedule {
    /// The factor for the update numbered `step` (0-based).
    pub fn factor(&self, step: usize) -> f64 {
        if step < self.warmup {
            return (step + 1) as f64 / self.warmup as f64;
        }
        match self.decay {
            Decay::Constant => 1.0,
            Decay::Cosine => {
                let span = self.total.saturating_sub(self.warmup).max(1) as f64;
                let progress = ((step - self.warmup) as f64 / span).min(1.0);
                0.5 * (1.0 + (PI * progress).cos())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn scalar_var(value: f32) -> Var {
        Var::from_tensor(&Tensor::new(&[value], &Device::Cpu).unwrap()).unwrap()
    }

    /// PyTorch's AdamW on f(x) = x², x0 = 1, lr 0.1, wd 0 (rank-1 parameter: no decay anyway):
    /// the first step moves by exactly lr (m̂/√v̂ = sign of the gradient).
    #[test]
    fn first_step_moves_by_the_learning_rate() {
        let x = scalar_var(1.0);
        let mut opt = AdamW::new(vec![("x".into(), x.clone(), 0.1)], AdamWSettings::with_weight_decay(0.0)).unwrap();
        let grads = x.as_tensor().sqr().unwrap().sum_all().unwrap().backward().unwrap();
        let norm = opt.step(&grads, 1.0, 0.0).unwrap();
        assert!((norm - 2.0).abs() < 1e-6);
        let after = x.as_tensor().to_vec1::<f32>().unwrap()[0];
        assert!((after - 0.9).abs() < 1e-6, "{after}");
    }

    #[test]
    fn minimises_a_quadratic_and_restores_its_state() {
        let run = |split_at: Option<usize>| {
            let x = Var::from_tensor(&Tensor::new(&[[3f32, -2.0]], &Device::Cpu).unwrap()).unwrap();
            let settings = AdamWSettings::with_weight_decay(0.1);
            let mut opt = AdamW::new(vec![("w".into(), x.clone(), 0.05)], settings).unwrap();
            for step in 0..200 {
                if split_at == Some(step) {
                    // Replace the optimiser by a fresh one restored from the saved state.
                    let saved: HashMap<_, _> = opt.state_tensors().into_iter().collect();
                    opt = AdamW::new(vec![("w".into(), x.clone(), 0.05)], settings).unwrap();
                    opt.restore(&saved, step).unwrap();
                }
                let grads = x.as_tensor().sqr().unwrap().sum_all().unwrap().backward().unwrap();
                opt.step(&grads, 1.0, 1.0).unwrap();
            }
            x.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        let straight = run(None);
        assert!(straight.iter().all(|v| v.abs() < 0.1), "{straight:?}");
        assert_eq!(run(Some(57)), straight, "restored moments and step continue bit for bit");
    }

    #[test]
    fn clipping_bounds_the_update_norm_and_missing_moments_are_named() {
        let x = scalar_var(100.0);
        let mut opt = AdamW::new(vec![("x".into(), x.clone(), 0.1)], AdamWSettings::with_weight_decay(0.0)).unwrap();
        let grads = x.as_tensor().sqr().unwrap().sum_all().unwrap().backward().unwrap();
        assert!((opt.grad_norm(&grads).unwrap() - 200.0).abs() < 1e-3);
        let err = opt.restore(&HashMap::new(), 3).unwrap_err();
        assert!(err.contains("adam_m.x"), "{err}");
    }

    #[test]
    fn schedule_warms_up_then_decays() {
        let cosine = Schedule { warmup: 4, total: 14, decay: Decay::Cosine };
        assert_eq!(cosine.factor(0), 0.25);
        assert_eq!(cosine.factor(3), 1.0);
        assert_eq!(cosine.factor(4), 1.0);
        assert!((cosine.factor(9) - 0.5).abs() < 1e-12);
        assert!(cosine.factor(14) < 1e-12 && cosine.factor(100) < 1e-12);
        let constant = Schedule { warmup: 0, total: 10, decay: Decay::Constant };
        assert_eq!(constant.factor(0), 1.0);
        assert_eq!(constant.factor(50), 1.0);
    }
}
