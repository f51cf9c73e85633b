//! A bounded GGUF reader for the towers' files: the header, metadata and tensor table, each
//! tensor's bytes borrowed from the input.
//!
//! Hand-written rather than `candle_core::quantized::gguf_file` because the bundle is untrusted
//! input: candle's reader trusts counts and lengths from the file (a string length or an array count
//! of 2⁶³ is allocated before it is checked), while this one checks every count against the bytes
//! left before allocating, reads nothing out of bounds, and is the fuzz target's subject. It reads
//! GGUF versions 2 and 3 (little-endian; candle writes version 2), the metadata value types of the
//! specification, and the tensor types the bundle uses: F32, F16, Q4_0, Q8_0.

use std::collections::HashMap;

use half::f16;

use super::error::RuntimeError;

const MAGIC: u32 = 0x4655_4747; // "GGUF" little-endian
const DEFAULT_ALIGNMENT: u64 = 32;
/// More tensors or metadata keys than any tower file has: refuse before allocating.
const MAX_ENTRIES: u64 = 65_536;
const MAX_DIMS: u32 = 4;
/// Nested metadata arrays deeper than this are refused (no recursion bomb).
const MAX_ARRAY_DEPTH: usize = 4;

/// Storage of one tensor (GGML type ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorType {
    F32,
    F16,
    Q4_0,
    Q8_0,
}

impl TensorType {
    fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => TensorType::F32,
            1 => TensorType::F16,
            2 => TensorType::Q4_0,
            8 => TensorType::Q8_0,
            _ => return None,
        })
    }

    /// (values per block, bytes per block).
    pub fn block(self) -> (usize, usize) {
        match self {
            TensorType::F32 => (1, 4),
            TensorType::F16 => (1, 2),
            TensorType::Q4_0 => (32, 18),
            TensorType::Q8_0 => (32, 34),
        }
    }
}

/// A metadata value (only the kinds the bundle reads are kept; the rest are skipped safely).
#[derive(Debug, Clone, PartialEq)]
pub enum MetaValue {
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
    String(String),
    /// Arrays are skipped (their bytes checked), not kept.
    Array,
}

/// One tensor: shape in row-major order (outermost first, as candle sees it) and its bytes.
#[derive(Debug, Clone)]
pub struct GgufTensor<'a> {
    pub dims: Vec<usize>,
    pub dtype: TensorType,
    pub data: &'a [u8],
}

impl GgufTensor<'_> {
    pub fn elements(&self) -> usize {
        self.dims.iter().product()
    }

    /// The values as f32 (dequantized), row-major.
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.elements());
        match self.dtype {
            TensorType::F32 => {
                out.extend(self.data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            }
            TensorType::F16 => out.extend(self.data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())),
            TensorType::Q8_0 => {
                for block in self.data.chunks_exact(34) {
                    let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
                    out.extend(block[2..].iter().map(|&q| q as i8 as f32 * d));
                }
            }
            TensorType::Q4_0 => {
                for block in self.data.chunks_exact(18) {
                    let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
                    let nibbles = &block[2..];
                    // GGML's layout: low nibbles are values 0..16, high nibbles 16..32.
                    out.extend(nibbles.iter().map(|&b| ((b & 0x0f) as i32 - 8) as f32 * d));
                    out.extend(nibbles.iter().map(|&b| ((b >> 4) as i32 - 8) as f32 * d));
                }
            }
        }
        out
    }
}

/// A parsed GGUF file borrowing its tensors' bytes.
#[derive(Debug)]
pub struct Gguf<'a> {
    pub metadata: HashMap<String, MetaValue>,
    pub tensors: HashMap<String, GgufTensor<'a>>,
}

/// A bounds-checked little-endian cursor; every error names the file and what was being read.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    file: &'a str,
}

impl<'a> Reader<'a> {
    fn err(&self, what: &str) -> RuntimeError {
        RuntimeError::format(self.file, format!("GGUF: truncated or malformed at byte {} ({what})", self.at))
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&'a [u8], RuntimeError> {
        let left = (self.bytes.len() - self.at) as u64;
        if n > left {
            return Err(self.err(what));
        }
        let slice = &self.bytes[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(slice)
    }

    fn u8(&mut self, what: &str) -> Result<u8, RuntimeError> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, RuntimeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64, RuntimeError> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]))
    }

    fn string(&mut self, what: &str) -> Result<String, RuntimeError> {
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.err(&format!("{what}: not UTF-8")))
    }

    /// One metadata value of GGUF type `kind`.
    fn value(&mut self, kind: u32, depth: usize) -> Result<MetaValue, RuntimeError> {
        let fixed = |r: &mut Self, n: u64| {
            r.take(n, "metadata value").map(|b| {
                let mut word = [0u8; 8];
                word[..b.len()].copy_from_slice(b);
                u64::from_le_bytes(word)
            })
        };
        Ok(match kind {
            0 | 1 => MetaValue::U64(fixed(self, 1)?),
            2 | 3 => MetaValue::U64(fixed(self, 2)?),
            4 => MetaValue::U64(fixed(self, 4)?),
            5 => MetaValue::I64(fixed(self, 4)? as u32 as i32 as i64),
            6 => MetaValue::F64(f32::from_bits(fixed(self, 4)? as u32) as f64),
            7 => MetaValue::Bool(self.u8("bool")? != 0),
            8 => MetaValue::String(self.string("metadata string")?),
            9 => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(self.err("metadata arrays nested too deep"));
                }
                let inner = self.u32("array type")?;
                let count = self.u64("array length")?;
                // Every element takes at least one byte: a count beyond the bytes left is a lie.
                if count > (self.bytes.len() - self.at) as u64 {
                    return Err(self.err("array length beyond the end of the file"));
                }
                for _ in 0..count {
                    self.value(inner, depth + 1)?;
                }
                MetaValue::Array
            }
            10 => MetaValue::U64(fixed(self, 8)?),
            11 => MetaValue::I64(fixed(self, 8)? as i64),
            12 => MetaValue::F64(f64::from_bits(fixed(self, 8)?)),
            other => return Err(self.err(&format!("unknown metadata type {other}"))),
        })
    }
}

