//! Image files on arbitrary bytes: `omakase::data::images::read_image_header`, the check that reads a
//! picture's format and size before any pixel is decoded and refuses one over `MAX_IMAGE_PIXELS`.
//! When it accepts, the bytes are decoded as the real loaders do: by the encoders' decoder
//! (`encoders::image::decode_bytes`: zune-jpeg in strict mode, `image` with `decoding_limits()`), and
//! for PNG and WebP also by `image` with `decoding_limits()` alone, as `validate` does. Fails when a
//! decoded picture's size is not its header's, or is over the limit.
//!
//! Run with libFuzzer's default `-rss_limit_mb=2048` (and `-malloc_limit_mb`, which follows it): a
//! small file that makes the decoders allocate past it — a decompression bomb the header check lets
//! through — is a finding, not noise.
#![no_main]

use std::io::Cursor;

use image::ImageFormat;
use libfuzzer_sys::fuzz_target;
use omakase::data::images::{decoding_limits, read_image_header, MAX_IMAGE_PIXELS};
use omakase::encoders::image::decode_bytes;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = read_image_header(data) else { return };
    let (width, height) = (header.width, header.height);
    let pixels = u64::from(width) * u64::from(height);
    assert!(pixels <= MAX_IMAGE_PIXELS, "header accepted {width}×{height}");
    assert!(
        matches!(header.format, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::WebP),
        "header accepted {:?}",
        header.format
    );

    if let Ok(rgb) = decode_bytes(data, "fuzz") {
        let view = rgb.view();
        assert_eq!((view.width(), view.height()), (width as usize, height as usize), "encoder's decode");
        assert_eq!(view.pixels().len(), width as usize * height as usize * 3);
    }

    if header.format != ImageFormat::Jpeg {
        let mut reader = image::ImageReader::with_format(Cursor::new(data), header.format);
        reader.limits(decoding_limits());
        if let Ok(decoded) = reader.decode() {
            assert_eq!((decoded.width(), decoded.height()), (width, height), "validate's decode");
        }
    }
});
