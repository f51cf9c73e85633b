//! The encoder module's facade (feature `encoders`; `build.sh` builds it into `pkg/encoders/`, a
//! second wasm module the worker imports only when a page shows a product the bundle does not hold).
//!
//! `ProductEncoder.load` fetches the bundle's `encoders` files (the Q8_0 GGUF MiniLM and
//! EfficientNet-Lite0 `omakase export --encoders` wrote; Cache API, size + sha256 checked as every
//! bundle file is), and turns a product's fields and picture bytes into the frozen features the item
//! tower reads — the same code `omakase encode` runs natively: the bundle's text template, our
//! WordPiece, the same image decoder (pure Rust `image`/zune-jpeg, not the browser's, so pixels match
//! the native ones) and the Pillow-exact resize. The item tower itself stays in the runtime module
//! (`Recommender.addItemFeatures`).
//!
//! The Q8_0 weights are expanded to f32 once, at load (the values the blocks hold, so the vectors are
//! those of the Q8_0 encoders), and the products run on `gemm`'s simd128 f32 kernels: measured in
//! headless Chromium (tests/browser/bench-encoders.mjs), keeping the blocks and multiplying them with
//! candle's Q8_0 kernels took 45 / 195 / 58 ms (text of 29 / 122 tokens, image) against 28 / 101 /
//! 34 ms expanded. The price is memory: about 110 MB of f32 weights in the worker, only on pages that
//! embed a new product.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Float32Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use super::error::{argument, js_error, JsError};
use super::fetch::Fetcher;
use omakase::data::Item;
use omakase::encoders::bundle::{BundleEncoders, BundleEncodersError};
use omakase::encoders::image::{decode_bytes, ImageEncoder, ImageEncoderError};
use omakase::encoders::text::{EncoderError, ItemTextTemplate, TextEncoder};
use omakase_runtime::manifest::Manifest;

/// The frozen encoders of one bundle, ready to embed new products.
#[wasm_bindgen]
pub struct ProductEncoder {
    text: Rc<TextSide>,
    image: Option<Rc<ImageSide>>,
    template: ItemTextTemplate,
    downloaded: u64,
    total: u64,
}

/// The text encoder, and a GPU copy of its layers when WebGPU is in use (shared with pending calls).
struct TextSide {
    encoder: TextEncoder,
    #[cfg(feature = "gpu")]
    gpu: RefCell<Option<TextGpu>>,
    note: RefCell<String>,
}

#[cfg(feature = "gpu")]
struct TextGpu {
    ctx: Rc<omakase_runtime::gpu::GpuContext>,
    layers: omakase_runtime::gpu::GpuBert,
}

/// The image encoder, and its network on WebGPU when in use (shared with pending calls).
struct ImageSide {
    encoder: ImageEncoder,
    #[cfg(feature = "gpu")]
    gpu: RefCell<Option<ImageGpu>>,
    note: RefCell<String>,
}

#[cfg(feature = "gpu")]
struct ImageGpu {
    ctx: Rc<omakase_runtime::gpu::GpuContext>,
    network: omakase_runtime::gpu::GpuEfficientNet,
}

/// The one WebGPU device both encoders share (requested once, only when one of them asks for it), or
/// why there is none.
#[cfg(feature = "gpu")]
type SharedGpu = Option<Result<Rc<omakase_runtime::gpu::GpuContext>, String>>;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
export interface EncoderLoadOptions {
  /** Keep the encoder files in the Cache API (keyed by sha256). Default true. */
  cache?: boolean;
  /** Fetch the image encoder too (when the bundle has one). Default true. */
  image?: boolean;
  /** Where the text encoder's layers run: "auto" (WebGPU on a hardware adapter, else wasm; a CPU
   *  rasteriser such as SwiftShader is slower than wasm), "webgpu" (any adapter), "wasm". */
  textBackend?: "auto" | "webgpu" | "wasm";
  /** Where the image encoder's network (EfficientNet-Lite0) runs, as `textBackend`: "auto" (WebGPU on
   *  a hardware adapter, never on a CPU rasteriser), "webgpu" (any adapter), "wasm". */
  imageBackend?: "auto" | "webgpu" | "wasm";
  /** Byte progress: { file, loaded, total }. */
  onProgress?: (progress: { file: string; loaded: number; total: number }) => void;
}
/** A product's fields: `title` and `description` (strings), any other key is metadata the bundle's
 *  text template may use (e.g. `year`, `genres`). */
