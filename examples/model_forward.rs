//! Times the model's forward passes at the default size on this CPU (a figure, not a test):
//! the sequence tower over a batch of 64 histories of 50 items, the item tower over a catalogue of
//! ml100k-mm's size, and a full ranking. Random weights and features: only the time matters.
//!
//! `cargo run --release --example model_forward`

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use omakase::model::{
    seeded_var_builder, DropoutRng, Histories, ItemFeatures, Mode, ModelConfig, MultimodalRecommender, NextItemBatch,
    SequentialRecommender,
};

const BATCH: usize = 64;
const CATALOGUE: usize = 1682;
const REPEATS: usize = 10;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dev = Device::Cpu;
    let config = ModelConfig::default();
    let varmap = VarMap::new();
    let model = MultimodalRecommender::new(&config, seeded_var_builder(&varmap, 0, &dev))?;
    let ones = Tensor::ones(CATALOGUE, DType::F32, &dev)?;
    let catalogue = ItemFeatures::new(
        Tensor::randn(0f32, 1.0, (CATALOGUE, config.text_dim), &dev)?,
        Tensor::randn(0f32, 1.0, (CATALOGUE, config.image_dim), &dev)?,
        &ones,
        &ones,
    )?;
    let sequences: Vec<Vec<u32>> =
        (0..BATCH).map(|u| (0..config.max_len + 1).map(|p| ((u * 31 + p * 17) % CATALOGUE) as u32).collect()).collect();
    let refs: Vec<&[u32]> = sequences.iter().map(|s| &s[..config.max_len]).collect();
    let histories = Histories::new(&refs, config.max_len, CATALOGUE, &dev)?;
    let full: Vec<&[u32]> = sequences.iter().map(|s| s.as_slice()).collect();
    let batch = NextItemBatch::new(&full, config.max_len, CATALOGUE, &dev)?;

    // The runtime loads plain tensors (no autograd variables): LayerNorm and softmax then take
    // candle's fused kernels. Same weights, detached.
    let plain: HashMap<String, Tensor> = varmap
        .data()
        .lock()
        .map_err(|_| "lock")?
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().detach()))
        .collect();
    let loaded = MultimodalRecommender::new(&config, VarBuilder::from_tensors(plain, DType::F32, &dev))?;

    // Item vectors as a bundle shard holds them: plain numbers, no autograd graph behind them.
    let items = model.item_vectors(&catalogue, Mode::Eval)?.detach();
    println!(
        "config: d {} heads {} layers {} max_len {}; batch {BATCH}x{}",
        config.dim, config.num_heads, config.num_layers, config.max_len, config.max_len
    );
    time("item tower, 1682 items (eval, VarMap weights)", || Ok(model.item_vectors(&catalogue, Mode::Eval)?))?;
    time("sequence tower 64x50 -> user vectors (eval, VarMap weights)", || {
        Ok(model.forward(&items, &histories, Mode::Eval)?)
    })?;
    time("sequence tower 64x50 -> user vectors (eval, loaded weights)", || {
        Ok(loaded.forward(&items, &histories, Mode::Eval)?)
    })?;
    time("item tower, 1682 items (eval, loaded weights)", || Ok(loaded.item_vectors(&catalogue, Mode::Eval)?))?;
    time("full_sort_predict 64x50 over 1682 items (loaded weights)", || {
        Ok(loaded.full_sort_predict(&items, &histories)?)
    })?;
    let rng = DropoutRng::new(0);
    time("train step 64x50: next-item loss + backward (item tower frozen)", || {
        let loss = model.calculate_loss(&items, &batch, Mode::Train(&rng))?;
        loss.backward()?;
        Ok(loss)
    })?;
    time("train step 64x50: item tower + next-item loss + backward", || {
        let items = model.item_vectors(&catalogue, Mode::Train(&rng))?;
        let loss = model.calculate_loss(&items, &batch, Mode::Train(&rng))?;
        loss.backward()?;
        Ok(loss)
    })?;
    Ok(())
}

/// Median wall time of REPEATS runs after one warm-up, and the process's CPU time per run (all
/// threads; on Linux): on a shared machine wall time depends on the load, CPU time much less.
fn time(
    what: &str,
    mut run: impl FnMut() -> Result<Tensor, Box<dyn std::error::Error>>,
) -> Result<(), Box<dyn std::error::Error>> {
    run()?;
    let cpu_start = cpu_time_ms();
    let mut ms: Vec<f64> = (0..REPEATS)
        .map(|_| {
            let start = Instant::now();
            run().map(|_| start.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<Result<_, _>>()?;
    let cpu = match (cpu_start, cpu_time_ms()) {
        (Some(a), Some(b)) => format!(", CPU {:.0} ms/run", (b - a) / REPEATS as f64),
        _ => String::new(),
    };
    ms.sort_by(f64::total_cmp);
    println!("{what}: median {:.1} ms (min {:.1}, max {:.1}){cpu}", ms[REPEATS / 2], ms[0], ms[REPEATS - 1]);
    Ok(())
}

/// User + system CPU time of this process from /proc/self/stat (clock ticks, assumed 100 Hz).
fn cpu_time_ms() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks * 10.0)
}
