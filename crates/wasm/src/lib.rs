//! The browser facade: a thin wasm-bindgen layer over [`omakase_runtime`]. It fetches a bundle
//! (Cache API, every file size- and sha256-checked before use, progress in bytes), hands it to the
//! runtime's [`Backend`] (which picks WebGPU or the CPU by measurement and falls back between them),
//! stores the runtime's remembered choice of each bundle (Cache API, `fetch.js`), and converts
//! answers to flat typed arrays. An indexed bundle with the streamed reader's files is streamed
//! instead ([`stream`]: nothing per item at load, each answer fetches the partitions it probes).
//! Single-threaded (a shop page cannot set COOP/COEP, so no wasm
//! threads); meant to live in a Web Worker (`www/runtime/`).
//!
//! Every call that can fail rejects with a typed `OmakaseError` ([`error`]). No backend logic lives
//! here: the native tests run the runtime's, and this crate is tested in headless Chromium
//! (`tests/browser/`). Compiled for wasm32 only; natively the crate is empty.
#![cfg(target_arch = "wasm32")]

mod delta;
#[cfg(feature = "encoders")]
mod encoders;
mod error;
mod fetch;
mod lists;
mod stream;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use js_sys::{Float32Array, Object, Reflect, Uint32Array};
use wasm_bindgen::prelude::*;

use error::{argument, busy, js_error, JsError};
use fetch::Fetcher;
use omakase_runtime::rows::ScoringRows;
use omakase_runtime::{
    Backend, BackendOptions, BackendPreference, EmbeddingDtype, ItemMeta, ItemVectors, Manifest, Recommendation,
    Recommendations, RememberedChoice, Runtime, RuntimeError,
};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** Options of `Recommender.load` (every field optional). */
export interface LoadOptions {
  /** "auto": the faster of WebGPU and WASM SIMD on this device, measured on the catalogue at the first
   *  load (≤ 50 ms) and remembered per bundle and device (Cache API), never a software adapter
   *  (SwiftShader, llvmpipe), WASM SIMD without an adapter. "webgpu": WebGPU whenever an adapter
   *  comes, any adapter, unmeasured (a console warning says why not). "wasm": WASM SIMD only.
   *  Default "auto". */
  backend?: "auto" | "webgpu" | "wasm";
  /** Use f16 shaders when the adapter offers `shader-f16`. Default true. */
  allowF16?: boolean;
  /** Run the sequence tower on the GPU too (else only the scan and top-K). Default false: on an
   *  NVIDIA H200 the tower's ~30 small dispatches cost more than the CPU tower (bench/README.md). */
  towerOnGpu?: boolean;
  /** Keep downloaded files in the Cache API (keyed by sha256), and the "auto" backend choice. Default true. */
  cache?: boolean;
  /** Download the explanation shards (text/image shares). Default true. */
  explain?: boolean;
  /** Download the item tower now (else at the first `addItemFeatures`). Default false. */
  itemTower?: boolean;
  /** Stream an indexed bundle whose manifest has `index.metadata` and `index.directory`
   *  (docs/bundle.md § Index): the load fetches only the manifest, the sequence tower, the centroids
   *  and popular.json; each answer fetches what it needs (Cache API, sha256-checked). Default true;
   *  false loads every file as for any bundle. */
  stream?: boolean;
  /** Called after every downloaded chunk and cache hit. */
  onProgress?: (event: { file: string; loaded: number; total: number }) => void;
}

/** One item's metadata (text is data: render it as text). */
export interface ItemMeta { id: string; title: string; image?: string | null; link?: string | null; }

/** The answer to a session, as flat arrays (index i is the i-th recommendation). */
export interface Recommendations {
  rows: Uint32Array;
  ids: string[];
  scores: Float32Array;
  items: ItemMeta[];
  explanations: {
    sessionRows: Uint32Array;
    sessionIds: string[];
    similarity: Float32Array;
    /** NaN where the bundle has no text (image) vector for the pair. */
    textSimilarity: Float32Array;
    imageSimilarity: Float32Array;
    textShare: Float32Array;
  };
  /** Session ids the bundle does not know (ignored). */
  unknown: string[];
  /** Rows the sequence tower read (oldest first). */
  used: Uint32Array;
  /** The backend that answered this call. */
  backend: string;
  /** How the candidates were found: "index" (a streamed catalogue's probe), "exact" (every row),
   *  "none" (a list that scans no vectors). */
  search: SearchInfo;
}

