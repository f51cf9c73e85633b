//! The GPU device the kernels run on: adapter detection, device request (features, limits), error
//! capture and asynchronous readback. Kernels never create a device themselves: they take a
//! [`GpuContext`], which the caller builds from a device of its own ([`GpuContext::new`], how tests
//! inject theirs) or requests with [`GpuContext::request`] (wgpu's hello_compute split).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use super::error::GpuError;
use super::pipelines::{LayerPipelines, ScoringPipelines};

/// How to pick an adapter in [`GpuContext::request`].
#[derive(Debug, Clone)]
pub struct GpuOptions {
    pub power_preference: wgpu::PowerPreference,
    /// Request `shader-f16` when the adapter has it (off: always the f32 shaders).
    pub allow_f16: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        GpuOptions { power_preference: wgpu::PowerPreference::HighPerformance, allow_f16: true }
    }
}

/// A device, its queue and the compiled kernels.
#[derive(Debug)]
pub struct GpuContext {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    f16: bool,
    /// Set by the device-lost callback; every later call fails fast with it.
    lost: Arc<Mutex<Option<String>>>,
    /// The first error no error scope caught (wgpu's default handler would panic natively).
    uncaptured: Arc<Mutex<Option<String>>>,
    pub(crate) scoring: ScoringPipelines,
    pub(crate) layers: LayerPipelines,
}

impl GpuContext {
    /// Finds an adapter (`request_adapter` returning one is the WebGPU detection test, not `navigator.gpu`) and
    /// requests a device from it with [`GpuContext::from_adapter`].
    pub async fn request(options: &GpuOptions) -> Result<GpuContext, GpuError> {
        let adapter = GpuContext::request_adapter(options).await?;
        GpuContext::from_adapter(&adapter, options.allow_f16).await
    }

