//! Picture → network input, exactly as the goldens were made (`shared/golden/efficientnet-lite0/README.md`):
//! RGB8 → shorter side 224 (Pillow BILINEAR, uint8) → centre crop 224×224 → `(x − 127) / 128`, NCHW.
//!
//! Pure Rust (no decoding here), so it runs in the browser too.

use candle_core::{Device, Tensor};

use super::error::{ImageEncoderError, Result};
use super::resample::resize_region;

/// Side of the square network input.
pub const INPUT_SIZE: usize = 224;
/// Google's `efficientnet_lite_builder.py`: `MEAN_RGB = [127.0] * 3` (inception-style, for quantization).
const MEAN: f32 = 127.0;
/// ... and `STDDEV_RGB = [128.0] * 3`.
const STD: f32 = 128.0;

/// A borrowed packed RGB8 picture: `pixels.len() == width * height * 3`, rows top to bottom.
#[derive(Debug, Clone, Copy)]
pub struct RgbView<'a> {
    width: usize,
    height: usize,
    pixels: &'a [u8],
}

impl<'a> RgbView<'a> {
    /// Checks that the buffer holds exactly `width × height` RGB pixels and that no side is zero.
    pub fn new(width: usize, height: usize, pixels: &'a [u8]) -> Result<Self> {
        if width == 0 || height == 0 {
            return Err(ImageEncoderError::InvalidImage(format!("empty picture {width}x{height}")));
        }
        let expected = width.checked_mul(height).and_then(|n| n.checked_mul(3));
        if expected != Some(pixels.len()) {
            return Err(ImageEncoderError::InvalidImage(format!(
                "{width}x{height} RGB needs {} bytes, got {}",
                expected.map_or_else(|| "more than usize::MAX".to_string(), |n| n.to_string()),
                pixels.len()
            )));
        }
        Ok(Self { width, height, pixels })
    }

    pub fn width(&self) -> usize {
        self.width
    }

    pub fn height(&self) -> usize {
        self.height
    }

    pub fn pixels(&self) -> &'a [u8] {
        self.pixels
    }
}

/// An owned packed RGB8 picture (what decoding gives).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RgbImage {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

impl RgbImage {
    /// Same checks as [`RgbView::new`].
    pub fn new(width: usize, height: usize, pixels: Vec<u8>) -> Result<Self> {
        RgbView::new(width, height, &pixels)?;
        Ok(Self { width, height, pixels })
    }

    pub fn view(&self) -> RgbView<'_> {
        RgbView { width: self.width, height: self.height, pixels: &self.pixels }
    }
}

/// The size the reference resizes to: shorter side 224, the other `int(224 * long / short)`.
/// Python's `int()` of a true division truncates; f64 division of these integers rounds the same way.
pub fn resized_size(width: usize, height: usize) -> (usize, usize) {
    let scaled = |long: usize, short: usize| (INPUT_SIZE as f64 * long as f64 / short as f64) as usize;
    if width <= height {
        (INPUT_SIZE, scaled(height, width))
    } else {
        (scaled(width, height), INPUT_SIZE)
    }
}

/// torchvision-style centre crop offset, floored as in the reference (`(W - 224) // 2`).
fn crop_offset(resized: usize) -> usize {
    (resized - INPUT_SIZE) / 2
}

/// The 224×224 packed RGB8 crop the network sees (what `crops/*.png` store): shorter side resized to 224
/// with Pillow's bilinear, then the centre 224×224.
pub fn center_crop(image: RgbView<'_>) -> Vec<u8> {
    let (out_w, out_h) = resized_size(image.width, image.height);
    let window = (crop_offset(out_w), crop_offset(out_h), INPUT_SIZE, INPUT_SIZE);
    resize_region(image.pixels, (image.width, image.height), (out_w, out_h), window)
}

