//! Seeded parameter initialisation: a [`VarBuilder`] over a [`VarMap`] whose fresh variables are
//! drawn from a generator seeded by (seed, tensor name).
//!
//! Why not `VarBuilder::from_varmap`: candle draws initial values from the CPU's thread RNG,
//! which cannot be seeded (`Device::Cpu.set_seed` is an error), and "same seed ⇒ same numbers" is
//! a contract (docs/evaluation.md). Seeding per *name* also makes a tensor's initial value independent of
//! the order in which layers are built. The variables land in the caller's `VarMap`, so AdamW
//! optimises them and `VarMap::save` writes them under the names the runtime loads.

use std::collections::hash_map::Entry;

use candle_core::{DType, Device, Shape, Tensor, Var};
use candle_nn::init::{Init, NormalOrUniform};
use candle_nn::var_builder::SimpleBackend;
use candle_nn::{VarBuilder, VarMap};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, Uniform};

/// A `VarBuilder` creating (or reusing) `f32` variables in `varmap`, initialised reproducibly
/// from `seed`.
pub fn seeded_var_builder(varmap: &VarMap, seed: u64, device: &Device) -> VarBuilder<'static> {
    let backend = SeededVarMap { varmap: varmap.clone(), seed };
    VarBuilder::from_backend(Box::new(backend), DType::F32, device.clone())
}

struct SeededVarMap {
    varmap: VarMap,
    seed: u64,
}

impl SimpleBackend for SeededVarMap {
    fn get(&self, shape: Shape, name: &str, init: Init, dtype: DType, dev: &Device) -> candle_core::Result<Tensor> {
        let mut vars = self.varmap.data().lock().map_err(|_| candle_core::Error::Msg("poisoned VarMap lock".into()))?;
        match vars.entry(name.to_string()) {
            Entry::Occupied(existing) => {
                let tensor = existing.get().as_tensor();
                if tensor.shape() != &shape {
                    candle_core::bail!("shape mismatch for {name}: stored {:?}, asked {shape:?}", tensor.shape())
                }
                Ok(tensor.clone())
            }
            Entry::Vacant(slot) => {
                let values = initial_values(&shape, init, self.seed ^ fnv1a(name))?;
                let var = Var::from_tensor(&Tensor::from_vec(values, shape, dev)?.to_dtype(dtype)?)?;
                Ok(slot.insert(var).as_tensor().clone())
            }
        }
    }

    fn get_unchecked(&self, name: &str, _dtype: DType, _dev: &Device) -> candle_core::Result<Tensor> {
        candle_core::bail!("`{name}`: a seeded VarMap creates variables, it needs their shape")
    }

    fn contains_tensor(&self, name: &str) -> bool {
        self.varmap.data().lock().map(|vars| vars.contains_key(name)).unwrap_or(false)
    }
}

/// Values for one tensor following candle's `Init` semantics (same distributions as `Init::var`).
fn initial_values(shape: &Shape, init: Init, seed: u64) -> candle_core::Result<Vec<f32>> {
    let count = shape.elem_count();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let err = |e: &dyn std::fmt::Display| candle_core::Error::Msg(format!("initialiser: {e}"));
    let normal = |mean: f64, std: f64, rng: &mut ChaCha8Rng| -> candle_core::Result<Vec<f32>> {
        let dist = Normal::new(mean, std).map_err(|e| err(&e))?;
        Ok((0..count).map(|_| dist.sample(rng) as f32).collect())
    };
    let uniform = |lo: f64, up: f64, rng: &mut ChaCha8Rng| -> candle_core::Result<Vec<f32>> {
        let dist = Uniform::new(lo, up).map_err(|e| err(&e))?;
        Ok((0..count).map(|_| dist.sample(rng) as f32).collect())
    };
    match init {
        Init::Const(value) => Ok(vec![value as f32; count]),
        Init::Randn { mean, stdev } => normal(mean, stdev, &mut rng),
        Init::Uniform { lo, up } => uniform(lo, up, &mut rng),
        Init::Kaiming { dist, fan, non_linearity } => {
            let std = non_linearity.gain() / (fan.for_shape(shape) as f64).sqrt();
            match dist {
                NormalOrUniform::Normal => normal(0.0, std, &mut rng),
                NormalOrUniform::Uniform => {
                    let bound = 3f64.sqrt() * std;
                    uniform(-bound, bound, &mut rng)
                }
            }
        }
    }
}

/// FNV-1a: a stable name hash (std's `DefaultHasher` may change between Rust releases).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(seed: u64, names: &[&str]) -> Vec<Vec<f32>> {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, seed, &Device::Cpu);
        names
            .iter()
            .map(|name| {
                let t = vb.get_with_hints((3, 4), name, candle_nn::init::DEFAULT_KAIMING_NORMAL).unwrap();
                t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
            })
            .collect()
    }

    #[test]
    fn same_seed_same_values_in_any_order() {
        let forward = build(7, &["a.weight", "b.weight"]);
        let backward = build(7, &["b.weight", "a.weight"]);
        assert_eq!(forward[0], backward[1]);
        assert_eq!(forward[1], backward[0]);
        assert_ne!(forward[0], forward[1]);
        assert_ne!(build(8, &["a.weight"])[0], forward[0]);
    }

    #[test]
    fn variables_land_in_the_varmap_and_are_reused() {
        let varmap = VarMap::new();
        let vb = seeded_var_builder(&varmap, 1, &Device::Cpu);
        let first = vb.pp("layer").get_with_hints(5, "bias", Init::Const(0.5)).unwrap();
        let again = vb.pp("layer").get_with_hints(5, "bias", Init::Const(0.0)).unwrap();
        assert_eq!(varmap.all_vars().len(), 1);
        assert_eq!(again.to_vec1::<f32>().unwrap(), first.to_vec1::<f32>().unwrap());
        assert!(vb.pp("layer").get_with_hints(6, "bias", Init::Const(0.0)).is_err());
    }
}
