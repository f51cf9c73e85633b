//! Which kernels answer a session: the WebGPU item table (and optionally the sequence tower) or the
//! CPU runtime. [`Backend`] owns the choice, the GPU → CPU fallback and the explanations of GPU hits,
//! so the native tests (Mesa lavapipe in CI) run the very code the browser facade calls; the facade
//! only converts values to and from JS.
//!
//! The choice today: WebGPU whenever the options allow it and an adapter and a device come (the
//! catalogue uploaded), else the CPU. A GPU failure on any call (device lost included) finishes that
//! call on the CPU, and every later call stays there; a kernel limit the GPU cannot meet
//! ([`GpuError::Unsupported`](crate::gpu::GpuError)) sends only that call to the CPU.

#[cfg(feature = "gpu")]
use std::cell::RefCell;

#[cfg(feature = "gpu")]
use crate::gpu::backend::GpuBackend;
#[cfg(feature = "gpu")]
use crate::gpu::GpuError;
#[cfg(feature = "gpu")]
use crate::rows::ScoringRows;
use crate::{ItemMeta, ItemVectors, Recommendations, Runtime, RuntimeError};

/// Which backend a load may use (`LoadOptions.backend` in the browser).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendPreference {
    /// WebGPU when it comes, else the CPU (`"auto"`).
    Auto,
    /// The same as `Auto` today; the caller asked for the GPU explicitly (`"webgpu"`).
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendOptions {
    pub preference: BackendPreference,
    /// Score f16 rows on the GPU when the adapter has `shader-f16`.
    pub allow_f16: bool,
    /// Run the sequence tower on the GPU too (its ~30 small dispatches usually cost more than they save).
    pub tower_on_gpu: bool,
}

impl Default for BackendOptions {
    fn default() -> Self {
        BackendOptions { preference: BackendPreference::Auto, allow_f16: true, tower_on_gpu: false }
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
}

impl Backend {
    /// The CPU runtime alone, with `note` saying why.
    pub fn cpu(runtime: Runtime, note: impl Into<String>) -> Backend {
        Backend {
            runtime,
            #[cfg(feature = "gpu")]
            gpu: RefCell::new(None),
            #[cfg(feature = "gpu")]
            note: RefCell::new(note.into()),
            #[cfg(not(feature = "gpu"))]
            note: note.into(),
        }
    }

    /// Chooses the backend for `runtime`'s catalogue: WebGPU when `options` allow it and an adapter
    /// and a device come (the catalogue uploaded, and the sequence tower from `tower` — the bundle's
    /// GGUF bytes and file name — when `options.tower_on_gpu`), else the CPU. Never fails: why the
    /// GPU was not taken is in [`Backend::note`], and is also returned as a warning when the GPU was
    /// allowed but failed (the caller tells the developer, as with [`Answer::warning`]).
    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    pub async fn choose(
        runtime: Runtime,
        options: &BackendOptions,
        tower: Option<(&[u8], &str)>,
    ) -> (Backend, Option<String>) {
        if options.preference == BackendPreference::Cpu {
            return (Backend::cpu(runtime, "WebGPU disabled by options.backend = \"wasm\""), None);
        }
        #[cfg(feature = "gpu")]
        {
            let rows = ScoringRows::of_store(runtime.items(), 0..runtime.item_count());
            let tower = tower.filter(|_| options.tower_on_gpu);
            match GpuBackend::new(options.allow_f16, &runtime, &rows, tower).await {
                Ok(gpu) => {
                    let note = format!(
                        "{} on {}{}",
                        gpu.name(),
                        gpu.adapter(),
                        if gpu.tower_on_gpu() { "; sequence tower on the GPU" } else { "" }
                    );
                    (Backend { runtime, gpu: RefCell::new(Some(gpu)), note: RefCell::new(note) }, None)
                }
                Err(e) => {
                    let note = format!("WebGPU unavailable, using the CPU: {e}");
                    (Backend::cpu(runtime, note.clone()), Some(note))
                }
            }
        }
        #[cfg(not(feature = "gpu"))]
        (Backend::cpu(runtime, "built without the gpu feature"), None)
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

/// The CPU kernels' backend name.
fn cpu_name() -> String {
    let prefix = if cfg!(target_arch = "wasm32") { "wasm" } else { "cpu" };
    match crate::kernels::path() {
        "simd128" => format!("{prefix}-simd"),
        other => format!("{prefix}-{other}"),
    }
}
