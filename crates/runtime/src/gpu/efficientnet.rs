//! EfficientNet-Lite0 (the image encoder of `src/encoders/image`) on the GPU: one preprocessed picture
//! `[3, h, w]` f32 → its pooled features `[1280]`, for new products' pictures in the browser.
//!
//! ```text
//! x [3,h,w] ─stem 3×3 s2 + bias + ReLU6─► [h/2,w/2,32] ─16 MBConv─► [h/32,w/32,320]
//!   ─head 1×1 → 1280 + bias + ReLU6─► ─global average pool─► features [1280]
//! MBConv: [expand 1×1 + ReLU6] → depthwise k×k (stride) + ReLU6 → project 1×1 (+ input)
//! ```
//!
//! The weights are the CPU encoder's own, BatchNorm already folded ([`EfficientNetWeights`] borrows
//! them; `encoders::image::ImageEncoder::gpu_weights` lends them), so the GPU computes with the very
//! values the CPU does. All f32, the pointwise layers included, rather than Q8_0 as [`super::GpuLinear`]
//! can keep them: the bundle's GGUF quantizes the pointwise weights *before* BatchNorm is folded, and
//! the CPU encoder (browser included) expands them to f32 at load, so f32 on the device is what gives
//! the CPU's features; five of the pointwise widths (16, 24, 40, 80, 112 inputs) are not Q8_0 at all;
//! and the weights are 18 MB of f32, small for a GPU.
//!
//! Everything is allocated once, in [`GpuEfficientNet::new`], for one input size (224×224 in the
//! encoder): weights, four activation buffers of the largest layer's size (input, expanded, spatial,
//! output, the last two swapping roles block by block), the uniforms and the bind groups. A forward
//! writes the pixels, records every layer into one compute pass of one command encoder, submits once
//! and reads back the 1280 features alone.
//!
//! The kernels (conv.wgsl) are compiled here, per encoder, not in `pipelines.rs`: only the image
//! encoder uses them, and only on pages that embed a new product's picture.
//!
//! Numerics: the CPU's sums in a different order (the CPU's matrix products are blocked; the GPU
//! compiler may fuse multiply-adds), so features agree to float rounding, not bit for bit
//! (tests/gpu_kernels.rs states the tolerances).

use super::buffers::{entry, storage_buffer, MAX_GROUPS_X};
use super::context::GpuContext;
use super::error::GpuError;

/// Width of the pooled features (the head's channels).
pub const EFFICIENTNET_FEATURES: usize = 1280;

/// Invocations per workgroup (conv.wgsl's WG).
const WORKGROUP: usize = 64;

/// A dense k×k convolution with BatchNorm folded (the stem): NCHW input, channels-last output.
#[derive(Debug, Clone, Copy)]
pub struct ConvWeights<'a> {
    /// `[c_in·k·k, c_out]`, rows in PyTorch's (c_in, ky, kx) order.
    pub weight_t: &'a [f32],
    /// `[c_out]`.
    pub bias: &'a [f32],
    pub c_in: usize,
    pub kernel: usize,
    pub stride: usize,
    pub relu6: bool,
}

/// A depthwise k×k convolution with BatchNorm folded, followed by ReLU6.
#[derive(Debug, Clone, Copy)]
pub struct DepthwiseWeights<'a> {
    /// `[k·k, c]`: each tap's (row-major) weight for every channel.
    pub taps: &'a [f32],
    /// `[c]`.
    pub bias: &'a [f32],
    pub kernel: usize,
    pub stride: usize,
}

/// A 1×1 convolution with BatchNorm folded.
#[derive(Debug, Clone, Copy)]
pub struct PointwiseWeights<'a> {
    /// `[c_in, c_out]` (the transpose of PyTorch's `[c_out, c_in]`).
    pub weight_t: &'a [f32],
    /// `[c_out]`.
    pub bias: &'a [f32],
    pub c_in: usize,
    pub relu6: bool,
}

/// One MBConv block.
#[derive(Debug, Clone)]
pub struct MbConvWeights<'a> {
    /// Absent when the expand ratio is 1.
    pub expand: Option<PointwiseWeights<'a>>,
    pub depthwise: DepthwiseWeights<'a>,
    pub project: PointwiseWeights<'a>,
    /// Adds the block's input to the projection (stride 1, same width).
    pub residual: bool,
}

