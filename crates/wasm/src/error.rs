//! Typed JavaScript errors of the facade: every rejection is an `Error` whose `name` is
//! `"OmakaseError"`, with `kind` (the [`RuntimeError`] variant, or `Network`, `MissingFile`, `Busy`,
//! `Gpu`, `Options`) and, when a bundle file is at fault, `file`. A page can branch on `kind` without
//! parsing messages; the message is the runtime's own, naming the file or field.

use wasm_bindgen::JsValue;

use omakase_runtime::RuntimeError;

/// A JS `Error` with `name = "OmakaseError"`, `kind` and an optional `file`.
pub(crate) fn js_error(kind: &str, message: &str, file: Option<&str>) -> JsValue {
    let error = js_sys::Error::new(message);
    error.set_name("OmakaseError");
    let object: &JsValue = error.as_ref();
    let _ = js_sys::Reflect::set(object, &"kind".into(), &kind.into());
    if let Some(file) = file {
        let _ = js_sys::Reflect::set(object, &"file".into(), &file.into());
    }
    error.into()
}

/// The runtime's error as a typed JS error (the variant's name is the `kind`).
pub(crate) fn runtime_error(e: &RuntimeError) -> JsValue {
    let manifest = Some("manifest.json");
    #[allow(unreachable_patterns)] // a variant added to RuntimeError later still maps to a kind
    let (kind, file): (&str, Option<&str>) = match e {
        RuntimeError::ManifestJson { .. } => ("ManifestJson", manifest),
        RuntimeError::UnsupportedVersion { .. } => ("UnsupportedVersion", manifest),
        RuntimeError::ManifestField { .. } => ("ManifestField", manifest),
        RuntimeError::MissingFile { file } => ("MissingFile", Some(file)),
        RuntimeError::FileSize { file, .. } => ("FileSize", Some(file)),
        RuntimeError::Checksum { file, .. } => ("Checksum", Some(file)),
        RuntimeError::Format { file, .. } => ("Format", Some(file)),
        RuntimeError::Tensor { file, .. } => ("Tensor", Some(file)),
        RuntimeError::EmptySession { .. } => ("EmptySession", None),
        RuntimeError::BadArgument { .. } => ("BadArgument", None),
        RuntimeError::NotInBundle { .. } => ("NotInBundle", None),
        _ => ("Runtime", None),
    };
    js_error(kind, &e.to_string(), file)
}

impl From<RuntimeError> for JsError {
    fn from(e: RuntimeError) -> Self {
        JsError(runtime_error(&e))
    }
}

/// A rejection value on its way to JS (lets `?` convert runtime errors).
pub(crate) struct JsError(pub JsValue);

impl From<JsValue> for JsError {
    fn from(value: JsValue) -> Self {
        JsError(value)
    }
}

impl From<JsError> for JsValue {
    fn from(e: JsError) -> Self {
        e.0
    }
}

pub(crate) fn argument(what: &str, reason: impl std::fmt::Display) -> JsError {
    JsError(js_error("BadArgument", &format!("{what}: {reason}"), None))
}

pub(crate) fn busy() -> JsError {
    JsError(js_error(
        "Busy",
        "the recommender is busy with another call (await it, or send calls through the worker's queue)",
        None,
    ))
}