/** What an answer's search scanned. */
export interface SearchInfo {
  path: "index" | "exact" | "none";
  /** Partitions probed by default (0 for "exact" and "none"). */
  nprobe: number;
  /** Partitions probed, nearest first. */
  probed: number[];
  /** Probed partitions not here (a partial answer, or a partition refused): fetching them improves it. */
  missing: number[];
  rowsScanned: number;
  /** Files refused while answering (truncated or tampered: sha256), naming each; the answer used
   *  only verified data. */
  refused: { kind: string; file: string; message: string }[];
}

/** Options of `recommend` (and the matching fields of `ListRequest`), for a streamed catalogue. */
export interface RecommendOptions {
  /** Answer at once from what is here (no download); `search.missing` says what was not. Default false. */
  partial?: boolean;
  /** Partitions to probe (1..=partitions); default the manifest's `index.nprobe`. */
  nprobe?: number;
}

/** What `prefetch` fetched. */
export interface PrefetchResult { partitions: number; bytes: number; failed: { kind: string; file: string; message: string }[]; }

/** A streamed catalogue's state (`streamStats`). */
export interface StreamStats {
  /** Partitions of the index. */
  partitions: number;
  /** Partitions whose rows and metadata are here. */
  present: number;
  /** Bytes that came over the network since the load (manifest included; cache hits not). */
  bytesDownloaded: number;
  /** The wasm module's linear memory (the worker's heap), bytes. */
  memoryBytes: number;
  /** Bytes the partitions here take (rows and metadata), within the memory bound. */
  partitionBytes: number;
}

/** What a load chose (`Recommender.backendChoice()`). */
export interface BackendChoice {
  /** The backend chosen at load (a later GPU failure moves calls to the CPU; `backend()` says so). */
  backend: string;
  /** "preference" (options.backend), "no adapter", "software adapter", "measured", "remembered", "gpu failed". */
  reason: string;
  /** Best measured call, user vector + scan + top-10 (ms), or as measured by the remembered load; null when not measured. */
  cpuMs: number | null;
  gpuMs: number | null;
  /** Calls the measurement made on each backend (warm-ups included). */
  cpuCalls: number;
  gpuCalls: number;
  /** Time the measurement took (ms). */
  spentMs: number;
}

/** The bundle's delta shards (products appended after export), as the load applied them. */
export interface DeltaStatus {
  loaded: { file: string; rows: number }[];
  /** Each delta left out (the bundle and the other deltas still serve), naming its file. */
  failed: { kind: string; file: string; message: string }[];
}

/** A product for `Recommender.buildDelta`: its card and its frozen features (at least one). */
export interface DeltaProduct {
  id: string;
  title?: string;
  image?: string | null;
  link?: string | null;
  textFeatures?: Float32Array | null;
  imageFeatures?: Float32Array | null;
}

/** A delta ready to publish: upload `bytes` as `name` beside manifest.json, then `manifest` as manifest.json. */
export interface BuiltDelta { name: string; bytes: Uint8Array; manifest: string; rows: number; ids: string[]; }

/** Every rejection: `name` is "OmakaseError"; `kind` the cause; `file` the bundle file at fault. */
export interface OmakaseError extends Error { kind: string; file?: string; }
"#;

/// A loaded bundle with its backend, or a streamed one (`stream.rs`).
#[wasm_bindgen]
pub struct Recommender {
    inner: Inner,
}

/// What a recommender holds: the whole bundle, or an indexed one streamed partition by partition.
#[derive(Clone)]
enum Inner {
    Whole(Rc<RefCell<State>>),
    Streamed(Rc<RefCell<stream::Streamed>>),
}

impl Recommender {
    /// The whole bundle's state; a streamed catalogue refuses `what` (it holds no whole catalogue).
    fn whole(&self, what: &str) -> Result<&Rc<RefCell<State>>, JsError> {
        match &self.inner {
            Inner::Whole(state) => Ok(state),
            Inner::Streamed(_) => Err(stream::not_streamed(what)),
        }
    }
}

struct State {
    backend: Backend,
    manifest: Option<Manifest>,
    fetcher: Option<Fetcher>,
    /// A synthetic catalogue (the benchmark's plain-JS loop reads its int8 rows).
    synthetic: bool,
    downloaded: u64,
    bundle_bytes: u64,
    /// The last rules compiled, by their text (`lists.rs`): a page asks for the same rules again.
    rules: Option<(String, omakase_runtime::CompiledRules)>,
    deltas: delta::DeltaStatus,
}

impl State {
    /// A state over `backend`, with the load's byte counts from `fetcher`.
    fn new(backend: Backend, fetcher: &Fetcher) -> State {
        State {
            backend,
            manifest: None,
            fetcher: None,
            synthetic: false,
            downloaded: fetcher.downloaded,
            bundle_bytes: fetcher.total,
            rules: None,
            deltas: delta::DeltaStatus::default(),
        }
    }

