//! Delta shards: products appended to a published bundle after its export, so that a product added
//! this morning reaches every visitor for a few KB, instead of each visitor's browser downloading the
//! encoders (~25 MB) to embed it. docs/bundle.md § Deltas is the specification.
//!
//! ```text
//! the shop, once:   product text + picture ─► the bundle's encoders ─► features ─► the bundle's item
//!                   tower ─► vectors ─► [`build`]: delta-<sha256[..16]>.bin (card metadata + rows,
//!                   quantized as export quantizes shards) and manifest.json listing it
//! every visitor:    manifest.json ─► the base bundle ─► each delta: size + sha256 ─► [`Delta::parse`]
//!                   ─► [`Delta::check_fits`] (dim, storage, item tower, encoders) ─► ids new ─► its
//!                   rows follow the catalogue's
//! ```
//!
//! File layout (integers little-endian): the magic `OMKDELTA` (8 bytes), the header's length `h`
//! (u32), `h` bytes of JSON header ([`DeltaHeader`]), then the rows: the main rows and, when the
//! header says `explain`, the text-only rows and the image-only rows; each block is laid out as a
//! shard of `rows` rows (docs/bundle.md § Shards), `rows` = the header's item count.
//!
//! Every error is a [`RuntimeError`] naming the delta file. [`load`] refuses a bundle with any bad
//! delta (the CLI); [`apply`] adds one delta to a loaded runtime or leaves the runtime as it was (the
//! browser applies each delta on its own and keeps the best catalogue it can).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::engine::{safe_link, verify_file, FileSource, ItemMeta, ItemVectors, Runtime};
use crate::error::RuntimeError;
use crate::json::parse_unique_keys;
use crate::manifest::EmbeddingDtype;
use crate::manifest::{sha256_hex, DeltaEntry, FileEntry, Manifest, DELTA_PREAMBLE_BYTES, MAX_DIM};
use crate::store::{encode_shard, ItemStore};

/// The first 8 bytes of every delta file.
pub const MAGIC: &[u8; 8] = b"OMKDELTA";
/// The header's `format`.
pub const FORMAT: &str = "omakase-delta";
/// The one header version this build reads and writes.
pub const FORMAT_VERSION: u64 = 1;
/// Largest header (the card metadata of every row): far above any delta a shop appends by hand.
pub const MAX_HEADER_BYTES: usize = 16 << 20;

/// The vector space a delta's rows live in, by the sha256 of the bundle files they were computed
/// with: rows from another item tower or other encoders are silently incomparable with the bundle's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Space {
    /// `item_tower.gguf`.
    pub item_tower: String,
    /// The text encoder (manifest `encoders.text`).
    pub text_encoder: String,
    /// The image encoder (manifest `encoders.image`); `None` for a bundle without one.
    pub image_encoder: Option<String>,
}

impl Space {
    /// The space of `manifest`'s bundle. A delta is made with the bundle's item tower and encoders,
    /// so a bundle without them can take none.
    pub fn of(manifest: &Manifest) -> Result<Space, RuntimeError> {
        let tower = manifest.item_tower.as_ref().ok_or_else(|| RuntimeError::NotInBundle {
            what: "the item tower".into(),
            reason: "a delta's rows come from it".into(),
        })?;
        let encoders = manifest.encoders.as_ref().ok_or_else(|| RuntimeError::NotInBundle {
            what: "the encoders".into(),
            reason: "a delta's products are embedded with them: export the bundle with --encoders".into(),
        })?;
        Ok(Space {
            item_tower: tower.sha256.clone(),
            text_encoder: encoders.text.sha256.clone(),
            image_encoder: encoders.image.as_ref().map(|e| e.sha256.clone()),
        })
    }
}

/// A delta file's JSON header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeltaHeader {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`FORMAT_VERSION`] for this reader.
    pub format_version: u64,
    /// Width of the rows (the bundle's `dim`).
    pub dim: usize,
    /// Storage of the rows (the bundle's `embedding_dtype`).
    pub embedding_dtype: EmbeddingDtype,
    pub space: Space,
    /// Whether text-only and image-only rows follow the main rows.
    pub explain: bool,
    /// One entry per row, in row order: what the cards show (as `items.json` entries).
    pub items: Vec<ItemMeta>,
}

/// A delta file, parsed and checked on its own: `main` `[rows × row bytes]`, `explain` the text-only
/// and image-only blocks, borrowed from the file's bytes.
#[derive(Debug, Clone)]
pub struct Delta<'a> {
    /// Links made safe ([`safe_link`]), as `items.json`'s are.
    pub header: DeltaHeader,
    pub main: &'a [u8],
    pub explain: Option<(&'a [u8], &'a [u8])>,
}

