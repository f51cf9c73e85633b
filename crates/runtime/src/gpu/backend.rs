//! The WebGPU backend of the facade: the item table (and optionally the sequence tower) on the
//! browser's GPU through `runtime::gpu`; explanations and everything else stay on the CPU runtime.
//! Any GPU failure is returned, and the caller finishes that call — and every later one — on the CPU.

use crate::gguf::Gguf;
use crate::gpu::{GpuContext, GpuError, GpuItemTable, GpuRowFormat, GpuSequenceTower};
use crate::rows::ScoringRows;
use crate::{Runtime, RuntimeError};

/// A device with the catalogue uploaded.
pub(crate) struct GpuBackend {
    ctx: GpuContext,
    table: GpuItemTable,
    tower: Option<GpuSequenceTower>,
}

impl GpuBackend {
    /// Requests a device from `adapter` (see [`GpuContext::request_adapter`]), uploads `rows` and,
    /// when `tower` is given (the bundle's sequence-tower GGUF and its file name), the tower.
    pub async fn new(
        adapter: &wgpu::Adapter,
        allow_f16: bool,
        runtime: &Runtime,
        rows: &ScoringRows,
        tower: Option<(&[u8], &str)>,
    ) -> Result<GpuBackend, GpuError> {
        let ctx = GpuContext::from_adapter(adapter, allow_f16).await?;
        let format = match rows {
            ScoringRows::Int8 { .. } => GpuRowFormat::Int8,
            ScoringRows::F16 { .. } => GpuRowFormat::F16,
        };
        let table = GpuItemTable::new(format, runtime.dim())?;
        let tower = match tower {
            Some((bytes, file)) => {
                Some(GpuSequenceTower::load(&ctx, &Gguf::parse(bytes, file)?, file, runtime.config())?)
            }
            None => None,
        };
        let mut backend = GpuBackend { ctx, table, tower };
        backend.append(rows).await?;
        Ok(backend)
    }

    /// `"webgpu-f16"` or `"webgpu-f32"`.
    pub fn name(&self) -> &'static str {
        self.ctx.backend_name()
    }

    pub fn adapter(&self) -> String {
        let info = self.ctx.adapter_info();
        format!("{} ({:?}, {})", info.name, info.device_type, info.driver)
    }

    pub fn tower_on_gpu(&self) -> bool {
        self.tower.is_some()
    }

    /// Appends rows after those already in the table (items added at run time).
    pub async fn append(&mut self, rows: &ScoringRows) -> Result<(), GpuError> {
        match rows {
            ScoringRows::Int8 { codes, score_scales } if !score_scales.is_empty() => {
                self.table.append_int8(&self.ctx, codes, score_scales).await
            }
            ScoringRows::F16 { unit } if !unit.is_empty() => self.table.append_f16(&self.ctx, unit).await,
            _ => Ok(()),
        }
    }

    /// The top `k` rows for a session (rows, oldest first): the user vector (on the GPU when the tower
    /// is there, else the CPU runtime's), then the GPU scan and top-K, session rows excluded.
    pub async fn top_k(&self, runtime: &Runtime, session: &[u32], k: usize) -> Result<Vec<(u32, f32)>, GpuError> {
        if self.table.len() != runtime.item_count() {
            return Err(GpuError::shape(
                "item table",
                format!("{} rows for {} items", self.table.len(), runtime.item_count()),
            ));
        }
        let user = match &self.tower {
            Some(tower) => {
                let window = &session[session.len().saturating_sub(tower.max_len())..];
                let vectors: Vec<f32> = window.iter().filter_map(|&r| runtime.item_vector(r)).flatten().collect();
                tower.user_vector(&self.ctx, &vectors).await?
            }
            None => runtime.user_vector(session)?,
        };
        let query = unit(&user).ok_or_else(|| {
            GpuError::Bundle(RuntimeError::BadArgument { what: "user vector".into(), reason: "not finite".into() })
        })?;
        let exclude: Vec<usize> = session.iter().map(|&r| r as usize).collect();
        let hits = self.table.top_k(&self.ctx, &query, k, &exclude).await?;
        Ok(hits.into_iter().map(|h| (h.index as u32, h.score)).collect())
    }

    /// Destroys the device (tests of the CPU fallback; a real loss arrives the same way).
    pub fn destroy(&self) {
        self.ctx.device.destroy();
    }
}

/// `v` at unit length, as `Runtime::query` computes it (same operations, same rounding).
fn unit(v: &[f32]) -> Option<Vec<f32>> {
    if v.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let norm = v.iter().zip(v).map(|(x, y)| x * y).sum::<f32>().sqrt();
    let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
    Some(v.iter().map(|x| x * inv).collect())
}
