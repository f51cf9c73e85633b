//! The legacy `.pth` converter: the real EfficientNet-Lite0 checkpoint (as `scripts/fetch-models.sh`
//! converted it), and crafted broken or hostile files, each refused with its own error.

mod common;

use std::collections::BTreeMap;

use omakase::weights::legacy_pth::{convert_legacy_pth, legacy_pth_to_safetensors, read_legacy_pth};
use omakase::weights::WeightsError;
use safetensors::{Dtype, SafeTensors};

const PTH: &str = "efficientnet-lite0/efficientnet-lite0-57934424.pth";
const SAFETENSORS: &str = "efficientnet-lite0/efficientnet-lite0.safetensors";

// ---------------------------------------------------------------------------------------------
// The real checkpoint
// ---------------------------------------------------------------------------------------------

/// EfficientNet-Lite0's stages (lukemelas `efficientnet_lite0`): repeats, kernel, expansion, output
/// channels. Lite variants have no squeeze-excitation and a fixed 32-channel stem, 1280-channel head.
const STAGES: [(usize, usize, usize, usize); 7] =
    [(1, 3, 1, 16), (2, 3, 6, 24), (2, 5, 6, 40), (3, 3, 6, 80), (3, 5, 6, 112), (4, 5, 6, 192), (1, 3, 6, 320)];

/// Every tensor name → (dtype, shape) the architecture implies, built from [`STAGES`].
fn expected_tensors() -> BTreeMap<String, (Dtype, Vec<usize>)> {
    let mut convs: Vec<(String, Vec<usize>)> = Vec::new();
    let mut conv = |name: String, shape: Vec<usize>| convs.push((name, shape));
    let mut bns = Vec::new();
    conv("_conv_stem.weight".into(), vec![32, 3, 3, 3]);
    bns.push(("_bn0".to_owned(), 32));
    let (mut block, mut channels) = (0, 32);
    for (repeats, kernel, expand, out) in STAGES {
        for _ in 0..repeats {
            let mid = channels * expand;
            let prefix = format!("_blocks.{block}");
            if expand != 1 {
                conv(format!("{prefix}._expand_conv.weight"), vec![mid, channels, 1, 1]);
                bns.push((format!("{prefix}._bn0"), mid));
            }
            conv(format!("{prefix}._depthwise_conv.weight"), vec![mid, 1, kernel, kernel]);
            bns.push((format!("{prefix}._bn1"), mid));
            conv(format!("{prefix}._project_conv.weight"), vec![out, mid, 1, 1]);
            bns.push((format!("{prefix}._bn2"), out));
            (block, channels) = (block + 1, out);
        }
    }
    conv("_conv_head.weight".into(), vec![1280, channels, 1, 1]);
    bns.push(("_bn1".to_owned(), 1280));
    conv("_fc.weight".into(), vec![1000, 1280]);
    conv("_fc.bias".into(), vec![1000]);
    let mut tensors: BTreeMap<_, _> = convs.into_iter().map(|(n, s)| (n, (Dtype::F32, s))).collect();
    for (bn, c) in bns {
        for field in ["weight", "bias", "running_mean", "running_var"] {
            tensors.insert(format!("{bn}.{field}"), (Dtype::F32, vec![c]));
        }
        tensors.insert(format!("{bn}.num_batches_tracked"), (Dtype::I64, vec![]));
    }
    tensors
}

fn real_files() -> (Vec<u8>, Vec<u8>) {
    let dir = common::models_dir();
    let read = |rel: &str| {
        std::fs::read(dir.join(rel))
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-models.sh)", dir.join(rel).display()))
    };
    (read(PTH), read(SAFETENSORS))
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

