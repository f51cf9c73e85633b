//! The inference engine: a loaded bundle, sessions in, recommendations with explanations out.
//!
//! Pure API over flat slices and strings (no files, no async), so the native CLI and the wasm facade
//! wrap the same code. Rows are item indices `0..item_count()` (bundle rows first, then items added
//! with [`Runtime::add_item`]).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::error::RuntimeError;
use super::gguf::Gguf;
use super::kernels::TopK;
use super::manifest::{sha256_hex, EmbeddingDtype, FileEntry, Manifest, ShardEntry};
use super::popularity::Popularity;
use super::rules::Columns;
use super::store::ItemStore;
use super::tower::{ItemTower, SequenceTower};
use crate::config::ModelConfig;

/// Where the loader gets a bundle file's bytes by its manifest `path`.
pub trait FileSource {
    fn get(&self, path: &str) -> Option<&[u8]>;
}

impl FileSource for HashMap<String, Vec<u8>> {
    fn get(&self, path: &str) -> Option<&[u8]> {
        HashMap::get(self, path).map(Vec::as_slice)
    }
}

impl FileSource for BTreeMap<String, Vec<u8>> {
    fn get(&self, path: &str) -> Option<&[u8]> {
        BTreeMap::get(self, path).map(Vec::as_slice)
    }
}

/// One item's metadata for rendering (`items.json` entry). Text is data: render it as text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemMeta {
    pub id: String,
    #[serde(default)]
    pub title: String,
    /// Image URL or path relative to the bundle's dataset (as the catalogue wrote it).
    #[serde(default)]
    pub image: Option<String>,
    /// Product page URL when the catalogue has one.
    #[serde(default)]
    pub link: Option<String>,
}

/// Why an item was recommended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// The session item most similar to the recommendation (cosine of item vectors).
    pub session_row: u32,
    pub session_id: String,
    pub similarity: f32,
    /// Cosine of the two items' text-only vectors (both must have text and the bundle explain shards).
    pub text_similarity: Option<f32>,
    /// Cosine of the two items' image-only vectors.
    pub image_similarity: Option<f32>,
    /// max(text, 0) / (max(text, 0) + max(image, 0)) when both exist (0.5 when both ≤ 0).
    pub text_share: Option<f32>,
}

/// One recommended item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    pub row: u32,
    pub id: String,
    /// Cosine of the user vector and the item vector (the model's logit × temperature).
    pub score: f32,
    pub explanation: Explanation,
}

/// The answer to a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendations {
    pub items: Vec<Recommendation>,
    /// Session ids the bundle does not know (ignored, reported).
    pub unknown: Vec<String>,
    /// Rows of the session items the sequence tower read (oldest first; at most `max_len`).
    pub used: Vec<u32>,
}

/// An item's three vectors from the item tower (`[d]` each; `None` when the modality is absent).
#[derive(Debug, Clone, PartialEq)]
pub struct ItemVectors {
    pub fused: Vec<f32>,
    pub text_only: Option<Vec<f32>>,
    pub image_only: Option<Vec<f32>>,
}

/// A loaded bundle, ready to recommend.
#[derive(Debug, Clone)]
pub struct Runtime {
    config: ModelConfig,
    items: ItemStore,
    explain: Option<(ItemStore, ItemStore)>,
    meta: Vec<ItemMeta>,
    rows_by_id: HashMap<String, u32>,
    sequence: SequenceTower,
    item_tower: Option<ItemTower>,
    /// The metadata rules read (`columns.json`; empty without one).
    columns: Columns,
    /// `popularity.json`, when the bundle has one.
    popularity: Option<Popularity>,
}

impl Runtime {
    /// Loads a bundle: `manifest.json`'s bytes and every file it lists from `files` (the optional
    /// item tower and explain shards are loaded when their files are supplied — all of them). Each
    /// file is checked (size, sha256) before it is parsed; nothing is sized from unchecked input.
    pub fn load(manifest_json: &[u8], files: &dyn FileSource) -> Result<Runtime, RuntimeError> {
        let manifest = Manifest::from_json(manifest_json)?;
        Self::from_manifest(&manifest, files)
    }

