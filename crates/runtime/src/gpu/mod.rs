//! The WebGPU backend (ARCHITECTURE.md § Browser runtime): WGSL compute kernels run through wgpu, the
//! same code natively (Vulkan; Mesa lavapipe in CI) and in the browser (WebGPU).
//!
//! - [`context`]: [`GpuContext`], a device with its compiled kernels; adapter detection and device
//!   request (`shader-f16` and larger buffer limits when the adapter has them); device-lost state;
//!   asynchronous readback (no blocking in the browser).
//! - [`scoring`]: [`GpuItemTable`], item vectors (int8 + per-row scale, or f16) in GPU buffers, scored
//!   against a user vector, with a two-stage top-K (per-workgroup candidates, then merges).
//! - [`layers`]: the sequence tower's layers (Q8_0 / f32 linear, LayerNorm, causal attention, GELU,
//!   softmax), recorded into one [`GpuPass`] per forward, or laid out once over persistent buffers
//!   (the tower's).
//! - [`tower`]: [`GpuSequenceTower`], the sequence tower (session → user vector) from the bundle's GGUF.
//! - [`bert`]: [`GpuBert`], the text encoder's (MiniLM's) layers, for products embedded in the browser.
//! - [`efficientnet`]: [`GpuEfficientNet`], the image encoder (EfficientNet-Lite0: stem, depthwise and
//!   pointwise convs, pool; `conv.wgsl`) from the CPU encoder's folded weights, for new products' pictures.
//!
//! Tests: `XDG_RUNTIME_DIR=$(mktemp -d) cargo test --test gpu_kernels` runs every kernel against the
//! CPU reference on the adapter wgpu finds (Mesa lavapipe from Debian's `mesa-vulkan-drivers` on a
//! machine without a GPU); with no adapter the tests print a skip line, or fail when
//! `OMAKASE_REQUIRE_GPU=1` (CI). `cargo bench --bench gpu` times scoring + top-10 and a session update.
//!
//! # Buffer lifetime
//! The per-update paths create nothing on the device per call. [`GpuItemTable::top_k`] keeps its
//! query, parameter, excluded, candidate and readback buffers and its bind groups from the first call
//! after an append until the next append (`scoring` § Buffer lifetime); [`GpuSequenceTower`] lays its
//! forward out at load over activation buffers of `max_len` positions (`tower` § Buffer lifetime).
//! Each call writes its inputs and parameters with `queue.write_buffer`, records everything into one
//! compute pass, and makes ONE submission with the copy of its result (K hits; the user vector) into
//! a kept mappable buffer, of which only those bytes are mapped. A session update on the GPU is two
//! submissions: the tower's (user vector read back: the int8 query is quantized on the CPU, see
//! `tower`) and the scan's. One-off work ([`GpuItemTable::scores`], [`GpuPass`], [`GpuBert`]) still
//! allocates per call.
//!
//! Numerics follow the CPU kernels' contract (`runtime::kernels`), which the tests check kernel by
//! kernel (tests/gpu_kernels.rs). Every operation is async and returns [`GpuError`] instead of
//! panicking; on any error (device lost included) the caller finishes on the CPU backend.

pub(crate) mod backend;
pub mod bert;
mod buffers;
pub mod context;
pub mod efficientnet;
mod error;
pub mod layers;
mod pipelines;
pub mod scoring;
pub mod tower;

pub use bert::{BertShape, GpuBert};
pub use context::{is_software_adapter, GpuContext, GpuOptions};
pub use efficientnet::{EfficientNetWeights, GpuEfficientNet};
pub use error::GpuError;
pub use layers::{AttentionShape, GpuLayerNorm, GpuLinear, GpuPass, GpuTensor};
pub use scoring::{GpuItemTable, GpuRowFormat, MAX_K};
pub use tower::GpuSequenceTower;
