//! Fetching a bundle's files: the Cache API first (keyed by content hash), the network otherwise,
//! every file's size and sha256 checked before it is used or cached. A cached copy that fails the
//! check is evicted and downloaded again; a downloaded one that fails is refused
//! ([`RuntimeError::Checksum`] / [`RuntimeError::FileSize`], naming the file).

use wasm_bindgen::prelude::*;

use super::error::{runtime_error, JsError};
use omakase_runtime::manifest::FileEntry;
use omakase_runtime::{verify_file, RuntimeError};

#[wasm_bindgen(module = "/src/fetch.js")]
extern "C" {
    #[wasm_bindgen(js_name = cachedFile, catch)]
    async fn cached_file(url: &str, sha256: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = storeFile, catch)]
    async fn store_file(url: &str, sha256: &str, bytes: &js_sys::Uint8Array) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = evictFile, catch)]
    async fn evict_file(url: &str, sha256: &str) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = downloadFile, catch)]
    async fn download_file(
        url: &str,
        file: &str,
        before: f64,
        total: f64,
        on_progress: &JsValue,
    ) -> Result<JsValue, JsValue>;
    #[wasm_bindgen(js_name = resolveUrl, catch)]
    fn resolve_url(path: &str, base: &str) -> Result<String, JsValue>;
    #[wasm_bindgen(js_name = locationHref)]
    fn location_href() -> String;
    #[wasm_bindgen(js_name = rememberedChoice)]
    async fn remembered_choice(manifest_url: &str, slot: &str) -> JsValue;
    #[wasm_bindgen(js_name = rememberChoice)]
    async fn remember_choice(manifest_url: &str, slot: &str, json: &str);
    /// `performance.now()` (ms), the clock the backends are timed with.
    pub(crate) fn now() -> f64;
}

/// Where files come from and how progress is reported.
pub(crate) struct Fetcher {
    /// The manifest's absolute URL (files are resolved against it).
    pub base: String,
    pub use_cache: bool,
    pub on_progress: JsValue,
    /// Bytes delivered so far (cache hits count) and in all.
    pub loaded: u64,
    pub total: u64,
    /// Bytes that came over the network (not from the cache).
    pub downloaded: u64,
}

impl Fetcher {
    /// A fetcher for the bundle whose manifest is at `manifest_url` (relative to the page or worker).
    pub fn new(manifest_url: &str, use_cache: bool, on_progress: JsValue) -> Result<Fetcher, JsError> {
        let base = resolve_url(manifest_url, &location_href())
            .map_err(|_| super::error::argument("manifestUrl", format!("{manifest_url:?} is not a URL")))?;
        Ok(Fetcher { base, use_cache, on_progress, loaded: 0, total: 0, downloaded: 0 })
    }

    /// The backend choice stored in `slot` (`"bundle"`, `"synthetic"`) after an earlier load of this
    /// manifest (Cache API; never with `cache: false`), as the runtime's JSON, or `None`.
    pub async fn remembered_choice(&self, slot: &str) -> Option<String> {
        if !self.use_cache {
            return None;
        }
        remembered_choice(&self.base, slot).await.as_string()
    }

    /// Stores `json` (a `RememberedChoice`) in `slot` for the next load; failures are ignored.
    pub async fn remember_choice(&self, slot: &str, json: &str) {
        if self.use_cache {
            remember_choice(&self.base, slot, json).await;
        }
    }

    /// `manifest.json` itself: always from the network (it names the content of everything else).
    pub async fn manifest(&mut self) -> Result<Vec<u8>, JsError> {
        let bytes = download_file(&self.base, "manifest.json", 0.0, 0.0, &JsValue::UNDEFINED).await?;
        let bytes = js_sys::Uint8Array::from(bytes).to_vec();
        self.downloaded += bytes.len() as u64;
        Ok(bytes)
    }

    /// One bundle file, checked against its manifest entry.
    pub async fn file(&mut self, entry: &FileEntry) -> Result<Vec<u8>, JsError> {
        let url = resolve_url(&entry.path, &self.base)
            .map_err(|_| JsError(runtime_error(&RuntimeError::format(&entry.path, "not a valid URL path"))))?;
        if self.use_cache {
            if let Ok(hit) = cached_file(&url, &entry.sha256).await {
                if !hit.is_null() && !hit.is_undefined() {
                    let bytes = js_sys::Uint8Array::from(hit).to_vec();
                    if verify_file(entry, &bytes).is_ok() {
                        self.loaded += bytes.len() as u64;
                        self.report(&entry.path);
                        return Ok(bytes);
                    }
                    let _ = evict_file(&url, &entry.sha256).await;
                }
            }
        }
        let array = download_file(&url, &entry.path, self.loaded as f64, self.total as f64, &self.on_progress).await?;
        let array = js_sys::Uint8Array::from(array);
        let bytes = array.to_vec();
        verify_file(entry, &bytes).map_err(|e| JsError(runtime_error(&e)))?;
        self.loaded += bytes.len() as u64;
        self.downloaded += bytes.len() as u64;
        if self.use_cache {
            let _ = store_file(&url, &entry.sha256, &array).await;
        }
        Ok(bytes)
    }

    /// A fetcher of the same bundle with its own counters and no progress callback: what one of
    /// several concurrent downloads runs on ([`Fetcher::account`] then adds its bytes here).
    pub fn detached(&self) -> Fetcher {
        Fetcher {
            base: self.base.clone(),
            use_cache: self.use_cache,
            on_progress: JsValue::UNDEFINED,
            loaded: 0,
            total: 0,
            downloaded: 0,
        }
    }

    /// Counts a file a [`Fetcher::detached`] fetcher delivered (`downloaded`: of its `bytes`, those
    /// that came over the network) and reports the progress.
    pub fn account(&mut self, file: &str, bytes: u64, downloaded: u64) {
        self.loaded += bytes;
        self.downloaded += downloaded;
        self.report(file);
    }

    fn report(&self, file: &str) {
        if let Some(callback) = self.on_progress.dyn_ref::<js_sys::Function>() {
            let event = js_sys::Object::new();
            let _ = js_sys::Reflect::set(&event, &"file".into(), &file.into());
            let _ = js_sys::Reflect::set(&event, &"loaded".into(), &(self.loaded as f64).into());
            let _ = js_sys::Reflect::set(&event, &"total".into(), &(self.total as f64).into());
            let _ = callback.call1(&JsValue::NULL, &event);
        }
    }
}
