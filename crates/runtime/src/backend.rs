//! Which kernels answer a session: the WebGPU item table (and optionally the sequence tower) or the
//! CPU runtime. [`Backend`] owns the choice, the GPU → CPU fallback and the explanations of GPU hits,
//! so the native tests (Mesa lavapipe in CI) run the very code the browser facade calls; the facade
//! only converts values to and from JS (and stores the [`RememberedChoice`]).
//!
//! The choice ([`Backend::choose`], reported as a [`BackendChoice`]):
//!
//! - `"wasm"` ([`BackendPreference::Cpu`]): the CPU, nothing requested.
//! - `"webgpu"` ([`BackendPreference::WebGpu`]): WebGPU whenever an adapter and a device come, a
//!   software adapter (SwiftShader, llvmpipe/lavapipe) included; nothing is measured.
//! - `"auto"`: no adapter → the CPU (an ordinary state: a note, no warning). A software adapter
//!   → the CPU, without requesting a device (its scan is an emulation, slower than the CPU kernels at
//!   every size measured). Otherwise both backends are timed on the real catalogue — one warm-up call
//!   each, then alternating calls while the time spent plus the next call's expected time fits
//!   [`BackendOptions::budget_ms`] (50 ms by default), at most [`MAX_TIMED_CALLS`] each — and the
//!   faster by its best call is kept (the CPU on a tie). A [`RememberedChoice`] of the same bundle
//!   and device, for a catalogue within 2× of this one's size, is used instead of measuring.
//!
//! A GPU failure on any call (device lost included) finishes that call on the CPU, and every later
//! call stays there; a kernel limit the GPU cannot meet ([`GpuError::Unsupported`](crate::gpu::GpuError))
//! sends only that call to the CPU.

#[cfg(feature = "gpu")]
use std::cell::RefCell;

use serde::{Deserialize, Serialize};

#[cfg(feature = "gpu")]
use crate::gpu::backend::GpuBackend;
#[cfg(feature = "gpu")]
use crate::gpu::{GpuContext, GpuError, GpuOptions};
#[cfg(feature = "gpu")]
use crate::rows::ScoringRows;
use crate::{ItemMeta, ItemVectors, Recommendations, Runtime, RuntimeError};

/// The measurement's default time budget, warm-ups included (ms).
pub const DEFAULT_BUDGET_MS: u32 = 50;
/// At most this many timed calls per backend after the warm-up.
pub const MAX_TIMED_CALLS: u32 = 5;
/// A remembered choice holds while the catalogue is within this factor of the size it was measured at.
pub const RESIZE_FACTOR: u64 = 2;
/// The measurement's calls: top-`MEASURE_K` of a session of the catalogue's first rows.
#[cfg(feature = "gpu")]
const MEASURE_K: usize = 10;
#[cfg(feature = "gpu")]
const MEASURE_SESSION: usize = 3;

/// Which backend a load may use (`LoadOptions.backend` in the browser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendPreference {
    /// The faster of WebGPU and the CPU on this device (never a software adapter), else the CPU
    /// (`"auto"`).
    Auto,
    /// WebGPU whenever an adapter and a device come, whatever the adapter, else the CPU with a
    /// warning (`"webgpu"`).
    WebGpu,
    /// The CPU kernels only (`"wasm"`).
    Cpu,
}

impl BackendPreference {
    /// `"auto"`, `"webgpu"` or `"wasm"`; anything else is an error naming the value.
    pub fn parse(name: &str) -> Result<BackendPreference, RuntimeError> {
        match name {
            "auto" => Ok(BackendPreference::Auto),
            "webgpu" => Ok(BackendPreference::WebGpu),
            "wasm" => Ok(BackendPreference::Cpu),
            other => {
                Err(RuntimeError::argument("backend", format!("{other:?} is not \"auto\", \"webgpu\" or \"wasm\"")))
            }
        }
    }
}

