//! `manifest.json`: what a bundle holds, how big each file is and its sha256 (docs/bundle.md is the
//! reader's specification; this type is its executable form, shared by `export` and the runtime).
//!
//! Parsing is two-step so a manifest of another version is refused by name, not by a confusing
//! "missing field": the `format` / `format_version` pair is read from untyped JSON first, then the
//! whole document into [`Manifest`] (unknown fields refused), then [`Manifest::validate`] checks
//! every dimension and size against hard limits before anything is allocated from them.

use serde::{Deserialize, Serialize};

use super::error::RuntimeError;
use crate::config::ModelConfig;
use crate::text_template::{ItemTextSpec, ItemTextTemplate};

/// `format` of every bundle manifest.
pub const FORMAT: &str = "omakase-bundle";
/// The newest version this build reads and writes. Version 2 adds the optional `columns` and
/// `popularity` files (issue 16); a manifest without them is written as version 1, byte for byte
/// what earlier builds wrote, so bundles that use nothing new stay readable by deployed runtimes,
/// while one that does is refused by them by version ("re-export" / update the runtime) rather than
/// by a confusing unknown field. This reader reads versions 1 to [`FORMAT_VERSION`]; a version-1
/// manifest holding a version-2 field is refused naming the field ([`Manifest::required_version`]).
pub const FORMAT_VERSION: u64 = 2;
/// The oldest version this build reads.
pub const MIN_FORMAT_VERSION: u64 = 1;
/// Largest shard file (docs/bundle.md; WebGPU's default max storage binding is 128 MiB, half of it
/// leaves room for the shader's other buffers).
pub const MAX_SHARD_BYTES: u64 = 64 << 20;
/// Largest non-shard file (towers, item metadata): far above any real model at d ≤ [`MAX_DIM`].
pub const MAX_FILE_BYTES: u64 = 512 << 20;
/// Limits that refuse absurd manifests before any allocation (a wasm32 heap is at most 4 GiB).
pub const MAX_DIM: usize = 4096;
pub const MAX_ITEMS: usize = 50_000_000;
/// `item_count × dim` (values in the item matrix) at most this: 2 GiB of int8.
pub const MAX_MATRIX_VALUES: usize = 1 << 31;
pub const MAX_LAYERS: usize = 64;
pub const MAX_SEQUENCE: usize = 4096;
pub const MAX_FEATURE_DIM: usize = 65_536;
/// Most delta shards one manifest lists (each is one more request for every visitor: re-export the
/// bundle with the products in its dataset long before; docs/bundle.md § Deltas).
pub const MAX_DELTAS: usize = 1024;
/// A delta file's bytes before its rows: 8 bytes of magic and a u32 header length (`crate::delta`).
pub const DELTA_PREAMBLE_BYTES: u64 = 12;

/// Storage of the towers' weight matrices in their GGUF files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightsDtype {
    Q8_0,
    Q4_0,
    F16,
}

impl WeightsDtype {
    pub fn as_str(self) -> &'static str {
        match self {
            WeightsDtype::Q8_0 => "q8_0",
            WeightsDtype::Q4_0 => "q4_0",
            WeightsDtype::F16 => "f16",
        }
    }
}

/// Storage of item-vector rows in the shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingDtype {
    /// Per shard: `rows` little-endian f32 scales, then `rows × dim` int8 codes (row-major);
    /// row `r` is `codes[r] × scales[r]`. A scale of 0 marks an absent row (explain shards only).
    Int8,
    /// Per shard: `rows × dim` little-endian IEEE half floats (row-major). An all-zero row is
    /// absent (explain shards only).
    F16,
}

