//! Delta shards in the browser (docs/bundle.md § Deltas): at load, every delta the manifest lists is
//! fetched (Cache API, size and sha256 checked like every bundle file) and applied on its own, so a
//! bad one (tampered, of another model, an id twice) is reported, naming its file, while the bundle
//! and the other deltas still serve; and the admin page's `buildDelta`, which turns products embedded
//! in the owner's browser into a delta file and the manifest that lists it.

use js_sys::{Float32Array, Object, Reflect};
use wasm_bindgen::prelude::*;

use super::error::{argument, runtime_error, JsError};
use super::fetch::Fetcher;
use omakase_runtime::delta::{self, NewProduct};
use omakase_runtime::{ItemMeta, Manifest, Runtime};

/// What the load made of the manifest's deltas: `(file, rows)` applied, and one error object
/// `{ kind, file, message }` per delta left out.
#[derive(Default)]
pub(crate) struct DeltaStatus {
    pub loaded: Vec<(String, usize)>,
    pub failed: Vec<JsValue>,
}

impl DeltaStatus {
    /// `{ loaded: [{ file, rows }], failed: [{ kind, file, message }] }` (plain objects: they cross to
    /// the page by structured clone, which keeps an Error's message but not its `kind` or `file`).
    pub fn to_js(&self) -> JsValue {
        let loaded: js_sys::Array = self
            .loaded
            .iter()
            .map(|(file, rows)| {
                let o = Object::new();
                set(&o, "file", &file.as_str().into());
                set(&o, "rows", &(*rows as u32).into());
                JsValue::from(o)
            })
            .collect();
        let failed: js_sys::Array = self.failed.iter().cloned().collect();
        let out = Object::new();
        set(&out, "loaded", &loaded.into());
        set(&out, "failed", &failed.into());
        out.into()
    }
}

/// Fetches and applies each delta of `manifest` to `runtime` (the base bundle), in order; one that
/// cannot be fetched or fails a check is left out and reported.
pub(crate) async fn apply_deltas(fetcher: &mut Fetcher, manifest: &Manifest, runtime: &mut Runtime) -> DeltaStatus {
    let mut status = DeltaStatus::default();
    for entry in &manifest.deltas {
        let outcome = match fetcher.file(&entry.file).await {
            Ok(bytes) => delta::apply(runtime, manifest, entry, &bytes).map_err(|e| JsError(runtime_error(&e))),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(()) => status.loaded.push((entry.file.path.clone(), entry.rows)),
            Err(JsError(error)) => {
                web_sys::console::warn_1(
                    &format!("omakase: delta {} left out: {}", entry.file.path, message(&error)).into(),
                );
                status.failed.push(plain_error(&error, &entry.file.path));
            }
        }
    }
    status
}

/// The delta of `products` (`DeltaProduct[]`: card fields and frozen features) for the bundle of
/// `manifest` loaded as `runtime` (item tower loaded): `{ name, bytes, manifest, rows, ids }`, the
/// file to upload beside `manifest.json` and that manifest's new text.
pub(crate) fn build(runtime: &Runtime, manifest: &Manifest, products: &JsValue) -> Result<JsValue, JsError> {
    let list = products.dyn_ref::<js_sys::Array>().ok_or_else(|| argument("products", "must be an array"))?;
    let mut new = Vec::with_capacity(list.length() as usize);
    for (i, product) in list.iter().enumerate() {
        let at = |field: &str| format!("products[{i}].{field}");
        let text = |field: &str| -> Result<Option<String>, JsError> {
            match get(&product, field) {
                v if v.is_undefined() || v.is_null() => Ok(None),
                v => v.as_string().map(Some).ok_or_else(|| argument(&at(field), "must be a string")),
            }
        };
        let features = |field: &str| -> Result<Option<Vec<f32>>, JsError> {
            match get(&product, field) {
                v if v.is_undefined() || v.is_null() => Ok(None),
                v => v
                    .dyn_ref::<Float32Array>()
                    .map(|a| Some(a.to_vec()))
                    .ok_or_else(|| argument(&at(field), "must be a Float32Array")),
            }
        };
        let id = text("id")?.ok_or_else(|| argument(&at("id"), "a non-empty string is needed"))?;
        let meta =
            ItemMeta { id, title: text("title")?.unwrap_or_default(), image: text("image")?, link: text("link")? };
        let (text_features, image_features) = (features("textFeatures")?, features("imageFeatures")?);
        let vectors = runtime
            .embed_item(text_features.as_deref(), image_features.as_deref())
            .map_err(|e| argument(&format!("products[{i}] ({:?})", meta.id), e))?;
        new.push(NewProduct { meta, vectors });
    }
    let built = delta::build(manifest, runtime, &new)?;
    let out = Object::new();
    set(&out, "name", &built.name.as_str().into());
    set(&out, "bytes", &js_sys::Uint8Array::from(built.bytes.as_slice()).into());
    let text = String::from_utf8(built.manifest.to_json()).expect("serde_json writes UTF-8");
    set(&out, "manifest", &text.into());
    set(&out, "rows", &(new.len() as u32).into());
    let ids: js_sys::Array = new.iter().map(|p| JsValue::from(p.meta.id.as_str())).collect();
    set(&out, "ids", &ids.into());
    Ok(out.into())
}

/// A typed rejection as `{ kind, file, message }`, `file` defaulting to the delta's.
fn plain_error(error: &JsValue, file: &str) -> JsValue {
    let out = Object::new();
    set(&out, "kind", &get(error, "kind").as_string().unwrap_or_else(|| "Network".into()).into());
    set(&out, "file", &get(error, "file").as_string().unwrap_or_else(|| file.to_string()).into());
    set(&out, "message", &message(error).into());
    out.into()
}

fn message(error: &JsValue) -> String {
    get(error, "message").as_string().unwrap_or_else(|| format!("{error:?}"))
}

fn get(object: &JsValue, key: &str) -> JsValue {
    if object.is_object() {
        Reflect::get(object, &key.into()).unwrap_or(JsValue::UNDEFINED)
    } else {
        JsValue::UNDEFINED
    }
}

fn set(object: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(object, &key.into(), value);
}
