//! The legacy (non-zip) PyTorch checkpoint format → safetensors.
//!
//! `torch.save(..., _use_new_zipfile_serialization=False)` (and every `torch.save` before 1.6) writes:
//!
//! ```text
//! pickle  magic number 0x1950a86a20f9469cfc6c
//! pickle  protocol version 1001
//! pickle  sys_info {'protocol_version': 1001, 'little_endian': True, 'type_sizes': {...}}
//! pickle  the object: here an OrderedDict name → _rebuild_tensor_v2(storage, offset, size, stride, ...)
//!         where each storage is a persistent id ('storage', torch.FloatStorage, key, 'cpu', numel, None)
//! pickle  the storage keys, in the order their bytes follow
//! per key u64 numel (little-endian), then numel × element-size raw little-endian bytes
//! ```
//!
//! Why our own reader: `candle_core::pickle` reads only the zip format (it rejects this file), and a
//! general unpickler would run whatever the file names. [`super::pickle`] accepts only tensor
//! rebuilds, storages and `OrderedDict`; this module checks the container around it and lays the
//! tensors out for safetensors.
//!
//! Strides: tensors that are views with arbitrary strides are **made contiguous** (row-major),
//! because real checkpoints have them — EfficientNet-Lite0 was ported from TensorFlow and 50 of its
//! weights are stored transposed (e.g. `_conv_stem.weight`, shape [32, 3, 3, 3], strides
//! [1, 32, 288, 96]). Dtypes are kept as saved (`FloatStorage` → F32, `LongStorage` → I64 for
//! BatchNorm's `num_batches_tracked`).

use std::borrow::Cow;
use std::collections::HashMap;
use std::rc::Rc;

use super::pickle::{self, DictKey, StorageDtype, StorageRef, StorageTable, TensorRef, Value};
use super::WeightsError;

type Result<T> = std::result::Result<T, WeightsError>;

/// The first pickle of every legacy checkpoint.
pub const LEGACY_MAGIC: i128 = 0x1950a86a20f9469cfc6c;
/// The second pickle.
pub const LEGACY_PROTOCOL_VERSION: i128 = 1001;
/// Outputs may exceed the stored bytes (several tensors viewing one storage, e.g. tied weights),
/// but not by more than this factor: a lying file could otherwise ask for terabytes.
pub const MAX_OUTPUT_FACTOR: u128 = 4;

/// One tensor of the state dict, laid out contiguously (row-major, little-endian).
#[derive(Debug, Clone, PartialEq)]
pub struct LegacyTensor<'a> {
    pub name: String,
    pub dtype: StorageDtype,
    pub shape: Vec<usize>,
    /// Borrowed from the file when the tensor was already contiguous.
    pub data: Cow<'a, [u8]>,
}

impl LegacyTensor<'_> {
    /// Number of elements (1 for a scalar; 0 when any dimension is 0, however large the others).
    /// Saturates instead of overflowing: [`read_legacy_pth`] has already refused a tensor whose
    /// elements do not fit next to its storage, so only an empty tensor's other dimensions can be
    /// huge, and those are skipped.
    pub fn numel(&self) -> usize {
        if self.shape.contains(&0) {
            return 0;
        }
        self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).unwrap_or(usize::MAX)
    }
}