export interface ProductFields {
  id?: string;
  title: string;
  description?: string;
  [key: string]: unknown;
}
"#;

#[wasm_bindgen]
impl ProductEncoder {
    /// Fetches and parses the encoders listed by the bundle at `manifestUrl`. Rejects with
    /// `kind: "NoEncoders"` when the bundle was exported without them.
    pub async fn load(
        #[wasm_bindgen(js_name = manifestUrl)] manifest_url: String,
        #[wasm_bindgen(unchecked_optional_param_type = "EncoderLoadOptions")] options: JsValue,
    ) -> Result<ProductEncoder, JsValue> {
        console_error_panic_hook::set_once();
        Ok(Self::load_inner(&manifest_url, &options).await?)
    }

    /// The text the text encoder reads for `product`, by the bundle's template.
    #[wasm_bindgen(js_name = composeText)]
    pub fn compose_text(
        &self,
        #[wasm_bindgen(unchecked_param_type = "ProductFields")] product: JsValue,
    ) -> Result<String, JsValue> {
        Ok(self.template.render(&item_from_js(&product)?))
    }

    /// Tokens the text encoder reads for `text` (`[CLS]`/`[SEP]` included, at most the model's maximum).
    #[wasm_bindgen(js_name = countTokens)]
    pub fn count_tokens(&self, text: &str) -> u32 {
        self.text.encoder.tokenize(text).len() as u32
    }

    /// MiniLM features `[384]` (unit length) of `text`, on WebGPU when in use (a GPU failure, device
    /// loss included, finishes this call on the CPU and keeps the encoder there).
    #[wasm_bindgen(js_name = encodeText, unchecked_return_type = "Promise<Float32Array>")]
    pub fn encode_text(&self, text: String) -> js_sys::Promise {
        let side = self.text.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let features =
                side.encode(&text).await.map_err(|e| js_error("Encoder", &format!("text encoder: {e}"), None))?;
            Ok(Float32Array::from(features.as_slice()).into())
        })
    }

    /// `"webgpu"` when the text encoder's layers run on WebGPU, else `"wasm-simd"`.
    #[wasm_bindgen(js_name = textBackend)]
    pub fn text_backend(&self) -> String {
        #[cfg(feature = "gpu")]
        if self.text.gpu.borrow().is_some() {
            return "webgpu".into();
        }
        "wasm-simd".into()
    }

    /// Why the text encoder runs where it does (the adapter, or why not WebGPU).
    #[wasm_bindgen(js_name = textBackendNote)]
    pub fn text_backend_note(&self) -> String {
        self.text.note.borrow().clone()
    }

    /// EfficientNet-Lite0 features `[1280]` of an encoded picture (JPEG, PNG or WebP bytes), the
    /// network on WebGPU when in use (a GPU failure, device loss included, finishes this call on the
    /// CPU and keeps the image encoder there). Rejects with `kind: "Image"` when the bytes do not
    /// decode, `"NoEncoders"` for a text-only bundle.
    #[wasm_bindgen(js_name = encodeImage, unchecked_return_type = "Promise<Float32Array>")]
    pub fn encode_image(&self, bytes: &[u8], origin: Option<String>) -> js_sys::Promise {
        let side = self.image.clone();
        // Decoding runs now (the bytes are the caller's), the network when the promise is polled.
        let picture = decode_bytes(bytes, origin.as_deref().unwrap_or("picture"));
        wasm_bindgen_futures::future_to_promise(async move {
            let side = side.ok_or_else(|| {
                js_error("NoEncoders", "this bundle's model reads no pictures (no image encoder)", None)
            })?;
            let picture = picture.map_err(|e| js_error("Image", &e.to_string(), None))?;
            let features =
                side.encode(&picture).await.map_err(|e| js_error("Encoder", &format!("image encoder: {e}"), None))?;
            Ok(Float32Array::from(features.as_slice()).into())
        })
    }

    /// `"webgpu"` when the image encoder's network runs on WebGPU, else `"wasm-simd"` (also for a
    /// bundle without an image encoder).
    #[wasm_bindgen(js_name = imageBackend)]
    pub fn image_backend(&self) -> String {
        #[cfg(feature = "gpu")]
        if self.image.as_ref().is_some_and(|side| side.gpu.borrow().is_some()) {
            return "webgpu".into();
        }
        "wasm-simd".into()
    }

    /// Why the image encoder runs where it does (the adapter, or why not WebGPU).
    #[wasm_bindgen(js_name = imageBackendNote)]
    pub fn image_backend_note(&self) -> String {
        match &self.image {
            Some(side) => side.note.borrow().clone(),
            None => "no image encoder loaded".into(),
        }
    }

    /// Whether pictures can be encoded (the bundle has an image encoder and it was loaded).
    #[wasm_bindgen(js_name = hasImage)]
    pub fn has_image(&self) -> bool {
        self.image.is_some()
    }

    /// Bytes the load took from the network (`downloaded`; cache hits excluded) and the encoder
    /// files' size (`total`).
    #[wasm_bindgen(js_name = loadStats, unchecked_return_type = "{ downloaded: number; total: number }")]
    pub fn load_stats(&self) -> JsValue {
        let out = Object::new();
        let _ = Reflect::set(&out, &"downloaded".into(), &(self.downloaded as f64).into());
        let _ = Reflect::set(&out, &"total".into(), &(self.total as f64).into());
        out.into()
    }
}