impl<'a> Delta<'a> {
    /// Parses `bytes` (the file `file`) and checks everything the file says about itself: magic,
    /// header (version first, unknown fields refused), the rows' bytes against the header, ids
    /// non-blank and unique, every value finite, every main row non-zero.
    pub fn parse(bytes: &'a [u8], file: &str) -> Result<Delta<'a>, RuntimeError> {
        let bad = |reason: String| RuntimeError::format(file, reason);
        let preamble = DELTA_PREAMBLE_BYTES as usize;
        if bytes.len() < preamble || &bytes[..8] != MAGIC {
            return Err(bad("not a delta shard (it does not start with OMKDELTA)".into()));
        }
        let h = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
        if h > MAX_HEADER_BYTES || h > bytes.len() - preamble {
            return Err(bad(format!("a header of {h} bytes does not fit the file's {} bytes", bytes.len())));
        }
        let value = parse_unique_keys(&bytes[preamble..preamble + h]).map_err(|e| bad(format!("header: {e}")))?;
        let format = value.get("format").and_then(|f| f.as_str());
        if format != Some(FORMAT) {
            return Err(bad(format!(
                "header field `format` is {:?}, expected \"{FORMAT}\"",
                format.unwrap_or("missing")
            )));
        }
        match value.get("format_version").and_then(|v| v.as_u64()) {
            Some(FORMAT_VERSION) => {}
            found => {
                return Err(bad(format!(
                    "header field `format_version` is {}, this runtime reads version {FORMAT_VERSION}",
                    found.map_or("missing".into(), |v| v.to_string())
                )))
            }
        }
        let header: DeltaHeader = serde_json::from_value(value).map_err(|e| bad(format!("header: {e}")))?;
        let (dim, dtype, rows) = (header.dim, header.embedding_dtype, header.items.len());
        if dim == 0 || dim > MAX_DIM {
            return Err(bad(format!("header field `dim` is {dim}, not within 1..={MAX_DIM}")));
        }
        if rows == 0 {
            return Err(bad("it holds no product (header field `items` is empty)".into()));
        }
        let block = dtype.shard_bytes(rows, dim);
        let blocks = if header.explain { 3 } else { 1 };
        let found = (bytes.len() - preamble - h) as u64;
        if block.and_then(|b| b.checked_mul(blocks)) != Some(found) {
            return Err(bad(format!(
                "{found} bytes of rows, but {rows} {} rows of dim {dim}{} take {}",
                dtype.as_str(),
                if header.explain { " (main, text-only, image-only)" } else { "" },
                block.and_then(|b| b.checked_mul(blocks)).map_or("more than any file".into(), |b| b.to_string())
            )));
        }
        let mut seen = HashSet::with_capacity(rows);
        for (i, item) in header.items.iter().enumerate() {
            if item.id.trim().is_empty() {
                return Err(bad(format!("item {i}: the id is empty")));
            }
            if !seen.insert(item.id.as_str()) {
                return Err(bad(format!("item {i}: duplicate id {:?} (an id appears once in a delta)", item.id)));
            }
        }
        let block = block.unwrap_or(0) as usize;
        let rows_bytes = &bytes[preamble + h..];
        let main = &rows_bytes[..block];
        let mut store = ItemStore::new(dtype, dim);
        store.append_shard(file, main, rows)?;
        if let Some(r) = (0..rows).find(|&r| !store.is_present(r)) {
            let id = &header.items[r].id;
            return Err(bad(format!("row {r} ({id:?}) is all zero: a product's row must hold its vector")));
        }
        let explain = header.explain.then(|| (&rows_bytes[block..2 * block], &rows_bytes[2 * block..]));
        if let Some((text, image)) = explain {
            ItemStore::new(dtype, dim).append_shard(file, text, rows)?;
            ItemStore::new(dtype, dim).append_shard(file, image, rows)?;
        }
        let items = header.items.into_iter().map(|m| ItemMeta { link: m.link.as_deref().and_then(safe_link), ..m });
        Ok(Delta { header: DeltaHeader { items: items.collect(), ..header }, main, explain })
    }

    /// Products in the delta.
    pub fn rows(&self) -> usize {
        self.header.items.len()
    }

    /// Refuses a delta whose rows cannot join `manifest`'s bundle: another dimension or storage, or
    /// another item tower or encoders than the bundle's (a delta of another model or export).
    pub fn check_fits(&self, manifest: &Manifest, file: &str) -> Result<(), RuntimeError> {
        let bad = |reason: String| RuntimeError::format(file, reason);
        let h = &self.header;
        if h.dim != manifest.dim {
            return Err(bad(format!(
                "vectors of dimension {}, the bundle's have dimension {} (a delta of another model)",
                h.dim, manifest.dim
            )));
        }
        if h.embedding_dtype != manifest.embedding_dtype {
            return Err(bad(format!(
                "rows stored as {}, the bundle's shards as {}",
                h.embedding_dtype.as_str(),
                manifest.embedding_dtype.as_str()
            )));
        }
        let space = Space::of(manifest).map_err(|e| bad(format!("cannot be checked against this bundle: {e}")))?;
        let short = |sha: &str| sha.chars().take(16).collect::<String>();
        let differs = |what: &str, made: Option<&str>, bundle: Option<&str>| {
            let name = |s: Option<&str>| s.map_or("none".to_string(), short);
            bad(format!(
                "made with the {what} {}, the bundle's is {} (a delta of another model or export: make it again \
                 against this bundle)",
                name(made),
                name(bundle)
            ))
        };
        if h.space.item_tower != space.item_tower {
            return Err(differs("item tower", Some(&h.space.item_tower), Some(&space.item_tower)));
        }
        if h.space.text_encoder != space.text_encoder {
            return Err(differs("text encoder", Some(&h.space.text_encoder), Some(&space.text_encoder)));
        }
        if h.space.image_encoder != space.image_encoder {
            return Err(differs("image encoder", h.space.image_encoder.as_deref(), space.image_encoder.as_deref()));
        }
        Ok(())
    }
}

/// Checks a delta's `bytes` (the file `file`) for `runtime`, the bundle of `manifest` as loaded:
/// [`Delta::parse`], [`Delta::check_fits`], and no id already in the catalogue (`items.json` or an
/// earlier delta).
pub fn check<'a>(
    runtime: &Runtime,
    manifest: &Manifest,
    bytes: &'a [u8],
    file: &str,
) -> Result<Delta<'a>, RuntimeError> {
    let delta = Delta::parse(bytes, file)?;
    delta.check_fits(manifest, file)?;
    if let Some(known) = delta.header.items.iter().find(|m| runtime.row_of(&m.id).is_some()) {
        return Err(RuntimeError::format(
            file,
            format!("id {:?} is already in the catalogue (items.json or an earlier delta)", known.id),
        ));
    }
    Ok(delta)
}