    /// As [`Runtime::load`] with a parsed, validated manifest.
    /// A manifest listing delta shards is refused: `delta::load` loads those, each checked, so that
    /// no loader drops a bundle's appended products silently.
    pub fn from_manifest(manifest: &Manifest, files: &dyn FileSource) -> Result<Runtime, RuntimeError> {
        if !manifest.deltas.is_empty() {
            let reason = format!(
                "lists {} delta shards: load it with delta::load (docs/bundle.md § Deltas)",
                manifest.deltas.len()
            );
            return Err(RuntimeError::argument("manifest.json", reason));
        }
        let config = &manifest.model;
        let seq_bytes = checked(files, &manifest.sequence_tower)?;
        let sequence = SequenceTower::load(
            &Gguf::parse(seq_bytes, &manifest.sequence_tower.path)?,
            &manifest.sequence_tower.path,
            config,
        )?;
        let item_tower = match &manifest.item_tower {
            Some(entry) if files.get(&entry.path).is_some() => {
                let bytes = checked(files, entry)?;
                Some(ItemTower::load(&Gguf::parse(bytes, &entry.path)?, &entry.path, config)?)
            }
            _ => None,
        };
        let meta = parse_items(checked(files, &manifest.items)?, &manifest.items.path, manifest.item_count)?;
        let items = load_store(files, &manifest.shards, manifest.embedding_dtype, manifest.dim)?;
        refuse_empty_rows(&items, &manifest.shards)?;
        let explain = match &manifest.explain {
            Some(explain) if files.get(&explain.text[0].file.path).is_some() => Some((
                load_store(files, &explain.text, manifest.embedding_dtype, manifest.dim)?,
                load_store(files, &explain.image, manifest.embedding_dtype, manifest.dim)?,
            )),
            _ => None,
        };
        let rows_by_id = meta.iter().enumerate().map(|(r, m)| (m.id.clone(), r as u32)).collect();
        let columns = match &manifest.columns {
            Some(entry) => Columns::parse(checked(files, entry)?, &entry.path, manifest.item_count)?,
            None => Columns::default(),
        };
        let popularity = match &manifest.popularity {
            Some(entry) => Some(Popularity::parse(checked(files, entry)?, &entry.path, manifest.item_count)?),
            None => None,
        };
        Ok(Runtime {
            config: config.clone(),
            items,
            explain,
            meta,
            rows_by_id,
            sequence,
            item_tower,
            columns,
            popularity,
        })
    }

    /// A runtime from in-memory parts (benchmarks, tests): the model config, a sequence-tower GGUF,
    /// item vectors `[n, d]` row-major (stored as `dtype`, as a bundle would), and their ids.
    pub fn from_parts(
        config: ModelConfig,
        sequence_tower_gguf: &[u8],
        vectors: &[f32],
        ids: Vec<String>,
        dtype: EmbeddingDtype,
    ) -> Result<Runtime, RuntimeError> {
        config.validate().map_err(|e| RuntimeError::field("model", e.to_string()))?;
        let d = config.dim;
        if vectors.len() != ids.len() * d {
            return Err(RuntimeError::argument(
                "vectors",
                format!("{} values are not {} rows of {d}", vectors.len(), ids.len()),
            ));
        }
        let sequence =
            SequenceTower::load(&Gguf::parse(sequence_tower_gguf, "sequence tower")?, "sequence tower", &config)?;
        let mut items = ItemStore::new(dtype, d);
        vectors.chunks_exact(d).for_each(|v| items.push(v));
        let meta: Vec<ItemMeta> =
            ids.into_iter().map(|id| ItemMeta { id, title: String::new(), image: None, link: None }).collect();
        let rows_by_id = meta.iter().enumerate().map(|(r, m)| (m.id.clone(), r as u32)).collect();
        if meta.len() != items.len() || HashMap::len(&rows_by_id) != meta.len() {
            return Err(RuntimeError::argument("ids", "must be unique"));
        }
        Ok(Runtime {
            config,
            items,
            explain: None,
            meta,
            rows_by_id,
            sequence,
            item_tower: None,
            columns: Columns::default(),
            popularity: None,
        })
    }

    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    pub fn dim(&self) -> usize {
        self.config.dim
    }

    /// Items known (bundle rows plus added ones).
    pub fn item_count(&self) -> usize {
        self.meta.len()
    }

    pub fn has_item_tower(&self) -> bool {
        self.item_tower.is_some()
    }

    pub fn has_explain(&self) -> bool {
        self.explain.is_some()
    }

    /// The item vectors as scanned (for another backend, e.g. the GPU, to upload).
    pub fn items(&self) -> &ItemStore {
        &self.items
    }

