//! A streamed catalogue in the browser (issue 17; docs/bundle.md § Index, "Streamed reader's
//! files"): the runtime's `StreamedCatalogue` with the files it asks for fetched through the
//! `Fetcher` (Cache API, size and sha256 checked before use, progress in bytes).
//!
//! ```text
//! load:      manifest ─► sequence tower + centroids + popular.json           (nothing per item)
//! recommend: needs() ─► fetch ─► insert() ─► … until nothing is missing ─► answer  (partial: at once)
//!            (rows of the probed partitions, metadata of the partitions the hits are in)
//! prefetch:  whole partitions (rows + metadata) in file order, most popular first, within a budget
//! ```
//!
//! A file refused on arrival (truncated, tampered: its sha256) or that cannot be downloaded is
//! reported in the answer's `search.refused` (naming it) and the answer uses what was verified:
//! its partition is `missing`. Everything runs on the CPU kernels (`wasm-simd`): a probe scans a
//! few thousand rows, far below what a GPU dispatch pays for.

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

use super::error::{argument, busy, js_error, JsError};
use super::fetch::Fetcher;
use super::lists::{self, partial_and_nprobe, rule_error, search_js};
use super::{meta_to_js, recommendations_js, set};
use omakase_runtime::index::{StreamAnswer, StreamFile, StreamRequest, StreamedCatalogue};
use omakase_runtime::manifest::FileEntry;
use omakase_runtime::scenario::Fallback;
use omakase_runtime::{
    Explanation, Facts, ItemMeta, Manifest, Recommendation, Recommendations, Rules, RuntimeError, Scenario,
};

/// Partitions one prefetch round downloads together (two files each).
const PREFETCH_BATCH: usize = 8;

/// A file the background fetched: path, bytes, and of them those that came over the network.
type Arrival = (String, Vec<u8>, u64);

/// A streamed catalogue and where its files come from.
pub(crate) struct Streamed {
    catalogue: StreamedCatalogue,
    fetcher: Fetcher,
    /// Every file a reader streaming the whole catalogue would fetch, in bytes.
    bundle_bytes: u64,
    /// Files fetched in the background `(path, bytes, bytes that came over the network)`, inserted
    /// (checked) by the next full answer, `prefetch` or `streamStats`, never by a partial answer
    /// (see `answer`): the background never holds the catalogue, so a call meanwhile is never Busy
    /// because of it.
    arrivals: Rc<RefCell<Vec<Arrival>>>,
    /// Paths being fetched in the background.
    in_flight: Rc<RefCell<HashSet<String>>>,
}

impl Streamed {
    /// The load: the sequence tower, the centroids and popular.json, nothing per item.
    pub async fn load(manifest: Manifest, mut fetcher: Fetcher) -> Result<Streamed, JsError> {
        let index = manifest.index.clone().expect("a streamable manifest has an index");
        fetcher.total =
            manifest.sequence_tower.bytes + index.centroids.bytes + index.popular.as_ref().map_or(0, |p| p.bytes);
        let tower = fetcher.file(&manifest.sequence_tower).await?;
        let centroids = fetcher.file(&index.centroids).await?;
        let mut catalogue = StreamedCatalogue::new(&manifest, &tower, &centroids)?;
        drop((tower, centroids));
        if let Some(popular) = &index.popular {
            let bytes = fetcher.file(popular).await?;
            catalogue.insert(&popular.path, &bytes)?;
        }
        let per_item: u64 = manifest.shards.iter().map(|s| s.file.bytes).sum::<u64>()
            + manifest.stream_files().iter().filter(|(f, _)| f != "index.popular").map(|(_, e)| e.bytes).sum::<u64>();
        let bundle_bytes = fetcher.total + per_item;
        Ok(Streamed { catalogue, fetcher, bundle_bytes, arrivals: Rc::default(), in_flight: Rc::default() })
    }

    pub fn manifest(&self) -> &Manifest {
        self.catalogue.manifest()
    }

    pub fn item(&self, row: u32) -> Option<ItemMeta> {
        self.catalogue.card(row).cloned()
    }

    pub fn row_of(&self, id: &str) -> Option<u32> {
        self.catalogue.row_of(id)
    }

    pub fn item_vector(&self, row: u32) -> Option<Vec<f32>> {
        self.catalogue.vector(row)
    }