impl ProductEncoder {
    async fn load_inner(manifest_url: &str, options: &JsValue) -> Result<ProductEncoder, JsError> {
        let flag = |key: &str| -> Result<bool, JsError> {
            let value = if options.is_object() { Reflect::get(options, &key.into())? } else { JsValue::UNDEFINED };
            match value {
                v if v.is_undefined() || v.is_null() => Ok(true),
                v => v.as_bool().ok_or_else(|| argument(&format!("options.{key}"), "must be a boolean")),
            }
        };
        let (use_cache, want_image) = (flag("cache")?, flag("image")?);
        let text_backend = backend_option(options, "textBackend")?;
        let image_backend = backend_option(options, "imageBackend")?;
        let on_progress =
            if options.is_object() { Reflect::get(options, &"onProgress".into())? } else { JsValue::UNDEFINED };
        let mut fetcher = Fetcher::new(manifest_url, use_cache, on_progress)?;
        let manifest = Manifest::from_json(&fetcher.manifest().await?)?;
        let encoders = manifest.encoders.as_ref().ok_or_else(|| {
            JsError(js_error(
                "NoEncoders",
                "this bundle holds no encoders (export it with `omakase export --encoders`)",
                Some("manifest.json"),
            ))
        })?;
        let image_entry = encoders.image.as_ref().filter(|_| want_image);
        fetcher.total = encoders.text.bytes + image_entry.map_or(0, |e| e.bytes);
        let text_bytes = fetcher.file(&encoders.text).await?;
        let image_bytes = match image_entry {
            Some(entry) => Some(fetcher.file(entry).await?),
            None => None,
        };
        let BundleEncoders { text, image, template } =
            BundleEncoders::parse(encoders, &text_bytes, image_bytes.as_deref()).map_err(encoders_error)?;
        drop(image_bytes);
        #[cfg(feature = "gpu")]
        let gpu = {
            let image_wants_gpu = image.is_some() && image_backend != "wasm";
            shared_gpu(text_backend != "wasm" || image_wants_gpu).await
        };
        #[cfg(not(feature = "gpu"))]
        let gpu = ();
        let side = TextSide::new(text, &text_backend, &text_bytes, &encoders.text.path, &gpu).await;
        let image = match image {
            Some(encoder) => Some(Rc::new(ImageSide::new(encoder, &image_backend, &gpu).await)),
            None => None,
        };
        Ok(ProductEncoder {
            text: Rc::new(side),
            image,
            template,
            downloaded: fetcher.downloaded,
            total: fetcher.total,
        })
    }
}