    fn runtime(&self) -> &Runtime {
        self.backend.runtime()
    }
}

/// What `LoadOptions` said.
struct Options {
    backend: BackendOptions,
    cache: bool,
    explain: bool,
    item_tower: bool,
    /// Stream an indexed bundle that has the streamed reader's files (default true).
    stream: bool,
    on_progress: JsValue,
}

impl Options {
    fn parse(options: &JsValue) -> Result<Options, JsError> {
        let get = |key: &str| {
            if options.is_object() {
                Reflect::get(options, &key.into()).unwrap_or(JsValue::UNDEFINED)
            } else {
                JsValue::UNDEFINED
            }
        };
        let flag = |key: &str, default: bool| -> Result<bool, JsError> {
            let v = get(key);
            if v.is_undefined() || v.is_null() {
                return Ok(default);
            }
            v.as_bool().ok_or_else(|| argument(&format!("options.{key}"), "must be a boolean"))
        };
        let preference = match get("backend") {
            v if v.is_undefined() || v.is_null() => BackendPreference::Auto,
            v => {
                let name = v.as_string().unwrap_or_default();
                BackendPreference::parse(&name).map_err(|_| {
                    argument("options.backend", format!("{name:?} is not \"auto\", \"webgpu\" or \"wasm\""))
                })?
            }
        };
        let on_progress = get("onProgress");
        if !on_progress.is_undefined() && !on_progress.is_null() && !on_progress.is_function() {
            return Err(argument("options.onProgress", "must be a function"));
        }
        Ok(Options {
            backend: BackendOptions {
                preference,
                allow_f16: flag("allowF16", true)?,
                tower_on_gpu: flag("towerOnGpu", false)?,
                ..BackendOptions::default()
            },
            cache: flag("cache", true)?,
            explain: flag("explain", true)?,
            item_tower: flag("itemTower", false)?,
            stream: flag("stream", true)?,
            on_progress,
        })
    }
}

#[wasm_bindgen]
impl Recommender {
    /// Fetches the bundle at `manifestUrl` (relative to the page or worker) and picks a backend.
    pub async fn load(
        #[wasm_bindgen(js_name = manifestUrl)] manifest_url: String,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: JsValue,
    ) -> Result<Recommender, JsValue> {
        console_error_panic_hook::set_once();
        Ok(Self::load_inner(&manifest_url, &options).await?)
    }

    /// A benchmark catalogue: the bundle's model with `count` random int8 items (ids `syn-0` …),
    /// quantized as bundle shards are; the backend is chosen as in [`Recommender::load`].
    pub async fn synthetic(
        #[wasm_bindgen(js_name = manifestUrl)] manifest_url: String,
        count: u32,
        seed: u32,
        #[wasm_bindgen(unchecked_optional_param_type = "LoadOptions")] options: JsValue,
    ) -> Result<Recommender, JsValue> {
        console_error_panic_hook::set_once();
        Ok(Self::synthetic_inner(&manifest_url, count as usize, seed, &options).await?)
    }

    /// `"webgpu-f16"`, `"webgpu-f32"` or `"wasm-simd"` (the CPU kernels; `"wasm-scalar"` in a build
    /// without simd128).
    pub fn backend(&self) -> String {
        match &self.inner {
            Inner::Whole(state) => state.borrow().backend.name(),
            Inner::Streamed(_) => stream::backend_name().into(),
        }
    }

    /// What the load chose, why, and the timings it measured (see the `BackendChoice` interface).
    #[wasm_bindgen(js_name = backendChoice, unchecked_return_type = "BackendChoice")]
    pub fn backend_choice(&self) -> JsValue {
        let state = match &self.inner {
            Inner::Whole(state) => state.borrow(),
            Inner::Streamed(_) => return stream::backend_choice(),
        };
        let choice = state.backend.choice();
        let ms = |v: Option<f64>| v.map_or(JsValue::NULL, JsValue::from);
        let out = Object::new();
        set(&out, "backend", &choice.backend.as_str().into());
        set(&out, "reason", &choice.reason.as_str().into());
        set(&out, "cpuMs", &ms(choice.cpu_ms));
        set(&out, "gpuMs", &ms(choice.gpu_ms));
        set(&out, "cpuCalls", &choice.cpu_calls.into());
        set(&out, "gpuCalls", &choice.gpu_calls.into());
        set(&out, "spentMs", &choice.spent_ms.into());
        out.into()
    }

    /// The adapter in use, or why the backend is the CPU.
    #[wasm_bindgen(js_name = backendNote)]
    pub fn backend_note(&self) -> String {
        match &self.inner {
            Inner::Whole(state) => state.borrow().backend.note(),
            Inner::Streamed(_) => stream::backend_note(),
        }
    }