impl<'a> Gguf<'a> {
    /// Parses `bytes` (the file `file`, named in errors).
    pub fn parse(bytes: &'a [u8], file: &'a str) -> Result<Self, RuntimeError> {
        let mut r = Reader { bytes, at: 0, file };
        if r.u32("magic")? != MAGIC {
            return Err(RuntimeError::format(file, "not a GGUF file (bad magic)"));
        }
        let version = r.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(RuntimeError::format(file, format!("GGUF version {version}, expected 2 or 3")));
        }
        let tensor_count = r.u64("tensor count")?;
        let kv_count = r.u64("metadata count")?;
        if tensor_count > MAX_ENTRIES || kv_count > MAX_ENTRIES {
            return Err(RuntimeError::format(
                file,
                format!("GGUF: {tensor_count} tensors / {kv_count} keys is absurd"),
            ));
        }
        let mut metadata = HashMap::new();
        for _ in 0..kv_count {
            let key = r.string("metadata key")?;
            let kind = r.u32("metadata type")?;
            let value = r.value(kind, 0)?;
            metadata.insert(key, value);
        }
        let alignment = match metadata.get("general.alignment") {
            Some(MetaValue::U64(a)) if *a > 0 && *a <= 4096 && a.is_power_of_two() => *a,
            Some(other) => return Err(RuntimeError::format(file, format!("GGUF: bad general.alignment {other:?}"))),
            None => DEFAULT_ALIGNMENT,
        };
        let mut infos = Vec::new();
        for _ in 0..tensor_count {
            let name = r.string("tensor name")?;
            let n_dims = r.u32("tensor rank")?;
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(RuntimeError::tensor(file, &name, format!("rank {n_dims} (1..={MAX_DIMS} supported)")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(r.u64("tensor dimension")?);
            }
            dims.reverse(); // GGUF lists the innermost dimension first.
            let type_id = r.u32("tensor type")?;
            let offset = r.u64("tensor offset")?;
            let dtype = TensorType::from_id(type_id)
                .ok_or_else(|| RuntimeError::tensor(file, &name, format!("GGML type {type_id} not supported")))?;
            infos.push((name, dims, dtype, offset));
        }
        let data_start = (r.at as u64).div_ceil(alignment) * alignment;
        let mut tensors = HashMap::new();
        for (name, dims, dtype, offset) in infos {
            let tensor = locate(bytes, file, &name, dims, dtype, data_start, offset)?;
            if tensors.insert(name.clone(), tensor).is_some() {
                return Err(RuntimeError::tensor(file, &name, "listed twice"));
            }
        }
        Ok(Gguf { metadata, tensors })
    }

    pub fn tensor(&self, file: &str, name: &str) -> Result<&GgufTensor<'a>, RuntimeError> {
        self.tensors.get(name).ok_or_else(|| RuntimeError::tensor(file, name, "missing"))
    }
}

/// Checks a tensor's size arithmetic and bounds, then borrows its bytes.
fn locate<'a>(
    bytes: &'a [u8],
    file: &str,
    name: &str,
    dims: Vec<u64>,
    dtype: TensorType,
    data_start: u64,
    offset: u64,
) -> Result<GgufTensor<'a>, RuntimeError> {
    let bad = |reason: String| RuntimeError::tensor(file, name, reason);
    let elements = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d)).filter(|&n| n <= 1 << 32);
    let Some(elements) = elements else { return Err(bad(format!("dimensions {dims:?} are absurd"))) };
    let (block_values, block_bytes) = dtype.block();
    let inner = *dims.last().unwrap_or(&0);
    if inner % block_values as u64 != 0 {
        return Err(bad(format!("last dimension {inner} is not a multiple of the {dtype:?} block of {block_values}")));
    }
    let size = elements / block_values as u64 * block_bytes as u64;
    let start = data_start.checked_add(offset).ok_or_else(|| bad("offset overflows".into()))?;
    let end = start.checked_add(size).ok_or_else(|| bad("size overflows".into()))?;
    if end > bytes.len() as u64 {
        return Err(bad(format!("data {start}..{end} beyond the end of the file ({} bytes)", bytes.len())));
    }
    // Each dimension is at most `elements` (or the tensor is empty), but a 32-bit target still
    // needs the conversion checked.
    let dims = dims.iter().map(|&d| usize::try_from(d)).collect::<Result<Vec<_>, _>>();
    let Ok(dims) = dims else { return Err(bad("a dimension does not fit in memory".into())) };
    Ok(GgufTensor { dims, dtype, data: &bytes[start as usize..end as usize] })
}
