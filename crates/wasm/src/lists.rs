//! `Recommender.list`: the element's lists — a scenario under merchandising rules — on the runtime's
//! `Runtime::answer` (crates/runtime/src/scenario.rs), so the browser and `omakase recommend` give
//! the same list for the same text. The rules arrive as the attributes' text and are compiled here
//! once per text (the last one is kept: a page asks for the same rules at every render).
//!
//! `for-you` without rules on a known session goes through the backend (WebGPU when it was chosen);
//! every other list is computed by the CPU kernels (`wasm-simd`), which the rules' scan lives in.
//! A malformed rule, a rule on a field the bundle lacks or an unknown scenario rejects with kind
//! `Rule` and `attribute` naming the attribute, so the element can report it and ask again without.

use js_sys::{Array, Float32Array, Object, Reflect, Uint32Array, Uint8Array};
use wasm_bindgen::prelude::*;

use super::error::{argument, busy, js_error, JsError};
use super::{set, strings, State};
use omakase_runtime::scenario::Scenario;
use omakase_runtime::{Facts, List, ListItem, Request, RuleText, Rules, RuntimeError};

#[wasm_bindgen(typescript_custom_section)]
const TYPES: &'static str = r#"
/** What `Recommender.list` is asked (rules are the element attributes' text: docs/rules.md). */
export interface ListRequest {
  /** Default "for-you". */
  scenario?: string;
  /** The visitor's views, oldest first. */
  session?: string[];
  /** The page's product (the anchor of "similar"; never listed). */
  product?: string | null;
  k: number;
  filter?: string | null;
  boost?: string | null;
  exclude?: string | null;
  pin?: string | null;
  diversity?: string | null;
  /** Run-time facts as JSON text: {"in_stock": {"12": false}, "price": {"12": 8.5}}. */
  facts?: string | null;
  /** A streamed catalogue: answer at once from what is here (`search.missing` says what was not). Default false. */
  partial?: boolean;
  /** A streamed catalogue: partitions to probe; default the manifest's `index.nprobe`. */
  nprobe?: number;
}

/** A list: the `Recommendations` arrays, and which scenario made it. Items without an explanation
 *  (popular, recently-viewed) have `explained[i]` 0 and NaN similarities. */
export interface List extends Recommendations {
  /** The scenario asked for. */
  scenario: string;
  /** The scenario that made the list ("popular" when `fallback` is set). */
  source: string;
  /** Why another scenario's list: "no-history", "unknown-product", "no-product"; null otherwise. */
  fallback: string | null;
  /** Why a list is empty for a reason other than the rules (e.g. a bundle without popularity). */
  note: string | null;
  /** 1 where a pin put the item. */
  pinned: Uint8Array;
  /** 1 where the item has an explanation. */
  explained: Uint8Array;
  /** Pins the list could not show, and why. */
  droppedPins: { id: string; reason: string }[];
}
"#;

/// One optional string field of the request.
fn text(request: &JsValue, key: &str) -> Result<Option<String>, JsError> {
    match Reflect::get(request, &key.into()).unwrap_or(JsValue::UNDEFINED) {
        v if v.is_undefined() || v.is_null() => Ok(None),
        v => v.as_string().map(Some).ok_or_else(|| argument(&format!("request.{key}"), "must be a string")),
    }
}

/// A rule error as the element reads it: kind "Rule", `attribute` the attribute at fault.
pub(crate) fn rule_error(e: RuntimeError) -> JsError {
    match &e {
        RuntimeError::Rule { attribute, .. } => {
            let error = js_error("Rule", &e.to_string(), None);
            let _ = Reflect::set(&error, &"attribute".into(), &attribute.as_str().into());
            JsError(error)
        }
        _ => JsError::from(e),
    }
}

/// A `ListRequest`, checked.
pub(crate) struct Parsed {
    pub scenario: Scenario,
    pub k: usize,
    pub session: Vec<String>,
    pub product: Option<String>,
    /// filter, boost, exclude, pin, diversity (the attributes' text).
    pub text: [Option<String>; 5],
    pub facts: Option<String>,
    pub rules: Rules,
    pub partial: bool,
    pub nprobe: Option<usize>,
}