impl safetensors::View for &LegacyTensor<'_> {
    fn dtype(&self) -> safetensors::Dtype {
        self.dtype.safetensors()
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// Reads a legacy `.pth` state dict held in memory. Tensors come in the state dict's order.
pub fn read_legacy_pth(bytes: &[u8]) -> Result<Vec<LegacyTensor<'_>>> {
    if bytes.starts_with(b"PK\x03\x04") {
        return Err(WeightsError::ZipFormat);
    }
    let mut storages = StorageTable::default();
    let pos = check_magic(bytes, &mut storages)?;
    let pos = check_protocol_version(bytes, pos, &mut storages)?;
    let pos = check_sys_info(bytes, pos, &mut storages)?;
    let (object, pos) = pickle::load(bytes, pos, &mut storages)?;
    let entries = state_dict_entries(&object)?;
    let (keys, keys_at, pos) = storage_keys(bytes, pos, &mut storages)?;
    let data = storage_bytes(bytes, pos, &keys, keys_at, &storages)?;
    for (name, tensor) in &entries {
        check_shape(name, tensor)?;
        check_bounds(name, tensor)?;
    }
    check_output_size(&entries, &data)?;
    entries
        .into_iter()
        .map(|(name, tensor)| {
            let contiguous = contiguous_bytes(&tensor, data[&tensor.storage.key]);
            let shape = tensor.shape.iter().map(|&d| d as usize).collect();
            Ok(LegacyTensor { name, dtype: tensor.storage.dtype, shape, data: contiguous })
        })
        .collect()
}

/// The tensors of a legacy `.pth` held in memory, serialized as safetensors (metadata
/// `format: pt`; tensor names exactly as in the state dict).
pub fn legacy_pth_to_safetensors(bytes: &[u8]) -> Result<Vec<u8>> {
    let tensors = read_legacy_pth(bytes)?;
    let named = tensors.iter().map(|t| (t.name.as_str(), t));
    Ok(safetensors::serialize(named, Some(safetensors_metadata()))?)
}

fn safetensors_metadata() -> HashMap<String, String> {
    HashMap::from([("format".to_owned(), "pt".to_owned())])
}

/// What a conversion produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertSummary {
    pub tensors: usize,
    /// Total number of elements over all tensors.
    pub elements: u64,
}

/// Converts the legacy `.pth` at `input` to a safetensors file at `output`, atomically: the file
/// is written beside `output` under a temporary name and renamed into place, so `output` is either
/// absent, the old file, or complete.
#[cfg(feature = "native")]
pub fn convert_legacy_pth(input: &std::path::Path, output: &std::path::Path) -> Result<ConvertSummary> {
    // A regular file (a link to a device or a pipe is refused), read up to its size.
    let bytes = crate::fs::read_bounded(input, u64::MAX).map_err(|e| {
        let (path, source) = e.into_parts();
        WeightsError::Io { path, source }
    })?;
    let in_file = |source| WeightsError::File { path: input.to_owned(), source: Box::new(source) };
    let tensors = read_legacy_pth(&bytes).map_err(in_file)?;
    let summary = ConvertSummary { tensors: tensors.len(), elements: tensors.iter().map(|t| t.numel() as u64).sum() };
    let named = tensors.iter().map(|t| (t.name.as_str(), t));
    let safetensors = safetensors::serialize(named, Some(safetensors_metadata()))?;
    write_atomically(output, &safetensors)?;
    Ok(summary)
}

/// [`crate::fs::write_atomically`] (temporary file beside `output`, synced, renamed over it), its
/// failure as a [`WeightsError::Io`] naming the temporary file (write) or `output` (rename).
#[cfg(feature = "native")]
pub fn write_atomically(output: &std::path::Path, bytes: &[u8]) -> Result<()> {
    crate::fs::write_atomically(output, bytes).map_err(|err| {
        let (path, source) = err.into_parts();
        WeightsError::Io { path, source }
    })
}

// ---- the header pickles ----

fn check_magic(bytes: &[u8], storages: &mut StorageTable) -> Result<usize> {
    match pickle::load(bytes, 0, storages) {
        Ok((Value::Int(LEGACY_MAGIC), end)) => Ok(end),
        Ok((Value::Int(other), _)) => {
            Err(WeightsError::BadMagic { found: format!("the magic number is 0x{other:x}, not 0x{LEGACY_MAGIC:x}") })
        }
        Ok((other, _)) => Err(WeightsError::BadMagic {
            found: format!("the first pickle is a {}, not the magic number", other.kind()),
        }),
        Err(err) => {
            Err(WeightsError::BadMagic { found: format!("it does not start with a pickled magic number ({err})") })
        }
    }
}