/// Adds the delta `entry` of `manifest` (its file's `bytes`) to `runtime`, after every check: size
/// and sha256, [`check`], and the manifest's row count. On error `runtime` is unchanged.
pub fn apply(runtime: &mut Runtime, manifest: &Manifest, entry: &DeltaEntry, bytes: &[u8]) -> Result<(), RuntimeError> {
    verify_file(&entry.file, bytes)?;
    let file = entry.file.path.as_str();
    let Delta { header, main, explain } = check(runtime, manifest, bytes, file)?;
    if header.items.len() != entry.rows {
        return Err(RuntimeError::format(
            file,
            format!("{} products, manifest.json says {} rows", header.items.len(), entry.rows),
        ));
    }
    runtime.append_delta_rows(file, header.items, main, explain)
}

/// `manifest` with the delta file `bytes` of `rows` products appended, and the file's name in the
/// bundle: `delta-<first 16 hex digits of its sha256>.bin`, a name never given to other bytes (a CDN
/// may cache it for ever; writing it again after an interrupted append is harmless).
pub fn appended(manifest: &Manifest, bytes: &[u8], rows: usize) -> Result<(String, Manifest), RuntimeError> {
    let sha256 = sha256_hex(bytes);
    let name = format!("delta-{}.bin", &sha256[..16]);
    let mut next = manifest.clone();
    let file = FileEntry { path: name.clone(), bytes: bytes.len() as u64, sha256 };
    next.deltas.push(DeltaEntry { file, rows });
    // `deltas` is a version-2 field: a runtime deployed before it refuses the manifest by version.
    next.format_version = next.format_version.max(next.required_version());
    next.validate()?;
    Ok((name, next))
}

/// `manifest` without its deltas: the bundle as exported (writers give a manifest the oldest version
/// that holds its fields, so the version the export wrote).
pub fn base(manifest: &Manifest) -> Manifest {
    let mut base = Manifest { deltas: Vec::new(), ..manifest.clone() };
    base.format_version = base.required_version();
    base
}