    #[wasm_bindgen(js_name = itemCount)]
    pub fn item_count(&self) -> u32 {
        match &self.inner {
            Inner::Whole(state) => state.borrow().runtime().item_count() as u32,
            Inner::Streamed(s) => s.borrow().manifest().item_count as u32,
        }
    }

    pub fn dim(&self) -> u32 {
        match &self.inner {
            Inner::Whole(state) => state.borrow().runtime().dim() as u32,
            Inner::Streamed(s) => s.borrow().manifest().dim as u32,
        }
    }

    /// The metadata of `row`, or undefined (streamed: undefined until its partition's metadata
    /// or popular.json has arrived).
    #[wasm_bindgen(unchecked_return_type = "ItemMeta | undefined")]
    pub fn item(&self, row: u32) -> JsValue {
        match &self.inner {
            Inner::Whole(state) => state.borrow().runtime().item(row).map(meta_to_js).unwrap_or(JsValue::UNDEFINED),
            Inner::Streamed(s) => s.borrow().item(row).as_ref().map(meta_to_js).unwrap_or(JsValue::UNDEFINED),
        }
    }

    /// The row of `id`, or undefined (streamed: undefined until its directory bucket has arrived).
    #[wasm_bindgen(js_name = rowOf)]
    pub fn row_of(&self, id: &str) -> Option<u32> {
        match &self.inner {
            Inner::Whole(state) => state.borrow().runtime().row_of(id),
            Inner::Streamed(s) => s.borrow().row_of(id),
        }
    }

    /// Bytes this load took from the network (`downloaded`) and the bundle files' size (`bundle`).
    #[wasm_bindgen(js_name = loadStats, unchecked_return_type = "{ downloaded: number; bundle: number }")]
    pub fn load_stats(&self) -> JsValue {
        let state = match &self.inner {
            Inner::Whole(state) => state.borrow(),
            Inner::Streamed(s) => return s.borrow().load_stats(),
        };
        let out = Object::new();
        set(&out, "downloaded", &(state.downloaded as f64).into());
        set(&out, "bundle", &(state.bundle_bytes as f64).into());
        out.into()
    }