impl TextSide {
    /// The CPU encoder, plus its layers on WebGPU when `backend` asks for it and an adapter allows.
    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    async fn new(encoder: TextEncoder, backend: &str, gguf_bytes: &[u8], file: &str, gpu: &Gpu) -> TextSide {
        let side = TextSide {
            encoder,
            #[cfg(feature = "gpu")]
            gpu: RefCell::new(None),
            note: RefCell::new(String::new()),
        };
        if backend == "wasm" {
            *side.note.borrow_mut() = "WebGPU not asked for (textBackend = \"wasm\")".into();
            return side;
        }
        #[cfg(feature = "gpu")]
        {
            use omakase_runtime::gpu::GpuBert;
            let gpu = usable_gpu(gpu, backend, "text encoder").map(|ctx| {
                let gguf = omakase_runtime::gguf::Gguf::parse(gguf_bytes, file)?;
                let layers = GpuBert::load(&ctx, &gguf, file, side.encoder.gpu_shape())?;
                Ok::<_, omakase_runtime::gpu::GpuError>(TextGpu { ctx, layers })
            });
            match gpu {
                Ok(Ok(gpu)) => {
                    let info = gpu.ctx.adapter_info();
                    *side.note.borrow_mut() =
                        format!("WebGPU on \"{}\" ({:?}, {})", info.name, info.device_type, info.driver);
                    *side.gpu.borrow_mut() = Some(gpu);
                }
                Ok(Err(e)) => *side.note.borrow_mut() = format!("no WebGPU: {e}"),
                Err(why) => *side.note.borrow_mut() = why,
            }
        }
        #[cfg(not(feature = "gpu"))]
        {
            *side.note.borrow_mut() = "built without the gpu feature".into();
        }
        side
    }

    async fn encode(&self, text: &str) -> Result<Vec<f32>, EncoderError> {
        #[cfg(feature = "gpu")]
        {
            // The GPU copy is taken out while it runs (no RefCell borrow across the await) and put
            // back unless it failed.
            let gpu = self.gpu.borrow_mut().take();
            if let Some(gpu) = gpu {
                match self.encoder.encode_with_gpu(&gpu.layers, &gpu.ctx, text).await {
                    Ok(features) => {
                        *self.gpu.borrow_mut() = Some(gpu);
                        return Ok(features);
                    }
                    Err(e) => *self.note.borrow_mut() = format!("WebGPU failed ({e}); on the CPU from now on"),
                }
            }
        }
        self.encoder.encode_batch(&[text]).and_then(|t| {
            t.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(EncoderError::candle("reading the features"))
        })
    }
}

impl ImageSide {
    /// The CPU encoder, plus its network on WebGPU when `backend` asks for it and an adapter allows.
    #[cfg_attr(not(feature = "gpu"), allow(unused_variables))]
    async fn new(encoder: ImageEncoder, backend: &str, gpu: &Gpu) -> ImageSide {
        let side = ImageSide {
            encoder,
            #[cfg(feature = "gpu")]
            gpu: RefCell::new(None),
            note: RefCell::new(String::new()),
        };
        if backend == "wasm" {
            *side.note.borrow_mut() = "WebGPU not asked for (imageBackend = \"wasm\")".into();
            return side;
        }
        #[cfg(feature = "gpu")]
        match usable_gpu(gpu, backend, "image encoder") {
            Ok(ctx) => match side.encoder.load_gpu(&ctx).await {
                Ok(network) => {
                    let info = ctx.adapter_info();
                    *side.note.borrow_mut() =
                        format!("WebGPU on \"{}\" ({:?}, {})", info.name, info.device_type, info.driver);
                    *side.gpu.borrow_mut() = Some(ImageGpu { ctx, network });
                }
                Err(e) => *side.note.borrow_mut() = format!("no WebGPU: {e}"),
            },
            Err(why) => *side.note.borrow_mut() = why,
        }
        #[cfg(not(feature = "gpu"))]
        {
            *side.note.borrow_mut() = "built without the gpu feature".into();
        }
        side
    }

    async fn encode(&self, picture: &omakase::encoders::image::RgbImage) -> Result<Vec<f32>, ImageEncoderError> {
        #[cfg(feature = "gpu")]
        {
            // As the text side: the GPU copy is out of the cell while it runs, back unless it failed.
            let gpu = self.gpu.borrow_mut().take();
            if let Some(gpu) = gpu {
                match self.encoder.encode_with_gpu(&gpu.network, &gpu.ctx, picture.view()).await {
                    Ok(features) => {
                        *self.gpu.borrow_mut() = Some(gpu);
                        return Ok(features);
                    }
                    Err(e) => *self.note.borrow_mut() = format!("WebGPU failed ({e}); on the CPU from now on"),
                }
            }
        }
        Ok(self.encoder.encode_rgb(&[picture.view()])?.flatten_all()?.to_vec1::<f32>()?)
    }
}

/// What the encoders were given of WebGPU: [`SharedGpu`], or nothing when built without it.
#[cfg(feature = "gpu")]
type Gpu = SharedGpu;
#[cfg(not(feature = "gpu"))]
type Gpu = ();