#[test]
fn converted_efficientnet_holds_the_296_tensors_the_architecture_implies() {
    let (_, converted) = real_files();
    let file = SafeTensors::deserialize(&converted).unwrap();
    let found: BTreeMap<String, (Dtype, Vec<usize>)> =
        file.tensors().into_iter().map(|(name, view)| (name, (view.dtype(), view.shape().to_vec()))).collect();
    assert_eq!(found.len(), 296);
    let expected = expected_tensors();
    assert_eq!(expected.len(), 296, "the architecture spec itself");
    for (name, shape) in [
        ("_conv_stem.weight", vec![32, 3, 3, 3]),
        ("_blocks.0._depthwise_conv.weight", vec![32, 1, 3, 3]),
        ("_blocks.3._depthwise_conv.weight", vec![144, 1, 5, 5]),
        ("_blocks.15._project_conv.weight", vec![320, 1152, 1, 1]),
        ("_conv_head.weight", vec![1280, 320, 1, 1]),
        ("_fc.weight", vec![1000, 1280]),
    ] {
        assert_eq!(found[name], (Dtype::F32, shape), "{name}");
    }
    assert_eq!(found, expected);

    // Trainable parameters (no BatchNorm running statistics): the published "4.7M".
    let trainable: usize = found
        .iter()
        .filter(|(name, (dtype, _))| *dtype == Dtype::F32 && !name.contains(".running_"))
        .map(|(_, (_, shape))| shape.iter().product::<usize>())
        .sum();
    assert!((4_650_000..4_750_000).contains(&trainable), "{trainable} trainable parameters");
}

#[test]
fn the_fetched_file_is_exactly_what_the_library_converts_now() {
    let (pth, converted) = real_files();
    assert!(legacy_pth_to_safetensors(&pth).unwrap() == converted, "conversion is not reproducible");
}

/// Where `needle` occurs in `haystack` (the first 64 bytes narrow it down, then the whole is compared).
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let head = &needle[..needle.len().min(64)];
    haystack
        .windows(head.len())
        .enumerate()
        .filter(|(_, w)| *w == head)
        .map(|(at, _)| at)
        .find(|&at| haystack.get(at..at + needle.len()) == Some(needle))
}

/// `bytes` of a raw storage in the .pth: present verbatim, right after its u64 element count.
fn assert_raw_storage(pth: &[u8], values: &[f32], what: &str) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let at = find(pth, &bytes).unwrap_or_else(|| panic!("{what}: not found in the .pth"));
    let count = u64::from_le_bytes(pth[at - 8..at].try_into().unwrap());
    assert_eq!(count, values.len() as u64, "{what}: not a whole storage");
}