    /// The metadata columns rules read (empty for a bundle without `columns.json`).
    pub fn columns(&self) -> &Columns {
        &self.columns
    }

    /// The bundle's popularity, if it has `popularity.json`.
    pub fn popularity(&self) -> Option<&Popularity> {
        self.popularity.as_ref()
    }

    /// Replaces the metadata columns (tests and benchmarks over [`Runtime::from_parts`]).
    pub fn set_columns(&mut self, columns: Columns) {
        self.columns = columns;
    }

    /// Replaces the popularity (tests and benchmarks over [`Runtime::from_parts`]).
    pub fn set_popularity(&mut self, popularity: Option<Popularity>) {
        self.popularity = popularity;
    }

    pub fn row_of(&self, id: &str) -> Option<u32> {
        self.rows_by_id.get(id).copied()
    }

    pub fn item(&self, row: u32) -> Option<&ItemMeta> {
        self.meta.get(row as usize)
    }

    /// The stored (dequantized) vector of `row`, `[d]`.
    pub fn item_vector(&self, row: u32) -> Option<Vec<f32>> {
        ((row as usize) < self.items.len()).then(|| self.items.vector(row as usize))
    }

    /// Loads the item tower later (a browser fetches it only when a new product must be embedded).
    pub fn load_item_tower(&mut self, entry: &FileEntry, bytes: &[u8]) -> Result<(), RuntimeError> {
        verify_file(entry, bytes)?;
        self.item_tower = Some(ItemTower::load(&Gguf::parse(bytes, &entry.path)?, &entry.path, &self.config)?);
        Ok(())
    }

    /// Session ids → rows, keeping the order; unknown ids returned separately.
    pub fn resolve<S: AsRef<str>>(&self, ids: &[S]) -> (Vec<u32>, Vec<String>) {
        let mut rows = Vec::with_capacity(ids.len());
        let mut unknown = Vec::new();
        for id in ids {
            match self.row_of(id.as_ref()) {
                Some(r) => rows.push(r),
                None => unknown.push(id.as_ref().to_string()),
            }
        }
        (rows, unknown)
    }

    /// The user vector `[d]` of a session (rows, oldest first; the last `max_len` are read).
    pub fn user_vector(&self, session: &[u32]) -> Result<Vec<f32>, RuntimeError> {
        self.check_rows(session)?;
        if session.is_empty() {
            return Err(RuntimeError::EmptySession { unknown: Vec::new() });
        }
        let window = &session[session.len().saturating_sub(self.sequence.max_len())..];
        let vectors: Vec<f32> = window.iter().flat_map(|&r| self.items.vector(r as usize)).collect();
        Ok(self.sequence.user_vector(&vectors))
    }

    /// Cosine of `user` (`[d]`, any length) with every item: `out` `[item_count()]`.
    pub fn score_all(&self, user: &[f32], out: &mut [f32]) -> Result<(), RuntimeError> {
        let query = self.query(user)?;
        if out.len() != self.items.len() {
            return Err(RuntimeError::argument(
                "scores",
                format!("buffer of {} for {} items", out.len(), self.items.len()),
            ));
        }
        self.items.score_all(&query, out);
        Ok(())
    }

    /// The `k` best rows for `user` by cosine, never one of `exclude`, best first: `(row, cosine)`.
    pub fn top_k(&self, user: &[f32], k: usize, exclude: &[u32]) -> Result<Vec<(u32, f32)>, RuntimeError> {
        let query = self.query(user)?;
        let exclude: Vec<usize> = exclude.iter().map(|&r| r as usize).collect();
        let mut top = TopK::with_excluded(k, &exclude);
        self.items.scan(&query, &mut top);
        Ok(top.into_sorted().into_iter().map(|h| (h.index as u32, h.score)).collect())
    }

    /// Recommendations for a session of item ids (oldest first): unknown ids are reported in the
    /// result, not fatal; a session with no known id is [`RuntimeError::EmptySession`] (no popular
    /// fallback: the bundle carries no popularity, and the caller knows best what to show instead).
    pub fn recommend<S: AsRef<str>>(&self, session: &[S], k: usize) -> Result<Recommendations, RuntimeError> {
        let (rows, unknown) = self.resolve(session);
        if rows.is_empty() {
            return Err(RuntimeError::EmptySession { unknown });
        }
        let mut result = self.recommend_rows(&rows, k)?;
        result.unknown = unknown;
        Ok(result)
    }