    /// `{ downloaded, bundle }` as `loadStats` gives them.
    pub fn load_stats(&self) -> JsValue {
        let out = Object::new();
        set(&out, "downloaded", &(self.fetcher.downloaded as f64).into());
        set(&out, "bundle", &(self.bundle_bytes as f64).into());
        out.into()
    }

    /// Inserts what the background brought (a file refused now is warned about and left out).
    pub fn drain(&mut self) {
        let arrivals: Vec<Arrival> = self.arrivals.borrow_mut().drain(..).collect();
        for (path, bytes, downloaded) in arrivals {
            self.fetcher.account(&path, bytes.len() as u64, downloaded);
            if let Err(e) = self.catalogue.insert(&path, &bytes) {
                super::warn(&e.to_string());
            }
        }
    }

    /// Starts fetching `paths` in the background (each on its own; see `arrivals`), skipping those
    /// here or already on their way.
    fn background(&mut self, paths: Vec<String>) {
        for path in paths {
            let Some(kind) = self.catalogue.kind_of(&path) else { continue };
            if self.catalogue.has(kind) || !self.in_flight.borrow_mut().insert(path.clone()) {
                continue;
            }
            let entry = self.catalogue.entry(kind).expect("a listed file").clone();
            self.fetcher.total += entry.bytes;
            let (mut fetcher, arrivals, in_flight) =
                (self.fetcher.detached(), self.arrivals.clone(), self.in_flight.clone());
            wasm_bindgen_futures::spawn_local(async move {
                match fetcher.file(&entry).await {
                    Ok(bytes) => arrivals.borrow_mut().push((entry.path.clone(), bytes, fetcher.downloaded)),
                    Err(e) => super::warn(&failure_message(&e.0, &entry.path)),
                }
                in_flight.borrow_mut().remove(&entry.path);
            });
        }
    }

    pub fn stats_js(&self) -> JsValue {
        let stats = self.catalogue.stats();
        stats_js(stats.partitions, stats.present, self.fetcher.downloaded, stats.memory_bytes)
    }

    /// Fetches `paths` concurrently (the browser runs the downloads in parallel; the checks and
    /// inserts follow one by one, in order). Each is `Ok(bytes)` once inserted, or the plain object
    /// `{ kind, file, message }` of its failure (download, size, sha256, content), nothing of it kept.
    async fn fetch_all(&mut self, paths: &[String]) -> Vec<Result<u64, JsValue>> {
        let entries: Vec<FileEntry> = paths
            .iter()
            .map(|path| {
                let kind = self.catalogue.kind_of(path).expect("a path the catalogue asked for");
                self.catalogue.entry(kind).expect("a listed file").clone()
            })
            .collect();
        self.fetcher.total += entries.iter().map(|e| e.bytes).sum::<u64>();
        let downloads: Array = entries
            .iter()
            .map(|entry| {
                let (mut fetcher, entry) = (self.fetcher.detached(), entry.clone());
                // Never rejects: a failure is a value, so one bad file does not hide the others.
                JsValue::from(wasm_bindgen_futures::future_to_promise(async move {
                    let out = Object::new();
                    match fetcher.file(&entry).await {
                        Ok(bytes) => {
                            set(&out, "bytes", &js_sys::Uint8Array::from(bytes.as_slice()).into());
                            set(&out, "downloaded", &(fetcher.downloaded as f64).into());
                        }
                        Err(e) => set(&out, "error", &e.0),
                    }
                    Ok(out.into())
                }))
            })
            .collect();
        let settled = wasm_bindgen_futures::JsFuture::from(js_sys::Promise::all(&downloads)).await;
        let settled = settled.map(|all| Array::from(&all)).unwrap_or_else(|_| Array::new());
        let mut results = Vec::with_capacity(paths.len());
        for (i, (path, entry)) in paths.iter().zip(&entries).enumerate() {
            let outcome = settled.get(i as u32);
            let get = |key: &str| Reflect::get(&outcome, &key.into()).unwrap_or(JsValue::UNDEFINED);
            let (bytes, error) = (get("bytes"), get("error"));
            let result = if bytes.is_undefined() {
                let error = if error.is_undefined() { JsValue::from_str("download failed") } else { error };
                Err(failure(error, path))
            } else {
                let bytes = js_sys::Uint8Array::from(bytes).to_vec();
                self.fetcher.account(path, bytes.len() as u64, get("downloaded").as_f64().unwrap_or(0.0) as u64);
                self.catalogue.insert(path, &bytes).map(|_| entry.bytes).map_err(|e| failure(JsError::from(e).0, path))
            };
            results.push(result);
        }
        results
    }