/// Reads and checks a `ListRequest` (rules parsed, not compiled).
pub(crate) fn parse(request: &JsValue) -> Result<Parsed, JsError> {
    if !request.is_object() {
        return Err(argument("request", "must be an object { scenario, session, product, k, ... }"));
    }
    let scenario = match text(request, "scenario")? {
        Some(name) => Scenario::parse(&name).map_err(rule_error)?,
        None => Scenario::ForYou,
    };
    let k = Reflect::get(request, &"k".into()).ok().and_then(|v| v.as_f64()).unwrap_or(10.0);
    if !((1.0..=1000.0).contains(&k) && k.fract() == 0.0) {
        return Err(argument("request.k", "must be a whole number from 1 to 1000"));
    }
    let session: Vec<String> = match Reflect::get(request, &"session".into()).unwrap_or(JsValue::UNDEFINED) {
        v if v.is_undefined() || v.is_null() => Vec::new(),
        v if js_sys::Array::is_array(&v) => js_sys::Array::from(&v)
            .iter()
            .map(|id| id.as_string().ok_or_else(|| argument("request.session", "must hold strings")))
            .collect::<Result<_, _>>()?,
        _ => return Err(argument("request.session", "must be an array of ids")),
    };
    let product = text(request, "product")?;
    let fields = ["filter", "boost", "exclude", "pin", "diversity"].map(|key| text(request, key));
    let [filter, boost, exclude, pin, diversity] = fields;
    let text_fields = [filter?, boost?, exclude?, pin?, diversity?];
    let facts = text(request, "facts")?;
    let [filter, boost, exclude, pin, diversity] = &text_fields;
    let rule_text = RuleText {
        filter: filter.as_deref(),
        boost: boost.as_deref(),
        exclude: exclude.as_deref(),
        pin: pin.as_deref(),
        diversity: diversity.as_deref(),
    };
    let rules = Rules::parse(&rule_text).map_err(rule_error)?;
    let (partial, nprobe) = partial_and_nprobe(request, "request")?;
    Ok(Parsed { scenario, k: k as usize, session, product, text: text_fields, facts, rules, partial, nprobe })
}

// The borrow is held across the GPU await on purpose, as in `recommend` (lib.rs).
#[allow(clippy::await_holding_refcell_ref)]
pub(crate) async fn list(
    state: &std::rc::Rc<std::cell::RefCell<State>>,
    request: &JsValue,
) -> Result<JsValue, JsError> {
    let Parsed { scenario, k, session, product, text: rule_text, facts, rules, .. } = parse(request)?;
    let [filter, boost, exclude, pin, diversity] = rule_text;
    let plain = rules.is_empty() && facts.is_none();

    let mut st = state.try_borrow_mut().map_err(|_| busy())?;
    let known = session.iter().any(|id| st.runtime().row_of(id).is_some());
    if plain && scenario == Scenario::ForYou && known {
        let answer = st.backend.recommend(&session, k).await?;
        if let Some(warning) = &answer.warning {
            super::warn(warning);
        }
        let r = answer.recommendations;
        let items = r
            .items
            .into_iter()
            .map(|i| ListItem { row: i.row, id: i.id, score: i.score, pinned: false, explanation: Some(i.explanation) })
            .collect();
        let list = List {
            scenario,
            source: scenario,
            fallback: None,
            items,
            unknown: r.unknown,
            used: r.used,
            dropped_pins: Vec::new(),
            note: None,
        };
        return Ok(whole_to_js(&st, &list, &answer.backend));
    }
    let key = format!(
        "{}\u{1}{:?}\u{1}{:?}\u{1}{:?}\u{1}{:?}\u{1}{:?}\u{1}{:?}",
        st.runtime().item_count(),
        filter,
        boost,
        exclude,
        pin,
        diversity,
        facts
    );
    if st.rules.as_ref().is_none_or(|(cached, _)| *cached != key) {
        let facts = facts.as_deref().map(Facts::parse).transpose().map_err(rule_error)?;
        let compiled = st.runtime().compile_rules(&rules, facts.as_ref()).map_err(rule_error)?;
        st.rules = Some((key, compiled));
    }
    let compiled = &st.rules.as_ref().expect("compiled just above").1;
    let request = Request { scenario, session: &session, product: product.as_deref(), k, rules: compiled };
    let list = st.runtime().answer(&request)?;
    let backend = if omakase_runtime::kernels::path() == "simd128" { "wasm-simd" } else { "wasm-scalar" };
    Ok(whole_to_js(&st, &list, backend))
}

fn e(item: &ListItem) -> Option<&omakase_runtime::Explanation> {
    item.explanation.as_ref()
}

/// A whole bundle's `List`: cards from its runtime, search "exact" when rows were scanned.
fn whole_to_js(st: &State, list: &List, backend: &str) -> JsValue {
    let runtime = st.runtime();
    let metas: js_sys::Array = list.items.iter().filter_map(|i| runtime.item(i.row)).map(super::meta_to_js).collect();
    let scanned = list.fallback.is_none() && matches!(list.source, Scenario::ForYou | Scenario::Similar);
    let (path, rows) = if scanned { ("exact", runtime.item_count()) } else { ("none", 0) };
    let search = search_js(path, 0, &[], &[], rows, &js_sys::Array::new());
    to_js(list, metas, backend, search)
}