    /// [`Runtime::recommend`] on rows: top-`k` excluding every session row, each explained.
    pub fn recommend_rows(&self, session: &[u32], k: usize) -> Result<Recommendations, RuntimeError> {
        if k == 0 {
            return Err(RuntimeError::argument("k", "must be at least 1"));
        }
        let user = self.user_vector(session)?;
        let top = self.top_k(&user, k, session)?;
        self.explained(top, session)
    }

    /// Scored rows (from any backend's top-K) with their ids and explanations; `used` is the window of
    /// `session` the sequence tower read. Refuses a row out of range.
    pub fn explained(&self, top: Vec<(u32, f32)>, session: &[u32]) -> Result<Recommendations, RuntimeError> {
        self.check_rows(session)?;
        let used = session[session.len().saturating_sub(self.sequence.max_len())..].to_vec();
        let items = top
            .into_iter()
            .map(|(row, score)| {
                let explanation = self.explain(row, session)?;
                Ok(Recommendation { row, id: self.meta[row as usize].id.clone(), score, explanation })
            })
            .collect::<Result<_, RuntimeError>>()?;
        Ok(Recommendations { items, unknown: Vec::new(), used })
    }

    /// Why `row` fits `session`: the most similar session item (cosine of item vectors; the first
    /// on ties), and the text / image similarity of the pair when both items have both explain
    /// vectors. Refuses an empty session or a row out of range.
    pub fn explain(&self, row: u32, session: &[u32]) -> Result<Explanation, RuntimeError> {
        self.check_rows(session)?;
        self.check_rows(&[row])?;
        if session.is_empty() {
            return Err(RuntimeError::EmptySession { unknown: Vec::new() });
        }
        let target = self.items.unit_vector(row as usize);
        let (anchor, similarity) = session
            .iter()
            .map(|&s| (s, dot(&target, &self.items.unit_vector(s as usize))))
            .fold((session[0], f32::NEG_INFINITY), |best, cur| if cur.1 > best.1 { cur } else { best });
        let pair_cosine = |store: &ItemStore| {
            let (a, b) = (row as usize, anchor as usize);
            (store.is_present(a) && store.is_present(b)).then(|| dot(&store.unit_vector(a), &store.unit_vector(b)))
        };
        let (text_similarity, image_similarity) = match &self.explain {
            Some((text, image)) => (pair_cosine(text), pair_cosine(image)),
            None => (None, None),
        };
        let text_share = match (text_similarity, image_similarity) {
            (Some(t), Some(i)) => {
                let (t, i) = (t.max(0.0), i.max(0.0));
                Some(if t + i > 0.0 { t / (t + i) } else { 0.5 })
            }
            _ => None,
        };
        Ok(Explanation {
            session_row: anchor,
            session_id: self.meta[anchor as usize].id.clone(),
            similarity,
            text_similarity,
            image_similarity,
            text_share,
        })
    }

    /// Runs the item tower on one product's frozen features (MiniLM text `[text_dim]`, EfficientNet
    /// image `[image_dim]`; at least one): its vector through the bundle's item view, and its
    /// text-only / image-only vectors for explanations.
    pub fn embed_item(&self, text: Option<&[f32]>, image: Option<&[f32]>) -> Result<ItemVectors, RuntimeError> {
        let tower = self.item_tower.as_ref().ok_or_else(|| RuntimeError::NotInBundle {
            what: "the item tower".into(),
            reason: "load item_tower.gguf first".into(),
        })?;
        for (what, feature, width) in
            [("text feature", text, tower.text_dim()), ("image feature", image, tower.image_dim())]
        {
            if let Some(f) = feature {
                if f.len() != width || f.iter().any(|v| !v.is_finite()) {
                    return Err(RuntimeError::argument(what, format!("need {width} finite values, got {}", f.len())));
                }
            }
        }
        use crate::config::ItemView;
        let view = self.config.item_view;
        let text_in = text.filter(|_| view != ItemView::ImageOnly);
        let image_in = image.filter(|_| view != ItemView::TextOnly);
        if text_in.is_none() && image_in.is_none() {
            return Err(RuntimeError::argument("item features", format!("the model reads {view} and none was given")));
        }
        Ok(ItemVectors {
            fused: tower.forward(text_in, image_in),
            text_only: text.map(|t| tower.forward(Some(t), None)),
            image_only: image.map(|i| tower.forward(None, Some(i))),
        })
    }