/// The whole network up to the pooled features.
#[derive(Debug, Clone)]
pub struct EfficientNetWeights<'a> {
    pub stem: ConvWeights<'a>,
    pub blocks: Vec<MbConvWeights<'a>>,
    pub head: PointwiseWeights<'a>,
}

/// conv.wgsl's `Params` (uniform; 64 bytes).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    in_h: u32,
    in_w: u32,
    out_h: u32,
    out_w: u32,
    c_in: u32,
    c_out: u32,
    kernel: u32,
    stride: u32,
    pad_top: u32,
    pad_left: u32,
    relu6: u32,
    residual: u32,
    pixels: u32,
    pad: [u32; 3],
}

/// TF "same" padding of one axis: `(before, after)`, output `ceil(input / stride)` (the CPU's
/// `same_pad.rs`; the kernels need only `before`).
fn same_padding(input: usize, kernel: usize, stride: usize) -> (usize, usize) {
    let output = input.div_ceil(stride);
    let total = (output.saturating_sub(1) * stride + kernel).saturating_sub(input);
    (total / 2, total - total / 2)
}

/// conv.wgsl's entry points, compiled.
#[derive(Debug)]
struct ConvKernels {
    stem: wgpu::ComputePipeline,
    depthwise: wgpu::ComputePipeline,
    pointwise: wgpu::ComputePipeline,
    pool: wgpu::ComputePipeline,
}

impl ConvKernels {
    async fn new(ctx: &GpuContext) -> Result<ConvKernels, GpuError> {
        let scope = ctx.scope("efficientnet shader compilation")?;
        let module = ctx.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("efficientnet"),
            source: wgpu::ShaderSource::Wgsl(include_str!("conv.wgsl").into()),
        });
        let pipeline = |entry: &str| {
            ctx.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let kernels = ConvKernels {
            stem: pipeline("stem"),
            depthwise: pipeline("depthwise"),
            pointwise: pipeline("pointwise"),
            pool: pipeline("pool"),
        };
        scope.finish().await?;
        Ok(kernels)
    }
}

#[derive(Debug, Clone, Copy)]
enum Kernel {
    Stem,
    Depthwise,
    Pointwise,
    Pool,
}

/// One recorded dispatch: its kernel, bind group (uniforms, weights, buffers) and grid.
#[derive(Debug)]
struct Step {
    kernel: Kernel,
    bind_group: wgpu::BindGroup,
    groups: (u32, u32),
    /// Kept with the bind group: a buffer dropped before its submission is destroyed on the web.
    _params: wgpu::Buffer,
}

/// Buffers a step reads and writes.
struct Bindings<'b> {
    x: &'b wgpu::Buffer,
    weight: &'b wgpu::Buffer,
    bias: &'b wgpu::Buffer,
    y: &'b wgpu::Buffer,
    residual: &'b wgpu::Buffer,
}

/// Uploads weights and builds steps; shared by the network and the single-layer runs.
struct Builder<'c> {
    ctx: &'c GpuContext,
    kernels: &'c ConvKernels,
    /// Weight and bias buffers, kept alive with the encoder.
    weights: Vec<wgpu::Buffer>,
    /// Bound where a pointwise step adds no residual (the shader declares the binding either way).
    no_residual: wgpu::Buffer,
}

