//! Buffer and dispatch helpers shared by the GPU kernels' callers (`scoring.rs`, `layers.rs`): storage
//! and uniform buffers, bind-group entries, and recording one dispatch.

use super::context::GpuContext;

/// WebGPU's limit on workgroups along one dimension of a dispatch.
pub(crate) const MAX_GROUPS_X: u32 = 65535;

pub(crate) fn storage_buffer(ctx: &GpuContext, label: &str, size: u64) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: size.max(4),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

pub(crate) fn uniform_buffer<T: bytemuck::Pod>(ctx: &GpuContext, value: &T) -> wgpu::Buffer {
    ctx.buffer_with("params", bytemuck::bytes_of(value), wgpu::BufferUsages::UNIFORM)
}

pub(crate) fn entry(binding: u32, buffer: &wgpu::Buffer) -> wgpu::BindGroupEntry<'_> {
    wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() }
}

/// Records one dispatch of `groups` workgroups (a 2-D grid beyond 65535, the shaders flatten it).
pub(crate) fn dispatch(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    pipeline: &wgpu::ComputePipeline,
    entries: &[wgpu::BindGroupEntry<'_>],
    groups: u32,
) {
    let bind_group = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries,
    });
    let mut pass = encoder.begin_compute_pass(&Default::default());
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, &bind_group, &[]);
    pass.dispatch_workgroups(groups.min(MAX_GROUPS_X), groups.div_ceil(MAX_GROUPS_X), 1);
}