    /// Adds a product at run time (e.g. embedded in the browser with [`Runtime::embed_item`]); it is
    /// stored like bundle rows and recommended from then on. Returns its row.
    pub fn add_item(&mut self, meta: ItemMeta, vectors: &ItemVectors) -> Result<u32, RuntimeError> {
        let d = self.dim();
        if self.rows_by_id.contains_key(&meta.id) {
            return Err(RuntimeError::argument("item id", format!("{:?} is already in the catalogue", meta.id)));
        }
        let all =
            std::iter::once(Some(&vectors.fused)).chain([vectors.text_only.as_ref(), vectors.image_only.as_ref()]);
        for v in all.flatten() {
            if v.len() != d || v.iter().any(|x| !x.is_finite()) {
                return Err(RuntimeError::argument("item vector", format!("need {d} finite values, got {}", v.len())));
            }
        }
        let row = self.meta.len() as u32;
        self.items.push(&vectors.fused);
        if let Some((text, image)) = &mut self.explain {
            text.push(vectors.text_only.as_deref().unwrap_or(&vec![0.0; d]));
            image.push(vectors.image_only.as_deref().unwrap_or(&vec![0.0; d]));
        }
        self.rows_by_id.insert(meta.id.clone(), row);
        self.meta.push(meta);
        Ok(row)
    }

    /// Appends the rows of a delta shard (`crate::delta`, which checked every one of them, and the
    /// ids, before): `main` holds `meta.len()` rows in the shards' layout, `explain` the text-only and
    /// image-only rows when the delta has them (absent rows otherwise, when this runtime loaded the
    /// explain shards). `file` names the delta in errors.
    pub(crate) fn append_delta_rows(
        &mut self,
        file: &str,
        meta: Vec<ItemMeta>,
        main: &[u8],
        explain: Option<(&[u8], &[u8])>,
    ) -> Result<(), RuntimeError> {
        let (rows, d) = (meta.len(), self.dim());
        self.items.append_shard(file, main, rows)?;
        if let Some((text, image)) = &mut self.explain {
            match explain {
                Some((text_rows, image_rows)) => {
                    text.append_shard(file, text_rows, rows)?;
                    image.append_shard(file, image_rows, rows)?;
                }
                None => (0..rows).for_each(|_| {
                    text.push(&vec![0.0; d]);
                    image.push(&vec![0.0; d]);
                }),
            }
        }
        for m in meta {
            self.rows_by_id.insert(m.id.clone(), self.meta.len() as u32);
            self.meta.push(m);
        }
        Ok(())
    }

    /// [`Runtime::add_item`] with only the item vector `[d]` (no explain vectors).
    pub fn add_item_vector(&mut self, id: &str, vector: &[f32]) -> Result<u32, RuntimeError> {
        let meta = ItemMeta { id: id.into(), title: String::new(), image: None, link: None };
        self.add_item(meta, &ItemVectors { fused: vector.to_vec(), text_only: None, image_only: None })
    }

    fn check_rows(&self, rows: &[u32]) -> Result<(), RuntimeError> {
        match rows.iter().find(|&&r| r as usize >= self.items.len()) {
            Some(r) => Err(RuntimeError::argument("session", format!("row {r} is not below {}", self.items.len()))),
            None => Ok(()),
        }
    }