impl EmbeddingDtype {
    pub fn as_str(self) -> &'static str {
        match self {
            EmbeddingDtype::Int8 => "int8",
            EmbeddingDtype::F16 => "f16",
        }
    }

    /// Bytes of a shard of `rows` rows of width `dim` (`None` on overflow).
    pub fn shard_bytes(self, rows: usize, dim: usize) -> Option<u64> {
        let values = (rows as u64).checked_mul(dim as u64)?;
        match self {
            EmbeddingDtype::Int8 => values.checked_add((rows as u64).checked_mul(4)?),
            EmbeddingDtype::F16 => values.checked_mul(2),
        }
    }

    /// Bytes one row takes (scale included).
    pub fn row_bytes(self, dim: usize) -> usize {
        match self {
            EmbeddingDtype::Int8 => dim + 4,
            EmbeddingDtype::F16 => 2 * dim,
        }
    }
}

/// One file of the bundle: a plain file name next to `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub bytes: u64,
    /// Lower-case hex sha256 of the file's bytes.
    pub sha256: String,
}

/// One item-vector shard: rows `first_row .. first_row + rows` of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardEntry {
    pub file: FileEntry,
    pub first_row: usize,
    pub rows: usize,
}

/// The optional explanation vectors: every item through the item tower with only its text and
/// only its image (absent modality → absent row), in shards laid out like the main ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExplainShards {
    pub text: Vec<ShardEntry>,
    pub image: Vec<ShardEntry>,
}

/// Products appended after export (`omakase delta`, docs/bundle.md § Deltas): a delta file of
/// `rows` products (vectors and card metadata, format in `crate::delta`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaEntry {
    pub file: FileEntry,
    pub rows: usize,
}

/// Where the bundle came from (informative; the runtime reads nothing here).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub dataset: String,
    pub run: String,
    pub features_sha256: String,
    pub created_by: String,
}

/// `manifest.json` (format version 1). See docs/bundle.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] for this reader.
    pub format_version: u64,
    /// The model's hyper-parameters (the towers' shapes come from here).
    pub model: ModelConfig,
    /// Width of item and user vectors (= `model.dim`).
    pub dim: usize,
    /// Catalogue size: rows of the shards, entries of the item metadata.
    pub item_count: usize,
    pub weights_dtype: WeightsDtype,
    pub embedding_dtype: EmbeddingDtype,
    /// Scores are cosine(user, item) / this (= `model.next_item_temperature`); ranking ignores it.
    pub scoring_temperature: f64,
    /// GGUF: `sequence_tower.*` tensors.
    pub sequence_tower: FileEntry,
    /// GGUF: `item_tower.*` tensors (to embed new products); optional.
    pub item_tower: Option<FileEntry>,
    /// JSON array of item metadata, one entry per row.
    pub items: FileEntry,
    /// Item-vector shards, in row order, covering `0..item_count`.
    pub shards: Vec<ShardEntry>,
    pub explain: Option<ExplainShards>,
    /// The frozen encoders, for products the bundle does not hold (optional, fetched only when a
    /// page embeds one: `omakase export --encoders`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoders: Option<EncoderFiles>,
    #[serde(default)]
    pub provenance: Provenance,
    /// Version 2: the item metadata merchandising rules read (`columns.json`, docs/bundle.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<FileEntry>,
    /// Version 2: popularity and trending, time-decayed at export (`popularity.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popularity: Option<FileEntry>,
    /// A coarse partition of the rows for approximate search (optional; docs/bundle.md § Index):
    /// with it, main shard `i` is partition `i`. Absent from bundles that have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<IndexEntry>,
    /// Delta shards appended after export, in order: their rows follow the catalogue's
    /// (`item_count..`). Absent when empty, so a bundle without deltas keeps its bytes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deltas: Vec<DeltaEntry>,
}

/// The kinds of index a reader knows (a reader refuses others by name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexKind {
    /// Inverted file: one unit-length centroid per partition; a query probes the partitions whose
    /// centroids are nearest (cosine) and scores their rows exactly.
    Ivf,
}