    /// The adapter alone (no device yet): enough to see what it is ([`is_software_adapter`]) before
    /// paying for a device and the kernels' compilation.
    pub async fn request_adapter(options: &GpuOptions) -> Result<wgpu::Adapter, GpuError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: options.power_preference,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))
    }

    /// Requests a device from `adapter`: `shader-f16` only when the adapter has it (and `allow_f16`),
    /// WebGPU's default limits (refused below them), raised to the adapter's storage-buffer and
    /// buffer sizes so that large item tables need fewer bindings.
    pub async fn from_adapter(adapter: &wgpu::Adapter, allow_f16: bool) -> Result<GpuContext, GpuError> {
        let info = adapter.get_info();
        let available = adapter.limits();
        let defaults = wgpu::Limits::defaults();
        if !defaults.check_limits(&available) {
            return Err(GpuError::BelowWebGpuLimits { adapter: info.name.clone() });
        }
        let required_limits = wgpu::Limits {
            max_storage_buffer_binding_size: available.max_storage_buffer_binding_size,
            max_buffer_size: available.max_buffer_size,
            ..defaults
        };
        let f16 = allow_f16 && adapter.features().contains(wgpu::Features::SHADER_F16);
        let required_features = if f16 { wgpu::Features::SHADER_F16 } else { wgpu::Features::empty() };
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("omakase"),
                required_features,
                required_limits,
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::RequestDevice(e.to_string()))?;
        GpuContext::new(info, device, queue).await
    }

    /// Wraps a device the caller made: compiles every kernel (the f16 variants when the device has
    /// `shader-f16`) and installs the device-lost and uncaptured-error handlers.
    pub async fn new(
        info: wgpu::AdapterInfo,
        device: wgpu::Device,
        queue: wgpu::Queue,
    ) -> Result<GpuContext, GpuError> {
        let lost = Arc::new(Mutex::new(None));
        let lost_slot = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            *lost_slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(format!("{reason:?}: {message}"));
        });
        let uncaptured = Arc::new(Mutex::new(None));
        let uncaptured_slot = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |error: wgpu::Error| {
            let mut slot = uncaptured_slot.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_none() {
                *slot = Some(error.to_string());
            }
        }));
        let f16 = device.features().contains(wgpu::Features::SHADER_F16);
        let scope = ErrorScope::push(&device, "shader compilation");
        let scoring = ScoringPipelines::new(&device, f16);
        let layers = LayerPipelines::new(&device);
        scope.finish().await?;
        Ok(GpuContext { device, queue, info, f16, lost, uncaptured, scoring, layers })
    }

    /// `"webgpu-f16"` when the f16 shaders run, else `"webgpu-f32"` (the backend names of
    /// ARCHITECTURE.md § Browser runtime).
    pub fn backend_name(&self) -> &'static str {
        if self.f16 {
            "webgpu-f16"
        } else {
            "webgpu-f32"
        }
    }

    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// Whether the adapter is a CPU rasteriser (SwiftShader, llvmpipe/lavapipe, WARP): WebGPU there is
    /// an emulation, slower than the wasm kernels for everything measured (bench/README.md).
    pub fn is_software(&self) -> bool {
        is_software_adapter(&self.info)
    }

    /// Whether the device has `shader-f16` (f16 shards are then read as f16 in the shader).
    pub fn uses_f16(&self) -> bool {
        self.f16
    }

    /// Why the device was lost, once it was: the caller then finishes on the CPU backend.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Largest binding (and buffer) size this device allows, in bytes.
    pub fn max_binding_bytes(&self) -> u64 {
        let limits = self.device.limits();
        limits.max_storage_buffer_binding_size.min(limits.max_buffer_size)
    }

    /// A buffer holding `bytes` (zero-padded to whole 4-byte words; one word when empty). Written
    /// through the queue rather than wgpu's `create_buffer_init`, which panics once the device is gone.
    pub(crate) fn buffer_with(&self, label: &str, bytes: &[u8], usage: wgpu::BufferUsages) -> wgpu::Buffer {
        let size = (bytes.len().max(4) as u64).next_multiple_of(4);
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: usage | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let whole = bytes.len() / 4 * 4;
        if whole > 0 {
            self.queue.write_buffer(&buffer, 0, &bytes[..whole]);
        }
        if whole < bytes.len() {
            let mut tail = [0u8; 4];
            tail[..bytes.len() - whole].copy_from_slice(&bytes[whole..]);
            self.queue.write_buffer(&buffer, whole as u64, &tail);
        }
        buffer
    }

    /// Fails with [`GpuError::DeviceLost`] once the device is gone, so no work is queued on it.
    pub(crate) fn check_alive(&self) -> Result<(), GpuError> {
        match self.lost() {
            Some(why) => Err(GpuError::DeviceLost(why)),
            None => Ok(()),
        }
    }

    /// Starts capturing validation and out-of-memory errors of `operation`.
    pub(crate) fn scope(&self, operation: &'static str) -> Result<ErrorScope, GpuError> {
        self.check_alive()?;
        Ok(ErrorScope::push(&self.device, operation))
    }

    /// Copies `size` bytes of `source` (a COPY_SRC buffer) into a fresh mappable buffer after the
    /// commands in `encoder`, submits, and resolves to the bytes. Natively the device is polled until
    /// the copy is done; in the browser the future resolves when WebGPU calls back (no blocking).
    pub(crate) async fn submit_and_read(
        &self,
        encoder: wgpu::CommandEncoder,
        source: &wgpu::Buffer,
        size: u64,
    ) -> Result<Vec<u8>, GpuError> {
        let pending = self.submit_read(encoder, source, 0, size, None);
        self.finish_read(pending).await
    }

    /// The synchronous half of a readback: copies `size` bytes of `source` from byte `offset` into
    /// `readback`'s buffer (a fresh one when `readback` is `None` or still busy with an earlier
    /// read), submits `encoder` with the copy as ONE submission, and starts mapping. Callers that
    /// write persistent buffers with `queue.write_buffer` call this before releasing their lock, so
    /// that no other call's writes land between theirs and this submission.
    pub(crate) fn submit_read(
        &self,
        mut encoder: wgpu::CommandEncoder,
        source: &wgpu::Buffer,
        offset: u64,
        size: u64,
        readback: Option<&Readback>,
    ) -> PendingRead {
        let (buffer, busy) = match readback {
            Some(r) if size <= r.buffer.size() && !r.busy.swap(true, Ordering::AcqRel) => {
                (r.buffer.clone(), Some(r.busy.clone()))
            }
            _ => (
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("readback"),
                    size,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                None,
            ),
        };
        encoder.copy_buffer_to_buffer(source, offset, &buffer, 0, size);
        self.queue.submit([encoder.finish()]);
        let (send, receive) = oneshot();
        buffer.map_async(wgpu::MapMode::Read, 0..size, send);
        PendingRead { buffer, size, receive: Some(receive), mapping: true, busy }
    }

    /// The asynchronous half of a readback started by [`GpuContext::submit_read`]: waits for the
    /// mapping (natively by polling the device; in the browser WebGPU calls back) and copies the
    /// bytes out. The readback buffer is unmapped and released for the next call on every path.
    pub(crate) async fn finish_read(&self, mut pending: PendingRead) -> Result<Vec<u8>, GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
        let receive = pending.receive.take().expect("a pending read is finished once");
        if let Err(e) = receive.await {
            pending.mapping = false; // the map failed: nothing to unmap
            return Err(GpuError::Readback(e.to_string()));
        }
        self.check_alive()?;
        let bytes =
            pending.buffer.get_mapped_range(0..pending.size).map_err(|e| GpuError::Readback(e.to_string()))?.to_vec();
        pending.buffer.unmap();
        pending.mapping = false;
        if let Some(error) = self.uncaptured.lock().unwrap_or_else(|e| e.into_inner()).take() {
            return Err(GpuError::Operation { operation: "readback", message: error });
        }
        Ok(bytes)
    }
}