/// How a load may use the GPU (the GPU flags are read only with the `gpu` feature).
#[derive(Debug, Clone, PartialEq)]
pub struct BackendOptions {
    pub preference: BackendPreference,
    /// Score f16 rows on the GPU when the adapter has `shader-f16`.
    pub allow_f16: bool,
    /// Run the sequence tower on the GPU too (its ~30 small dispatches usually cost more than they save).
    pub tower_on_gpu: bool,
    /// The measurement's time budget under `Auto`, warm-ups included (ms).
    pub budget_ms: u32,
    /// Under `Auto`, measure a software adapter like any other instead of passing it over (tests and
    /// benchmarks on lavapipe; no page wants this).
    pub measure_software: bool,
    /// The bundle's identity for [`RememberedChoice`] (the manifest's sha256, or a shard's); `None`:
    /// nothing is remembered or produced.
    pub bundle: Option<String>,
    /// A choice an earlier load returned in [`BackendChoice::remember`]; used under `Auto` when it
    /// is of the same bundle and device and the catalogue has not changed size by more than 2×.
    pub remembered: Option<RememberedChoice>,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions {
            preference: BackendPreference::Auto,
            allow_f16: true,
            tower_on_gpu: false,
            budget_ms: DEFAULT_BUDGET_MS,
            measure_software: false,
            bundle: None,
            remembered: None,
        }
    }
}

/// Why the backend is what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChoiceReason {
    /// The caller's preference decided (`"wasm"`, or `"webgpu"` with an adapter).
    Preference,
    /// No adapter came (no WebGPU in this browser, no Vulkan driver, a build without `gpu`).
    NoAdapter,
    /// The adapter is a CPU rasteriser (SwiftShader, llvmpipe/lavapipe): passed over under `Auto`.
    SoftwareAdapter,
    /// Both backends were timed on this catalogue.
    Measured,
    /// A [`RememberedChoice`] of this bundle and device decided, without measuring.
    Remembered,
    /// An adapter came but the device, the upload or a measured call failed.
    GpuFailed,
}

impl ChoiceReason {
    /// `"preference"`, `"no adapter"`, `"software adapter"`, `"measured"`, `"remembered"`, `"gpu failed"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChoiceReason::Preference => "preference",
            ChoiceReason::NoAdapter => "no adapter",
            ChoiceReason::SoftwareAdapter => "software adapter",
            ChoiceReason::Measured => "measured",
            ChoiceReason::Remembered => "remembered",
            ChoiceReason::GpuFailed => "gpu failed",
        }
    }
}

/// The decision a load made, and what it measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BackendChoice {
    /// The backend chosen ([`Backend::name`] right after the choice).
    pub backend: String,
    pub reason: ChoiceReason,
    /// Best time of a measured CPU call (user vector + scan + top-10), ms; when remembered, the time
    /// measured then. `None` when not measured.
    pub cpu_ms: Option<f64>,
    /// The same on the GPU (readback included).
    pub gpu_ms: Option<f64>,
    /// Calls made to measure, warm-ups included (0 unless `reason` is `Measured`).
    pub cpu_calls: u32,
    pub gpu_calls: u32,
    /// Time the measurement took in all, by the load's clock (ms).
    pub spent_ms: f64,
    /// What to store and give back as [`BackendOptions::remembered`] on the next load (set after
    /// `Measured` and `Remembered` when [`BackendOptions::bundle`] was given).
    pub remember: Option<RememberedChoice>,
}

impl BackendChoice {
    fn unmeasured(backend: String, reason: ChoiceReason) -> BackendChoice {
        BackendChoice {
            backend,
            reason,
            cpu_ms: None,
            gpu_ms: None,
            cpu_calls: 0,
            gpu_calls: 0,
            spent_ms: 0.0,
            remember: None,
        }
    }
}

/// A measured choice, kept by the caller between loads (a few hundred bytes of JSON) and given back
/// in [`BackendOptions::remembered`]. Only ever a hint: one that does not apply, or does not parse,
/// means measuring again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RememberedChoice {
    /// [`BackendOptions::bundle`] of the load that measured.
    pub bundle: String,
    /// The adapter (name, backend, type, driver) and the GPU options that matter for speed.
    pub device: String,
    /// The catalogue's size when measured.
    pub items: u64,
    /// Whether the GPU won.
    pub gpu: bool,
    pub cpu_ms: f64,
    pub gpu_ms: f64,
}

impl RememberedChoice {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `None` for anything that is not a remembered choice (stale formats included).
    pub fn from_json(text: &str) -> Option<RememberedChoice> {
        serde_json::from_str(text).ok()
    }