/// `index` (docs/bundle.md § Index). Its counts repeat the rows' own (`item_count`, `dim`, the
/// number of shards) so that an index spliced from another export is refused by name at load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IndexEntry {
    pub kind: IndexKind,
    /// Rows the index partitions: equals `item_count`.
    pub item_count: usize,
    /// Width of the centroids: equals `dim`.
    pub dim: usize,
    /// Number of partitions `p`: equals the number of main shards (shard `i` holds partition `i`'s rows).
    pub partitions: usize,
    /// Partitions a reader probes by default (1..=`partitions`), chosen at export by measurement.
    pub nprobe: usize,
    /// Seed of the export's k-means (informative: the same seed and vectors give the same index).
    pub seed: u64,
    /// `p × dim` little-endian f32, row-major: partition `i`'s unit-length centroid.
    pub centroids: FileEntry,
    /// For a streamed reader: partition `i`'s items' metadata (`meta-NNNNN.json`, items.json's
    /// entries of its rows, in row order), one file per partition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Vec<FileEntry>>,
    /// For a streamed reader: id → row, hashed into bucket files (`ids-NNNNN.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<Directory>,
    /// For a streamed reader: the most popular rows with their scores and metadata (`popular.json`),
    /// so a first visit's list needs no whole-catalogue file. Absent without `popularity.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub popular: Option<FileEntry>,
}

/// The only hash a directory uses (`index.directory.hash`): FNV-1a 64-bit of the id's UTF-8 bytes.
pub const DIRECTORY_HASH: &str = "fnv1a64";

/// `index.directory`: an id's bucket is [`DIRECTORY_HASH`] of its UTF-8 bytes mod `buckets`; bucket
/// file `b` is a JSON array of `[id, row]` pairs sorted by id (docs/bundle.md § Index).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    /// Always [`DIRECTORY_HASH`] (another name is refused naming `index.directory.hash`).
    pub hash: String,
    /// Number of buckets `B` (≥ 1): one file each.
    pub buckets: usize,
    pub files: Vec<FileEntry>,
}

/// The quantized frozen encoders (GGUF, as `omakase quantize` writes them) and the rule that turns a
/// product's fields into the text the text encoder reads (the one the model was trained with).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderFiles {
    /// MiniLM, tokenizer included.
    pub text: FileEntry,
    /// EfficientNet-Lite0; absent for a text-only model.
    pub image: Option<FileEntry>,
    pub text_template: ItemTextSpec,
}