/// `List` as flat typed arrays (the `List` TypeScript interface), with its cards (`metas[i]` of
/// `list.items[i]`) and search.
pub(crate) fn to_js(list: &List, metas: js_sys::Array, backend: &str, search: JsValue) -> JsValue {
    let items = &list.items;
    let floats = |f: &dyn Fn(&ListItem) -> f32| Float32Array::from(items.iter().map(f).collect::<Vec<_>>().as_slice());
    let nan = f32::NAN;
    let explanations = Object::new();
    let session_rows: Vec<u32> = items.iter().map(|i| e(i).map_or(0, |x| x.session_row)).collect();
    set(&explanations, "sessionRows", &Uint32Array::from(session_rows.as_slice()).into());
    set(&explanations, "sessionIds", &strings(items.iter().map(|i| e(i).map_or("", |x| x.session_id.as_str()))).into());
    set(&explanations, "similarity", &floats(&|i| e(i).map_or(nan, |x| x.similarity)).into());
    set(&explanations, "textSimilarity", &floats(&|i| e(i).and_then(|x| x.text_similarity).unwrap_or(nan)).into());
    set(&explanations, "imageSimilarity", &floats(&|i| e(i).and_then(|x| x.image_similarity).unwrap_or(nan)).into());
    set(&explanations, "textShare", &floats(&|i| e(i).and_then(|x| x.text_share).unwrap_or(nan)).into());
    let out = Object::new();
    let rows: Vec<u32> = items.iter().map(|i| i.row).collect();
    set(&out, "rows", &Uint32Array::from(rows.as_slice()).into());
    set(&out, "ids", &strings(items.iter().map(|i| i.id.as_str())).into());
    set(&out, "scores", &floats(&|i| i.score).into());
    set(&out, "items", &metas.into());
    set(&out, "search", &search);
    set(&out, "explanations", &explanations.into());
    let flags = |f: &dyn Fn(&ListItem) -> bool| {
        Uint8Array::from(items.iter().map(|i| f(i) as u8).collect::<Vec<_>>().as_slice())
    };
    set(&out, "pinned", &flags(&|i| i.pinned).into());
    set(&out, "explained", &flags(&|i| i.explanation.is_some()).into());
    set(&out, "unknown", &strings(list.unknown.iter().map(String::as_str)).into());
    set(&out, "used", &Uint32Array::from(list.used.as_slice()).into());
    set(&out, "backend", &backend.into());
    set(&out, "scenario", &list.scenario.as_str().into());
    set(&out, "source", &list.source.as_str().into());
    set(&out, "fallback", &list.fallback.map_or(JsValue::NULL, |f| f.as_str().into()));
    set(&out, "note", &list.note.as_deref().map_or(JsValue::NULL, JsValue::from));
    let dropped: js_sys::Array = list
        .dropped_pins
        .iter()
        .map(|d| {
            let o = Object::new();
            set(&o, "id", &d.id.as_str().into());
            set(&o, "reason", &d.reason.as_str().into());
            JsValue::from(o)
        })
        .collect();
    set(&out, "droppedPins", &dropped.into());
    out.into()
}

/// `SearchInfo`.
pub(crate) fn search_js(
    path: &str,
    nprobe: usize,
    probed: &[usize],
    missing: &[usize],
    rows_scanned: usize,
    refused: &Array,
) -> JsValue {
    let numbers = |v: &[usize]| -> Array { v.iter().map(|&p| JsValue::from(p as u32)).collect() };
    let out = Object::new();
    set(&out, "path", &path.into());
    set(&out, "nprobe", &(nprobe as u32).into());
    set(&out, "probed", &numbers(probed).into());
    set(&out, "missing", &numbers(missing).into());
    set(&out, "rowsScanned", &(rows_scanned as f64).into());
    set(&out, "refused", refused);
    out.into()
}

/// `partial` and `nprobe` of an options object or a request (`what` names it in errors).
pub(crate) fn partial_and_nprobe(options: &JsValue, what: &str) -> Result<(bool, Option<usize>), JsError> {
    if !options.is_object() {
        return Ok((false, None));
    }
    let partial = match Reflect::get(options, &"partial".into()).unwrap_or(JsValue::UNDEFINED) {
        v if v.is_undefined() || v.is_null() => false,
        v => v.as_bool().ok_or_else(|| argument(&format!("{what}.partial"), "must be a boolean"))?,
    };
    let nprobe = match Reflect::get(options, &"nprobe".into()).unwrap_or(JsValue::UNDEFINED) {
        v if v.is_undefined() || v.is_null() => None,
        v => match v.as_f64() {
            Some(n) if n >= 1.0 && n.fract() == 0.0 && n <= u32::MAX as f64 => Some(n as usize),
            _ => return Err(argument(&format!("{what}.nprobe"), "must be a whole number from 1")),
        },
    };
    Ok((partial, nprobe))
}
