//! File or bytes → packed RGB8, as the reference's `Image.open(path).convert("RGB")` (native only).
//!
//! The `image` crate does the decoding (JPEG via zune-jpeg, PNG, WebP); the format is sniffed from the
//! content, not the file name. Conversions follow Pillow's `.convert("RGB")` where they matter:
//! - grayscale → R = G = B;
//! - alpha is dropped, not composited (Pillow does the same);
//! - CMYK JPEGs are converted to RGB by the decoder;
//! - 16-bit channels keep their high byte, as Pillow's PNG unpacker does (`image` would round
//!   `x / 257` instead). Pillow saturates 16-bit *grayscale* PNGs to 255 above 255, which we do not copy.
//!
//! The header is read first and an image over the pixel limit refused before any pixel is decoded
//! (`data::images::read_image_header`, the same check `validate` makes); decoders allocate at most
//! `data::images::MAX_DECODE_BYTES`.
//!
//! EXIF orientation is ignored, as in the reference (Pillow does not apply it on open).
//!
//! JPEGs are decoded by zune-jpeg directly, in **strict** mode: `image` runs it leniently, and a file cut
//! short then decodes without error with its missing part grey — silently wrong pixels. The pixels of a
//! sound file are the same either way. They can differ by a level or so from libjpeg-turbo's (IDCT and
//! chroma upsampling), which the reference used.

use std::io::Cursor;
use std::path::Path;

use crate::data::images::{decoding_limits, read_image_header};
use image::{DynamicImage, ImageFormat, ImageReader};
use zune_jpeg::zune_core::{bytestream::ZCursor, colorspace::ColorSpace, options::DecoderOptions};

use super::error::{ImageEncoderError, Result};
use super::preprocess::RgbImage;

/// Decodes an image file to RGB8. Errors name the file.
pub fn decode_file(path: &Path) -> Result<RgbImage> {
    let bytes = crate::data::images::read_image_file(path)
        .map_err(|source| ImageEncoderError::Io { path: path.to_path_buf(), source })?;
    decode_bytes(&bytes, &path.display().to_string())
}

/// Decodes an encoded image (JPEG, PNG, WebP) to RGB8; `origin` labels errors (a path, a URL, an id).
pub fn decode_bytes(bytes: &[u8], origin: &str) -> Result<RgbImage> {
    let fail = |reason: String| ImageEncoderError::Decode { origin: origin.to_string(), reason };
    let header = read_image_header(bytes).map_err(fail)?;
    match header.format {
        ImageFormat::Jpeg => decode_jpeg_strictly(bytes).map_err(fail),
        format => {
            let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
            reader.limits(decoding_limits());
            to_rgb8(reader.decode().map_err(|e| fail(e.to_string()))?)
        }
    }
}

/// zune-jpeg in strict mode, with the colour handling `image` would ask of it (grey stays grey, anything
/// that is not RGB or grey — CMYK, YCCK — is converted to RGB by the decoder), then to RGB8.
fn decode_jpeg_strictly(bytes: &[u8]) -> std::result::Result<RgbImage, String> {
    let options = DecoderOptions::default().set_strict_mode(true);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode_headers().map_err(|e| format!("{e:?}"))?;
    let input = decoder.input_colorspace().ok_or("no colour space in the JPEG header")?;
    let output = match input {
        ColorSpace::RGB | ColorSpace::RGBA | ColorSpace::Luma | ColorSpace::LumaA => input,
        _ => ColorSpace::RGB,
    };
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(output));
    let samples = decoder.decode().map_err(|e| format!("{e:?}"))?;
    let (width, height) = decoder.dimensions().ok_or("no dimensions in the JPEG header")?;
    let channels = output.num_components();
    let pixels = samples
        .chunks_exact(channels)
        .flat_map(|px| if channels >= 3 { [px[0], px[1], px[2]] } else { [px[0]; 3] })
        .collect();
    RgbImage::new(width, height, pixels).map_err(|e| e.to_string())
}

