//! The compiled compute pipelines, built once per device when a [`GpuContext`] opens and kept in it:
//! the scoring kernels (`scoring.rs`) and the sequence tower's layers (`layers.rs`). They live here,
//! not beside the code that dispatches them, so that the context can own them without importing
//! the files that use the context (those files take them from `ctx.scoring` / `ctx.layers`).
//!
//! [`GpuContext`]: super::GpuContext

/// The compiled scoring kernels.
#[derive(Debug)]
pub(crate) struct ScoringPipelines {
    pub(crate) int8_score: wgpu::ComputePipeline,
    pub(crate) int8_top_k: wgpu::ComputePipeline,
    pub(crate) f16_score: wgpu::ComputePipeline,
    pub(crate) f16_top_k: wgpu::ComputePipeline,
    pub(crate) merge: wgpu::ComputePipeline,
}

impl ScoringPipelines {
    pub(crate) fn new(device: &wgpu::Device, f16: bool) -> ScoringPipelines {
        let select = include_str!("select.wgsl");
        let score = include_str!("score.wgsl");
        let int8 = [select, include_str!("rows_int8.wgsl"), score].concat();
        // `enable f16;` must open the module, so the half reader goes first (its `rows` binding only
        // refers to select.wgsl's declarations from inside functions, which WGSL allows).
        let halves = if f16 { include_str!("halves_f16.wgsl") } else { include_str!("halves_unpack.wgsl") };
        let f16_source = [halves, select, include_str!("rows_f16.wgsl"), score].concat();
        let int8_module = module(device, "scoring int8", &int8);
        let f16_module = module(device, "scoring f16", &f16_source);
        ScoringPipelines {
            int8_score: pipeline(device, &int8_module, "score"),
            int8_top_k: pipeline(device, &int8_module, "score_top_k"),
            f16_score: pipeline(device, &f16_module, "score"),
            f16_top_k: pipeline(device, &f16_module, "score_top_k"),
            merge: pipeline(device, &int8_module, "merge"),
        }
    }
}

/// The compiled layer kernels.
#[derive(Debug)]
pub(crate) struct LayerPipelines {
    pub(crate) linear_f32: wgpu::ComputePipeline,
    pub(crate) linear_q8_0: wgpu::ComputePipeline,
    pub(crate) layer_norm: wgpu::ComputePipeline,
    pub(crate) attention: wgpu::ComputePipeline,
    pub(crate) gelu: wgpu::ComputePipeline,
    pub(crate) softmax: wgpu::ComputePipeline,
    pub(crate) add: wgpu::ComputePipeline,
}

impl LayerPipelines {
    pub(crate) fn new(device: &wgpu::Device) -> LayerPipelines {
        let module = module(device, "layers", include_str!("layers.wgsl"));
        LayerPipelines {
            linear_f32: pipeline(device, &module, "linear_f32"),
            linear_q8_0: pipeline(device, &module, "linear_q8_0"),
            layer_norm: pipeline(device, &module, "layer_norm"),
            attention: pipeline(device, &module, "attention"),
            gelu: pipeline(device, &module, "gelu"),
            softmax: pipeline(device, &module, "softmax"),
            add: pipeline(device, &module, "add"),
        }
    }
}

fn module(device: &wgpu::Device, label: &str, source: &str) -> wgpu::ShaderModule {
    device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    })
}

fn pipeline(device: &wgpu::Device, module: &wgpu::ShaderModule, entry: &str) -> wgpu::ComputePipeline {
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(entry),
        layout: None,
        module,
        entry_point: Some(entry),
        compilation_options: Default::default(),
        cache: None,
    })
}