impl<'c> Builder<'c> {
    fn new(ctx: &'c GpuContext, kernels: &'c ConvKernels) -> Builder<'c> {
        Builder { ctx, kernels, weights: Vec::new(), no_residual: storage_buffer(ctx, "no residual", 4) }
    }

    fn upload(&mut self, label: &str, values: &[f32]) -> usize {
        let usage = wgpu::BufferUsages::STORAGE;
        self.weights.push(self.ctx.buffer_with(label, bytemuck::cast_slice(values), usage));
        self.weights.len() - 1
    }

    fn step(&self, kernel: Kernel, params: Params, b: &Bindings<'_>, invocations: usize) -> Result<Step, GpuError> {
        let groups = invocations.div_ceil(WORKGROUP).max(1);
        let max = MAX_GROUPS_X as usize;
        if groups > max * max {
            return Err(GpuError::Unsupported(format!("{invocations} invocations in one dispatch")));
        }
        let groups = (groups.min(max) as u32, groups.div_ceil(max) as u32);
        let uniform = self.ctx.buffer_with("conv params", bytemuck::bytes_of(&params), wgpu::BufferUsages::UNIFORM);
        // The shader's auto layout holds only the bindings an entry point uses.
        let entries: Vec<wgpu::BindGroupEntry<'_>> = match kernel {
            Kernel::Stem | Kernel::Depthwise => {
                vec![entry(0, &uniform), entry(1, b.x), entry(2, b.weight), entry(3, b.bias), entry(4, b.y)]
            }
            Kernel::Pointwise => vec![
                entry(0, &uniform),
                entry(1, b.x),
                entry(2, b.weight),
                entry(3, b.bias),
                entry(4, b.y),
                entry(5, b.residual),
            ],
            Kernel::Pool => vec![entry(0, &uniform), entry(1, b.x), entry(4, b.y)],
        };
        let pipeline = self.pipeline(kernel);
        let bind_group = self.ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Ok(Step { kernel, bind_group, groups, _params: uniform })
    }

    fn pipeline(&self, kernel: Kernel) -> &wgpu::ComputePipeline {
        pipeline(self.kernels, kernel)
    }

    /// Stem: `x` `[c_in, h, w]` → `y` `[h', w', c_out]`; returns `(h', w')`.
    fn stem(
        &mut self,
        w: &ConvWeights<'_>,
        (h, wd): (usize, usize),
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<(Step, (usize, usize)), GpuError> {
        let c_out = w.bias.len();
        let (k, s) = (w.kernel, w.stride);
        if k == 0 || s == 0 || c_out == 0 || w.c_in == 0 || w.weight_t.len() != w.c_in * k * k * c_out {
            let message =
                format!("{} weights, {c_out} biases for {}→{c_out}, {k}×{k} stride {s}", w.weight_t.len(), w.c_in);
            return Err(GpuError::shape("stem conv", message));
        }
        let out = (h.div_ceil(s), wd.div_ceil(s));
        let params = Params {
            in_h: h as u32,
            in_w: wd as u32,
            out_h: out.0 as u32,
            out_w: out.1 as u32,
            c_in: w.c_in as u32,
            c_out: c_out as u32,
            kernel: k as u32,
            stride: s as u32,
            pad_top: same_padding(h, k, s).0 as u32,
            pad_left: same_padding(wd, k, s).0 as u32,
            relu6: w.relu6 as u32,
            ..Default::default()
        };
        let (wi, bi) = (self.upload("stem weight", w.weight_t), self.upload("stem bias", w.bias));
        let b = Bindings { x, weight: &self.weights[wi], bias: &self.weights[bi], y, residual: &self.no_residual };
        Ok((self.step(Kernel::Stem, params, &b, out.0 * out.1 * c_out)?, out))
    }

    /// Depthwise: `x` `[h, w, c]` → `y` `[h', w', c]`; returns `(h', w')`.
    fn depthwise(
        &mut self,
        w: &DepthwiseWeights<'_>,
        (h, wd): (usize, usize),
        x: &wgpu::Buffer,
        y: &wgpu::Buffer,
    ) -> Result<(Step, (usize, usize)), GpuError> {
        let c = w.bias.len();
        let (k, s) = (w.kernel, w.stride);
        if k == 0 || s == 0 || c == 0 || w.taps.len() != k * k * c {
            let message = format!("{} taps, {c} biases, {k}×{k} stride {s}", w.taps.len());
            return Err(GpuError::shape("depthwise conv", message));
        }
        let out = (h.div_ceil(s), wd.div_ceil(s));
        let params = Params {
            in_h: h as u32,
            in_w: wd as u32,
            out_h: out.0 as u32,
            out_w: out.1 as u32,
            c_in: c as u32,
            c_out: c as u32,
            kernel: k as u32,
            stride: s as u32,
            pad_top: same_padding(h, k, s).0 as u32,
            pad_left: same_padding(wd, k, s).0 as u32,
            relu6: 1,
            ..Default::default()
        };
        let (wi, bi) = (self.upload("depthwise taps", w.taps), self.upload("depthwise bias", w.bias));
        let b = Bindings { x, weight: &self.weights[wi], bias: &self.weights[bi], y, residual: &self.no_residual };
        Ok((self.step(Kernel::Depthwise, params, &b, out.0 * out.1 * c)?, out))
    }

    /// Pointwise: `x` `[pixels, c_in]` (+ `residual` `[pixels, c_out]`) → `y` `[pixels, c_out]`.
    fn pointwise(
        &mut self,
        w: &PointwiseWeights<'_>,
        pixels: usize,
        x: &wgpu::Buffer,
        residual: Option<&wgpu::Buffer>,
        y: &wgpu::Buffer,
    ) -> Result<Step, GpuError> {
        let c_out = w.bias.len();
        if c_out == 0 || w.c_in == 0 || pixels == 0 || w.weight_t.len() != w.c_in * c_out {
            let message = format!("{} weights, {c_out} biases for {}→{c_out}", w.weight_t.len(), w.c_in);
            return Err(GpuError::shape("pointwise conv", message));
        }
        let params = Params {
            c_in: w.c_in as u32,
            c_out: c_out as u32,
            relu6: w.relu6 as u32,
            residual: residual.is_some() as u32,
            pixels: pixels as u32,
            ..Default::default()
        };
        let (wi, bi) = (self.upload("pointwise weight", w.weight_t), self.upload("pointwise bias", w.bias));
        let residual = residual.unwrap_or(&self.no_residual);
        let b = Bindings { x, weight: &self.weights[wi], bias: &self.weights[bi], y, residual };
        self.step(Kernel::Pointwise, params, &b, pixels.div_ceil(4) * c_out.div_ceil(4))
    }

    /// Global average pool: `x` `[pixels, c]` → `y` `[c]`.
    fn pool(&self, pixels: usize, c: usize, x: &wgpu::Buffer, y: &wgpu::Buffer) -> Result<Step, GpuError> {
        let params = Params { c_out: c as u32, pixels: pixels as u32, ..Default::default() };
        let b = Bindings { x, weight: x, bias: x, y, residual: x };
        self.step(Kernel::Pool, params, &b, c)
    }
}