    /// Whether it decides for `bundle` on `device` with `items` items: same bundle and device, and
    /// the catalogue at most 2× larger or smaller than when measured.
    pub fn applies_to(&self, bundle: &str, device: &str, items: usize) -> bool {
        let (then, now) = (self.items, items as u64);
        self.bundle == bundle
            && self.device == device
            && now <= then.saturating_mul(RESIZE_FACTOR)
            && then <= now.saturating_mul(RESIZE_FACTOR)
    }
}

/// One answer and what produced it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub recommendations: Recommendations,
    /// The backend that answered ([`Backend::name`] at the time).
    pub backend: String,
    /// Set when the GPU failed or could not take this call and the CPU answered instead: the caller
    /// should tell the developer (the browser facade logs it as a console warning).
    pub warning: Option<String>,
}

/// A loaded catalogue with the backend that scores it.
pub struct Backend {
    runtime: Runtime,
    /// `None` on the CPU. A `RefCell` because a failure during a shared `recommend` drops it.
    #[cfg(feature = "gpu")]
    gpu: RefCell<Option<GpuBackend>>,
    /// Why the backend is what it is (adapter name, or why not WebGPU).
    #[cfg(feature = "gpu")]
    note: RefCell<String>,
    #[cfg(not(feature = "gpu"))]
    note: String,
    choice: BackendChoice,
}

/// The platform's clock in ms: `Instant` natively; on wasm32 (no `Instant` there) a clock that never
/// moves, so pass `performance.now` to [`Backend::choose_with`] in the browser.
pub fn system_clock() -> impl Fn() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let start = std::time::Instant::now();
        move || start.elapsed().as_secs_f64() * 1e3
    }
    #[cfg(target_arch = "wasm32")]
    {
        || 0.0
    }
}

impl Backend {
    /// The CPU runtime alone, with `note` saying why.
    pub fn cpu(runtime: Runtime, note: impl Into<String>) -> Backend {
        Backend::on_cpu(runtime, note, ChoiceReason::Preference)
    }

    fn on_cpu(runtime: Runtime, note: impl Into<String>, reason: ChoiceReason) -> Backend {
        let choice = BackendChoice::unmeasured(cpu_name(), reason);
        Backend::with_choice(runtime, note, choice)
    }

    fn with_choice(runtime: Runtime, note: impl Into<String>, choice: BackendChoice) -> Backend {
        Backend {
            runtime,
            #[cfg(feature = "gpu")]
            gpu: RefCell::new(None),
            #[cfg(feature = "gpu")]
            note: RefCell::new(note.into()),
            #[cfg(not(feature = "gpu"))]
            note: note.into(),
            choice,
        }
    }

    /// [`Backend::choose_with`] on [`system_clock`] (natively; the browser passes its own clock).
    pub async fn choose(
        runtime: Runtime,
        options: &BackendOptions,
        tower: Option<(&[u8], &str)>,
    ) -> (Backend, Option<String>) {
        Backend::choose_with(runtime, options, tower, &system_clock()).await
    }

    /// Chooses the backend for `runtime`'s catalogue as the module docs say, timing calls with
    /// `clock` (ms, monotonic). The GPU gets the catalogue, and the sequence tower from `tower` — the
    /// bundle's GGUF bytes and file name — when `options.tower_on_gpu`. Never fails: the decision is
    /// [`Backend::choice`], why in [`Backend::note`]; a warning is returned only when something
    /// failed or `"webgpu"` was asked for and no adapter came (the caller tells the developer, as
    /// with [`Answer::warning`]). A missing adapter under `"auto"` is no warning.
    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    pub async fn choose_with(
        runtime: Runtime,
        options: &BackendOptions,
        tower: Option<(&[u8], &str)>,
        clock: &dyn Fn() -> f64,
    ) -> (Backend, Option<String>) {
        if options.preference == BackendPreference::Cpu {
            return (Backend::cpu(runtime, "WebGPU disabled by options.backend = \"wasm\""), None);
        }
        #[cfg(feature = "gpu")]
        {
            choose_gpu(runtime, options, tower, clock).await
        }
        #[cfg(not(feature = "gpu"))]
        (Backend::on_cpu(runtime, "built without the gpu feature", ChoiceReason::NoAdapter), None)
    }

    /// What the load chose and measured (unchanged by a later fallback: [`Backend::name`] says
    /// what answers now).
    pub fn choice(&self) -> &BackendChoice {
        &self.choice
    }

    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// The runtime, for calls that change nothing the GPU holds (e.g. loading the item tower).
    pub fn runtime_mut(&mut self) -> &mut Runtime {
        &mut self.runtime
    }