/// Requests the device both encoders share when either wants one (`wanted`).
#[cfg(feature = "gpu")]
async fn shared_gpu(wanted: bool) -> SharedGpu {
    use omakase_runtime::gpu::{GpuContext, GpuOptions};
    if !wanted {
        return None;
    }
    Some(GpuContext::request(&GpuOptions::default()).await.map(Rc::new).map_err(|e| format!("no WebGPU: {e}")))
}

/// The shared device if `backend` may use it: "auto" refuses a CPU rasteriser (SwiftShader,
/// llvmpipe/lavapipe, WARP: slower than wasm), "webgpu" takes any adapter. Else why not, for the note.
#[cfg(feature = "gpu")]
fn usable_gpu(gpu: &SharedGpu, backend: &str, encoder: &str) -> Result<Rc<omakase_runtime::gpu::GpuContext>, String> {
    let ctx = match gpu {
        None => return Err("WebGPU not requested".into()),
        Some(Err(why)) => return Err(why.clone()),
        Some(Ok(ctx)) => ctx.clone(),
    };
    let info = ctx.adapter_info();
    if backend == "auto" && omakase_runtime::gpu::is_software_adapter(info) {
        return Err(format!(
            "adapter \"{}\" ({:?}, {}) is a CPU rasteriser, slower than wasm: {encoder} on wasm",
            info.name, info.device_type, info.driver
        ));
    }
    Ok(ctx)
}

/// `options[key]`: "auto" (also when absent), "webgpu" or "wasm".
fn backend_option(options: &JsValue, key: &str) -> Result<String, JsError> {
    let value = if options.is_object() { Reflect::get(options, &key.into())? } else { JsValue::UNDEFINED };
    let backend = match value {
        v if v.is_undefined() || v.is_null() => "auto".to_string(),
        v => v.as_string().unwrap_or_default(),
    };
    if !["auto", "webgpu", "wasm"].contains(&backend.as_str()) {
        return Err(argument(
            &format!("options.{key}"),
            format!("{backend:?} is not \"auto\", \"webgpu\" or \"wasm\""),
        ));
    }
    Ok(backend)
}

/// A bundle-encoder failure as a typed JS error naming the file at fault.
fn encoders_error(e: BundleEncodersError) -> JsError {
    match &e {
        BundleEncodersError::File(runtime) => JsError(super::error::runtime_error(runtime)),
        BundleEncodersError::Gguf { file, .. } => JsError(js_error("Format", &e.to_string(), Some(file))),
        BundleEncodersError::Template(_) => JsError(js_error("ManifestField", &e.to_string(), Some("manifest.json"))),
    }
}

/// `{ id?, title, description?, ...metadata }` → an [`Item`] (no picture path: the template reads text).
fn item_from_js(product: &JsValue) -> Result<Item, JsError> {
    let value: serde_json::Value = serde_wasm_bindgen::from_value(product.clone())
        .map_err(|e| argument("product", format!("not a plain object of fields: {e}")))?;
    let value = integral_numbers(value);
    let serde_json::Value::Object(mut fields) = value else {
        return Err(argument("product", "must be an object { title, description, ... }"));
    };
    let mut text = |key: &str| -> Result<String, JsError> {
        match fields.remove(key) {
            None | Some(serde_json::Value::Null) => Ok(String::new()),
            Some(serde_json::Value::String(s)) => Ok(s),
            Some(other) => Err(argument(&format!("product.{key}"), format!("must be a string, got {other}"))),
        }
    };
    let (id, title, description) = (text("id")?, text("title")?, text("description")?);
    if title.trim().is_empty() && description.trim().is_empty() {
        return Err(argument("product", "needs a title or a description"));
    }
    fields.remove("image");
    Ok(Item { id, title, description, image: None, metadata: fields })
}

/// JS numbers arrive as f64; a whole number becomes an integer again, so a template prints `1995` as
/// the native catalogue's JSON integer does, not `1995.0`.
fn integral_numbers(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Number(n) => match n.as_f64() {
            Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 => Value::from(x as i64),
            _ => Value::Number(n),
        },
        Value::Array(values) => Value::Array(values.into_iter().map(integral_numbers).collect()),
        Value::Object(fields) => Value::Object(fields.into_iter().map(|(k, v)| (k, integral_numbers(v))).collect()),
        other => other,
    }
}
