//! The sequence tower's layers on the GPU: linear (f32 or GGML Q8_0 weights), LayerNorm, causal (or
//! full) multi-head attention, GELU (erf), softmax and residual adds, recorded into one [`GpuPass`]
//! (one submission, one readback), and [`GpuSequenceTower`], the CPU `runtime::tower::SequenceTower`
//! built from these.
//!
//! Shapes: activations are row-major `[rows, width]` f32 [`GpuTensor`]s.
//!
//! Two ways to run them:
//! - [`GpuPass`]: records kernels as they are called, each with a fresh output tensor, uniform and bind
//!   group (one-off work and the kernel tests; the text encoder);
//! - `GpuProgram` (crate-internal, the sequence tower's): the same kernels laid out once over
//!   persistent tensors sized for the longest input, their bind groups made once; a call writes the
//!   input and every dispatch's shape (one `queue.write_buffer` each) and records them all into one
//!   compute pass. Nothing is created per call.

use super::buffers::{dispatch, dispatch_bound, entry, storage_buffer, uniform_buffer, UniformSlots, MAX_GROUPS_X};
use super::context::{ErrorScope, GpuContext};
use super::error::GpuError;
use crate::kernels::{BLOCK_Q8_0_BYTES, QK8_0};

/// Invocations per workgroup (layers.wgsl's WG).
const WORKGROUP: u32 = 64;

/// layers.wgsl's `Shape` (uniform; 32 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Shape {
    rows: u32,
    n: u32,
    k: u32,
    heads: u32,
    eps: f32,
    scale: f32,
    causal: u32,
    groups_x: u32,
}

/// f32 values in a GPU buffer.
#[derive(Debug)]
pub struct GpuTensor {
    buffer: wgpu::Buffer,
    len: usize,
}

impl GpuTensor {
    /// Uploads `values`.
    pub fn from_slice(ctx: &GpuContext, values: &[f32]) -> GpuTensor {
        GpuTensor { buffer: storage_init(ctx, "tensor", bytemuck::cast_slice(values)), len: values.len() }
    }