#[test]
fn values_match_the_raw_storages_including_transposed_ones() {
    let (pth, converted) = real_files();
    let file = SafeTensors::deserialize(&converted).unwrap();
    let tensor = |name: &str| f32s(file.tensor(name).unwrap().data());

    // Contiguous in the checkpoint: copied as is.
    assert_raw_storage(&pth, &tensor("_fc.bias"), "_fc.bias");
    assert_raw_storage(&pth, &tensor("_blocks.7._bn1.running_var"), "_blocks.7._bn1.running_var");

    // Ported from TensorFlow, convolutions are stored [kh, kw, in, out] and seen through strides as
    // [out, in, kh, kw]; the converter lays them out row-major. Permuting back must give the raw bytes.
    let stem = tensor("_conv_stem.weight"); // [32, 3, 3, 3]
    let mut hwio = Vec::with_capacity(stem.len());
    for kh in 0..3 {
        for kw in 0..3 {
            for i in 0..3 {
                for o in 0..32 {
                    hwio.push(stem[((o * 3 + i) * 3 + kh) * 3 + kw]);
                }
            }
        }
    }
    assert_raw_storage(&pth, &hwio, "_conv_stem.weight as HWIO");

    // The classifier is stored [in, out] and seen transposed.
    let fc = tensor("_fc.weight"); // [1000, 1280]
    let transposed: Vec<f32> =
        (0..1280).flat_map(|i| (0..1000).map(move |o| (i, o))).map(|(i, o)| fc[o * 1280 + i]).collect();
    assert_raw_storage(&pth, &transposed, "_fc.weight transposed");

    // Variances are never negative: they would be if weights had landed in the statistics' places.
    // (Zero is real: channels dead in the TensorFlow original have variance 0.)
    for (name, view) in file.tensors() {
        if name.ends_with(".running_var") {
            assert!(f32s(view.data()).iter().all(|&v| v >= 0.0 && v.is_finite()), "{name}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Crafted files
// ---------------------------------------------------------------------------------------------

/// Emits protocol-2 pickle opcodes.
struct Pickle(Vec<u8>);

impl Pickle {
    fn new() -> Self {
        Pickle(vec![0x80, 2])
    }
    fn op(mut self, bytes: &[u8]) -> Self {
        self.0.extend_from_slice(bytes);
        self
    }
    fn global(self, module: &str, name: &str) -> Self {
        self.op(format!("c{module}\n{name}\n").as_bytes())
    }
    fn str(self, s: &str) -> Self {
        let len = (s.len() as u32).to_le_bytes();
        self.op(b"X").op(&len).op(s.as_bytes())
    }
    fn int(self, i: i32) -> Self {
        self.op(b"J").op(&i.to_le_bytes())
    }
    fn long(self, i: i128) -> Self {
        self.op(&[0x8a, 16]).op(&i.to_le_bytes())
    }
    fn ints(self, values: &[i64]) -> Self {
        let with_values = values.iter().fold(self.op(b"("), |p, &v| p.long(v.into()));
        with_values.op(b"t")
    }
    fn stop(self) -> Vec<u8> {
        self.op(b".").0
    }
}

/// One tensor of a crafted state dict.
struct Fake {
    name: &'static str,
    key: &'static str,
    class: &'static str,
    numel: u64,
    offset: i64,
    shape: Vec<i64>,
    strides: Vec<i64>,
}

impl Fake {
    /// A contiguous f32 tensor of the given shape on its own storage.
    fn contiguous(name: &'static str, key: &'static str, shape: &[i64]) -> Self {
        let mut strides = vec![1; shape.len()];
        for d in (0..shape.len().saturating_sub(1)).rev() {
            strides[d] = strides[d + 1] * shape[d + 1];
        }
        let numel = shape.iter().product::<i64>() as u64;
        Fake { name, key, class: "FloatStorage", numel, offset: 0, shape: shape.to_vec(), strides }
    }
}

fn state_dict(tensors: &[Fake]) -> Vec<u8> {
    let mut p = Pickle::new().global("collections", "OrderedDict").op(b")R(");
    for t in tensors {
        p = p
            .str(t.name)
            .global("torch._utils", "_rebuild_tensor_v2")
            .op(b"((")
            .str("storage")
            .global("torch", t.class)
            .str(t.key)
            .str("cpu")
            .long(t.numel.into())
            .op(b"NtQ")
            .long(t.offset.into())
            .ints(&t.shape)
            .ints(&t.strides)
            .op(b"\x89")
            .global("collections", "OrderedDict")
            .op(b")RtR");
    }
    p.op(b"u").stop()
}

const MAGIC: i128 = 0x1950a86a20f9469cfc6c;

/// The three header pickles: magic number, protocol version, sys_info.
fn header(magic: i128, little_endian: bool) -> Vec<u8> {
    let mut bytes = Pickle::new().long(magic).stop();
    bytes.extend(Pickle::new().int(1001).stop());
    let flag: &[u8] = if little_endian { b"\x88" } else { b"\x89" };
    bytes.extend(
        Pickle::new().op(b"}(").str("protocol_version").int(1001).str("little_endian").op(flag).op(b"u").stop(),
    );
    bytes
}

/// A whole legacy file: header, `object`, the key list, then each storage (count, bytes).
fn legacy_file(object: &[u8], storages: &[(&str, u64, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = header(MAGIC, true);
    bytes.extend_from_slice(object);
    let keys = storages.iter().fold(Pickle::new().op(b"]("), |p, (key, _, _)| p.str(key));
    bytes.extend(keys.op(b"e").stop());
    for (_, count, data) in storages {
        bytes.extend_from_slice(&count.to_le_bytes());
        bytes.extend_from_slice(data);
    }
    bytes
}

fn f32_bytes(values: impl IntoIterator<Item = f32>) -> Vec<u8> {
    values.into_iter().flat_map(f32::to_le_bytes).collect()
}

/// A small valid file: a 2×3 transposed view (strides [1, 2]) and a contiguous vector.
fn good_file() -> Vec<u8> {
    let object = state_dict(&[
        Fake { strides: vec![1, 2], ..Fake::contiguous("w", "0", &[2, 3]) },
        Fake::contiguous("b", "1", &[2]),
    ]);
    legacy_file(&object, &[("0", 6, f32_bytes((0..6).map(|i| i as f32))), ("1", 2, f32_bytes([7.0, 8.0]))])
}

fn err_of(bytes: &[u8]) -> WeightsError {
    match read_legacy_pth(bytes) {
        Ok(tensors) => panic!("accepted: {} tensors", tensors.len()),
        Err(err) => err,
    }
}

#[test]
fn a_crafted_file_converts_and_strided_views_become_row_major() {
    let bytes = good_file();
    let tensors = read_legacy_pth(&bytes).unwrap();
    let names: Vec<_> = tensors.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["w", "b"]);
    // storage [0..6) seen as 2×3 through strides [1, 2]: element [r, c] = storage[r + 2c]
    assert_eq!(tensors[0].shape, [2, 3]);
    assert_eq!(f32s(&tensors[0].data), [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
    assert_eq!(f32s(&tensors[1].data), [7.0, 8.0]);

    let st = legacy_pth_to_safetensors(&bytes).unwrap();
    let st = SafeTensors::deserialize(&st).unwrap();
    assert_eq!(f32s(st.tensor("w").unwrap().data()), [0.0, 2.0, 4.0, 1.0, 3.0, 5.0]);
}

#[test]
fn forbidden_globals_are_refused_with_their_name_and_offset() {
    for (module, name) in [("os", "system"), ("builtins", "eval")] {
        let object = Pickle::new().global(module, name).str("print('pwned')").op(b"\x85R").stop();
        let bytes = legacy_file(&object, &[]);
        let at = header(MAGIC, true).len() + 2;
        match err_of(&bytes) {
            WeightsError::ForbiddenGlobal { module: m, name: n, offset } => {
                assert_eq!((m.as_str(), n.as_str(), offset), (module, name, at));
            }
            other => panic!("{module}.{name}: {other:?}"),
        }
    }
    // Even as a tensor's storage type.
    let object = state_dict(&[Fake { class: "UntypedStorage", ..Fake::contiguous("w", "0", &[1]) }]);
    let err = err_of(&legacy_file(&object, &[("0", 1, f32_bytes([1.0]))]));
    assert!(matches!(&err, WeightsError::ForbiddenGlobal { name, .. } if name == "UntypedStorage"), "{err:?}");
}

#[test]
fn every_truncation_is_an_error_and_never_a_panic() {
    let bytes = good_file();
    let magic_pickle = 21; // PROTO, LONG1 of 16 bytes, STOP
    let storages_start = bytes.len() - (8 + 24) - (8 + 8);
    for cut in 0..bytes.len() {
        let err = err_of(&bytes[..cut]);
        let expected = if cut < magic_pickle {
            matches!(err, WeightsError::BadMagic { .. })
        } else if cut < storages_start {
            matches!(err, WeightsError::Truncated { .. })
        } else {
            matches!(err, WeightsError::StorageTruncated { .. })
        };
        assert!(expected, "cut at {cut} of {}: {err:?}", bytes.len());
    }
}

#[test]
fn wrong_magic_zip_and_big_endian_files_are_refused() {
    let mut bytes = header(0x1950a86a20f9469cfc6d, true);
    bytes.extend(good_file()[header(MAGIC, true).len()..].iter());
    assert!(matches!(err_of(&bytes), WeightsError::BadMagic { found } if found.contains("0x1950a86a20f9469cfc6d")));

    assert!(matches!(err_of(b"PK\x03\x04rest of a zip"), WeightsError::ZipFormat));
    assert!(matches!(err_of(b"definitely not a pickle"), WeightsError::BadMagic { .. }));

    let mut bytes = header(MAGIC, false);
    bytes.extend(good_file()[header(MAGIC, true).len()..].iter());
    assert!(matches!(err_of(&bytes), WeightsError::BigEndian));
}

#[test]
fn storages_shorter_than_declared_are_refused() {
    let object = state_dict(&[Fake::contiguous("w", "0", &[4])]);
    // The count in the file disagrees with the declared 4 elements.
    let err = err_of(&legacy_file(&object, &[("0", 3, f32_bytes([1.0, 2.0, 3.0]))]));
    assert!(
        matches!(err, WeightsError::StorageSizeMismatch { ref key, declared: 4, found: 3, .. } if key == "0"),
        "{err:?}"
    );
    // The count agrees but the bytes stop early.
    let err = err_of(&legacy_file(&object, &[("0", 4, f32_bytes([1.0, 2.0, 3.0]))]));
    assert!(matches!(err, WeightsError::StorageTruncated { claimed: 16, available: 12, .. }), "{err:?}");
}

#[test]
fn huge_claims_are_refused_without_allocating() {
    // A storage claiming 2^60 elements (4 EiB) in a file of a few hundred bytes.
    let huge = 1u64 << 60;
    let object = state_dict(&[Fake { numel: huge, ..Fake::contiguous("w", "0", &[4]) }]);
    let err = err_of(&legacy_file(&object, &[("0", huge, f32_bytes([1.0; 4]))]));
    assert!(
        matches!(err, WeightsError::StorageTruncated { claimed, .. } if claimed == u128::from(huge) * 4),
        "{err:?}"
    );

    // A tensor whose shape reaches past its storage.
    let object = state_dict(&[Fake { numel: 4, ..Fake::contiguous("w", "0", &[1 << 40]) }]);
    let err = err_of(&legacy_file(&object, &[("0", 4, f32_bytes([1.0; 4]))]));
    assert!(matches!(err, WeightsError::TensorOutOfBounds { ref name, .. } if name == "w"), "{err:?}");
    let object = state_dict(&[Fake { numel: 4, offset: 1, ..Fake::contiguous("w", "0", &[4]) }]);
    let err = err_of(&legacy_file(&object, &[("0", 4, f32_bytes([1.0; 4]))]));
    assert!(matches!(err, WeightsError::TensorOutOfBounds { ref name, .. } if name == "w"), "{err:?}");

    // Broadcasting one element (stride 0) to a million: in bounds, but the output would dwarf the input.
    let object = state_dict(&[Fake { numel: 1, strides: vec![0], ..Fake::contiguous("w", "0", &[1_000_000]) }]);
    let err = err_of(&legacy_file(&object, &[("0", 1, f32_bytes([1.0]))]));
    assert!(matches!(err, WeightsError::OutputTooLarge { .. }), "{err:?}");
}

#[test]
fn storage_bookkeeping_errors() {
    let object = state_dict(&[Fake::contiguous("w", "0", &[1])]);
    let one = || ("0", 1, f32_bytes([1.0]));
    let err = err_of(&legacy_file(&object, &[]));
    assert!(matches!(err, WeightsError::MissingStorageData { ref key } if key == "0"), "{err:?}");
    let err = err_of(&legacy_file(&object, &[one(), ("9", 1, f32_bytes([1.0]))]));
    assert!(matches!(err, WeightsError::UnknownStorage { ref key, .. } if key == "9"), "{err:?}");
    let err = err_of(&legacy_file(&object, &[one(), one()]));
    assert!(matches!(err, WeightsError::DuplicateStorage { .. }), "{err:?}");
    let mut bytes = legacy_file(&object, &[one()]);
    bytes.push(0);
    assert!(matches!(err_of(&bytes), WeightsError::TrailingBytes { count: 1, .. }));
    // A checkpoint wrapping the state dict ({'state_dict': ..., 'epoch': 3}) is not flat.
    let object = Pickle::new().op(b"}").str("epoch").int(3).op(b"s").stop();
    assert!(matches!(err_of(&legacy_file(&object, &[])), WeightsError::NotAStateDict { .. }));
}

#[test]
fn the_file_api_names_the_input_and_writes_nothing_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("evil.pth"), dir.path().join("out.safetensors"));
    let object = Pickle::new().global("os", "system").str("true").op(b"\x85R").stop();
    std::fs::write(&input, legacy_file(&object, &[])).unwrap();
    let err = convert_legacy_pth(&input, &output).unwrap_err();
    assert!(matches!(&err, WeightsError::File { path, .. } if path == &input), "{err:?}");
    assert!(matches!(err.innermost(), WeightsError::ForbiddenGlobal { .. }));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "only the input is there");

    std::fs::write(&input, good_file()).unwrap();
    let summary = convert_legacy_pth(&input, &output).unwrap();
    assert_eq!((summary.tensors, summary.elements), (2, 8));
    let written = std::fs::read(&output).unwrap();
    assert_eq!(SafeTensors::deserialize(&written).unwrap().len(), 2);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2, "no temporary file left");
}

#[test]
fn the_cli_exits_2_on_a_hostile_file() {
    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("evil.pth"), dir.path().join("out.safetensors"));
    let object = Pickle::new().global("builtins", "eval").str("1").op(b"\x85R").stop();
    std::fs::write(&input, legacy_file(&object, &[])).unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_omakase"))
        .arg("convert-pth")
        .args([&input, &output])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("evil.pth") && stderr.contains("builtins eval"), "{stderr}");
    assert!(!output.exists());
}

/// A tiny deterministic generator (xorshift64*), so the mutation test needs no dependency.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_corruptions_never_panic() {
    let good = good_file();
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut refused) = (0, 0);
    for _ in 0..5_000 {
        let mut bytes = good.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] = rng.next() as u8,
                1 => bytes[at] ^= 1 << rng.below(8),
                _ => {
                    bytes.remove(at);
                }
            }
        }
        // Either outcome is fine; a panic (or an abort from a huge allocation) fails the test.
        match read_legacy_pth(&bytes) {
            Ok(_) => accepted += 1,
            Err(err) => {
                assert!(!err.to_string().is_empty());
                refused += 1;
            }
        }
    }
    // Most corruptions must be noticed (a flipped bit in a float value is not one that can be).
    assert!(refused > accepted, "{refused} refused, {accepted} accepted");
}