fn pipeline(kernels: &ConvKernels, kernel: Kernel) -> &wgpu::ComputePipeline {
    match kernel {
        Kernel::Stem => &kernels.stem,
        Kernel::Depthwise => &kernels.depthwise,
        Kernel::Pointwise => &kernels.pointwise,
        Kernel::Pool => &kernels.pool,
    }
}

/// Records `steps` into one compute pass, submits, and reads `len` f32 of `out`.
async fn run(
    ctx: &GpuContext,
    kernels: &ConvKernels,
    steps: &[Step],
    out: &wgpu::Buffer,
    len: usize,
) -> Result<Vec<f32>, GpuError> {
    let scope = ctx.scope("efficientnet")?;
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        for step in steps {
            pass.set_pipeline(pipeline(kernels, step.kernel));
            pass.set_bind_group(0, &step.bind_group, &[]);
            pass.dispatch_workgroups(step.groups.0, step.groups.1, 1);
        }
    }
    let bytes = ctx.submit_and_read(encoder, out, 4 * len as u64).await;
    scope.finish().await?;
    Ok(bytemuck::pod_collect_to_vec(&bytes?))
}

/// EfficientNet-Lite0 up to the pooled features, on one device, for one input size.
#[derive(Debug)]
pub struct GpuEfficientNet {
    kernels: ConvKernels,
    steps: Vec<Step>,
    input: wgpu::Buffer,
    features: wgpu::Buffer,
    size: (usize, usize),
    /// Weights and activations: owned here so that they live as long as the bind groups.
    _buffers: Vec<wgpu::Buffer>,
}