fn check_protocol_version(bytes: &[u8], pos: usize, storages: &mut StorageTable) -> Result<usize> {
    match pickle::load(bytes, pos, storages)? {
        (Value::Int(LEGACY_PROTOCOL_VERSION), end) => Ok(end),
        (Value::Int(other), _) => Err(WeightsError::UnsupportedProtocolVersion { found: other.to_string() }),
        (other, _) => Err(WeightsError::UnsupportedProtocolVersion { found: format!("a {}", other.kind()) }),
    }
}

/// `sys_info`: only the byte order matters (storages are raw machine-order bytes).
fn check_sys_info(bytes: &[u8], pos: usize, storages: &mut StorageTable) -> Result<usize> {
    let (info, end) = pickle::load(bytes, pos, storages)?;
    let Value::Dict(info) = info else {
        return Err(WeightsError::malformed(pos, format!("sys_info is a {}, not a dict", info.kind())));
    };
    let little_endian = match info.borrow().get("little_endian") {
        Some(Value::Bool(flag)) => Some(*flag),
        _ => None,
    };
    match little_endian {
        Some(true) => Ok(end),
        Some(false) => Err(WeightsError::BigEndian),
        None => Err(WeightsError::malformed(pos, "sys_info has no boolean `little_endian`")),
    }
}

/// The saved object as (name, tensor) pairs: a dict or `OrderedDict` of string keys to tensors.
fn state_dict_entries(object: &Value) -> Result<Vec<(String, Rc<TensorRef>)>> {
    let (Value::OrderedDict(dict) | Value::Dict(dict)) = object else {
        return Err(WeightsError::NotAStateDict { reason: format!("the saved object is a {}", object.kind()) });
    };
    let dict = dict.borrow();
    dict.entries()
        .iter()
        .map(|(key, value)| {
            let DictKey::Str(name) = key else {
                return Err(WeightsError::NotAStateDict { reason: format!("non-string key {key:?}") });
            };
            let Value::Tensor(tensor) = value else {
                let reason = format!("entry `{name}` is a {}, not a tensor", value.kind());
                return Err(WeightsError::NotAStateDict { reason });
            };
            Ok((name.to_string(), tensor.clone()))
        })
        .collect()
}

/// The list of storage keys; returns it, where it starts, and where the storage bytes start.
fn storage_keys(bytes: &[u8], pos: usize, storages: &mut StorageTable) -> Result<(Vec<Rc<str>>, usize, usize)> {
    let (keys, end) = pickle::load(bytes, pos, storages)?;
    let Value::List(keys) = keys else {
        return Err(WeightsError::malformed(pos, format!("storage keys are a {}, not a list", keys.kind())));
    };
    let keys = keys
        .borrow()
        .iter()
        .map(|key| match key {
            Value::Str(key) => Ok(key.clone()),
            other => Err(WeightsError::malformed(pos, format!("storage key is a {}", other.kind()))),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((keys, pos, end))
}

// ---- the raw storages ----

/// Each listed storage's bytes, checked against what the tensors declared and against the file.
fn storage_bytes<'a>(
    bytes: &'a [u8],
    mut pos: usize,
    keys: &[Rc<str>],
    keys_at: usize,
    storages: &StorageTable,
) -> Result<HashMap<Rc<str>, &'a [u8]>> {
    let mut data = HashMap::with_capacity(keys.len());
    for key in keys {
        let storage =
            storages.get(key).ok_or_else(|| WeightsError::UnknownStorage { key: key.to_string(), offset: keys_at })?;
        if data.contains_key(key) {
            return Err(WeightsError::DuplicateStorage { key: key.to_string() });
        }
        let (slice, next) = one_storage(bytes, pos, storage)?;
        data.insert(key.clone(), slice);
        pos = next;
    }
    if pos != bytes.len() {
        return Err(WeightsError::TrailingBytes { offset: pos, count: bytes.len() - pos });
    }
    let missing = storages.iter().map(|s| &s.key).filter(|key| !data.contains_key(*key)).min();
    if let Some(key) = missing {
        return Err(WeightsError::MissingStorageData { key: key.to_string() });
    }
    Ok(data)
}