    /// `"webgpu-f16"`, `"webgpu-f32"`, or the CPU kernels: `"wasm-simd"` in the browser
    /// (`"wasm-scalar"` without simd128), `"cpu-avx2"` / `"cpu-scalar"` natively.
    pub fn name(&self) -> String {
        #[cfg(feature = "gpu")]
        if let Some(gpu) = self.gpu.borrow().as_ref() {
            return gpu.name().into();
        }
        cpu_name()
    }

    /// The adapter in use, or why the backend is the CPU.
    pub fn note(&self) -> String {
        #[cfg(feature = "gpu")]
        return self.note.borrow().clone();
        #[cfg(not(feature = "gpu"))]
        return self.note.clone();
    }

    /// Top-`k` recommendations for `session` (item ids, oldest first), never a session item; unknown
    /// ids are reported in `unknown`. On the GPU when it holds the catalogue; a GPU failure answers on
    /// the CPU (see the module docs) and says so in [`Answer::warning`].
    // The GPU borrow is held across the GPU await on purpose: a concurrent call shares it, and a
    // failure only drops the GPU when no other call is using it (the next failing call will).
    #[allow(clippy::await_holding_refcell_ref)]
    pub async fn recommend<S: AsRef<str>>(&self, session: &[S], k: usize) -> Result<Answer, RuntimeError> {
        if k == 0 {
            return Err(RuntimeError::argument("k", "must be at least 1"));
        }
        #[allow(unused_mut)]
        let mut warning = None;
        #[cfg(feature = "gpu")]
        {
            let attempt = {
                let gpu = self.gpu.borrow();
                match gpu.as_ref() {
                    Some(gpu) => {
                        let (rows, unknown) = self.runtime.resolve(session);
                        if rows.is_empty() {
                            return Err(RuntimeError::EmptySession { unknown });
                        }
                        Some((gpu.top_k(&self.runtime, &rows, k).await, rows, unknown, gpu.name()))
                    }
                    None => None,
                }
            };
            match attempt {
                Some((Ok(top), rows, unknown, name)) => {
                    let mut recommendations = self.runtime.explained(top, &rows)?;
                    recommendations.unknown = unknown;
                    return Ok(Answer { recommendations, backend: name.into(), warning: None });
                }
                Some((Err(GpuError::Unsupported(why)), ..)) => {
                    warning = Some(format!("this call runs on the CPU: {why}"));
                }
                Some((Err(e), ..)) => {
                    let note = format!("WebGPU failed, finishing on the CPU: {e}");
                    self.drop_gpu(&note);
                    warning = Some(note);
                }
                None => {}
            }
        }
        let recommendations = self.runtime.recommend(session, k)?;
        Ok(Answer { recommendations, backend: self.name(), warning })
    }

    /// Adds a product to the catalogue (and to the GPU table, so both scan the same stored row);
    /// returns its row. A GPU failure moves the backend to the CPU and is returned as the warning.
    pub async fn add_item(
        &mut self,
        meta: ItemMeta,
        vectors: &ItemVectors,
    ) -> Result<(u32, Option<String>), RuntimeError> {
        let row = self.runtime.add_item(meta, vectors)?;
        #[cfg(feature = "gpu")]
        {
            // The stored row, exactly what the CPU scans.
            let rows = ScoringRows::of_store(self.runtime.items(), row as usize..row as usize + 1);
            let failed = match self.gpu.get_mut() {
                Some(gpu) => gpu.append(&rows).await.err(),
                None => None,
            };
            if let Some(e) = failed {
                let note = format!("WebGPU failed adding an item, finishing on the CPU: {e}");
                self.drop_gpu(&note);
                return Ok((row, Some(note)));
            }
        }
        Ok((row, None))
    }

    /// Destroys the GPU device, as a driver reset would (tests the CPU fallback). No-op on the CPU.
    pub fn simulate_device_loss(&self) {
        #[cfg(feature = "gpu")]
        if let Some(gpu) = self.gpu.borrow().as_ref() {
            gpu.destroy();
        }
    }

    /// Leaves the GPU for good, unless another call is using it right now (the next call that fails
    /// will drop it then).
    #[cfg(feature = "gpu")]
    fn drop_gpu(&self, note: &str) {
        if let (Ok(mut gpu), Ok(mut current)) = (self.gpu.try_borrow_mut(), self.note.try_borrow_mut()) {
            *gpu = None;
            *current = note.to_string();
        }
    }
}

