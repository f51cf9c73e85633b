//! ID residuals (issue "accuracy", point 1): a learned vector per item *seen in training*, added to
//! the item tower's content vector, so items with a history can carry what their words and picture
//! miss (MISSRec and UniSRec report their largest gains on Amazon data from such ID terms).
//!
//! Why a residual and not an ID embedding on its own: content stays the main signal. The table
//! starts at zero (the model starts as the content-only one), new items have no row and get the
//! content vector alone (cold start unchanged), and at export each known item's residual is folded
//! into its shard row, so the browser scores one vector per item as before: no extra bytes, no
//! extra time. Two regularisers keep the residuals from replacing the content:
//! - `dropout`: in training, each item's residual is dropped (the item scored by content alone)
//!   with this probability per step, so the sequence tower also learns to predict content-only
//!   targets, the ones new items present;
//! - `l2`: a penalty `l2 · mean over known items of ‖r‖²` added to the loss.
//!
//! Shapes: the table is `[n, d]`, row `i` the residual of the catalogue's item `i` (rows of items
//! never seen in training stay exactly zero: no gradient ever reaches them and Adam's update of a
//! zero gradient from zero moments is zero).

use candle_core::Tensor;
use candle_nn::{Init, VarBuilder};

use super::dropout::{DropoutRng, Mode};
use super::error::{expect_dims, ModelError};

/// The residual table and its regularisers. Parameter: `item_residuals` (`[n, d]`).
#[derive(Debug, Clone)]
pub struct ItemResiduals {
    table: Tensor,
    dropout: f32,
    l2: f64,
}

/// The parameter's name in `model.safetensors`.
pub const ITEM_RESIDUALS: &str = "item_residuals";

impl ItemResiduals {
    /// A zero table of `n` rows of width `d` under `vb` (or the saved one, when `vb` holds it).
    pub fn new(n: usize, d: usize, dropout: f32, l2: f64, vb: VarBuilder) -> Result<Self, ModelError> {
        let table = vb.get_with_hints((n, d), ITEM_RESIDUALS, Init::Const(0.0))?;
        Ok(ItemResiduals { table, dropout, l2 })
    }

    /// A fixed table (a trained run's residuals mapped onto another catalogue's rows by id).
    pub fn from_table(table: Tensor) -> Self {
        ItemResiduals { table, dropout: 0.0, l2: 0.0 }
    }

    pub fn len(&self) -> usize {
        self.table.dims()[0]
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `content: [n, d]` → `content + residual`, each row's residual dropped with probability
    /// `dropout` in training.
    pub fn apply(&self, content: &Tensor, mode: Mode) -> Result<Tensor, ModelError> {
        expect_dims("item vectors", content, &[Some(self.len()), Some(self.table.dims()[1])])?;
        let residual = match mode {
            Mode::Train(rng) if self.dropout > 0.0 => self.table.broadcast_mul(&self.keep_rows(rng)?)?,
            _ => self.table.clone(),
        };
        Ok((content + residual)?)
    }

    /// The penalty added to the training loss (a scalar; zero when `l2` is 0).
    pub fn penalty(&self) -> Result<Option<Tensor>, ModelError> {
        if self.l2 == 0.0 {
            return Ok(None);
        }
        let per_row = self.table.sqr()?.sum(1)?;
        let known = per_row.ne(0f32)?.to_dtype(candle_core::DType::F32)?.sum_all()?.to_scalar::<f32>()?.max(1.0);
        Ok(Some(((per_row.sum_all()? / known as f64)? * self.l2)?))
    }

    /// `[n, 1]` of 0 (dropped) / 1 (kept).
    fn keep_rows(&self, rng: &DropoutRng) -> Result<Tensor, ModelError> {
        let keep: Vec<f32> = rng.uniform(self.len()).into_iter().map(|u| f32::from(u >= self.dropout)).collect();
        Ok(Tensor::from_vec(keep, (self.len(), 1), self.table.device())?)
    }

    /// The table, `[n, d]`.
    pub fn table(&self) -> &Tensor {
        &self.table
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};
    use candle_nn::VarMap;

    #[test]
    fn starts_at_zero_and_drops_whole_rows_in_training_only() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let residuals = ItemResiduals::new(1000, 4, 0.5, 0.0, vb).unwrap();
        let content = Tensor::ones((1000, 4), DType::F32, &Device::Cpu).unwrap();
        assert_eq!(
            residuals.apply(&content, Mode::Eval).unwrap().to_vec2::<f32>().unwrap(),
            content.to_vec2::<f32>().unwrap()
        );

        varmap.data().lock().unwrap()[ITEM_RESIDUALS].set(&content).unwrap();
        let eval = residuals.apply(&content, Mode::Eval).unwrap().to_vec2::<f32>().unwrap();
        assert!(eval.iter().flatten().all(|v| *v == 2.0));
        let rng = DropoutRng::new(7);
        let train = residuals.apply(&content, Mode::Train(&rng)).unwrap().to_vec2::<f32>().unwrap();
        assert!(train.iter().all(|row| row.iter().all(|v| *v == row[0])), "whole rows kept or dropped");
        let dropped = train.iter().filter(|row| row[0] == 1.0).count();
        assert!((400..600).contains(&dropped), "{dropped} of 1000 dropped at p 0.5");
    }

    #[test]
    fn the_penalty_is_the_mean_square_norm_of_known_rows() {
        let table = Tensor::new(&[[3f32, 4.0], [0.0, 0.0], [1.0, 0.0]], &Device::Cpu).unwrap();
        let residuals = ItemResiduals { table, dropout: 0.0, l2: 0.5 };
        let penalty = residuals.penalty().unwrap().unwrap().to_scalar::<f32>().unwrap();
        assert!((penalty - 0.5 * (25.0 + 1.0) / 2.0).abs() < 1e-6, "{penalty}");
    }
}
