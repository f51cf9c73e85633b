//! What a stage reports while it runs: an indicatif bar per epoch (loss so far), one line per
//! finished epoch (loss, validation figures, time), and the process's CPU time.

use std::cell::Cell;
use std::time::Instant;

use candle_core::Device;
use indicatif::{ProgressBar, ProgressStyle};

use super::error::TrainError;

/// Where progress goes: bars and lines on stderr, or nowhere (tests, `--quiet`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    Bars,
    Silent,
}

impl Progress {
    /// A bar over one epoch's `batches`, labelled e.g. `train 3/200`.
    pub fn epoch_bar(&self, label: String, batches: usize) -> ProgressBar {
        if *self == Progress::Silent {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(batches as u64).with_prefix(label);
        if let Ok(style) = ProgressStyle::with_template("{prefix:>16} {wide_bar} {pos}/{len} {msg} ({elapsed}<{eta})") {
            bar.set_style(style);
        }
        bar
    }

    /// A finished-epoch line, printed above any bar.
    pub fn line(&self, text: &str) {
        if *self == Progress::Bars {
            eprintln!("{text}");
        }
    }
}

/// Wall and CPU time since a start.
#[derive(Debug, Clone, Copy)]
pub struct Stopwatch {
    wall: Instant,
    cpu: Option<f64>,
}

impl Stopwatch {
    pub fn start() -> Self {
        Stopwatch { wall: Instant::now(), cpu: process_cpu_seconds() }
    }

    pub fn wall_seconds(&self) -> f64 {
        self.wall.elapsed().as_secs_f64()
    }

    /// CPU seconds (user + system, every thread) since the start; `None` where not measurable.
    pub fn cpu_seconds(&self) -> Option<f64> {
        Some(process_cpu_seconds()? - self.cpu?)
    }
}

/// The process's user + system CPU time from `/proc/self/stat` (fields 14 and 15, in clock ticks
/// of `USER_HZ`, which Linux fixes at 100 for everything it reports to user space). `None` on
/// other systems. (Why not `getrusage`: it needs `libc` and `unsafe` for the same number.)
pub fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis don't.
    let after_name = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state): utime is field 14, stime 15.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// One training session (one process run): where progress goes, and an optional budget of epochs
/// after which it ends as if killed right after that epoch's checkpoint.
#[derive(Debug)]
pub struct Session {
    pub progress: Progress,
    /// Where every tensor of the job lives (src/train/device.rs).
    pub device: Device,
    limit: Option<usize>,
    epochs: Cell<usize>,
}

impl Session {
    pub fn new(progress: Progress, stop_after_epochs: Option<usize>, device: Device) -> Self {
        Session { progress, device, limit: stop_after_epochs, epochs: Cell::new(0) }
    }

    /// Called after each epoch's checkpoint: [`TrainError::Interrupted`] once the budget is spent.
    pub fn epoch_done(&self) -> Result<(), TrainError> {
        self.epochs.set(self.epochs.get() + 1);
        match self.limit {
            Some(limit) if self.epochs.get() >= limit => Err(TrainError::Interrupted { epochs: self.epochs.get() }),
            _ => Ok(()),
        }
    }
}