/// One storage at `pos`: a little-endian u64 element count, then the elements.
fn one_storage<'a>(bytes: &'a [u8], pos: usize, storage: &StorageRef) -> Result<(&'a [u8], usize)> {
    let key = storage.key.to_string();
    let available = bytes.len().saturating_sub(pos);
    let Some(count) = bytes.get(pos..pos + 8) else {
        return Err(WeightsError::StorageTruncated { key, offset: pos, claimed: 8, available });
    };
    let found = u64::from_le_bytes(count.try_into().expect("8 bytes"));
    if found != storage.numel {
        return Err(WeightsError::StorageSizeMismatch { key, offset: pos, declared: storage.numel, found });
    }
    let claimed = u128::from(found) * storage.dtype.size_in_bytes() as u128;
    let start = pos + 8;
    let available = bytes.len() - start;
    if claimed > available as u128 {
        return Err(WeightsError::StorageTruncated { key, offset: pos, claimed, available });
    }
    let end = start + claimed as usize;
    Ok((&bytes[start..end], end))
}

/// Refuses outputs much larger than the storages (see [`MAX_OUTPUT_FACTOR`]) before allocating.
fn check_output_size(entries: &[(String, Rc<TensorRef>)], data: &HashMap<Rc<str>, &[u8]>) -> Result<()> {
    let stored: u128 = data.values().map(|s| s.len() as u128).sum();
    let limit = stored * MAX_OUTPUT_FACTOR;
    let mut bytes: u128 = 0;
    for (_, tensor) in entries {
        let numel = tensor.shape.iter().try_fold(1u128, |n, &d| n.checked_mul(u128::from(d))).unwrap_or(u128::MAX);
        bytes = bytes.saturating_add(numel.saturating_mul(tensor.storage.dtype.size_in_bytes() as u128));
    }
    if bytes > limit {
        return Err(WeightsError::OutputTooLarge { bytes, limit });
    }
    Ok(())
}

// ---- strided views → contiguous ----

/// Errors unless the dimensions, multiplied in order with checked arithmetic, stay countable in
/// `usize` (a later 0 does not excuse `[2⁴⁰, 2⁴⁰, 0]`: every product of sizes from the file is
/// checked, and a shape the safetensors reader would refuse is not written).
fn check_shape(name: &str, tensor: &TensorRef) -> Result<()> {
    let count = tensor.shape.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
    match count.and_then(|n| usize::try_from(n).ok()) {
        Some(_) => Ok(()),
        None => Err(WeightsError::TensorTooLarge { name: name.to_owned(), shape: tensor.shape.clone() }),
    }
}

/// Errors unless every element of the view lies inside its storage: the furthest one,
/// offset + Σ (size − 1) · stride, must be below the storage's element count.
fn check_bounds(name: &str, tensor: &TensorRef) -> Result<()> {
    if tensor.shape.contains(&0) {
        return Ok(());
    }
    let last = tensor.shape.iter().zip(&tensor.strides).try_fold(u128::from(tensor.offset), |acc, (&size, &stride)| {
        acc.checked_add(u128::from(size - 1) * u128::from(stride))
    });
    match last {
        Some(last) if last < u128::from(tensor.storage.numel) => Ok(()),
        _ => Err(WeightsError::TensorOutOfBounds {
            name: name.to_owned(),
            shape: tensor.shape.clone(),
            strides: tensor.strides.clone(),
            offset: tensor.offset,
            storage_numel: tensor.storage.numel,
        }),
    }
}

