//! Buffer and dispatch helpers shared by the GPU kernels' callers (`scoring.rs`, `layers.rs`): storage
//! and uniform buffers, bind-group entries, and recording one dispatch.
//!
//! Two styles: [`dispatch`] creates a bind group per call (one-off work: `scores`, [`GpuPass`]), while
//! the hot paths (`GpuItemTable::top_k`, the sequence tower) keep their bind groups and
//! [`UniformSlots`] from call to call and record with [`dispatch_bound`].
//!
//! [`GpuPass`]: super::GpuPass

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

/// Records one dispatch of `groups` workgroups with a bind group made earlier (kept by the caller
/// from call to call) into an open compute pass.
pub(crate) fn dispatch_bound(
    pass: &mut wgpu::ComputePass<'_>,
    pipeline: &wgpu::ComputePipeline,
    bind_group: &wgpu::BindGroup,
    groups: u32,
) {
    pass.set_pipeline(pipeline);
    pass.set_bind_group(0, bind_group, &[]);
    pass.dispatch_workgroups(groups.min(MAX_GROUPS_X), groups.div_ceil(MAX_GROUPS_X), 1);
}

/// One uniform buffer holding the parameters of many dispatches, one slot each at the device's
/// uniform offset alignment (256 bytes on every WebGPU device), so that a whole submission's
/// parameters are written with one `queue.write_buffer` and every bind group binds its own slot.
#[derive(Debug)]
pub(crate) struct UniformSlots {
    buffer: wgpu::Buffer,
    stride: u64,
    size: u64,
    slots: usize,
}

impl UniformSlots {
    /// `slots` slots of `size` bytes each (the uniform struct's size).
    pub(crate) fn new(ctx: &GpuContext, label: &str, slots: usize, size: usize) -> UniformSlots {
        let align = ctx.device.limits().min_uniform_buffer_offset_alignment.max(4) as u64;
        let stride = (size as u64).next_multiple_of(align);
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: stride * slots.max(1) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        UniformSlots { buffer, stride, size: size as u64, slots }
    }

    /// The bind-group entry of slot `slot`.
    pub(crate) fn entry(&self, binding: u32, slot: usize) -> wgpu::BindGroupEntry<'_> {
        debug_assert!(slot < self.slots, "uniform slot {slot} of {}", self.slots);
        wgpu::BindGroupEntry {
            binding,
            resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: &self.buffer,
                offset: slot as u64 * self.stride,
                size: wgpu::BufferSize::new(self.size),
            }),
        }
    }

    /// Writes `values[i]` into slot i (at most as many values as slots), in one queue write.
    pub(crate) fn write<T: bytemuck::Pod>(&self, ctx: &GpuContext, values: &[T]) {
        debug_assert!(values.len() <= self.slots && std::mem::size_of::<T>() as u64 == self.size);
        if values.is_empty() {
            return;
        }
        let mut bytes = vec![0u8; values.len() * self.stride as usize];
        for (value, slot) in values.iter().zip(bytes.chunks_exact_mut(self.stride as usize)) {
            slot[..self.size as usize].copy_from_slice(bytemuck::bytes_of(value));
        }
        // The last slot needs only its own bytes (whole 4-byte words: uniform structs are).
        let used = (values.len() - 1) * self.stride as usize + self.size as usize;
        ctx.queue.write_buffer(&self.buffer, 0, &bytes[..used]);
    }
}
