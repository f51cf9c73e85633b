//! The sequence tower's layers on the GPU (filled in next).

#[derive(Debug)]
pub(crate) struct LayerPipelines {}

impl LayerPipelines {
    pub(crate) fn new(_device: &wgpu::Device) -> LayerPipelines {
        LayerPipelines {}
    }
}
