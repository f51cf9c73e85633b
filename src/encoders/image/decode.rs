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
//! EXIF orientation is ignored, as in the reference (Pillow does not apply it on open).
//! JPEG pixels can differ by a level or so from libjpeg-turbo's (IDCT and chroma upsampling).

use std::io::Cursor;
use std::path::Path;

use image::{DynamicImage, ImageReader};

use super::error::{ImageEncoderError, Result};
use super::preprocess::RgbImage;

/// Decodes an image file to RGB8. Errors name the file.
pub fn decode_file(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|source| ImageEncoderError::Io { path: path.to_path_buf(), source })?;
    decode_bytes(&bytes, &path.display().to_string())
}

/// Decodes an encoded image (JPEG, PNG, WebP) to RGB8; `origin` labels errors (a path, a URL, an id).
pub fn decode_bytes(bytes: &[u8], origin: &str) -> Result<RgbImage> {
    let fail = |source| ImageEncoderError::Decode { origin: origin.to_string(), source };
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| fail(image::ImageError::IoError(e)))?;
    let decoded = reader.decode().map_err(fail)?;
    to_rgb8(decoded)
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
    use image::{GrayAlphaImage, ImageFormat, LumaA, Rgb, Rgb32FImage, Rgba, RgbaImage};

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