    /// Fetches what `request` needs (unless `partial`), then answers from what is here: the files
    /// refused on the way are the second value, and their partitions are missing from the search.
    async fn answer(
        &mut self,
        request: &StreamRequest<'_>,
        nprobe: usize,
        partial: bool,
    ) -> Result<(StreamAnswer, Array), JsError> {
        if !partial {
            // A full answer waits for the network anyway: it inserts what the background brought
            // (rather than fetching it again). A partial answer must come at once: checking and
            // parsing a metadata file costs a few milliseconds in wasm, and a full answer sends
            // about `nprobe` of them to the background; inserted by the next partial answer they
            // made it take 35–42 ms instead of about 2 (scripts/bench-stream.mjs at 1M items,
            // bench/README.md § Index), so it answers from what is inserted already.
            self.drain();
        }
        let refused = Array::new();
        let mut refused_paths: Vec<String> = Vec::new();
        if !partial {
            // Each round is one stage (buckets, vectors, probed partitions, cards); a few suffice,
            // more only when rules widen the probe one partition at a time.
            for _ in 0..self.catalogue.ivf().partitions().len() + 8 {
                let needs: Vec<String> = self
                    .catalogue
                    .needs(request, nprobe)
                    .map_err(rule_error)?
                    .into_iter()
                    .filter(|p| !refused_paths.contains(p))
                    .collect();
                if needs.is_empty() {
                    break;
                }
                let results = self.fetch_all(&needs).await;
                for (path, result) in needs.into_iter().zip(results) {
                    if let Err(failed) = result {
                        let message = Reflect::get(&failed, &"message".into()).ok().and_then(|m| m.as_string());
                        super::warn(&message.unwrap_or_else(|| format!("{path}: refused")));
                        refused.push(&failed);
                        refused_paths.push(path);
                    }
                }
            }
        }
        if partial || refused.length() == 0 {
            let answer = self.catalogue.answer(request, nprobe, partial).map_err(rule_error)?;
            if !partial {
                // The whole answer fetched the probed partitions' rows and its hits' metadata; the
                // other probed partitions' metadata follows in the background, so that the next
                // partial answers (which must name their hits) can search them too.
                let cards: Vec<String> = answer
                    .search
                    .iter()
                    .flat_map(|s| &s.probed)
                    .filter(|&&p| self.catalogue.has(StreamFile::Rows(p)))
                    .filter_map(|&p| self.catalogue.entry(StreamFile::Metadata(p)).map(|e| e.path.clone()))
                    .collect();
                self.background(cards);
            }
            return Ok((answer, refused));
        }
        // A file was refused: answer from what is verified, never guessed. That answer scans only
        // partitions whose cards are here (it must name its hits), so first fetch the metadata of
        // the probed partitions whose rows came and metadata did not (a whole answer fetched only
        // its hits' partitions').
        let first = self.catalogue.answer(request, nprobe, true).map_err(rule_error)?;
        let cards: Vec<String> = first
            .search
            .iter()
            .flat_map(|s| &s.missing)
            .filter(|&&p| self.catalogue.has(StreamFile::Rows(p)))
            .filter_map(|&p| self.catalogue.entry(StreamFile::Metadata(p)).map(|e| e.path.clone()))
            .filter(|path| !refused_paths.contains(path))
            .collect();
        if cards.is_empty() {
            return Ok((first, refused));
        }
        for result in self.fetch_all(&cards).await {
            if let Err(failed) = result {
                refused.push(&failed);
            }
        }
        let answer = self.catalogue.answer(request, nprobe, true).map_err(rule_error)?;
        Ok((answer, refused))
    }

    fn nprobe(&self, asked: Option<usize>) -> usize {
        asked.unwrap_or_else(|| self.catalogue.ivf().nprobe())
    }
}

/// The message of a failed fetch's error (a JS Error or the facade's typed error).
fn failure_message(error: &JsValue, path: &str) -> String {
    Reflect::get(error, &"message".into())
        .ok()
        .and_then(|m| m.as_string())
        .unwrap_or_else(|| format!("{path}: download failed"))
}