/// The GPU part of [`Backend::choose_with`]: adapter, software check, remembered choice, device and
/// upload, then the preference or the measurement.
#[cfg(feature = "gpu")]
async fn choose_gpu(
    runtime: Runtime,
    options: &BackendOptions,
    tower: Option<(&[u8], &str)>,
    clock: &dyn Fn() -> f64,
) -> (Backend, Option<String>) {
    let auto = options.preference == BackendPreference::Auto;
    let adapter = match GpuContext::request_adapter(&GpuOptions {
        allow_f16: options.allow_f16,
        ..GpuOptions::default()
    })
    .await
    {
        Ok(adapter) => adapter,
        Err(e) => {
            let note = format!("no WebGPU adapter, scoring on the CPU: {e}");
            let warning = (!auto).then(|| note.clone());
            return (Backend::on_cpu(runtime, note, ChoiceReason::NoAdapter), warning);
        }
    };
    let info = adapter.get_info();
    let adapter_name = format!("{:?} ({:?}, {:?}, {})", info.name, info.backend, info.device_type, info.driver);
    if auto && !options.measure_software && crate::gpu::is_software_adapter(&info) {
        let note =
            format!("adapter {adapter_name} is a CPU rasteriser, slower than the CPU kernels: scoring on the CPU");
        return (Backend::on_cpu(runtime, note, ChoiceReason::SoftwareAdapter), None);
    }
    let device = format!(
        "{adapter_name}{}{}",
        if options.allow_f16 { "" } else { ", f16 off" },
        if options.tower_on_gpu { ", tower on the GPU" } else { "" }
    );
    let n = runtime.item_count();
    let remembered = match (auto, &options.bundle, &options.remembered) {
        (true, Some(bundle), Some(r)) if r.applies_to(bundle, &device, n) => Some(r.clone()),
        _ => None,
    };
    let remembered_choice = |r: &RememberedChoice, backend: String| BackendChoice {
        backend,
        reason: ChoiceReason::Remembered,
        cpu_ms: Some(r.cpu_ms),
        gpu_ms: Some(r.gpu_ms),
        cpu_calls: 0,
        gpu_calls: 0,
        spent_ms: 0.0,
        remember: Some(r.clone()),
    };
    if let Some(r) = remembered.as_ref().filter(|r| !r.gpu) {
        let note =
            format!("the CPU, remembered as faster on {adapter_name} (CPU {:.3} ms, GPU {:.3} ms)", r.cpu_ms, r.gpu_ms);
        return (Backend::with_choice(runtime, note, remembered_choice(r, cpu_name())), None);
    }
    let rows = ScoringRows::of_store(runtime.items(), 0..n);
    let tower = tower.filter(|_| options.tower_on_gpu);
    let gpu = match GpuBackend::new(&adapter, options.allow_f16, &runtime, &rows, tower).await {
        Ok(gpu) => gpu,
        Err(e) => {
            let note = format!("WebGPU unavailable, using the CPU: {e}");
            return (Backend::on_cpu(runtime, note.clone(), ChoiceReason::GpuFailed), Some(note));
        }
    };
    drop(rows);
    let on_gpu = format!(
        "{} on {}{}",
        gpu.name(),
        gpu.adapter(),
        if gpu.tower_on_gpu() { "; sequence tower on the GPU" } else { "" }
    );
    let name = gpu.name().to_string();
    let keep = |runtime: Runtime, gpu: GpuBackend, note: String, choice: BackendChoice| Backend {
        runtime,
        gpu: RefCell::new(Some(gpu)),
        note: RefCell::new(note),
        choice,
    };
    if !auto {
        let choice = BackendChoice::unmeasured(name, ChoiceReason::Preference);
        return (keep(runtime, gpu, on_gpu, choice), None);
    }
    if let Some(r) = &remembered {
        let note = format!("{on_gpu}; remembered as faster (GPU {:.3} ms, CPU {:.3} ms)", r.gpu_ms, r.cpu_ms);
        return (keep(runtime, gpu, note, remembered_choice(r, name)), None);
    }
    let m = match measure(&runtime, &gpu, options.budget_ms as f64, clock).await {
        Ok(m) => m,
        Err(e) => {
            let note = format!("WebGPU failed while measuring, using the CPU: {e}");
            return (Backend::on_cpu(runtime, note.clone(), ChoiceReason::GpuFailed), Some(note));
        }
    };
    let gpu_wins = m.gpu_ms < m.cpu_ms;
    let remember = options.bundle.as_ref().map(|bundle| RememberedChoice {
        bundle: bundle.clone(),
        device,
        items: n as u64,
        gpu: gpu_wins,
        cpu_ms: m.cpu_ms,
        gpu_ms: m.gpu_ms,
    });
    let mut choice = BackendChoice {
        backend: name,
        reason: ChoiceReason::Measured,
        cpu_ms: Some(m.cpu_ms),
        gpu_ms: Some(m.gpu_ms),
        cpu_calls: m.cpu_calls,
        gpu_calls: m.gpu_calls,
        spent_ms: m.spent_ms,
        remember,
    };
    let timings = format!("GPU {:.3} ms, CPU {:.3} ms on {n} items", m.gpu_ms, m.cpu_ms);
    if gpu_wins {
        (keep(runtime, gpu, format!("{on_gpu}; measured faster ({timings})"), choice), None)
    } else {
        drop(gpu);
        choice.backend = cpu_name();
        let note = format!("the CPU, measured faster than {on_gpu} ({timings})");
        (Backend::with_choice(runtime, note, choice), None)
    }
}