    /// `user` at unit length (refusing a wrong width or non-finite values).
    fn query(&self, user: &[f32]) -> Result<Vec<f32>, RuntimeError> {
        if user.len() != self.dim() || user.iter().any(|v| !v.is_finite()) {
            return Err(RuntimeError::argument(
                "user vector",
                format!("need {} finite values, got {}", self.dim(), user.len()),
            ));
        }
        let norm = dot(user, user).sqrt();
        let inv = if norm > 0.0 { 1.0 / norm } else { 0.0 };
        Ok(user.iter().map(|v| v * inv).collect())
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Size then sha256 of a supplied file against its manifest entry (also what the browser's fetcher
/// checks before caching a download).
pub fn verify_file(entry: &FileEntry, bytes: &[u8]) -> Result<(), RuntimeError> {
    if bytes.len() as u64 != entry.bytes {
        return Err(RuntimeError::FileSize {
            file: entry.path.clone(),
            expected: entry.bytes,
            found: bytes.len() as u64,
        });
    }
    let found = sha256_hex(bytes);
    if found != entry.sha256 {
        return Err(RuntimeError::Checksum { file: entry.path.clone(), expected: entry.sha256.clone(), found });
    }
    Ok(())
}

/// The file of `entry` from `files`, checked.
fn checked<'a>(files: &'a dyn FileSource, entry: &FileEntry) -> Result<&'a [u8], RuntimeError> {
    let bytes = files.get(&entry.path).ok_or_else(|| RuntimeError::MissingFile { file: entry.path.clone() })?;
    verify_file(entry, bytes)?;
    Ok(bytes)
}

fn load_store(
    files: &dyn FileSource,
    shards: &[ShardEntry],
    dtype: EmbeddingDtype,
    dim: usize,
) -> Result<ItemStore, RuntimeError> {
    let mut store = ItemStore::new(dtype, dim);
    for shard in shards {
        let bytes = checked(files, &shard.file)?;
        store.append_shard(&shard.file.path, bytes, shard.rows)?;
    }
    Ok(store)
}

/// Refuses a main-shard row that holds no vector. Explain shards mark a missing modality that way,
/// but every item has a main vector (the item tower's output is never exactly zero), so a zero row
/// is a broken export — it would score 0 against every session and never be recommended, silently.
fn refuse_empty_rows(store: &ItemStore, shards: &[ShardEntry]) -> Result<(), RuntimeError> {
    let mut first = 0;
    for shard in shards {
        if let Some(r) = (0..shard.rows).find(|&r| !store.is_present(first + r)) {
            let reason = format!("row {r} is all zero: a main shard row must hold the item's vector");
            return Err(RuntimeError::format(&shard.file.path, reason));
        }
        first += shard.rows;
    }
    Ok(())
}

/// `items.json`: an array of `item_count` [`ItemMeta`] with unique ids.
fn parse_items(bytes: &[u8], file: &str, item_count: usize) -> Result<Vec<ItemMeta>, RuntimeError> {
    let meta: Vec<ItemMeta> = serde_json::from_slice(bytes).map_err(|e| RuntimeError::format(file, e.to_string()))?;
    if meta.len() != item_count {
        return Err(RuntimeError::format(
            file,
            format!("{} entries, manifest.json's item_count is {item_count}", meta.len()),
        ));
    }
    let mut seen = std::collections::HashSet::with_capacity(meta.len());
    if let Some((i, m)) = meta.iter().enumerate().find(|(_, m)| !seen.insert(m.id.as_str())) {
        return Err(RuntimeError::format(file, format!("entry {i}: id {:?} appears twice", m.id)));
    }
    Ok(meta.into_iter().map(|m| ItemMeta { link: m.link.as_deref().and_then(safe_link), ..m }).collect())
}

/// `link` when a browser following it would load a page: an `http:` / `https:` URL or a relative
/// one; `None` for any other scheme (`javascript:`, `data:`, `vbscript:`, `file:` …). Links come from
/// the shop's catalogue and the bundle is untrusted, so every reader (the widget, `recommend --json`)
/// gets only these. The scheme is read as a browser's URL parser reads it: leading C0 controls and
/// spaces skipped, tabs and newlines inside ignored (`java\tscript:` is `javascript:` to it).
pub fn safe_link(link: &str) -> Option<String> {
    let cleaned: String =
        link.trim_start_matches(|c: char| c <= ' ').chars().filter(|c| !matches!(c, '\t' | '\n' | '\r')).collect();
    let scheme_end = cleaned.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')));
    let has_scheme = matches!(scheme_end, Some(end) if end > 0 && cleaned[end..].starts_with(':'))
        && cleaned.starts_with(|c: char| c.is_ascii_alphabetic());
    if !has_scheme {
        return Some(link.to_string());
    }
    let scheme = cleaned[..scheme_end.unwrap_or(0)].to_ascii_lowercase();
    matches!(scheme.as_str(), "http" | "https").then(|| link.to_string())
}

#[cfg(test)]
mod link_tests {
    use super::safe_link;

    #[test]
    fn only_http_https_and_relative_links_survive() {
        for kept in ["https://shop.example/p/1", "HTTP://x", "/p/1", "p/1?x=a:b", "//cdn.example/x", "#top", ""] {
            assert_eq!(safe_link(kept).as_deref(), Some(kept), "{kept:?}");
        }
        for dropped in [
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            " \u{1}javascript:alert(1)",
            "java\tscript:alert(1)",
            "jav\nascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "vbscript:msgbox",
            "file:///etc/passwd",
        ] {
            assert_eq!(safe_link(dropped), None, "{dropped:?}");
        }
    }
}
