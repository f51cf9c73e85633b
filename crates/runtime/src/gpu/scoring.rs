//! Scoring an item table against a user vector on the GPU, and a two-stage top-K.
//!
//! ```text
//! user vector ─► query (int8: kernels::QuantizedQuery as i32 | f16: f32)
//! every binding of the table ─► score_top_k: per workgroup of 2048 rows, its K best (excluded left out)
//! candidates ─► merge (repeated: 2048 candidates → K) until one workgroup remains ─► K hits read back
//! ```
//!
//! The table lives in GPU buffers, split into bindings of at most [`GpuContext::max_binding_bytes`]
//! (the device's limit, raised to the adapter's at device request). Scores follow the CPU kernels'
//! contract (`runtime::kernels` module docs): int8 scores are the same integer dot product and the same
//! two f32 products; f16 scores sum in the same eight lanes (a GPU may fuse a product and a sum, so
//! they agree to rounding). Ranking is the CPU `TopK`'s: higher score, then lower index.
//!
//! # Buffer lifetime
//! [`GpuItemTable::top_k`] creates no buffer and no bind group. Its state (`TopKPlan`) is built on
//! the first call after an append and kept until the next append (which drops it: the bindings
//! changed):
//! - the query buffer (one padded row) and one uniform buffer holding every dispatch's parameters, a
//!   256-byte slot each (the scan of each binding, then each merge round), rewritten per call with
//!   one `queue.write_buffer` each;
//! - the excluded list (grown, and the scan's bind groups rebuilt, when a call excludes more items
//!   than it holds);
//! - two candidate buffers the scan and the merge rounds ping-pong between, sized for [`MAX_K`] (the
//!   scan's output and the largest round's), so that any k uses the same bind groups;
//! - a mappable buffer of `MAX_K` hits: the K hits (k × (score, index), 8 bytes each) are copied
//!   there and only they are mapped.
//!
//! The scan and every merge round are recorded into one command encoder and go in ONE submission
//! with the copy of the hits. The writes and the submission happen under the plan's lock, so
//! concurrent calls cannot see each other's query; a call whose readback buffer is still mapped by
//! an earlier call in flight reads through a fresh buffer instead.

use std::sync::Mutex;

use super::buffers::{dispatch, dispatch_bound, entry, storage_buffer, uniform_buffer, UniformSlots, MAX_GROUPS_X};
use super::context::{GpuContext, Readback};
use super::error::GpuError;
use crate::kernels::{Hit, QuantizedQuery};
use half::f16;

/// Largest k [`GpuItemTable::top_k`] serves (each of the K selection rounds costs a reduction).
pub const MAX_K: usize = 512;

/// Rows per invocation and invocations per workgroup (select.wgsl's IPT and WG).
const WORKGROUP: u32 = 256;
const ROWS_PER_GROUP: u32 = WORKGROUP * 8;
/// The index marking "no candidate" in the shaders.
const EMPTY: u32 = u32::MAX;

/// select.wgsl's `Params` (uniform; 32 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    count: u32,
    row_words: u32,
    first_index: u32,
    k: u32,
    excluded: u32,
    out_offset: u32,
    query_scale: f32,
    groups_x: u32,
}

/// How the table's rows are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GpuRowFormat {
    /// int8 codes with one f32 scale per row: row r is `codes[r] · scales[r]`.
    Int8,
    /// f16 values.
    F16,
}

/// Item vectors in GPU memory, appended shard by shard; row i of the table is item index i.
#[derive(Debug)]
pub struct GpuItemTable {
    format: GpuRowFormat,
    dim: usize,
    /// vec4<u32> words per stored row (rows are zero-padded to whole words).
    row_words: usize,
    len: usize,
    parts: Vec<Part>,
    /// The persistent buffers and bind groups of `top_k` (module docs), built on the first call after
    /// an append; `None` until then.
    plan: Mutex<Option<TopKPlan>>,
}

/// One binding's worth of rows.
#[derive(Debug)]
struct Part {
    rows: wgpu::Buffer,
    scales: Option<wgpu::Buffer>,
    first_index: u32,
    len: u32,
}