/// Loads a bundle with its deltas ([`Runtime::from_manifest`] reads the base bundle only): every
/// delta file must be in `files` and pass [`apply`], or the load fails naming it.
pub fn load(manifest: &Manifest, files: &dyn FileSource) -> Result<Runtime, RuntimeError> {
    let mut runtime = Runtime::from_manifest(&base(manifest), files)?;
    for entry in &manifest.deltas {
        let bytes =
            files.get(&entry.file.path).ok_or_else(|| RuntimeError::MissingFile { file: entry.file.path.clone() })?;
        apply(&mut runtime, manifest, entry, bytes)?;
    }
    Ok(runtime)
}

/// A product to append: its card metadata and its vectors from the bundle's item tower.
#[derive(Debug, Clone)]
pub struct NewProduct {
    pub meta: ItemMeta,
    pub vectors: ItemVectors,
}

/// A delta ready to publish: its file name and bytes, and the manifest that lists it.
#[derive(Debug, Clone)]
pub struct Built {
    /// Its file name in the bundle ([`appended`]).
    pub name: String,
    pub bytes: Vec<u8>,
    /// `manifest` with the delta appended (the only file of the bundle that changes).
    pub manifest: Manifest,
}

/// The delta of `products` for the bundle of `manifest`, loaded as `runtime` (its catalogue, deltas
/// included, is what ids are checked against): rows quantized as export quantizes shards, explain
/// rows when the bundle has explain shards. Refuses no product, an id twice or one already in the
/// catalogue, and vectors of the wrong width, non-finite or all zero.
pub fn build(manifest: &Manifest, runtime: &Runtime, products: &[NewProduct]) -> Result<Built, RuntimeError> {
    if products.is_empty() {
        return Err(RuntimeError::argument("products", "none to add"));
    }
    let space = Space::of(manifest)?;
    let (d, dtype) = (manifest.dim, manifest.embedding_dtype);
    let mut seen = HashSet::new();
    for p in products {
        let id = &p.meta.id;
        if id.trim().is_empty() {
            return Err(RuntimeError::argument("product id", "must not be empty"));
        }
        if !seen.insert(id.as_str()) {
            return Err(RuntimeError::argument("product id", format!("{id:?} is given twice")));
        }
        if runtime.row_of(id).is_some() {
            return Err(RuntimeError::argument(
                "product id",
                format!("{id:?} is already in the catalogue (items.json or an earlier delta)"),
            ));
        }
        let v = &p.vectors;
        for (what, vector) in [
            ("vector", Some(&v.fused)),
            ("text-only vector", v.text_only.as_ref()),
            ("image-only vector", v.image_only.as_ref()),
        ] {
            if let Some(vector) = vector {
                if vector.len() != d || vector.iter().any(|x| !x.is_finite()) {
                    return Err(RuntimeError::argument(
                        format!("product {id:?}: {what}"),
                        format!("need {d} finite values, got {}", vector.len()),
                    ));
                }
            }
        }
        if v.fused.iter().all(|&x| x == 0.0) {
            return Err(RuntimeError::argument(format!("product {id:?}: vector"), "is all zero"));
        }
    }
    let explain = manifest.explain.is_some();
    let block = |row: &dyn Fn(&NewProduct) -> Option<&[f32]>| {
        let rows: Vec<Option<&[f32]>> = products.iter().map(row).collect();
        encode_shard(dtype, d, &rows)
    };
    let mut rows_bytes = block(&|p| Some(p.vectors.fused.as_slice()));
    if explain {
        rows_bytes.extend(block(&|p| p.vectors.text_only.as_deref()));
        rows_bytes.extend(block(&|p| p.vectors.image_only.as_deref()));
    }
    let items =
        products.iter().map(|p| ItemMeta { link: p.meta.link.as_deref().and_then(safe_link), ..p.meta.clone() });
    let header = DeltaHeader {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        dim: d,
        embedding_dtype: dtype,
        space,
        explain,
        items: items.collect(),
    };
    let bytes = encode(&header, &rows_bytes);
    let (name, next) = appended(manifest, &bytes, products.len())?;
    // Read back as a visitor's browser will: a delta this build cannot read is never published.
    check(runtime, &next, &bytes, &name)?;
    Ok(Built { name, bytes, manifest: next })
}

/// A delta file's bytes: magic, header length, header, then `rows_bytes` (every block, in order).
pub fn encode(header: &DeltaHeader, rows_bytes: &[u8]) -> Vec<u8> {
    let json = serde_json::to_vec(header).expect("a delta header always serialises");
    let mut bytes = Vec::with_capacity(DELTA_PREAMBLE_BYTES as usize + json.len() + rows_bytes.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(json.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&json);
    bytes.extend_from_slice(rows_bytes);
    bytes
}