/// The tensor's elements in row-major order: a borrowed slice when its strides are already
/// row-major, else gathered. The caller checked the bounds ([`check_bounds`]), so every index
/// below is under the storage's length and fits in `usize`.
fn contiguous_bytes<'a>(tensor: &TensorRef, storage: &'a [u8]) -> Cow<'a, [u8]> {
    if tensor.shape.contains(&0) {
        return Cow::Borrowed(&[]);
    }
    let elem = tensor.storage.dtype.size_in_bytes();
    let offset = tensor.offset as usize;
    let shape: Vec<usize> = tensor.shape.iter().map(|&d| d as usize).collect();
    let strides: Vec<usize> = tensor.strides.iter().map(|&s| s as usize).collect();
    let numel: usize = shape.iter().product();
    if is_row_major(&shape, &strides) {
        return Cow::Borrowed(&storage[offset * elem..(offset + numel) * elem]);
    }
    Cow::Owned(gather(storage, elem, offset, &shape, &strides))
}

/// Strides of a row-major layout (dimensions of size 1 may have any stride).
fn is_row_major(shape: &[usize], strides: &[usize]) -> bool {
    let mut expected = 1;
    for (&size, &stride) in shape.iter().zip(strides).rev() {
        if size != 1 && stride != expected {
            return false;
        }
        expected *= size;
    }
    true
}

/// Copies a strided view element by element into row-major order. Callers checked the bounds.
fn gather(storage: &[u8], elem: usize, offset: usize, shape: &[usize], strides: &[usize]) -> Vec<u8> {
    let numel: usize = shape.iter().product();
    let mut out = Vec::with_capacity(numel * elem);
    if shape.is_empty() {
        out.extend_from_slice(&storage[offset * elem..(offset + 1) * elem]);
        return out;
    }
    let (rows_shape, &[cols]) = shape.split_at(shape.len() - 1) else { unreachable!("non-empty") };
    let col_stride = strides[shape.len() - 1];
    let mut index = vec![0usize; rows_shape.len()];
    loop {
        let row_start = offset + index.iter().zip(strides).map(|(i, s)| i * s).sum::<usize>();
        for col in 0..cols {
            let at = (row_start + col * col_stride) * elem;
            out.extend_from_slice(&storage[at..at + elem]);
        }
        // Odometer over every dimension but the last.
        let mut dim = rows_shape.len();
        loop {
            if dim == 0 {
                return out;
            }
            dim -= 1;
            index[dim] += 1;
            if index[dim] < rows_shape[dim] {
                break;
            }
            index[dim] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_major_detection_ignores_unit_dimensions() {
        assert!(is_row_major(&[2, 3], &[3, 1]));
        assert!(is_row_major(&[16, 32, 1, 1], &[32, 1, 512, 512]));
        assert!(is_row_major(&[], &[]));
        assert!(!is_row_major(&[2, 3], &[1, 2]));
        assert!(!is_row_major(&[32, 3, 3, 3], &[1, 32, 288, 96]));
    }

    #[test]
    fn gather_transposes_a_matrix() {
        // storage [0 1 2 3 4 5] as a 3×2 matrix seen through strides (1, 3): its transpose
        let storage: Vec<u8> = (0..6).collect();
        assert_eq!(gather(&storage, 1, 0, &[3, 2], &[1, 3]), vec![0, 3, 1, 4, 2, 5]);
        // multi-byte elements, an offset, and a broadcast (stride 0) dimension
        let storage: Vec<u8> = (0..8).collect();
        assert_eq!(gather(&storage, 2, 1, &[2, 2], &[0, 1]), vec![2, 3, 4, 5, 2, 3, 4, 5]);
        // a scalar
        assert_eq!(gather(&storage, 4, 1, &[], &[]), vec![4, 5, 6, 7]);
    }

    #[test]
    fn gather_matches_the_index_formula_in_4d() {
        let (shape, strides) = ([2usize, 3, 2, 2], [1usize, 2, 12, 6]); // HWIO → OIHW, like the stem
        let storage: Vec<u8> = (0..24).collect();
        let out = gather(&storage, 1, 0, &shape, &strides);
        let mut expected = Vec::new();
        for a in 0..2 {
            for b in 0..3 {
                for c in 0..2 {
                    for d in 0..2 {
                        expected.push((a * strides[0] + b * strides[1] + c * strides[2] + d * strides[3]) as u8);
                    }
                }
            }
        }
        assert_eq!(out, expected);
    }
}