/// A mappable buffer kept for the readbacks of one caller (a table's K hits, a tower's user vector),
/// so that a call creates no buffer. `busy` is set from submission until the bytes are copied out;
/// a call that finds it set (an earlier call's read still in flight) reads through a fresh buffer.
#[derive(Debug)]
pub(crate) struct Readback {
    buffer: wgpu::Buffer,
    busy: Arc<AtomicBool>,
}

impl Readback {
    /// A readback buffer of `size` bytes (reads of at most `size` bytes use it).
    pub(crate) fn new(ctx: &GpuContext, label: &str, size: u64) -> Readback {
        let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: size.max(4).next_multiple_of(4),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Readback { buffer, busy: Arc::new(AtomicBool::new(false)) }
    }
}

/// A submitted copy whose mapping is in flight ([`GpuContext::submit_read`]). Dropped unfinished
/// (an error, or a browser future dropped mid-await), it unmaps (cancelling a pending map) and
/// releases its [`Readback`].
pub(crate) struct PendingRead {
    buffer: wgpu::Buffer,
    size: u64,
    receive: Option<Receiver<Result<(), wgpu::BufferAsyncError>>>,
    /// Mapped or being mapped: unmap on drop.
    mapping: bool,
    busy: Option<Arc<AtomicBool>>,
}

impl Drop for PendingRead {
    fn drop(&mut self) {
        if self.mapping {
            self.buffer.unmap();
        }
        if let Some(busy) = &self.busy {
            busy.store(false, Ordering::Release);
        }
    }
}

/// Whether `info` describes a CPU rasteriser: device type `Cpu` (in the browser, WebGPU's
/// `isFallbackAdapter`), or a name or driver naming SwiftShader, llvmpipe/lavapipe, WARP or "software".
pub fn is_software_adapter(info: &wgpu::AdapterInfo) -> bool {
    let text = format!("{} {} {}", info.name, info.driver, info.driver_info).to_lowercase();
    info.device_type == wgpu::DeviceType::Cpu
        || ["swiftshader", "llvmpipe", "lavapipe", "warp", "software"].iter().any(|s| text.contains(s))
}

/// Validation and out-of-memory errors of one operation, collected by WebGPU error scopes (the
/// operations themselves return nothing; errors arrive asynchronously).
#[derive(Debug)]
pub(crate) struct ErrorScope {
    validation: wgpu::ErrorScopeGuard,
    out_of_memory: wgpu::ErrorScopeGuard,
    operation: &'static str,
}

impl ErrorScope {
    fn push(device: &wgpu::Device, operation: &'static str) -> ErrorScope {
        let out_of_memory = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        ErrorScope { validation, out_of_memory, operation }
    }

    /// Pops both scopes (innermost first); the first error found becomes [`GpuError::Operation`].
    pub(crate) async fn finish(self) -> Result<(), GpuError> {
        let ErrorScope { validation, out_of_memory, operation } = self;
        let validation = validation.pop().await;
        let out_of_memory = out_of_memory.pop().await;
        match validation.or(out_of_memory) {
            Some(error) => Err(GpuError::Operation { operation, message: error.to_string() }),
            None => Ok(()),
        }
    }
}

/// A one-value channel whose receiving end is a future: the bridge from wgpu's `map_async` callback
/// to `async`. Hand-written (20 lines) rather than a dependency: nothing in the tree provides one.
fn oneshot<T: Send + 'static>() -> (impl FnOnce(T) + Send + 'static, Receiver<T>) {
    let shared = Arc::new(Mutex::new(Slot { value: None, waker: None }));
    let sender = shared.clone();
    let send = move |value: T| {
        let mut slot = sender.lock().unwrap_or_else(|e| e.into_inner());
        slot.value = Some(value);
        if let Some(waker) = slot.waker.take() {
            waker.wake();
        }
    };
    (send, Receiver(shared))
}

struct Slot<T> {
    value: Option<T>,
    waker: Option<Waker>,
}

struct Receiver<T>(Arc<Mutex<Slot<T>>>);

impl<T> Future for Receiver<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match slot.value.take() {
            Some(value) => Poll::Ready(value),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}
