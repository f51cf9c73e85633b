//! Issue 14, point 7: sizes read from a file are multiplied with checked arithmetic. (The legacy
//! `.pth` case is in `tests/legacy_pth.rs`, beside that format's other hostile files.)

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};
use omakase::encoders::gguf::{read_image, GgufError, IMAGE_ARCHITECTURE, IMAGE_PREPROCESS_VERSION};
use omakase::encoders::image::FEATURE_DIM;

#[test]
fn an_encoder_shape_whose_product_overflows_is_refused_naming_the_tensor() {
    // `omakase.shape.w` = [2³², 2³², 2³², 1] for a one-value tensor: the product overflowed in
    // `original_shape` (exit 101); now a metadata error naming the key, hence the tensor.
    let w = QTensor::quantize(&Tensor::new(&[1f32], &Device::Cpu).unwrap(), GgmlDType::F32).unwrap();
    let dims = [1u64 << 32, 1 << 32, 1 << 32, 1].map(Value::U64).to_vec();
    let metadata = [
        ("general.architecture", Value::String(IMAGE_ARCHITECTURE.into())),
        ("omakase.image.preprocess_version", Value::U32(IMAGE_PREPROCESS_VERSION)),
        ("omakase.image.feature_dim", Value::U32(FEATURE_DIM as u32)),
        ("omakase.shape.w", Value::Array(dims)),
    ];
    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let mut bytes = std::io::Cursor::new(Vec::new());
    gguf_file::write(&mut bytes, &metadata, &[("w", &w)]).unwrap();
    let Err(err) = read_image(bytes.get_ref()) else { panic!("an overflowing shape was accepted") };
    assert!(matches!(&err, GgufError::Metadata { key, .. } if key == "omakase.shape.w"), "{err:?}");
    assert!(err.to_string().contains("more elements than can be counted"), "{err}");
}