    /// Top-`k` recommendations for `session` (item ids, oldest first), never a session item.
    /// Unknown ids are reported in `unknown`; a session with no known id rejects with `EmptySession`.
    /// A streamed catalogue fetches what the session needs first (see `RecommendOptions`).
    #[wasm_bindgen(unchecked_return_type = "Promise<Recommendations>")]
    pub fn recommend(
        &self,
        session: Vec<String>,
        k: u32,
        #[wasm_bindgen(unchecked_optional_param_type = "RecommendOptions")] options: JsValue,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            match inner {
                Inner::Whole(state) => Ok(recommend(&state, &session, k as usize).await?),
                Inner::Streamed(s) => Ok(stream::recommend(&s, &session, k as usize, &options).await?),
            }
        })
    }

    /// Whether this recommender streams its catalogue (an indexed bundle with the streamed
    /// reader's files, loaded with `stream` not false).
    pub fn streamed(&self) -> bool {
        matches!(self.inner, Inner::Streamed(_))
    }

    /// Fetches whole partitions (rows and metadata) not yet here, in file order (most popular
    /// first), while their bytes stay within `maxBytes` and the memory bound: later answers probe
    /// them without waiting. Resolves at once to zeros on a whole bundle.
    #[wasm_bindgen(unchecked_return_type = "Promise<PrefetchResult>")]
    pub fn prefetch(&self, #[wasm_bindgen(js_name = maxBytes)] max_bytes: f64) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            match inner {
                Inner::Whole(_) => Ok(stream::prefetch_result(0, 0, js_sys::Array::new())),
                Inner::Streamed(s) => Ok(stream::prefetch(&s, max_bytes).await?),
            }
        })
    }

    /// Partitions, those here, bytes downloaded and memory (see `StreamStats`). A whole bundle
    /// reports its shards as partitions, all present. Null while another call runs (only outside
    /// the worker, whose calls run one after another).
    #[wasm_bindgen(js_name = streamStats, unchecked_return_type = "StreamStats | null")]
    pub fn stream_stats(&self) -> JsValue {
        match &self.inner {
            Inner::Whole(state) => {
                let st = state.borrow();
                let shards = st.manifest.as_ref().map_or(0, |m| m.shards.len());
                stream::stats_js(shards, shards, st.downloaded, st.runtime().items().memory_bytes())
            }
            Inner::Streamed(s) => match s.try_borrow_mut() {
                Ok(mut st) => {
                    st.drain();
                    st.stats_js()
                }
                // Another call holds it (outside the worker's queue): null rather than a panic.
                Err(_) => s.try_borrow().map_or(JsValue::NULL, |st| st.stats_js()),
            },
        }
    }

    /// The user vector `[dim]` of a session (CPU runtime; unknown ids skipped).
    #[wasm_bindgen(js_name = userVector)]
    pub fn user_vector(&self, session: Vec<String>) -> Result<Float32Array, JsValue> {
        let state = self.whole("userVector")?.try_borrow().map_err(|_| busy())?;
        let (rows, unknown) = state.runtime().resolve(&session);
        if rows.is_empty() {
            return Err(JsError::from(RuntimeError::EmptySession { unknown }).into());
        }
        let user = state.runtime().user_vector(&rows).map_err(JsError::from)?;
        Ok(Float32Array::from(user.as_slice()))
    }

    /// Adds a product by its item vector `[dim]` (e.g. computed server-side); recommended from now
    /// on. `meta` may carry `title`, `image`, `link`. Resolves to its row.
    #[wasm_bindgen(js_name = addItem, unchecked_return_type = "Promise<number>")]
    pub fn add_item(
        &self,
        id: String,
        vector: Vec<f32>,
        #[wasm_bindgen(unchecked_optional_param_type = "Partial<ItemMeta>")] meta: JsValue,
    ) -> js_sys::Promise {
        let state = self.whole("addItem").cloned();
        wasm_bindgen_futures::future_to_promise(async move {
            let state = state?;
            let meta = meta_from_js(id, &meta)?;
            let vectors = ItemVectors { fused: vector, text_only: None, image_only: None };
            Ok(add_item(&state, meta, vectors).await?)
        })
    }

    /// Adds a product by its frozen encoder features (MiniLM text `[text_dim]`, EfficientNet image
    /// `[image_dim]`; at least one) through the bundle's item tower, downloaded on first use.
    #[wasm_bindgen(js_name = addItemFeatures, unchecked_return_type = "Promise<number>")]
    pub fn add_item_features(
        &self,
        id: String,
        text: Option<Vec<f32>>,
        image: Option<Vec<f32>>,
        #[wasm_bindgen(unchecked_optional_param_type = "Partial<ItemMeta>")] meta: JsValue,
    ) -> js_sys::Promise {
        let state = self.whole("addItemFeatures").cloned();
        wasm_bindgen_futures::future_to_promise(async move {
            let state = state?;
            let meta = meta_from_js(id, &meta)?;
            ensure_item_tower(&state).await?;
            let vectors = {
                let st = state.try_borrow().map_err(|_| busy())?;
                st.runtime().embed_item(text.as_deref(), image.as_deref()).map_err(JsError::from)?
            };
            Ok(add_item(&state, meta, vectors).await?)
        })
    }

    /// The catalogue's stored vector of `row` `[dim]` (as scored: dequantized from its shard row),
    /// or undefined.
    #[wasm_bindgen(js_name = itemVector)]
    pub fn item_vector(&self, row: u32) -> Option<Float32Array> {
        let vector = match &self.inner {
            Inner::Whole(state) => state.borrow().runtime().item_vector(row),
            Inner::Streamed(s) => s.borrow().item_vector(row),
        };
        vector.map(|v| Float32Array::from(v.as_slice()))
    }

    /// The synthetic catalogue's int8 rows (`codes` `[n·dim]`, `scales` `[n]` with the cosine folded
    /// in: score = Σ codes·q × scale): the benchmark's plain-JS loop scans exactly these. Undefined
    /// for a bundle.
    #[wasm_bindgen(js_name = int8Table, unchecked_return_type = "{ codes: Int8Array; scales: Float32Array; dim: number } | undefined")]
    pub fn int8_table(&self) -> JsValue {
        let Inner::Whole(state) = &self.inner else { return JsValue::UNDEFINED };
        let state = state.borrow();
        if !state.synthetic {
            return JsValue::UNDEFINED;
        }
        let runtime = state.runtime();
        match ScoringRows::of_store(runtime.items(), 0..runtime.item_count()) {
            ScoringRows::Int8 { codes, score_scales } => {
                let out = Object::new();
                set(&out, "codes", &js_sys::Int8Array::from(codes.as_slice()).into());
                set(&out, "scales", &Float32Array::from(score_scales.as_slice()).into());
                set(&out, "dim", &(runtime.dim() as u32).into());
                out.into()
            }
            ScoringRows::F16 { .. } => JsValue::UNDEFINED,
        }
    }

    /// The bundle's delta shards as this load applied them (see the `DeltaStatus` interface).
    #[wasm_bindgen(unchecked_return_type = "DeltaStatus")]
    pub fn deltas(&self) -> JsValue {
        match &self.inner {
            Inner::Whole(state) => state.borrow().deltas.to_js(),
            Inner::Streamed(_) => delta::DeltaStatus::default().to_js(),
        }
    }

    /// A delta shard of `products` (frozen features through this bundle's item tower, downloaded on
    /// first use), for the shop to publish: the file and the manifest that lists it. The catalogue
    /// here is left as it is.
    #[wasm_bindgen(js_name = buildDelta, unchecked_return_type = "Promise<BuiltDelta>")]
    pub fn build_delta(
        &self,
        #[wasm_bindgen(unchecked_param_type = "DeltaProduct[]")] products: JsValue,
    ) -> js_sys::Promise {
        let state = self.whole("buildDelta").cloned();
        wasm_bindgen_futures::future_to_promise(async move {
            let state = state?;
            ensure_item_tower(&state).await?;
            let st = state.try_borrow().map_err(|_| busy())?;
            let manifest = st.manifest.as_ref().ok_or_else(|| argument("buildDelta", "needs a loaded bundle"))?;
            Ok(delta::build(st.runtime(), manifest, &products)?)
        })
    }

    /// Destroys the GPU device, as a driver reset would (tests the CPU fallback). No-op on the CPU.
    #[wasm_bindgen(js_name = simulateDeviceLoss)]
    pub fn simulate_device_loss(&self) {
        if let Inner::Whole(state) = &self.inner {
            state.borrow().backend.simulate_device_loss();
        }
    }
}