/// `.convert("RGB")` in Pillow's manner (see the module docs).
fn to_rgb8(image: DynamicImage) -> Result<RgbImage> {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let high_byte = |samples: &[u16], channels: usize| -> Vec<u8> {
        samples
            .chunks_exact(channels)
            .flat_map(|px| {
                let rgb = if channels >= 3 { [px[0], px[1], px[2]] } else { [px[0]; 3] };
                rgb.map(|s| (s >> 8) as u8)
            })
            .collect()
    };
    let pixels = match &image {
        DynamicImage::ImageRgb16(im) => high_byte(im.as_raw(), 3),
        DynamicImage::ImageRgba16(im) => high_byte(im.as_raw(), 4),
        DynamicImage::ImageLuma16(im) => high_byte(im.as_raw(), 1),
        DynamicImage::ImageLumaA16(im) => high_byte(im.as_raw(), 2),
        _ => image.into_rgb8().into_raw(),
    };
    RgbImage::new(width, height, pixels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayAlphaImage, LumaA, Rgb, Rgb32FImage, Rgba, RgbaImage};

    fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut bytes = Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    #[test]
    fn png_alpha_is_dropped_not_composited() {
        let im = RgbaImage::from_pixel(2, 1, Rgba([200, 100, 50, 0]));
        let rgb = decode_bytes(&encode(DynamicImage::ImageRgba8(im), ImageFormat::Png), "test").unwrap();
        assert_eq!(rgb.view().pixels(), &[200, 100, 50, 200, 100, 50]);
    }

    #[test]
    fn grayscale_is_replicated() {
        let im = GrayAlphaImage::from_pixel(1, 2, LumaA([77, 255]));
        let rgb = decode_bytes(&encode(DynamicImage::ImageLumaA8(im), ImageFormat::Png), "test").unwrap();
        assert_eq!(rgb.view().pixels(), &[77; 6]);
    }

    #[test]
    fn sixteen_bit_keeps_the_high_byte() {
        let im = image::ImageBuffer::<image::Rgb<u16>, _>::from_pixel(1, 1, Rgb([0x12ff, 0xff00, 0x0080]));
        let rgb = to_rgb8(DynamicImage::ImageRgb16(im)).unwrap();
        assert_eq!(rgb.view().pixels(), &[0x12, 0xff, 0x00]);
        // Other layouts go through `image`'s own conversion.
        let float = Rgb32FImage::from_pixel(1, 1, Rgb([1.0, 0.0, 0.5]));
        assert_eq!(to_rgb8(DynamicImage::ImageRgb32F(float)).unwrap().view().pixels()[..2], [255, 0]);
    }

    #[test]
    fn a_truncated_jpeg_is_an_error_not_grey_pixels() {
        let im = image::RgbImage::from_fn(64, 48, |x, y| Rgb([(x * 4) as u8, (y * 5) as u8, 128]));
        let jpeg = encode(DynamicImage::ImageRgb8(im), ImageFormat::Jpeg);
        let whole = decode_bytes(&jpeg, "whole.jpg").unwrap();
        assert_eq!((whole.view().width(), whole.view().height()), (64, 48));
        let err = decode_bytes(&jpeg[..jpeg.len() * 2 / 3], "cut.jpg").unwrap_err();
        assert!(err.to_string().contains("cut.jpg"), "{err}");
    }

    #[test]
    fn a_grey_jpeg_becomes_three_equal_channels() {
        let im = image::GrayImage::from_fn(16, 16, |x, _| image::Luma([(x * 16) as u8]));
        let rgb = decode_bytes(&encode(DynamicImage::ImageLuma8(im), ImageFormat::Jpeg), "grey.jpg").unwrap();
        assert!(rgb.view().pixels().chunks(3).all(|p| p[0] == p[1] && p[1] == p[2]));
    }

    #[test]
    fn garbage_is_a_decode_error_naming_its_origin() {
        let err = decode_bytes(b"definitely not a picture", "items.jsonl:7 image").unwrap_err();
        assert!(matches!(err, ImageEncoderError::Decode { .. }), "{err}");
        assert!(err.to_string().contains("items.jsonl:7 image"), "{err}");
        let truncated = &encode(DynamicImage::ImageRgba8(RgbaImage::new(8, 8)), ImageFormat::Png)[..40];
        assert!(decode_bytes(truncated, "cut.png").is_err());
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_the_path() {
        let err = decode_file(Path::new("/nonexistent/poster.jpg")).unwrap_err();
        assert!(matches!(err, ImageEncoderError::Io { .. }));
        assert!(err.to_string().contains("/nonexistent/poster.jpg"));
    }
}