impl GpuEfficientNet {
    /// Uploads `weights` and allocates every buffer for `[3, h, w]` inputs (`size` = (h, w); 224×224
    /// for the encoder), shapes checked layer by layer.
    pub async fn new(
        ctx: &GpuContext,
        weights: &EfficientNetWeights<'_>,
        size: (usize, usize),
    ) -> Result<GpuEfficientNet, GpuError> {
        let (h, w) = size;
        if h == 0 || w == 0 || weights.stem.c_in != 3 {
            return Err(GpuError::shape("efficientnet", format!("{} input channels, {h}×{w}", weights.stem.c_in)));
        }
        let scope = ctx.scope("efficientnet upload")?;
        let kernels = ConvKernels::new(ctx).await?;
        // The largest activation decides the size of the four activation buffers.
        let largest = largest_activation(weights, size);
        let activation = |label| storage_buffer(ctx, label, 4 * largest as u64);
        let mut act = [activation("x"), activation("expanded"), activation("spatial"), activation("out")];
        let input = storage_buffer(ctx, "image", 4 * (3 * h * w) as u64);
        let features = storage_buffer(ctx, "features", 4 * weights.head.bias.len() as u64);

        let mut builder = Builder::new(ctx, &kernels);
        let mut steps = Vec::new();
        let (step, mut hw) = builder.stem(&weights.stem, size, &input, &act[0])?;
        steps.push(step);
        let mut channels = weights.stem.bias.len();
        for (i, block) in weights.blocks.iter().enumerate() {
            let [x, expanded, spatial, out] = &act;
            let hidden = match &block.expand {
                Some(expand) => {
                    check_width("expand", i, expand.c_in, channels)?;
                    steps.push(builder.pointwise(expand, hw.0 * hw.1, x, None, expanded)?);
                    expanded
                }
                None => x,
            };
            let (step, out_hw) = builder.depthwise(&block.depthwise, hw, hidden, spatial)?;
            steps.push(step);
            check_width("project", i, block.project.c_in, block.depthwise.bias.len())?;
            let c_out = block.project.bias.len();
            if block.residual && (out_hw != hw || c_out != channels) {
                return Err(GpuError::shape("efficientnet", format!("block {i}: residual across a shape change")));
            }
            steps.push(builder.pointwise(
                &block.project,
                out_hw.0 * out_hw.1,
                spatial,
                block.residual.then_some(x),
                out,
            )?);
            act.swap(0, 3);
            (hw, channels) = (out_hw, c_out);
        }
        check_width("head", weights.blocks.len(), weights.head.c_in, channels)?;
        let pixels = hw.0 * hw.1;
        steps.push(builder.pointwise(&weights.head, pixels, &act[0], None, &act[3])?);
        steps.push(builder.pool(pixels, weights.head.bias.len(), &act[3], &features)?);

        let mut buffers = std::mem::take(&mut builder.weights);
        buffers.push(builder.no_residual);
        buffers.extend(act);
        scope.finish().await?;
        Ok(GpuEfficientNet { kernels, steps, input, features, size, _buffers: buffers })
    }

    /// The input size `(h, w)` this encoder was built for.
    pub fn input_size(&self) -> (usize, usize) {
        self.size
    }

    /// Dispatches per forward (stem, 3 or 2 per block, head, pool: 50 for Lite0).
    pub fn dispatches(&self) -> usize {
        self.steps.len()
    }

    /// One preprocessed picture `[3, h, w]` (NCHW, normalised as the CPU encoder's input) → its pooled
    /// features `[1280]`. One submission, one readback of the features.
    pub async fn forward(&self, ctx: &GpuContext, image: &[f32]) -> Result<Vec<f32>, GpuError> {
        let (h, w) = self.size;
        if image.len() != 3 * h * w {
            return Err(GpuError::shape("efficientnet input", format!("{} values, expected 3×{h}×{w}", image.len())));
        }
        ctx.check_alive()?;
        ctx.queue.write_buffer(&self.input, 0, bytemuck::cast_slice(image));
        let len = (self.features.size() / 4) as usize;
        run(ctx, &self.kernels, &self.steps, &self.features, len).await
    }
}

fn check_width(what: &'static str, block: usize, c_in: usize, channels: usize) -> Result<(), GpuError> {
    if c_in != channels {
        return Err(GpuError::shape(what, format!("layer after block {block} reads {c_in} channels, gets {channels}")));
    }
    Ok(())
}

/// Values in the largest activation of a forward at `size` (stem output, expanded, depthwise, block
/// and head outputs).
fn largest_activation(weights: &EfficientNetWeights<'_>, size: (usize, usize)) -> usize {
    let s = weights.stem.stride.max(1);
    let mut hw = (size.0.div_ceil(s), size.1.div_ceil(s));
    let mut largest = hw.0 * hw.1 * weights.stem.bias.len();
    for block in &weights.blocks {
        let hidden = block.depthwise.bias.len();
        largest = largest.max(hw.0 * hw.1 * hidden);
        let s = block.depthwise.stride.max(1);
        hw = (hw.0.div_ceil(s), hw.1.div_ceil(s));
        largest = largest.max(hw.0 * hw.1 * hidden.max(block.project.bias.len()));
    }
    largest.max(hw.0 * hw.1 * weights.head.bias.len())
}