#[wasm_bindgen]
impl Recommender {
    /// The list `request` asks for (see the `ListRequest` and `List` interfaces; `lists.rs`, and
    /// `stream.rs` for a streamed catalogue).
    #[wasm_bindgen(unchecked_return_type = "Promise<List>")]
    pub fn list(&self, #[wasm_bindgen(unchecked_param_type = "ListRequest")] request: JsValue) -> js_sys::Promise {
        let inner = self.inner.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            match inner {
                Inner::Whole(state) => Ok(lists::list(&state, &request).await?),
                Inner::Streamed(s) => Ok(stream::list(&s, &request).await?),
            }
        })
    }
}

impl Recommender {
    async fn load_inner(manifest_url: &str, options: &JsValue) -> Result<Recommender, JsError> {
        let options = Options::parse(options)?;
        let mut fetcher = Fetcher::new(manifest_url, options.cache, options.on_progress.clone())?;
        let manifest_bytes = fetcher.manifest().await?;
        let manifest = Manifest::from_json(&manifest_bytes)?;
        if options.stream && omakase_runtime::index::StreamedCatalogue::streamable(&manifest) {
            let streamed = stream::Streamed::load(manifest, fetcher).await?;
            return Ok(Recommender { inner: Inner::Streamed(Rc::new(RefCell::new(streamed))) });
        }
        let bundle_key = omakase_runtime::manifest::sha256_hex(&manifest_bytes);
        let mut wanted = vec![&manifest.sequence_tower, &manifest.items];
        // Merchandising: the columns rules read and the popularity lists (small; always fetched).
        wanted.extend(manifest.columns.iter().chain(&manifest.popularity));
        wanted.extend(manifest.shards.iter().map(|s| &s.file));
        if let (true, Some(explain)) = (options.explain, &manifest.explain) {
            wanted.extend(explain.text.iter().chain(&explain.image).map(|s| &s.file));
        }
        if let (true, Some(tower)) = (options.item_tower, &manifest.item_tower) {
            wanted.push(tower);
        }
        fetcher.total =
            wanted.iter().map(|e| e.bytes).sum::<u64>() + manifest.deltas.iter().map(|d| d.file.bytes).sum::<u64>();
        let mut files: HashMap<String, Vec<u8>> = HashMap::new();
        for entry in wanted {
            let bytes = fetcher.file(entry).await?;
            files.insert(entry.path.clone(), bytes);
        }
        // The base bundle, then each delta on its own: a bad one is reported, not fatal.
        let mut runtime = Runtime::from_manifest(&omakase_runtime::delta::base(&manifest), &files)?;
        let deltas = delta::apply_deltas(&mut fetcher, &manifest, &mut runtime).await;
        let tower = Some((files[&manifest.sequence_tower.path].as_slice(), manifest.sequence_tower.path.as_str()));
        let backend = choose(runtime, options.backend.clone(), tower, bundle_key, "bundle", &fetcher).await;
        let mut state = State::new(backend, &fetcher);
        state.deltas = deltas;
        drop(files);
        state.manifest = Some(manifest);
        state.fetcher = Some(fetcher);
        Ok(Recommender { inner: Inner::Whole(Rc::new(RefCell::new(state))) })
    }