    /// A zero-filled tensor of `len` values.
    pub(crate) fn zeros(ctx: &GpuContext, len: usize) -> GpuTensor {
        GpuTensor { buffer: storage_buffer(ctx, "tensor", 4 * len as u64), len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn buffer(&self) -> &wgpu::Buffer {
        &self.buffer
    }
}

fn storage_init(ctx: &GpuContext, label: &str, bytes: &[u8]) -> wgpu::Buffer {
    ctx.buffer_with(label, bytes, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC)
}

/// A Linear layer `y = x Wᵀ + b`, W `[n, k]` (PyTorch's layout), on the GPU.
#[derive(Debug)]
pub struct GpuLinear {
    weight: LinearWeight,
    bias: wgpu::Buffer,
    n: usize,
    k: usize,
}

#[derive(Debug)]
enum LinearWeight {
    F32(wgpu::Buffer),
    /// Q8_0 repacked for aligned loads: int8 codes 4 per u32, one f32 scale per block of 32.
    Q8_0 {
        codes: wgpu::Buffer,
        scales: wgpu::Buffer,
    },
}

impl GpuLinear {
    /// From f32 weights `[n, k]` and bias `[n]`.
    pub fn from_f32(ctx: &GpuContext, weight: &[f32], bias: &[f32], n: usize, k: usize) -> Result<GpuLinear, GpuError> {
        check_linear(weight.len(), n * k, bias, n, k)?;
        let weight = LinearWeight::F32(storage_init(ctx, "linear weight", bytemuck::cast_slice(weight)));
        Ok(GpuLinear { weight, bias: storage_init(ctx, "linear bias", bytemuck::cast_slice(bias)), n, k })
    }

    /// From GGML Q8_0 blocks (`[n, k]`, k a multiple of 32: per block an f16 scale then 32 i8) and
    /// bias `[n]`. The blocks are repacked (34-byte blocks are not 4-byte aligned for the shader).
    pub fn from_q8_0(ctx: &GpuContext, blocks: &[u8], bias: &[f32], n: usize, k: usize) -> Result<GpuLinear, GpuError> {
        if k % QK8_0 != 0 {
            return Err(GpuError::shape("linear_q8_0", format!("k = {k} is not a multiple of {QK8_0}")));
        }
        check_linear(blocks.len(), n * k / QK8_0 * BLOCK_Q8_0_BYTES, bias, n, k)?;
        let mut codes = Vec::with_capacity(n * k);
        let mut scales = Vec::with_capacity(n * k / QK8_0);
        for block in blocks.chunks_exact(BLOCK_Q8_0_BYTES) {
            scales.push(half::f16::from_le_bytes([block[0], block[1]]).to_f32());
            codes.extend_from_slice(&block[2..]);
        }
        let weight = LinearWeight::Q8_0 {
            codes: storage_init(ctx, "q8_0 codes", &codes),
            scales: storage_init(ctx, "q8_0 scales", bytemuck::cast_slice(&scales)),
        };
        Ok(GpuLinear { weight, bias: storage_init(ctx, "linear bias", bytemuck::cast_slice(bias)), n, k })
    }

    /// Output width.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Input width.
    pub fn k(&self) -> usize {
        self.k
    }
}

fn check_linear(weight_len: usize, expected: usize, bias: &[f32], n: usize, k: usize) -> Result<(), GpuError> {
    if n == 0 || k == 0 || weight_len != expected || bias.len() != n {
        return Err(GpuError::shape(
            "linear",
            format!("weight of {weight_len} (expected {expected}) and bias of {} for [{n}, {k}]", bias.len()),
        ));
    }
    Ok(())
}

/// LayerNorm over rows of `dim` values.
#[derive(Debug)]
pub struct GpuLayerNorm {
    weight: wgpu::Buffer,
    bias: wgpu::Buffer,
    dim: usize,
    eps: f32,
}

impl GpuLayerNorm {
    pub fn new(ctx: &GpuContext, weight: &[f32], bias: &[f32], eps: f32) -> Result<GpuLayerNorm, GpuError> {
        if weight.is_empty() || weight.len() != bias.len() {
            return Err(GpuError::shape(
                "layer_norm",
                format!("weight of {} and bias of {}", weight.len(), bias.len()),
            ));
        }
        Ok(GpuLayerNorm {
            weight: storage_init(ctx, "norm weight", bytemuck::cast_slice(weight)),
            bias: storage_init(ctx, "norm bias", bytemuck::cast_slice(bias)),
            dim: weight.len(),
            eps,
        })
    }

    pub fn dim(&self) -> usize {
        self.dim
    }
}

/// The shape of an attention call.
#[derive(Debug, Clone, Copy)]
pub struct AttentionShape {
    /// Positions.
    pub rows: usize,
    /// Model width (all heads side by side).
    pub dim: usize,
    /// Heads; must divide `dim`.
    pub heads: usize,
    /// Position i sees only positions 0..=i (the sequence tower); otherwise every position.
    pub causal: bool,
}

/// Kernels recorded into one command encoder: nothing runs until [`GpuPass::read`], which submits
/// them all and reads one tensor back. Shape errors are returned as they are recorded.
#[derive(Debug)]
pub struct GpuPass<'a> {
    ctx: &'a GpuContext,
    encoder: wgpu::CommandEncoder,
    scope: ErrorScope,
}

impl<'a> GpuPass<'a> {
    pub fn new(ctx: &'a GpuContext) -> Result<GpuPass<'a>, GpuError> {
        let scope = ctx.scope("layers")?;
        Ok(GpuPass { ctx, encoder: ctx.device.create_command_encoder(&Default::default()), scope })
    }

    fn run(
        &mut self,
        pipeline: &wgpu::ComputePipeline,
        mut shape: Shape,
        entries: &[(u32, &wgpu::Buffer)],
        invocations: usize,
    ) -> Result<(), GpuError> {
        let groups = invocations.div_ceil(WORKGROUP as usize);
        if groups > (MAX_GROUPS_X as usize) * (MAX_GROUPS_X as usize) {
            return Err(GpuError::Unsupported(format!("{invocations} invocations in one dispatch")));
        }
        let groups = groups.max(1) as u32;
        shape.groups_x = groups.min(MAX_GROUPS_X);
        let shape = uniform_buffer(self.ctx, &shape);
        let mut all = vec![entry(0, &shape)];
        all.extend(entries.iter().map(|(binding, buffer)| entry(*binding, buffer)));
        dispatch(self.ctx, &mut self.encoder, pipeline, &all, groups);
        Ok(())
    }

    /// `x: [rows, k]` → `[rows, n]`.
    pub fn linear(&mut self, layer: &GpuLinear, x: &GpuTensor, rows: usize) -> Result<GpuTensor, GpuError> {
        expect_len("linear input", x, rows * layer.k)?;
        let y = GpuTensor::zeros(self.ctx, rows * layer.n);
        let shape = Shape { rows: rows as u32, n: layer.n as u32, k: layer.k as u32, ..Default::default() };
        let ctx = self.ctx;
        match &layer.weight {
            LinearWeight::F32(w) => {
                let entries = [(1, &x.buffer), (2, w), (3, &layer.bias), (4, &y.buffer)];
                self.run(&ctx.layers.linear_f32, shape, &entries, rows * layer.n)?;
            }
            LinearWeight::Q8_0 { codes, scales } => {
                let entries = [(1, &x.buffer), (3, &layer.bias), (4, &y.buffer), (5, codes), (6, scales)];
                self.run(&ctx.layers.linear_q8_0, shape, &entries, rows * layer.n)?;
            }
        }
        Ok(y)
    }

    /// LayerNorm of every row of `x: [rows, dim]` into a new tensor.
    pub fn layer_norm(&mut self, norm: &GpuLayerNorm, x: &GpuTensor, rows: usize) -> Result<GpuTensor, GpuError> {
        expect_len("layer_norm input", x, rows * norm.dim)?;
        let y = GpuTensor::zeros(self.ctx, rows * norm.dim);
        let shape = Shape { rows: rows as u32, n: norm.dim as u32, eps: norm.eps, ..Default::default() };
        let entries = [(1, &x.buffer), (2, &norm.weight), (3, &norm.bias), (4, &y.buffer)];
        let ctx = self.ctx;
        self.run(&ctx.layers.layer_norm, shape, &entries, rows)?;
        Ok(y)
    }

    /// Multi-head scaled dot-product attention over `q, k, v: [rows, dim]` (heads side by side) →
    /// `[rows, dim]`.
    pub fn attention(
        &mut self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        shape: AttentionShape,
    ) -> Result<GpuTensor, GpuError> {
        let AttentionShape { rows, dim, heads, causal } = shape;
        if heads == 0 || dim % heads != 0 || rows == 0 {
            return Err(GpuError::shape("attention", format!("{heads} heads for width {dim}, {rows} rows")));
        }
        for (what, t) in [("attention queries", q), ("attention keys", k), ("attention values", v)] {
            expect_len(what, t, rows * dim)?;
        }
        let y = GpuTensor::zeros(self.ctx, rows * dim);
        let shape = Shape {
            rows: rows as u32,
            n: dim as u32,
            heads: heads as u32,
            scale: 1.0 / ((dim / heads) as f32).sqrt(),
            causal: causal as u32,
            ..Default::default()
        };
        let entries = [(1, &q.buffer), (4, &y.buffer), (7, &k.buffer), (8, &v.buffer)];
        let ctx = self.ctx;
        self.run(&ctx.layers.attention, shape, &entries, rows * heads)?;
        Ok(y)
    }

    /// GELU (erf) of every value of `x`, in place.
    pub fn gelu(&mut self, x: &GpuTensor) -> Result<(), GpuError> {
        let shape = Shape { rows: x.len as u32, ..Default::default() };
        let ctx = self.ctx;
        self.run(&ctx.layers.gelu, shape, &[(4, &x.buffer)], x.len)
    }

    /// Softmax of every row of `x: [rows, cols]`, in place.
    pub fn softmax(&mut self, x: &GpuTensor, rows: usize, cols: usize) -> Result<(), GpuError> {
        expect_len("softmax input", x, rows * cols)?;
        let shape = Shape { rows: rows as u32, n: cols as u32, ..Default::default() };
        let ctx = self.ctx;
        self.run(&ctx.layers.softmax, shape, &[(4, &x.buffer)], rows)
    }

    /// `x += y` over x's values (y may be longer: its first `x.len()` values are added).
    pub fn add(&mut self, x: &GpuTensor, y: &GpuTensor) -> Result<(), GpuError> {
        if y.len < x.len {
            return Err(GpuError::shape("add", format!("{} values added to {}", y.len, x.len)));
        }
        let shape = Shape { rows: x.len as u32, ..Default::default() };
        let ctx = self.ctx;
        self.run(&ctx.layers.add, shape, &[(1, &y.buffer), (4, &x.buffer)], x.len)
    }

    /// Submits everything recorded and reads `len` values of `x` from value `start` on.
    pub async fn read(self, x: &GpuTensor, start: usize, len: usize) -> Result<Vec<f32>, GpuError> {
        if start + len > x.len || len == 0 {
            return Err(GpuError::shape("read", format!("values {start}..{} of {}", start + len, x.len)));
        }
        let GpuPass { ctx, mut encoder, scope } = self;
        // Copy the range to the start of a scratch buffer: readback copies need 4-byte offsets only,
        // but a fresh buffer keeps submit_and_read simple.
        let range = storage_buffer(ctx, "read range", 4 * len as u64);
        encoder.copy_buffer_to_buffer(&x.buffer, 4 * start as u64, &range, 0, 4 * len as u64);
        let bytes = ctx.submit_and_read(encoder, &range, 4 * len as u64).await;
        scope.finish().await?;
        Ok(bytemuck::pod_collect_to_vec(&bytes?))
    }

    /// Submits everything recorded and reads all of `x`.
    pub async fn read_all(self, x: &GpuTensor) -> Result<Vec<f32>, GpuError> {
        let len = x.len;
        self.read(x, 0, len).await
    }
}

fn expect_len(what: &'static str, x: &GpuTensor, expected: usize) -> Result<(), GpuError> {
    if x.len != expected || expected == 0 {
        return Err(GpuError::shape(what, format!("{} values, expected {expected}", x.len)));
    }
    Ok(())
}

/// What a linear layer does with its result (layers.wgsl's `store_linear`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Epilogue {
    /// `y = x Wᵀ + b`.
    Store = 0,
    /// `y = GELU(x Wᵀ + b)` (the FFN's up-projection, GELU fused).
    Gelu = 1,
    /// `y += x Wᵀ + b` (a residual add fused).
    Add = 2,
}

/// One dispatch of a [`GpuProgram`]: its shape as a function of the row count.
#[derive(Debug, Clone, Copy)]
enum Op {
    Linear {
        n: usize,
        k: usize,
        epilogue: Epilogue,
    },
    LayerNorm {
        dim: usize,
        eps: f32,
    },
    Attention {
        dim: usize,
        heads: usize,
        causal: bool,
    },
    /// `y += x` over `rows · width` values.
    Add {
        width: usize,
    },
}

impl Op {
    fn shape(&self, rows: usize) -> Shape {
        let rows32 = rows as u32;
        match *self {
            Op::Linear { n, k, epilogue } => {
                Shape { rows: rows32, n: n as u32, k: k as u32, heads: epilogue as u32, ..Default::default() }
            }
            Op::LayerNorm { dim, eps } => Shape { rows: rows32, n: dim as u32, eps, ..Default::default() },
            Op::Attention { dim, heads, causal } => Shape {
                rows: rows32,
                n: dim as u32,
                heads: heads as u32,
                scale: 1.0 / ((dim / heads) as f32).sqrt(),
                causal: causal as u32,
                ..Default::default()
            },
            Op::Add { width } => Shape { rows: (rows * width) as u32, ..Default::default() },
        }
    }