/// What [`measure`] found.
#[cfg(feature = "gpu")]
struct Measurement {
    cpu_ms: f64,
    gpu_ms: f64,
    cpu_calls: u32,
    gpu_calls: u32,
    spent_ms: f64,
}

/// Times the CPU and the GPU on the catalogue (module docs): a session of the first rows, top-10,
/// user vector + scan + top-K on each side (the explanations are the same work on both). One warm-up
/// call each, always; then CPU and GPU calls in turn while the time spent plus the next call's
/// expected time (its previous one) fits `budget_ms`, at most [`MAX_TIMED_CALLS`] each. Each
/// backend's time is its best timed call (its warm-up when none was timed).
#[cfg(feature = "gpu")]
async fn measure(
    runtime: &Runtime,
    gpu: &GpuBackend,
    budget_ms: f64,
    clock: &dyn Fn() -> f64,
) -> Result<Measurement, GpuError> {
    let n = runtime.item_count();
    let session: Vec<u32> = (0..n.min(MEASURE_SESSION) as u32).collect();
    let k = MEASURE_K.min(n.saturating_sub(session.len())).max(1);
    let cpu_call = || -> Result<(), RuntimeError> {
        let user = runtime.user_vector(&session)?;
        runtime.top_k(&user, k, &session).map(drop)
    };
    let start = clock();
    // [warm-up, best timed call] and the number of calls, per backend (0: CPU, 1: GPU).
    let mut last = [0.0f64; 2];
    let mut best = [f64::INFINITY; 2];
    let mut calls = [0u32; 2];
    let mut now = start;
    for round in 0..=MAX_TIMED_CALLS {
        for side in 0..2 {
            if round > 0 && now - start + last[side] > budget_ms {
                return Ok(finish(best, last, calls, now - start));
            }
            let began = now;
            if side == 0 {
                cpu_call()?;
            } else {
                gpu.top_k(runtime, &session, k).await?;
            }
            now = clock();
            last[side] = now - began;
            calls[side] += 1;
            if round > 0 {
                best[side] = best[side].min(last[side]);
            }
        }
    }
    Ok(finish(best, last, calls, now - start))
}

#[cfg(feature = "gpu")]
fn finish(best: [f64; 2], last: [f64; 2], calls: [u32; 2], spent_ms: f64) -> Measurement {
    // No timed call: the warm-up's time (still in `last`).
    let pick = |side: usize| if best[side].is_finite() { best[side] } else { last[side] };
    Measurement { cpu_ms: pick(0), gpu_ms: pick(1), cpu_calls: calls[0], gpu_calls: calls[1], spent_ms }
}

/// The CPU kernels' backend name.
fn cpu_name() -> String {
    let prefix = if cfg!(target_arch = "wasm32") { "wasm" } else { "cpu" };
    match crate::kernels::path() {
        "simd128" => format!("{prefix}-simd"),
        other => format!("{prefix}-{other}"),
    }
}
