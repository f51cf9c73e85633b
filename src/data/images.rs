//! Checking every item's image: the path stays inside the dataset directory, the file exists, its
//! header declares at most [`MAX_IMAGE_PIXELS`] pixels (read before anything is decoded, so a
//! decompression bomb costs nothing), and it decodes fully with the `image` crate (JPEG, PNG or WebP,
//! told by content, not by extension; JPEG through the same decoder `image` uses, in strict mode).
//!
//! [`read_image_header`] and [`decoding_limits`] are shared with the encoders' decoder
//! (`encoders::image::decode_bytes`, native and in the browser), so what validates is what encodes.
//!
//! An item whose image fails is kept, with its path unchanged in [`super::Item::image`]; the failure is
//! a warning located at the item's line in `items.jsonl` (field `image`, the path in the message), and
//! [`ImageCheck::usable`] says which items have an image the encoders can use. Callers that embed
//! images must go by `usable`, not by `Item::image` being `Some`.
//!
//! Decoding runs on all cores (`std::thread::scope`, items handed out through an atomic counter).

use std::io::Cursor;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use super::load::ITEMS_FILE;
use super::{Item, Problem, ProblemKind};

/// The result of checking all images.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImageCheck {
    /// For each item, whether it has an image that decodes.
    pub usable: Vec<bool>,
    /// One warning per item whose image path is set but unusable, in item order.
    pub problems: Vec<Problem>,
}

impl ImageCheck {
    /// Number of items with a usable image.
    pub fn usable_count(&self) -> usize {
        self.usable.iter().filter(|&&ok| ok).count()
    }
}

/// Checks the image of every item that names one. `item_lines` locates items in `items.jsonl`
/// (as [`super::load::Loaded::item_lines`]); `on_checked` is called once per image checked, from
/// any thread (for a progress bar).
pub fn check_images(
    root: &Path,
    items: &[Item],
    item_lines: Option<&[usize]>,
    on_checked: &(dyn Fn() + Sync),
) -> ImageCheck {
    let jobs: Vec<(usize, &str)> =
        items.iter().enumerate().filter_map(|(i, item)| Some((i, item.image.as_deref()?))).collect();
    let next = AtomicUsize::new(0);
    let failures: Mutex<Vec<(usize, ProblemKind, String)>> = Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(jobs.len()).max(1);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut local = Vec::new();
                while let Some(&(item, path)) = jobs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if let Err((kind, message)) = check_one(root, path) {
                        local.push((item, kind, message));
                    }
                    on_checked();
                }
                failures.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend(local);
            });
        }
    });
    let mut failures = failures.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    failures.sort_by_key(|&(item, _, _)| item);

    let mut usable: Vec<bool> = items.iter().map(|item| item.image.is_some()).collect();
    let problems = failures
        .into_iter()
        .map(|(item, kind, message)| {
            usable[item] = false;
            let problem = Problem::new(kind, ITEMS_FILE, message).in_field("image");
            match item_lines.and_then(|lines| lines.get(item)) {
                Some(&line) => problem.at_line(line),
                None => problem,
            }
        })
        .collect();
    ImageCheck { usable, problems }
}

/// Checks one image path (relative to `root`); the error names the kind and says why.
fn check_one(root: &Path, relative: &str) -> Result<(), (ProblemKind, String)> {
    if !stays_inside(relative) {
        let message = format!("{relative}: absolute or leaves the dataset directory; not opened");
        return Err((ProblemKind::ImagePathOutsideDataset, message));
    }
    let path = root.join(relative);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => {}
        Ok(_) => return Err((ProblemKind::ImageMissing, format!("{relative}: not a file"))),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err((ProblemKind::ImageMissing, format!("{relative}: no such file")));
        }
        Err(err) => return Err((ProblemKind::ImageUndecodable, format!("{relative}: cannot be read: {err}"))),
    }
    decode(&path).map_err(|why| (ProblemKind::ImageUndecodable, format!("{relative}: {why}")))
}

/// The most pixels an image may declare: Pillow's `Image.MAX_IMAGE_PIXELS` (89,478,485, the size at
/// which the reference pipeline's `Image.open` starts warning of a decompression bomb; it refuses at
/// twice that). Anything the reference opens without a word opens here, so features stay comparable;
/// a product photo needs far less (EfficientNet reads 224×224), and an image over it is refused
/// before a byte of pixels is decoded.
pub const MAX_IMAGE_PIXELS: u64 = 89_478_485;

/// The most bytes a decoder may allocate for one image: 4 per allowed pixel, an 8-bit RGBA image at
/// [`MAX_IMAGE_PIXELS`] (358 MB). Images with wider samples (16-bit) meet it at fewer pixels.
pub const MAX_DECODE_BYTES: u64 = MAX_IMAGE_PIXELS * 4;

/// What an image's header says, read without decoding pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageHeader {
    pub format: image::ImageFormat,
    pub width: u32,
    pub height: u32,
}