/// `{ kind, file, message }` of a failed fetch or insert of `path` (a plain object: it crosses to
/// the page by structured clone, which keeps an Error's message but not its `kind` or `file`).
fn failure(error: JsValue, path: &str) -> JsValue {
    let text = |key: &str| Reflect::get(&error, &key.into()).ok().and_then(|v| v.as_string());
    let out = Object::new();
    set(&out, "kind", &text("kind").unwrap_or_else(|| "Network".into()).into());
    set(&out, "file", &text("file").unwrap_or_else(|| path.to_string()).into());
    set(&out, "message", &text("message").unwrap_or_else(|| format!("{path}: {error:?}")).into());
    out.into()
}

/// The scan kernels' name, as the whole bundle's CPU backend reports it.
pub(crate) fn backend_name() -> &'static str {
    if omakase_runtime::kernels::path() == "simd128" {
        "wasm-simd"
    } else {
        "wasm-scalar"
    }
}

pub(crate) fn backend_note() -> String {
    "a streamed catalogue: the probed partitions are scanned by the CPU kernels".into()
}

/// `BackendChoice` of a streamed catalogue: nothing measured.
pub(crate) fn backend_choice() -> JsValue {
    let out = Object::new();
    set(&out, "backend", &backend_name().into());
    set(&out, "reason", &"streamed".into());
    set(&out, "cpuMs", &JsValue::NULL);
    set(&out, "gpuMs", &JsValue::NULL);
    set(&out, "cpuCalls", &0.into());
    set(&out, "gpuCalls", &0.into());
    set(&out, "spentMs", &0.into());
    out.into()
}

/// What a streamed catalogue cannot do (it holds no whole catalogue).
pub(crate) fn not_streamed(what: &str) -> JsError {
    let message = format!("{what} needs the whole catalogue: load the bundle with {{ stream: false }}");
    JsError(js_error("NotInBundle", &message, None))
}

/// `StreamStats`, with the wasm module's linear memory as `memoryBytes`.
pub(crate) fn stats_js(partitions: usize, present: usize, downloaded: u64, partition_bytes: usize) -> JsValue {
    let memory = wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .ok()
        .and_then(|m| m.buffer().dyn_into::<js_sys::ArrayBuffer>().ok())
        .map_or(0.0, |b| b.byte_length() as f64);
    let out = Object::new();
    set(&out, "partitions", &(partitions as u32).into());
    set(&out, "present", &(present as u32).into());
    set(&out, "bytesDownloaded", &(downloaded as f64).into());
    set(&out, "memoryBytes", &memory.into());
    set(&out, "partitionBytes", &(partition_bytes as f64).into());
    out.into()
}

/// `PrefetchResult`.
pub(crate) fn prefetch_result(partitions: usize, bytes: u64, failed: Array) -> JsValue {
    let out = Object::new();
    set(&out, "partitions", &(partitions as u32).into());
    set(&out, "bytes", &(bytes as f64).into());
    set(&out, "failed", &failed.into());
    out.into()
}

fn search_of(answer: &StreamAnswer, refused: &Array) -> JsValue {
    match &answer.search {
        Some(s) => search_js("index", s.nprobe, &s.probed, &s.missing, s.rows_scanned, refused),
        None => search_js("none", 0, &[], &[], 0, refused),
    }
}

fn cards(answer: &StreamAnswer) -> Array {
    answer.cards.iter().map(meta_to_js).collect()
}

