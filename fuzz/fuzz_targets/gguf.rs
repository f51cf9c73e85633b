//! The bounded GGUF reader on arbitrary bytes, then every tensor dequantized.
#![no_main]

use libfuzzer_sys::fuzz_target;
use omakase_runtime::gguf::Gguf;

fuzz_target!(|data: &[u8]| {
    if let Ok(gguf) = Gguf::parse(data, "fuzz.gguf") {
        for tensor in gguf.tensors.values() {
            let values = tensor.to_f32();
            assert_eq!(values.len(), tensor.elements());
        }
    }
});