/// Format (from the content) and size (from the header) of an encoded image, refusing one that
/// declares more than [`MAX_IMAGE_PIXELS`] pixels. Reads the header only: a 20000×20000 PNG or a
/// truncated JPEG declaring 16384² costs a few bytes of work, not gigabytes.
pub fn read_image_header(bytes: &[u8]) -> Result<ImageHeader, String> {
    let format =
        image::guess_format(bytes).map_err(|_| "not an image (the content is not JPEG, PNG or WebP)".to_string())?;
    let (width, height) = match format {
        image::ImageFormat::Jpeg => {
            use zune_jpeg::zune_core::{bytestream::ZCursor, options::DecoderOptions};
            let options = DecoderOptions::default().set_strict_mode(true);
            let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
            decoder.decode_headers().map_err(|e| format!("does not decode as JPEG: {e:?}"))?;
            let (w, h) = decoder.dimensions().ok_or("does not decode as JPEG: no size in its header")?;
            (u32::try_from(w).unwrap_or(u32::MAX), u32::try_from(h).unwrap_or(u32::MAX))
        }
        format => image::ImageReader::with_format(Cursor::new(bytes), format)
            .into_dimensions()
            .map_err(|e| format!("does not decode as {format:?}: {e}"))?,
    };
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_IMAGE_PIXELS {
        return Err(format!(
            "{width}×{height} pixels ({:.1} megapixels) is over the limit of {:.1} megapixels; not decoded",
            pixels as f64 / 1e6,
            MAX_IMAGE_PIXELS as f64 / 1e6
        ));
    }
    Ok(ImageHeader { format, width, height })
}

/// The `image` crate's limits for decoding: no allocation over [`MAX_DECODE_BYTES`] (its default is
/// 512 MiB whatever the image).
pub fn decoding_limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    limits
}

/// An image file's bytes. Natively: a regular file (a link to `/dev/zero` or a named pipe is refused
/// before reading) of at most [`crate::fs::MAX_IMAGE_FILE_BYTES`]. The error carries no path (callers
/// name the file their own way).
pub fn read_image_file(path: &Path) -> std::io::Result<Vec<u8>> {
    #[cfg(feature = "native")]
    return crate::fs::read_bounded(path, crate::fs::MAX_IMAGE_FILE_BYTES).map_err(|e| e.into_parts().1);
    #[cfg(not(feature = "native"))]
    std::fs::read(path)
}

/// Decodes the whole image, once its header passed [`read_image_header`]; the format is told by the
/// content, never by the extension.
fn decode(path: &Path) -> Result<(), String> {
    let bytes = read_image_file(path).map_err(|e| format!("cannot be read: {e}"))?;
    let header = read_image_header(&bytes)?;
    match header.format {
        image::ImageFormat::Jpeg => decode_jpeg_strictly(&bytes),
        format => {
            let mut reader = image::ImageReader::with_format(Cursor::new(&bytes), format);
            reader.limits(decoding_limits());
            reader.decode().map(drop).map_err(|e| format!("does not decode as {format:?}: {e}"))
        }
    }
}

/// `image` runs its JPEG decoder (zune-jpeg) in lenient mode, where a file cut short decodes without
/// error (the missing part grey); strict mode turns that, and other corruption, into an error.
fn decode_jpeg_strictly(bytes: &[u8]) -> Result<(), String> {
    use zune_jpeg::zune_core::{bytestream::ZCursor, options::DecoderOptions};
    let options = DecoderOptions::default().set_strict_mode(true);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    decoder.decode().map(drop).map_err(|e| format!("does not decode as JPEG: {e:?}"))
}

/// Whether a relative path written in `items.jsonl` stays inside the dataset directory: not absolute,
/// no drive prefix, no `..` segment (either separator counts, so a Windows-made file is judged alike).
///
/// This is a check on the text: symbolic links inside the dataset directory are the dataset owner's
/// choice (e.g. an `images/` link to shared storage) and are followed.
fn stays_inside(relative: &str) -> bool {
    let mut segments = relative.split(['/', '\\']);
    let first = segments.next().unwrap_or_default();
    !relative.is_empty()
        && !first.is_empty() // leading separator: absolute
        && !first.contains(':') // drive letter or URL scheme
        && !Path::new(relative).is_absolute()
        && first != ".."
        && segments.all(|segment| segment != "..")
}

#[cfg(test)]
mod tests {
    use super::stays_inside;

    #[test]
    fn paths_that_leave_the_directory_are_refused() {
        for ok in ["images/1.jpg", "a.png", "./images/x.webp", "images/..x.jpg"] {
            assert!(stays_inside(ok), "{ok}");
        }
        for bad in
            ["", "/etc/passwd", "../x.jpg", "images/../../x.jpg", "\\\\server\\x.jpg", "C:\\x.jpg", "a\\..\\..\\b"]
        {
            assert!(!stays_inside(bad), "{bad}");
        }
    }
}