/// Normalised network input from 224×224 RGB8 crops: `[n, 3, 224, 224]` f32, `(x − 127) / 128`.
pub fn crops_to_input(crops: &[&[u8]], device: &Device) -> Result<Tensor> {
    let plane = INPUT_SIZE * INPUT_SIZE;
    let mut data = Vec::with_capacity(crops.len() * 3 * plane);
    for (i, crop) in crops.iter().enumerate() {
        if crop.len() != plane * 3 {
            return Err(ImageEncoderError::InvalidImage(format!(
                "crop {i}: a 224x224 RGB crop has {} bytes, got {}",
                plane * 3,
                crop.len()
            )));
        }
        // HWC → CHW while normalising.
        for channel in 0..3 {
            data.extend(crop.iter().skip(channel).step_by(3).map(|&p| (p as f32 - MEAN) / STD));
        }
    }
    Ok(Tensor::from_vec(data, (crops.len(), 3, INPUT_SIZE, INPUT_SIZE), device)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_sizes_of_the_golden_index() {
        // (orig_size → resized_size) pairs from shared/golden/efficientnet-lite0/index.jsonl.
        assert_eq!(resized_size(451, 300), (336, 224));
        assert_eq!(resized_size(640, 427), (335, 224));
        assert_eq!(resized_size(600, 400), (336, 224));
        assert_eq!(resized_size(224, 224), (224, 224));
        assert_eq!(resized_size(185, 274), (224, 331));
    }

    #[test]
    fn crop_offsets_floor() {
        assert_eq!(crop_offset(335), 55);
        assert_eq!(crop_offset(336), 56);
        assert_eq!(crop_offset(224), 0);
    }

    #[test]
    fn rejects_buffers_that_do_not_match_their_size() {
        assert!(RgbView::new(2, 2, &[0; 11]).is_err());
        assert!(RgbView::new(0, 2, &[]).is_err());
        assert!(RgbView::new(usize::MAX, 3, &[]).is_err());
        assert!(RgbView::new(2, 2, &[0; 12]).is_ok());
    }

    #[test]
    fn input_is_nchw_and_normalised() -> Result<()> {
        let mut crop = vec![0u8; INPUT_SIZE * INPUT_SIZE * 3];
        // pixel (y=1, x=2) = (255, 127, 0)
        let at = (INPUT_SIZE + 2) * 3;
        crop[at..at + 3].copy_from_slice(&[255, 127, 0]);
        let x = crops_to_input(&[&crop], &Device::Cpu)?;
        assert_eq!(x.dims(), &[1, 3, INPUT_SIZE, INPUT_SIZE]);
        let px = |c: usize| -> Result<f32> { Ok(x.get(0)?.get(c)?.get(1)?.get(2)?.to_scalar::<f32>()?) };
        assert_eq!(px(0)?, 1.0);
        assert_eq!(px(1)?, 0.0);
        assert_eq!(px(2)?, -127.0 / 128.0);
        assert_eq!(x.get(0)?.get(0)?.get(0)?.get(0)?.to_scalar::<f32>()?, -127.0 / 128.0);
        assert!(crops_to_input(&[&crop[1..]], &Device::Cpu).is_err());
        Ok(())
    }

    #[test]
    fn tall_picture_crops_its_middle() {
        // 1 px wide, 3 px tall → 224×672: the crop is the middle third, i.e. the middle source pixel's band.
        let pixels = [10, 10, 10, 100, 100, 100, 250, 250, 250];
        let crop = center_crop(RgbView::new(1, 3, &pixels).unwrap());
        assert_eq!(crop.len(), INPUT_SIZE * INPUT_SIZE * 3);
        let row = |y: usize| crop[y * INPUT_SIZE * 3];
        // Rows near the middle of the crop are pure middle pixel; the edges blend toward the neighbours.
        assert_eq!(row(112), 100);
        assert!(row(0) < 100 && row(0) > 10);
        assert!(row(223) > 100 && row(223) < 250);
    }
}