    fn invocations(&self, rows: usize) -> usize {
        match *self {
            Op::Linear { n, .. } => rows * n,
            Op::LayerNorm { .. } => rows,
            Op::Attention { heads, .. } => rows * heads,
            Op::Add { width } => rows * width,
        }
    }
}

/// A forward pass laid out once (module docs): kernels over persistent tensors of at most
/// `max_rows` rows, with their bind groups; [`GpuProgram::record`] dispatches them all for a given
/// row count. Build it with [`ProgramBuilder`].
#[derive(Debug)]
pub(crate) struct GpuProgram {
    shapes: UniformSlots,
    steps: Vec<(Op, wgpu::ComputePipeline, wgpu::BindGroup)>,
    /// Every buffer the bind groups bind (weights, activations), owned here so that they live exactly
    /// as long as the bind groups whatever the backend does with a dropped handle.
    _bound: Vec<Bindings>,
    max_rows: usize,
}

impl GpuProgram {
    /// Writes every step's shape for `rows` rows (one queue write) and records every step into one
    /// compute pass of `encoder` (WebGPU orders a pass's dispatches and makes each one's writes
    /// visible to the next). The caller writes the inputs and submits, all before another call's
    /// writes (the program's buffers are shared by every call).
    pub(crate) fn record(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        rows: usize,
    ) -> Result<(), GpuError> {
        if rows == 0 || rows > self.max_rows {
            return Err(GpuError::shape("program", format!("{rows} rows (1..={})", self.max_rows)));
        }
        let mut shapes = Vec::with_capacity(self.steps.len());
        let mut groups = Vec::with_capacity(self.steps.len());
        for (op, _, _) in &self.steps {
            let count = op.invocations(rows).div_ceil(WORKGROUP as usize).max(1) as u32;
            let mut shape = op.shape(rows);
            shape.groups_x = count.min(MAX_GROUPS_X);
            shapes.push(shape);
            groups.push(count);
        }
        self.shapes.write(ctx, &shapes);
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for ((_, pipeline, bind_group), &groups) in self.steps.iter().zip(&groups) {
            dispatch_bound(&mut pass, pipeline, bind_group, groups);
        }
        Ok(())
    }
}

/// Lays out a [`GpuProgram`]: each call adds one step over tensors of `max_rows` rows (made with
/// [`ProgramBuilder::tensor`], or any tensor at least that long); [`ProgramBuilder::finish`] makes the
/// uniform slots and the bind groups.
#[derive(Debug)]
pub(crate) struct ProgramBuilder<'a> {
    ctx: &'a GpuContext,
    max_rows: usize,
    /// Per step: its shape, its kernel, and the storage buffers it binds (binding, buffer).
    steps: Vec<(Op, wgpu::ComputePipeline, Bindings)>,
}