impl GpuItemTable {
    /// An empty table of `dim`-wide rows.
    pub fn new(format: GpuRowFormat, dim: usize) -> Result<GpuItemTable, GpuError> {
        if dim == 0 {
            return Err(GpuError::shape("item table", "dim is 0"));
        }
        let values_per_word = match format {
            GpuRowFormat::Int8 => 16,
            GpuRowFormat::F16 => 8,
        };
        Ok(GpuItemTable {
            format,
            dim,
            row_words: dim.div_ceil(values_per_word),
            len: 0,
            parts: Vec::new(),
            plan: Mutex::new(None),
        })
    }

    pub fn format(&self) -> GpuRowFormat {
        self.format
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of GPU bindings the rows occupy (one per shard, more when a shard exceeds the device's
    /// binding size).
    pub fn bindings(&self) -> usize {
        self.parts.len()
    }

    fn row_bytes(&self) -> usize {
        self.row_words * 16
    }

    /// Appends int8 rows `codes` `[n, dim]` (row-major) with `scales` `[n]`.
    pub async fn append_int8(&mut self, ctx: &GpuContext, codes: &[i8], scales: &[f32]) -> Result<(), GpuError> {
        self.expect_format(GpuRowFormat::Int8)?;
        let n = scales.len();
        if codes.len() != n * self.dim {
            return Err(GpuError::shape(
                "append_int8",
                format!("{} codes are not {n} rows of {}", codes.len(), self.dim),
            ));
        }
        let bytes: &[u8] = bytemuck::cast_slice(codes);
        self.append(ctx, bytes, self.dim, Some(scales)).await
    }

    /// Appends f16 rows `[n, dim]` (row-major).
    pub async fn append_f16(&mut self, ctx: &GpuContext, rows: &[f16]) -> Result<(), GpuError> {
        self.expect_format(GpuRowFormat::F16)?;
        if rows.len() % self.dim != 0 {
            return Err(GpuError::shape(
                "append_f16",
                format!("{} values are not whole rows of {}", rows.len(), self.dim),
            ));
        }
        let bytes: Vec<u8> = rows.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.append(ctx, &bytes, 2 * self.dim, None).await
    }

    fn expect_format(&self, format: GpuRowFormat) -> Result<(), GpuError> {
        if self.format == format {
            Ok(())
        } else {
            Err(GpuError::shape("item table", format!("{:?} rows appended to a {:?} table", format, self.format)))
        }
    }

    /// Uploads `bytes` (whole rows of `packed_row` bytes) in bindings no larger than the device allows.
    async fn append(
        &mut self,
        ctx: &GpuContext,
        bytes: &[u8],
        packed_row: usize,
        scales: Option<&[f32]>,
    ) -> Result<(), GpuError> {
        let n = bytes.len() / packed_row;
        if self.len + n >= EMPTY as usize {
            return Err(GpuError::Unsupported(format!("{} items (at most {})", self.len + n, EMPTY - 1)));
        }
        let row_bytes = self.row_bytes();
        let max_rows = (ctx.max_binding_bytes() as usize / row_bytes).max(1);
        let scope = ctx.scope("item table upload")?;
        // The bindings change: the next top_k builds its buffers and bind groups again.
        *self.plan.get_mut().unwrap_or_else(|e| e.into_inner()) = None;
        for start in (0..n).step_by(max_rows) {
            let end = (start + max_rows).min(n);
            let rows = padded_rows(&bytes[start * packed_row..end * packed_row], packed_row, row_bytes);
            let rows = ctx.buffer_with("item rows", &rows, wgpu::BufferUsages::STORAGE);
            let scales = scales.map(|s| {
                ctx.buffer_with("item scales", bytemuck::cast_slice(&s[start..end]), wgpu::BufferUsages::STORAGE)
            });
            self.parts.push(Part { rows, scales, first_index: (self.len + start) as u32, len: (end - start) as u32 });
        }
        scope.finish().await?;
        self.len += n;
        Ok(())
    }

    /// The query buffer of `query` (`[dim]`, finite) and the int8 query scale.
    fn query_buffer(&self, ctx: &GpuContext, query: &[f32]) -> (wgpu::Buffer, f32) {
        let (bytes, scale) = self.query_bytes(query);
        (ctx.buffer_with("query", &bytes, wgpu::BufferUsages::STORAGE), scale)
    }

    /// The query as the shaders read it (padded to whole row words) and the int8 query scale.
    fn query_bytes(&self, query: &[f32]) -> (Vec<u8>, f32) {
        let padded = self.row_words * 16 / self.values_per_query_word();
        let (bytes, scale) = match self.format {
            GpuRowFormat::Int8 => {
                let q = QuantizedQuery::new(query);
                let mut values: Vec<i32> = q.values.iter().map(|&v| v as i32).collect();
                values.resize(padded, 0);
                (bytemuck::cast_slice(&values).to_vec(), q.scale)
            }
            GpuRowFormat::F16 => {
                let mut values = query.to_vec();
                values.resize(padded, 0.0);
                (bytemuck::cast_slice(&values).to_vec(), 1.0)
            }
        };
        (bytes, scale)
    }

    /// Bytes of a stored row's word per query value (int8: 1 code per i32 query value).
    fn values_per_query_word(&self) -> usize {
        match self.format {
            GpuRowFormat::Int8 => 1,
            GpuRowFormat::F16 => 2,
        }
    }

    fn check_query(&self, query: &[f32]) -> Result<(), GpuError> {
        if query.len() != self.dim {
            return Err(GpuError::shape("query", format!("{} values for a table of dim {}", query.len(), self.dim)));
        }
        Ok(())
    }

    /// Every item's score `[len]` (the CPU `score_int8` / `score_f16` on the GPU). A query with a
    /// NaN or infinity gives NaN scores, as on the CPU.
    pub async fn scores(&self, ctx: &GpuContext, query: &[f32]) -> Result<Vec<f32>, GpuError> {
        self.check_query(query)?;
        if self.len == 0 {
            return Ok(Vec::new());
        }
        if query.iter().any(|v| !v.is_finite()) {
            return Ok(vec![f32::NAN; self.len]);
        }
        let scope = ctx.scope("scoring")?;
        let (query_buffer, query_scale) = self.query_buffer(ctx, query);
        let out = storage_buffer(ctx, "scores", 4 * self.len as u64);
        let pipeline = match self.format {
            GpuRowFormat::Int8 => &ctx.scoring.int8_score,
            GpuRowFormat::F16 => &ctx.scoring.f16_score,
        };
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        for part in &self.parts {
            let groups = part.len.div_ceil(WORKGROUP);
            let params = self.params(part, groups, 0, 0, query_scale, part.first_index);
            let params = uniform_buffer(ctx, &params);
            let mut entries = vec![entry(0, &params), entry(1, &part.rows), entry(2, &query_buffer), entry(6, &out)];
            if let Some(scales) = &part.scales {
                entries.push(entry(3, scales));
            }
            dispatch(ctx, &mut encoder, pipeline, &entries, groups);
        }
        let bytes = ctx.submit_and_read(encoder, &out, 4 * self.len as u64);
        let (bytes, scoped) = (bytes.await, scope.finish().await);
        scoped?;
        Ok(bytemuck::pod_collect_to_vec(&bytes?))
    }

    /// The `k` best items for `query`, never one of `exclude`, best first (higher score, then lower
    /// index), as the CPU `top_k_int8` / `top_k_f16`. A query with a NaN or infinity gives no hits.
    pub async fn top_k(
        &self,
        ctx: &GpuContext,
        query: &[f32],
        k: usize,
        exclude: &[usize],
    ) -> Result<Vec<Hit>, GpuError> {
        self.check_query(query)?;
        if k > MAX_K {
            return Err(GpuError::Unsupported(format!("k = {k} (at most {MAX_K})")));
        }
        if self.len == 0 || k == 0 || query.iter().any(|v| !v.is_finite()) {
            return Ok(Vec::new());
        }
        let k32 = k as u32;
        let scope = ctx.scope("top-k")?;
        let (query_bytes, query_scale) = self.query_bytes(query);
        let mut excluded: Vec<u32> = exclude.iter().filter(|&&i| i < self.len).map(|&i| i as u32).collect();
        excluded.sort_unstable();
        excluded.dedup();
        let excluded_count = excluded.len() as u32;
        excluded.push(EMPTY); // a binding is never empty
        let pending = {
            let mut guard = self.plan.lock().unwrap_or_else(|e| e.into_inner());
            let plan = match &mut *guard {
                Some(plan) => plan,
                empty => empty.insert(TopKPlan::new(ctx, self, query_bytes.len() as u64)),
            };
            plan.reserve_excluded(ctx, self, excluded.len());
            let groups: Vec<u32> = self.parts.iter().map(|p| p.len.div_ceil(ROWS_PER_GROUP)).collect();
            let rounds = merge_rounds(groups.iter().sum(), k32);
            // Every dispatch's parameters: the scans', then the merge rounds'.
            let mut offset = 0;
            let mut params = Vec::with_capacity(self.parts.len() + rounds.len());
            for (part, &groups) in self.parts.iter().zip(&groups) {
                params.push(self.params(part, groups, k32, excluded_count, query_scale, offset));
                offset += groups * k32;
            }
            for &(count, groups) in &rounds {
                params.push(Params {
                    count,
                    row_words: 0,
                    first_index: 0,
                    k: k32,
                    excluded: 0,
                    out_offset: 0,
                    query_scale: 0.0,
                    groups_x: groups.min(MAX_GROUPS_X),
                });
            }
            plan.params.write(ctx, &params);
            ctx.queue.write_buffer(&plan.query, 0, &query_bytes);
            ctx.queue.write_buffer(&plan.excluded, 0, bytemuck::cast_slice(&excluded));
            let pipeline = match self.format {
                GpuRowFormat::Int8 => &ctx.scoring.int8_top_k,
                GpuRowFormat::F16 => &ctx.scoring.f16_top_k,
            };
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            {
                // One compute pass for the scan and every round: WebGPU orders the dispatches of a
                // pass and makes each one's storage writes visible to the next.
                let mut pass = encoder.begin_compute_pass(&Default::default());
                for (bind_group, &groups) in plan.scan.iter().zip(&groups) {
                    dispatch_bound(&mut pass, pipeline, bind_group, groups);
                }
                for (round, &(_, groups)) in rounds.iter().enumerate() {
                    dispatch_bound(&mut pass, &ctx.scoring.merge, &plan.merges[round], groups);
                }
            }
            // Round r writes candidates[(r + 1) % 2]; the scan writes candidates[0].
            let result = &plan.candidates[rounds.len() % 2];
            ctx.submit_read(encoder, result, 0, 8 * k as u64, Some(&plan.readback))
        };
        let bytes = ctx.finish_read(pending);
        let (bytes, scoped) = (bytes.await, scope.finish().await);
        scoped?;
        let words: Vec<u32> = bytemuck::pod_collect_to_vec(&bytes?);
        Ok(words
            .chunks_exact(2)
            .filter(|c| c[1] != EMPTY)
            .map(|c| Hit { index: c[1] as usize, score: f32::from_bits(c[0]) })
            .collect())
    }

    fn params(&self, part: &Part, groups: u32, k: u32, excluded: u32, query_scale: f32, out_offset: u32) -> Params {
        Params {
            count: part.len,
            row_words: self.row_words as u32,
            first_index: part.first_index,
            k,
            excluded,
            out_offset,
            query_scale,
            groups_x: groups.min(MAX_GROUPS_X),
        }
    }
}

/// The merge rounds after a scan of `groups` workgroups at `k` candidates each: per round, its input
/// count and its workgroups (every [`ROWS_PER_GROUP`] candidates become k), until k are left.
fn merge_rounds(groups: u32, k: u32) -> Vec<(u32, u32)> {
    let mut rounds = Vec::new();
    let mut count = groups * k;
    while count > k {
        let groups = count.div_ceil(ROWS_PER_GROUP);
        rounds.push((count, groups));
        count = groups * k;
    }
    rounds
}

/// The persistent state of [`GpuItemTable::top_k`] for the table's current bindings (module docs).
#[derive(Debug)]
struct TopKPlan {
    query: wgpu::Buffer,
    /// One parameter slot per scan dispatch (binding), then per merge round.
    params: UniformSlots,
    excluded: wgpu::Buffer,
    /// The scan writes `candidates[0]`; merge round r reads `candidates[r % 2]` and writes the other.
    candidates: [wgpu::Buffer; 2],
    /// Per binding of the table.
    scan: Vec<wgpu::BindGroup>,
    /// Per merge round, as many as k = [`MAX_K`] needs (a smaller k needs no more).
    merges: Vec<wgpu::BindGroup>,
    readback: Readback,
}

impl TopKPlan {
    fn new(ctx: &GpuContext, table: &GpuItemTable, query_bytes: u64) -> TopKPlan {
        let groups: u32 = table.parts.iter().map(|p| p.len.div_ceil(ROWS_PER_GROUP)).sum();
        // Sizes for any k ≤ MAX_K: the scan's output, and each ping-pong buffer's largest round output.
        let mut sizes = [groups as u64 * MAX_K as u64, 1];
        let mut rounds = 0;
        for k in 1..=MAX_K as u32 {
            let plan = merge_rounds(groups, k);
            for (r, &(_, groups)) in plan.iter().enumerate() {
                let out = &mut sizes[(r + 1) % 2];
                *out = (*out).max(groups as u64 * k as u64);
            }
            rounds = rounds.max(plan.len());
        }
        let candidates = sizes.map(|candidates| storage_buffer(ctx, "candidates", 8 * candidates));
        let params = UniformSlots::new(ctx, "top-k params", table.parts.len() + rounds, std::mem::size_of::<Params>());
        let merges = (0..rounds)
            .map(|r| {
                let entries = [
                    params.entry(0, table.parts.len() + r),
                    entry(5, &candidates[(r + 1) % 2]),
                    entry(7, &candidates[r % 2]),
                ];
                bind_group(ctx, &ctx.scoring.merge, &entries)
            })
            .collect();
        let mut plan = TopKPlan {
            query: storage_buffer(ctx, "query", query_bytes),
            params,
            excluded: storage_buffer(ctx, "excluded", 4 * 64),
            candidates,
            scan: Vec::new(),
            merges,
            readback: Readback::new(ctx, "top-k hits", 8 * MAX_K as u64),
        };
        plan.bind_scan(ctx, table);
        plan
    }

    /// Makes room for `words` excluded indices (the list and its end marker), rebuilding the scan's
    /// bind groups when the buffer grows.
    fn reserve_excluded(&mut self, ctx: &GpuContext, table: &GpuItemTable, words: usize) {
        if (words * 4) as u64 > self.excluded.size() {
            self.excluded = storage_buffer(ctx, "excluded", 4 * words.next_power_of_two() as u64);
            self.bind_scan(ctx, table);
        }
    }

    fn bind_scan(&mut self, ctx: &GpuContext, table: &GpuItemTable) {
        let pipeline = match table.format {
            GpuRowFormat::Int8 => &ctx.scoring.int8_top_k,
            GpuRowFormat::F16 => &ctx.scoring.f16_top_k,
        };
        self.scan = table
            .parts
            .iter()
            .enumerate()
            .map(|(i, part)| {
                let mut entries = vec![
                    self.params.entry(0, i),
                    entry(1, &part.rows),
                    entry(2, &self.query),
                    entry(4, &self.excluded),
                    entry(5, &self.candidates[0]),
                ];
                if let Some(scales) = &part.scales {
                    entries.push(entry(3, scales));
                }
                bind_group(ctx, pipeline, &entries)
            })
            .collect();
    }
}

fn bind_group(
    ctx: &GpuContext,
    pipeline: &wgpu::ComputePipeline,
    entries: &[wgpu::BindGroupEntry<'_>],
) -> wgpu::BindGroup {
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries,
    })
}

/// Rows of `packed_row` bytes copied into rows of `row_bytes` (zero padding at the end of each row);
/// no copy when the two agree.
fn padded_rows(bytes: &[u8], packed_row: usize, row_bytes: usize) -> std::borrow::Cow<'_, [u8]> {
    if packed_row == row_bytes {
        return bytes.into();
    }
    let mut out = vec![0u8; bytes.len() / packed_row * row_bytes];
    for (src, dst) in bytes.chunks_exact(packed_row).zip(out.chunks_exact_mut(row_bytes)) {
        dst[..packed_row].copy_from_slice(src);
    }
    out.into()
}