impl Manifest {
    /// Parses and validates `manifest.json`'s bytes.
    pub fn from_json(bytes: &[u8]) -> Result<Manifest, RuntimeError> {
        let value =
            crate::json::parse_unique_keys(bytes).map_err(|e| RuntimeError::ManifestJson { reason: e.to_string() })?;
        let format = value.get("format").and_then(|f| f.as_str());
        if format != Some(FORMAT) {
            return Err(RuntimeError::field(
                "format",
                format!("{:?}, expected \"{FORMAT}\"", format.unwrap_or("missing")),
            ));
        }
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(MIN_FORMAT_VERSION..=FORMAT_VERSION) => {}
            Some(found) => return Err(RuntimeError::UnsupportedVersion { found, supported: FORMAT_VERSION }),
            None => return Err(RuntimeError::field("format_version", "missing or not an unsigned integer")),
        }
        let manifest: Manifest =
            serde_json::from_value(value).map_err(|e| RuntimeError::ManifestJson { reason: e.to_string() })?;
        manifest.validate()?;
        Ok(manifest)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("a manifest always serialises");
        bytes.push(b'\n');
        bytes
    }

    /// The oldest format version that can hold this manifest's fields: 2 with `columns`,
    /// `popularity`, `deltas` or `index`, else 1. Writers set `format_version` to it.
    pub fn required_version(&self) -> u64 {
        if self.columns.is_some() || self.popularity.is_some() || !self.deltas.is_empty() || self.index.is_some() {
            2
        } else {
            1
        }
    }

    /// Every file the manifest lists, with the field that lists it.
    pub fn files(&self) -> Vec<(String, &FileEntry)> {
        let mut files = vec![("sequence_tower".to_string(), &self.sequence_tower), ("items".to_string(), &self.items)];
        for (field, entry) in [("columns", &self.columns), ("popularity", &self.popularity)] {
            if let Some(entry) = entry {
                files.push((field.to_string(), entry));
            }
        }
        if let Some(tower) = &self.item_tower {
            files.push(("item_tower".into(), tower));
        }
        files.extend(shard_files("shards", &self.shards));
        if let Some(explain) = &self.explain {
            files.extend(shard_files("explain.text", &explain.text));
            files.extend(shard_files("explain.image", &explain.image));
        }
        if let Some(index) = &self.index {
            files.push(("index.centroids".into(), &index.centroids));
        }
        files.extend(self.deltas.iter().enumerate().map(|(i, d)| (format!("deltas[{i}]"), &d.file)));
        files
    }

    /// The encoder files (not part of [`Manifest::files`]: nothing reads them to recommend).
    pub fn encoder_files(&self) -> Vec<(String, &FileEntry)> {
        let mut files = Vec::new();
        if let Some(encoders) = &self.encoders {
            files.push(("encoders.text".to_string(), &encoders.text));
            if let Some(image) = &encoders.image {
                files.push(("encoders.image".to_string(), image));
            }
        }
        files
    }

    /// The files only a streamed reader fetches (`index.metadata`, `index.directory.files`,
    /// `index.popular`): not part of [`Manifest::files`], which a whole-bundle reader loads (it
    /// reads `items.json` instead), but checked like them.
    pub fn stream_files(&self) -> Vec<(String, &FileEntry)> {
        let mut files = Vec::new();
        let Some(index) = &self.index else { return files };
        if let Some(metadata) = &index.metadata {
            files.extend(metadata.iter().enumerate().map(|(i, f)| (format!("index.metadata[{i}]"), f)));
        }
        if let Some(directory) = &index.directory {
            files.extend(directory.files.iter().enumerate().map(|(i, f)| (format!("index.directory.files[{i}]"), f)));
        }
        if let Some(popular) = &index.popular {
            files.push(("index.popular".to_string(), popular));
        }
        files
    }

    /// Checks every limit, dimension and size; nothing is allocated from the manifest before this.
    pub fn validate(&self) -> Result<(), RuntimeError> {
        if self.format_version < self.required_version() {
            let field = if self.columns.is_some() {
                "columns"
            } else if self.popularity.is_some() {
                "popularity"
            } else if self.index.is_some() {
                "index"
            } else {
                "deltas"
            };
            return Err(RuntimeError::field(
                field,
                format!("needs format_version {}, the manifest says {}", self.required_version(), self.format_version),
            ));
        }
        let m = &self.model;
        m.validate().map_err(|e| RuntimeError::field("model", e.to_string()))?;
        for (field, value, max) in [
            ("dim", self.dim, MAX_DIM),
            ("model.dim", m.dim, MAX_DIM),
            ("model.ffn_dim", m.ffn_dim, MAX_DIM * 16),
            ("model.num_layers", m.num_layers, MAX_LAYERS),
            ("model.fusion_layers", m.fusion_layers, MAX_LAYERS),
            ("model.max_len", m.max_len, MAX_SEQUENCE),
            ("model.text_dim", m.text_dim, MAX_FEATURE_DIM),
            ("model.image_dim", m.image_dim, MAX_FEATURE_DIM),
            ("item_count", self.item_count, MAX_ITEMS),
        ] {
            if value > max {
                return Err(RuntimeError::field(field, format!("{value} exceeds this runtime's limit {max}")));
            }
        }
        if self.dim != m.dim {
            return Err(RuntimeError::field("dim", format!("{} differs from model.dim {}", self.dim, m.dim)));
        }
        if self.item_count == 0 {
            return Err(RuntimeError::field("item_count", "0: a bundle needs at least one item"));
        }
        if self.item_count.saturating_mul(self.dim) > MAX_MATRIX_VALUES {
            return Err(RuntimeError::field(
                "item_count",
                format!("{} items × dim {} exceeds {MAX_MATRIX_VALUES} values", self.item_count, self.dim),
            ));
        }
        if !(self.scoring_temperature.is_finite() && self.scoring_temperature > 0.0) {
            return Err(RuntimeError::field(
                "scoring_temperature",
                format!("{} must be positive", self.scoring_temperature),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (field, file) in self.files().into_iter().chain(self.encoder_files()).chain(self.stream_files()) {
            check_file_entry(&field, file)?;
            if !seen.insert(file.path.as_str()) {
                return Err(RuntimeError::field(format!("{field}.path"), format!("{:?} is listed twice", file.path)));
            }
        }
        if let Some(encoders) = &self.encoders {
            ItemTextTemplate::new(encoders.text_template.clone())
                .map_err(|e| RuntimeError::field("encoders.text_template", e.to_string()))?;
        }
        self.check_shards("shards", &self.shards)?;
        if let Some(explain) = &self.explain {
            self.check_shards("explain.text", &explain.text)?;
            self.check_shards("explain.image", &explain.image)?;
        }
        if let Some(index) = &self.index {
            self.check_index(index)?;
        }
        self.check_deltas()
    }

    /// Delta entries: at most [`MAX_DELTAS`], each of at least one row and no more rows than its
    /// file's bytes can hold (so nothing is sized from `rows` beyond the file), the whole catalogue
    /// within the item limits.
    fn check_deltas(&self) -> Result<(), RuntimeError> {
        if self.deltas.len() > MAX_DELTAS {
            return Err(RuntimeError::field(
                "deltas",
                format!(
                    "{} delta shards exceed this runtime's limit {MAX_DELTAS} (re-export the bundle)",
                    self.deltas.len()
                ),
            ));
        }
        let mut total = self.item_count;
        for (i, delta) in self.deltas.iter().enumerate() {
            let rows_bytes = self.embedding_dtype.shard_bytes(delta.rows, self.dim);
            let fits =
                rows_bytes.and_then(|b| b.checked_add(DELTA_PREAMBLE_BYTES)).is_some_and(|b| b <= delta.file.bytes);
            if delta.rows == 0 || !fits {
                return Err(RuntimeError::field(
                    format!("deltas[{i}].rows"),
                    format!("{} rows of dim {} do not fit the file's {} bytes", delta.rows, self.dim, delta.file.bytes),
                ));
            }
            if delta.file.bytes > MAX_SHARD_BYTES {
                return Err(RuntimeError::field(
                    format!("deltas[{i}].file.bytes"),
                    format!("{} exceeds the shard limit {MAX_SHARD_BYTES}", delta.file.bytes),
                ));
            }
            total = total.saturating_add(delta.rows);
        }
        if total > MAX_ITEMS || total.saturating_mul(self.dim) > MAX_MATRIX_VALUES {
            return Err(RuntimeError::field(
                "deltas",
                format!("{} items with the deltas' exceed this runtime's limits", total),
            ));
        }
        Ok(())
    }

    /// The index agrees with the rows it partitions: same count, same width, one partition per main
    /// shard, and a centroids file of exactly `partitions × dim` f32.
    fn check_index(&self, index: &IndexEntry) -> Result<(), RuntimeError> {
        for (field, found, expected, what) in [
            ("index.item_count", index.item_count, self.item_count, "item_count"),
            ("index.dim", index.dim, self.dim, "dim"),
            ("index.partitions", index.partitions, self.shards.len(), "the number of main shards"),
        ] {
            if found != expected {
                return Err(RuntimeError::field(field, format!("{found}, but {what} is {expected}")));
            }
        }
        if index.nprobe == 0 || index.nprobe > index.partitions {
            let reason = format!("{} is not in 1..={}", index.nprobe, index.partitions);
            return Err(RuntimeError::field("index.nprobe", reason));
        }
        let expected = (index.partitions as u64) * (index.dim as u64) * 4;
        if index.centroids.bytes != expected {
            let reason = format!(
                "{}, but {} centroids of dim {} take {expected}",
                index.centroids.bytes, index.partitions, index.dim
            );
            return Err(RuntimeError::field("index.centroids.bytes", reason));
        }
        if let Some(metadata) = &index.metadata {
            if metadata.len() != index.partitions {
                let reason = format!("{} files, but the index has {} partitions", metadata.len(), index.partitions);
                return Err(RuntimeError::field("index.metadata", reason));
            }
        }
        if let Some(directory) = &index.directory {
            if directory.hash != DIRECTORY_HASH {
                let reason = format!("{:?} is not a hash this runtime knows (\"{DIRECTORY_HASH}\")", directory.hash);
                return Err(RuntimeError::field("index.directory.hash", reason));
            }
            if directory.buckets == 0 || directory.buckets > self.item_count.max(1) {
                let reason = format!("{} is not in 1..={}", directory.buckets, self.item_count.max(1));
                return Err(RuntimeError::field("index.directory.buckets", reason));
            }
            if directory.files.len() != directory.buckets {
                let reason = format!("{} files for {} buckets", directory.files.len(), directory.buckets);
                return Err(RuntimeError::field("index.directory.files", reason));
            }
        }
        Ok(())
    }

    /// Shards in row order, contiguous, covering every item, each with the bytes its rows need.
    fn check_shards(&self, field: &str, shards: &[ShardEntry]) -> Result<(), RuntimeError> {
        let mut next = 0usize;
        for (i, shard) in shards.iter().enumerate() {
            let at = |name: &str| format!("{field}[{i}].{name}");
            if shard.first_row != next {
                return Err(RuntimeError::field(
                    at("first_row"),
                    format!("{}, expected {next} (shards must be contiguous, in order)", shard.first_row),
                ));
            }
            if shard.rows == 0 || shard.rows > self.item_count - next {
                return Err(RuntimeError::field(
                    at("rows"),
                    format!("{} rows from row {next} do not fit {} items", shard.rows, self.item_count),
                ));
            }
            let expected = self.embedding_dtype.shard_bytes(shard.rows, self.dim);
            if expected != Some(shard.file.bytes) {
                return Err(RuntimeError::field(
                    at("bytes"),
                    format!(
                        "{}, but {} {} rows of dim {} take {}",
                        shard.file.bytes,
                        shard.rows,
                        self.embedding_dtype.as_str(),
                        self.dim,
                        expected.map_or("overflow".into(), |b| b.to_string())
                    ),
                ));
            }
            if shard.file.bytes > MAX_SHARD_BYTES {
                return Err(RuntimeError::field(
                    at("bytes"),
                    format!("{} exceeds the shard limit {MAX_SHARD_BYTES}", shard.file.bytes),
                ));
            }
            next += shard.rows;
        }
        if next != self.item_count {
            return Err(RuntimeError::field(
                field,
                format!("shards cover {next} rows, item_count is {}", self.item_count),
            ));
        }
        Ok(())
    }
}

fn check_file_entry(field: &str, file: &FileEntry) -> Result<(), RuntimeError> {
    let plain = !file.path.is_empty()
        && !file.path.starts_with('.')
        && file.path.len() <= 128
        && file.path.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !plain {
        return Err(RuntimeError::field(
            format!("{field}.path"),
            format!("{:?} is not a plain file name ([A-Za-z0-9._-], no leading dot)", file.path),
        ));
    }
    if file.bytes > MAX_FILE_BYTES {
        return Err(RuntimeError::field(
            format!("{field}.bytes"),
            format!("{} exceeds the file limit {MAX_FILE_BYTES}", file.bytes),
        ));
    }
    if file.sha256.len() != 64 || !file.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(RuntimeError::field(
            format!("{field}.sha256"),
            format!("{:?} is not 64 lower-case hex digits", file.sha256),
        ));
    }
    Ok(())
}

/// Lower-case hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn shard_files<'a>(name: &str, list: &'a [ShardEntry]) -> Vec<(String, &'a FileEntry)> {
    list.iter().enumerate().map(|(i, s)| (format!("{name}[{i}]"), &s.file)).collect()
}