/// A step's storage bindings before its bind group exists.
type Bindings = Vec<(u32, wgpu::Buffer)>;

impl<'a> ProgramBuilder<'a> {
    pub(crate) fn new(ctx: &'a GpuContext, max_rows: usize) -> ProgramBuilder<'a> {
        ProgramBuilder { ctx, max_rows, steps: Vec::new() }
    }

    /// A persistent activation of `max_rows` rows of `width`.
    pub(crate) fn tensor(&self, width: usize) -> GpuTensor {
        GpuTensor::zeros(self.ctx, self.max_rows * width)
    }

    fn check(&self, what: &'static str, x: &GpuTensor, width: usize) -> Result<(), GpuError> {
        if x.len < self.max_rows * width || width == 0 {
            return Err(GpuError::shape(what, format!("{} values for {} rows of {width}", x.len, self.max_rows)));
        }
        Ok(())
    }

    /// `y (∘)= epilogue(x Wᵀ + b)`, x `[rows, k]`, y `[rows, n]`.
    pub(crate) fn linear(
        &mut self,
        layer: &GpuLinear,
        x: &GpuTensor,
        y: &GpuTensor,
        epilogue: Epilogue,
    ) -> Result<(), GpuError> {
        self.check("linear input", x, layer.k)?;
        self.check("linear output", y, layer.n)?;
        let op = Op::Linear { n: layer.n, k: layer.k, epilogue };
        let (x, y, bias) = (x.buffer.clone(), y.buffer.clone(), layer.bias.clone());
        let layers = &self.ctx.layers;
        match &layer.weight {
            LinearWeight::F32(w) => {
                self.steps.push((op, layers.linear_f32.clone(), vec![(1, x), (2, w.clone()), (3, bias), (4, y)]))
            }
            LinearWeight::Q8_0 { codes, scales } => self.steps.push((
                op,
                layers.linear_q8_0.clone(),
                vec![(1, x), (3, bias), (4, y), (5, codes.clone()), (6, scales.clone())],
            )),
        }
        Ok(())
    }

    /// LayerNorm of every row of `x` into `y` (both `[rows, dim]`, distinct tensors).
    pub(crate) fn layer_norm(&mut self, norm: &GpuLayerNorm, x: &GpuTensor, y: &GpuTensor) -> Result<(), GpuError> {
        self.check("layer_norm input", x, norm.dim)?;
        self.check("layer_norm output", y, norm.dim)?;
        let entries =
            vec![(1, x.buffer.clone()), (2, norm.weight.clone()), (3, norm.bias.clone()), (4, y.buffer.clone())];
        self.steps.push((Op::LayerNorm { dim: norm.dim, eps: norm.eps }, self.ctx.layers.layer_norm.clone(), entries));
        Ok(())
    }

    /// Attention of `q, k, v` (`[rows, dim]`) into `y` (`shape.rows` is ignored: the call's rows).
    pub(crate) fn attention(
        &mut self,
        q: &GpuTensor,
        k: &GpuTensor,
        v: &GpuTensor,
        y: &GpuTensor,
        shape: AttentionShape,
    ) -> Result<(), GpuError> {
        let AttentionShape { dim, heads, causal, .. } = shape;
        if heads == 0 || dim % heads != 0 {
            return Err(GpuError::shape("attention", format!("{heads} heads for width {dim}")));
        }
        for (what, t) in
            [("attention queries", q), ("attention keys", k), ("attention values", v), ("attention output", y)]
        {
            self.check(what, t, dim)?;
        }
        let entries = vec![(1, q.buffer.clone()), (4, y.buffer.clone()), (7, k.buffer.clone()), (8, v.buffer.clone())];
        self.steps.push((Op::Attention { dim, heads, causal }, self.ctx.layers.attention.clone(), entries));
        Ok(())
    }

    /// `y += x` over `rows · width` values (x may be longer).
    pub(crate) fn add(&mut self, y: &GpuTensor, x: &GpuTensor, width: usize) -> Result<(), GpuError> {
        self.check("add input", x, width)?;
        self.check("add output", y, width)?;
        self.steps.push((
            Op::Add { width },
            self.ctx.layers.add.clone(),
            vec![(1, x.buffer.clone()), (4, y.buffer.clone())],
        ));
        Ok(())
    }

    /// The uniform slots and bind groups of every step.
    pub(crate) fn finish(self) -> GpuProgram {
        let ctx = self.ctx;
        let shapes = UniformSlots::new(ctx, "program shapes", self.steps.len(), std::mem::size_of::<Shape>());
        let mut bound = Vec::with_capacity(self.steps.len());
        let steps = self
            .steps
            .into_iter()
            .enumerate()
            .map(|(i, (op, pipeline, buffers))| {
                let mut entries = vec![shapes.entry(0, i)];
                entries.extend(buffers.iter().map(|(binding, buffer)| entry(*binding, buffer)));
                let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: None,
                    layout: &pipeline.get_bind_group_layout(0),
                    entries: &entries,
                });
                bound.push(buffers);
                (op, pipeline, bind_group)
            })
            .collect();
        GpuProgram { shapes, steps, _bound: bound, max_rows: self.max_rows }
    }
}