    async fn synthetic_inner(
        manifest_url: &str,
        count: usize,
        seed: u32,
        options: &JsValue,
    ) -> Result<Recommender, JsError> {
        let options = Options::parse(options)?;
        if count == 0 {
            return Err(argument("count", "must be at least 1"));
        }
        let mut fetcher = Fetcher::new(manifest_url, options.cache, options.on_progress.clone())?;
        let manifest_bytes = fetcher.manifest().await?;
        let manifest = Manifest::from_json(&manifest_bytes)?;
        // Its own key: a synthetic catalogue is not the bundle's (its size is in the remembered choice).
        let bundle_key = format!("synthetic:{}", omakase_runtime::manifest::sha256_hex(&manifest_bytes));
        fetcher.total = manifest.sequence_tower.bytes;
        let tower_bytes = fetcher.file(&manifest.sequence_tower).await?;
        let d = manifest.dim;
        let mut lcg = (seed as u64) ^ 0x9E37_79B9_7F4A_7C15;
        let mut vectors = Vec::with_capacity(count * d);
        for _ in 0..count * d {
            lcg = lcg.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            vectors.push(((lcg >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0);
        }
        let ids = (0..count).map(|i| format!("syn-{i}")).collect();
        let runtime = Runtime::from_parts(manifest.model.clone(), &tower_bytes, &vectors, ids, EmbeddingDtype::Int8)?;
        drop(vectors);
        let tower = Some((tower_bytes.as_slice(), manifest.sequence_tower.path.as_str()));
        let backend = choose(runtime, options.backend.clone(), tower, bundle_key, "synthetic", &fetcher).await;
        let mut state = State::new(backend, &fetcher);
        state.synthetic = true;
        Ok(Recommender { inner: Inner::Whole(Rc::new(RefCell::new(state))) })
    }
}

/// The runtime's choice of backend for `runtime`, with the choice remembered for `bundle_key` (the
/// manifest's sha256) read from and written to the Cache API (`slot`: the bundle's or a synthetic
/// catalogue's). A failure is a console warning; the choice itself (no WebGPU included) is one
/// debug line.
async fn choose(
    runtime: Runtime,
    mut options: BackendOptions,
    tower: Option<(&[u8], &str)>,
    bundle_key: String,
    slot: &str,
    fetcher: &Fetcher,
) -> Backend {
    if options.preference == BackendPreference::Auto {
        options.remembered = fetcher.remembered_choice(slot).await.as_deref().and_then(RememberedChoice::from_json);
        options.bundle = Some(bundle_key);
    }
    let (backend, warning) = Backend::choose_with(runtime, &options, tower, &fetch::now).await;
    if let Some(warning) = &warning {
        warn(warning);
    }
    let choice = backend.choice();
    web_sys::console::debug_1(
        &format!("omakase: backend {} ({}): {}", backend.name(), choice.reason.as_str(), backend.note()).into(),
    );
    if let (omakase_runtime::ChoiceReason::Measured, Some(remember)) = (choice.reason, &choice.remember) {
        fetcher.remember_choice(slot, &remember.to_json()).await;
    }
    backend
}

fn warn(message: &str) {
    web_sys::console::warn_1(&format!("omakase: {message}").into());
}

// The borrow is held across the GPU await on purpose: every other call takes its borrow with
// try_borrow(_mut) and rejects with `Busy` meanwhile (no panic), and the worker queues calls anyway.
#[allow(clippy::await_holding_refcell_ref)]
async fn recommend(state: &Rc<RefCell<State>>, session: &[String], k: usize) -> Result<JsValue, JsError> {
    let st = state.try_borrow().map_err(|_| busy())?;
    let answer = st.backend.recommend(session, k).await?;
    if let Some(warning) = &answer.warning {
        warn(warning);
    }
    Ok(to_js(st.runtime(), &answer.recommendations, &answer.backend))
}

// The borrow is held across the GPU await on purpose (see `recommend`).
#[allow(clippy::await_holding_refcell_ref)]
async fn add_item(state: &Rc<RefCell<State>>, meta: ItemMeta, vectors: ItemVectors) -> Result<JsValue, JsError> {
    let mut st = state.try_borrow_mut().map_err(|_| busy())?;
    let (row, warning) = st.backend.add_item(meta, &vectors).await?;
    if let Some(warning) = &warning {
        warn(warning);
    }
    Ok(row.into())
}

async fn ensure_item_tower(state: &Rc<RefCell<State>>) -> Result<(), JsError> {
    let (entry, mut fetcher) = {
        let mut st = state.try_borrow_mut().map_err(|_| busy())?;
        if st.runtime().has_item_tower() {
            return Ok(());
        }
        let entry = st.manifest.as_ref().and_then(|m| m.item_tower.clone()).ok_or_else(|| {
            JsError(js_error("NotInBundle", "the item tower is not in this bundle (re-export it with one)", None))
        })?;
        // Taken while the download runs (the worker queues calls; a concurrent caller gets Busy).
        let fetcher = st.fetcher.take().ok_or_else(busy)?;
        (entry, fetcher)
    };
    fetcher.total = entry.bytes;
    fetcher.loaded = 0;
    let bytes = fetcher.file(&entry).await;
    let mut st = state.try_borrow_mut().map_err(|_| busy())?;
    st.fetcher = Some(fetcher);
    st.backend.runtime_mut().load_item_tower(&entry, &bytes?)?;
    Ok(())
}

fn set(object: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &key.into(), value);
}

fn meta_to_js(meta: &ItemMeta) -> JsValue {
    let out = Object::new();
    set(&out, "id", &meta.id.as_str().into());
    set(&out, "title", &meta.title.as_str().into());
    set(&out, "image", &meta.image.as_deref().map_or(JsValue::NULL, JsValue::from));
    set(&out, "link", &meta.link.as_deref().map_or(JsValue::NULL, JsValue::from));
    out.into()
}

fn meta_from_js(id: String, meta: &JsValue) -> Result<ItemMeta, JsError> {
    let text = |key: &str| -> Result<Option<String>, JsError> {
        if !meta.is_object() {
            return Ok(None);
        }
        match Reflect::get(meta, &key.into()).unwrap_or(JsValue::UNDEFINED) {
            v if v.is_undefined() || v.is_null() => Ok(None),
            v => v.as_string().map(Some).ok_or_else(|| argument(&format!("meta.{key}"), "must be a string")),
        }
    };
    Ok(ItemMeta { id, title: text("title")?.unwrap_or_default(), image: text("image")?, link: text("link")? })
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> js_sys::Array {
    values.map(JsValue::from).collect()
}

/// `Recommendations` as flat typed arrays (see the `Recommendations` TypeScript interface), the
/// whole bundle's (cards from its runtime, search "exact").
fn to_js(runtime: &Runtime, result: &Recommendations, backend: &str) -> JsValue {
    let metas: js_sys::Array = result.items.iter().filter_map(|r| runtime.item(r.row)).map(meta_to_js).collect();
    let search = lists::search_js("exact", 0, &[], &[], runtime.item_count(), &js_sys::Array::new());
    recommendations_js(result, metas, backend, search)
}

/// `Recommendations` as flat typed arrays with their cards (`metas[i]` of `result.items[i]`) and search.
fn recommendations_js(result: &Recommendations, metas: js_sys::Array, backend: &str, search: JsValue) -> JsValue {
    let items = &result.items;
    let option = |v: Option<f32>| v.unwrap_or(f32::NAN);
    let floats =
        |f: &dyn Fn(&Recommendation) -> f32| Float32Array::from(items.iter().map(f).collect::<Vec<_>>().as_slice());
    let explanations = Object::new();
    let session_rows: Vec<u32> = items.iter().map(|r| r.explanation.session_row).collect();
    set(&explanations, "sessionRows", &Uint32Array::from(session_rows.as_slice()).into());
    set(&explanations, "sessionIds", &strings(items.iter().map(|r| r.explanation.session_id.as_str())).into());
    set(&explanations, "similarity", &floats(&|r| r.explanation.similarity).into());
    set(&explanations, "textSimilarity", &floats(&|r| option(r.explanation.text_similarity)).into());
    set(&explanations, "imageSimilarity", &floats(&|r| option(r.explanation.image_similarity)).into());
    set(&explanations, "textShare", &floats(&|r| option(r.explanation.text_share)).into());
    let out = Object::new();
    let rows: Vec<u32> = items.iter().map(|r| r.row).collect();
    set(&out, "rows", &Uint32Array::from(rows.as_slice()).into());
    set(&out, "ids", &strings(items.iter().map(|r| r.id.as_str())).into());
    set(&out, "scores", &floats(&|r| r.score).into());
    set(&out, "items", &metas.into());
    set(&out, "explanations", &explanations.into());
    set(&out, "unknown", &strings(result.unknown.iter().map(String::as_str)).into());
    set(&out, "used", &Uint32Array::from(result.used.as_slice()).into());
    set(&out, "backend", &backend.into());
    set(&out, "search", &search);
    out.into()
}