/// `recommend(session, k, options)` on a streamed catalogue: `for-you` without rules.
// The borrow is held across the downloads on purpose, as the whole bundle's calls hold theirs
// (lib.rs): a concurrent caller gets Busy, and the worker queues calls anyway.
#[allow(clippy::await_holding_refcell_ref)]
pub(crate) async fn recommend(
    s: &Rc<RefCell<Streamed>>,
    session: &[String],
    k: usize,
    options: &JsValue,
) -> Result<JsValue, JsError> {
    if k == 0 {
        return Err(JsError::from(RuntimeError::argument("k", "must be at least 1")));
    }
    let (partial, nprobe) = partial_and_nprobe(options, "options")?;
    let mut st = s.try_borrow_mut().map_err(|_| busy())?;
    let nprobe = st.nprobe(nprobe);
    let rules = Rules::default();
    let request = StreamRequest { scenario: Scenario::ForYou, session, product: None, k, rules: &rules, facts: None };
    let (answer, refused) = st.answer(&request, nprobe, partial).await?;
    if answer.list.fallback == Some(Fallback::NoHistory) {
        return Err(JsError::from(RuntimeError::EmptySession { unknown: answer.list.unknown.clone() }));
    }
    let no_explanation = Explanation {
        session_row: 0,
        session_id: String::new(),
        similarity: f32::NAN,
        text_similarity: None,
        image_similarity: None,
        text_share: None,
    };
    let items = answer
        .list
        .items
        .iter()
        .map(|i| Recommendation {
            row: i.row,
            id: i.id.clone(),
            score: i.score,
            explanation: i.explanation.clone().unwrap_or_else(|| no_explanation.clone()),
        })
        .collect();
    let result = Recommendations { items, unknown: answer.list.unknown.clone(), used: answer.list.used.clone() };
    let out = recommendations_js(&result, cards(&answer), backend_name(), search_of(&answer, &refused));
    Ok(out)
}

/// `list(request)` on a streamed catalogue.
#[allow(clippy::await_holding_refcell_ref)]
pub(crate) async fn list(s: &Rc<RefCell<Streamed>>, request: &JsValue) -> Result<JsValue, JsError> {
    let parsed = lists::parse(request)?;
    let facts = parsed.facts.as_deref().map(Facts::parse).transpose().map_err(rule_error)?;
    let mut st = s.try_borrow_mut().map_err(|_| busy())?;
    let nprobe = st.nprobe(parsed.nprobe);
    let request = StreamRequest {
        scenario: parsed.scenario,
        session: &parsed.session,
        product: parsed.product.as_deref(),
        k: parsed.k,
        rules: &parsed.rules,
        facts: facts.as_ref(),
    };
    let (answer, refused) = st.answer(&request, nprobe, parsed.partial).await?;
    let out = lists::to_js(&answer.list, cards(&answer), backend_name(), search_of(&answer, &refused));
    Ok(out)
}

/// `prefetch(maxBytes)`: whole partitions in file order while their bytes fit `max_bytes` and the
/// memory bound (prefetching past it would only evict what was prefetched first).
#[allow(clippy::await_holding_refcell_ref)]
pub(crate) async fn prefetch(s: &Rc<RefCell<Streamed>>, max_bytes: f64) -> Result<JsValue, JsError> {
    if max_bytes.is_nan() || max_bytes < 0.0 {
        return Err(argument("maxBytes", "must be a number ≥ 0"));
    }
    let mut st = s.try_borrow_mut().map_err(|_| busy())?;
    st.drain();
    // The partitions that fit the budget and the memory bound, in file order.
    let (mut planned, mut bytes, mut memory) = (Vec::new(), 0u64, st.catalogue.memory_bytes() as u64);
    for (_, files) in st.catalogue.prefetch_order() {
        let paths: Vec<(String, u64)> =
            files.iter().filter_map(|&f| st.catalogue.entry(f).map(|e| (e.path.clone(), e.bytes))).collect();
        let size: u64 = paths.iter().map(|p| p.1).sum();
        // Parsed metadata takes about twice its JSON, rows about their file: 3× bounds both.
        if (bytes + size) as f64 > max_bytes || memory + 3 * size > st.catalogue.memory_limit() as u64 {
            break;
        }
        bytes += size;
        memory += 3 * size;
        planned.push(paths);
    }
    let failed = Array::new();
    let (mut partitions, mut spent) = (0usize, 0u64);
    // A few partitions at a time: downloads in parallel, memory freed batch by batch.
    for batch in planned.chunks(PREFETCH_BATCH) {
        let paths: Vec<String> = batch.iter().flatten().map(|p| p.0.clone()).collect();
        let results = st.fetch_all(&paths).await;
        let mut at = 0;
        for files in batch {
            let mut whole = true;
            for result in &results[at..at + files.len()] {
                match result {
                    Ok(size) => spent += size,
                    Err(e) => {
                        whole = false;
                        failed.push(e);
                    }
                }
            }
            at += files.len();
            partitions += whole as usize;
        }
    }
    Ok(prefetch_result(partitions, spent, failed))
}