/// Single layers, each in its own submission: what tests/gpu_kernels.rs checks against the CPU layers.
/// (The network records them all into one pass; these build their buffers per call.)
pub mod single {
    use super::*;

    async fn one(
        ctx: &GpuContext,
        build: impl FnOnce(&mut Builder<'_>, &wgpu::Buffer, &wgpu::Buffer) -> Result<(Step, usize), GpuError>,
        x: &[f32],
        out_len: usize,
    ) -> Result<Vec<f32>, GpuError> {
        let kernels = ConvKernels::new(ctx).await?;
        let input = ctx.buffer_with("x", bytemuck::cast_slice(x), wgpu::BufferUsages::STORAGE);
        let y = storage_buffer(ctx, "y", 4 * out_len as u64);
        let mut builder = Builder::new(ctx, &kernels);
        let (step, len) = build(&mut builder, &input, &y)?;
        run(ctx, &kernels, &[step], &y, len).await
    }

    /// Stem conv: `x` `[c_in, h, w]` → `[h', w', c_out]`.
    pub async fn stem(
        ctx: &GpuContext,
        w: &ConvWeights<'_>,
        x: &[f32],
        size: (usize, usize),
    ) -> Result<Vec<f32>, GpuError> {
        check_input("stem input", x, w.c_in * size.0 * size.1)?;
        let out_len = size.0.div_ceil(w.stride.max(1)) * size.1.div_ceil(w.stride.max(1)) * w.bias.len();
        let build = |b: &mut Builder<'_>, x: &wgpu::Buffer, y: &wgpu::Buffer| {
            let (step, (h, wd)) = b.stem(w, size, x, y)?;
            Ok((step, h * wd * w.bias.len()))
        };
        one(ctx, build, x, out_len).await
    }

    /// Depthwise conv + ReLU6: `x` `[h, w, c]` → `[h', w', c]`.
    pub async fn depthwise(
        ctx: &GpuContext,
        w: &DepthwiseWeights<'_>,
        x: &[f32],
        size: (usize, usize),
    ) -> Result<Vec<f32>, GpuError> {
        check_input("depthwise input", x, w.bias.len() * size.0 * size.1)?;
        let out_len = size.0.div_ceil(w.stride.max(1)) * size.1.div_ceil(w.stride.max(1)) * w.bias.len();
        let build = |b: &mut Builder<'_>, x: &wgpu::Buffer, y: &wgpu::Buffer| {
            let (step, (h, wd)) = b.depthwise(w, size, x, y)?;
            Ok((step, h * wd * w.bias.len()))
        };
        one(ctx, build, x, out_len).await
    }

    /// Pointwise conv: `x` `[pixels, c_in]` (+ `residual` `[pixels, c_out]`) → `[pixels, c_out]`.
    pub async fn pointwise(
        ctx: &GpuContext,
        w: &PointwiseWeights<'_>,
        x: &[f32],
        residual: Option<&[f32]>,
    ) -> Result<Vec<f32>, GpuError> {
        let pixels = x.len() / w.c_in.max(1);
        check_input("pointwise input", x, pixels * w.c_in)?;
        let out_len = pixels * w.bias.len();
        let residual = match residual {
            Some(r) => {
                check_input("pointwise residual", r, out_len)?;
                Some(ctx.buffer_with("residual", bytemuck::cast_slice(r), wgpu::BufferUsages::STORAGE))
            }
            None => None,
        };
        let build = |b: &mut Builder<'_>, x: &wgpu::Buffer, y: &wgpu::Buffer| {
            Ok((b.pointwise(w, pixels, x, residual.as_ref(), y)?, out_len))
        };
        one(ctx, build, x, out_len).await
    }

    /// Global average pool: `x` `[pixels, c]` → `[c]`.
    pub async fn pool(ctx: &GpuContext, x: &[f32], c: usize) -> Result<Vec<f32>, GpuError> {
        let pixels = x.len() / c.max(1);
        check_input("pool input", x, pixels * c)?;
        one(ctx, |b, x, y| Ok((b.pool(pixels, c, x, y)?, c)), x, c).await
    }

    fn check_input(what: &'static str, x: &[f32], expected: usize) -> Result<(), GpuError> {
        if x.len() != expected || expected == 0 {
            return Err(GpuError::shape(what, format!("{} values, expected {expected}", x.len())));
        }
        Ok(())
    }
}