#[test]
fn dimensions_whose_product_overflows_are_refused_naming_the_tensor() {
    // Issue 14, point 7: (2⁴⁰, 2⁴⁰, 0) holds no element, but 2⁴⁰ · 2⁴⁰ overflowed in `numel`
    // (exit 101 in `omakase convert`). Refused, naming the tensor, by the reader and the file API.
    let huge = 1i64 << 40;
    let empty =
        Fake { numel: 0, shape: vec![huge, huge, 0], strides: vec![0, 0, 1], ..Fake::contiguous("w", "0", &[0]) };
    let bytes = legacy_file(&state_dict(&[empty]), &[("0", 0, Vec::new())]);
    let err = err_of(&bytes);
    assert!(matches!(err, WeightsError::TensorTooLarge { ref name, .. } if name == "w"), "{err:?}");
    assert!(err.to_string().contains("tensor `w`"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let (input, output) = (dir.path().join("huge.pth"), dir.path().join("out.safetensors"));
    std::fs::write(&input, &bytes).unwrap();
    let err = convert_legacy_pth(&input, &output).unwrap_err();
    assert!(matches!(&err, WeightsError::File { path, .. } if path == &input), "{err:?}");
    assert!(matches!(err.innermost(), WeightsError::TensorTooLarge { .. }), "{err:?}");
    assert!(!output.exists());
}
