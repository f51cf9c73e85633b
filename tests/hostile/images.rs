//! Decompression bombs (issue 14, point 3): an image whose header declares more pixels than
//! `MAX_IMAGE_PIXELS` is refused from its header, before any pixel is decoded, by `validate` (at
//! `items.jsonl:LINE`, field `image`) and by the encoders' decoder (`encode`, `embed --image`, the
//! browser's encoder module). The bombs are built here, a few hundred bytes each.

use std::io::Cursor;
use std::path::Path;

use omakase::data::images::{read_image_header, MAX_IMAGE_PIXELS};
use omakase::data::validate::validate_dir;
use omakase::data::ProblemKind;
use omakase::encoders::image::{decode_bytes, decode_file, ImageEncoderError};

/// CRC-32 (IEEE), as PNG chunks carry it.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

pub(crate) fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// A PNG declaring `width`×`height` 8-bit grey pixels, with a well-formed IHDR, one IDAT holding a
/// zlib stream of two stored rows of zeros (a decoder would then need all the other rows), and IEND.
fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]); // 8-bit greyscale, deflate, adaptive filter, no interlace
    png_chunk(&mut png, b"IHDR", &ihdr);
    let rows = 2 * (1 + width.min(8) as usize);
    let mut idat = vec![0x78, 0x01, 0x00]; // zlib header; a stored, non-final deflate block
    idat.extend_from_slice(&(rows as u16).to_le_bytes());
    idat.extend_from_slice(&(!(rows as u16)).to_le_bytes());
    idat.extend(std::iter::repeat_n(0u8, rows));
    png_chunk(&mut png, b"IDAT", &idat);
    png_chunk(&mut png, b"IEND", &[]);
    png
}

/// A real 16×16 JPEG whose frame header (SOF0) is rewritten to declare `side`×`side`, cut 16 bytes
/// into its scan (every header whole): a truncated JPEG claiming to be huge.
pub(crate) fn jpeg_declaring(side: u16) -> Vec<u8> {
    let img = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([(x * 16) as u8, (y * 16) as u8, 7]));
    let mut bytes = Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img).write_to(&mut bytes, image::ImageFormat::Jpeg).unwrap();
    let mut jpeg = bytes.into_inner();
    let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("a baseline JPEG has SOF0");
    // FF C0, length (2), precision (1), height (2), width (2).
    jpeg[sof + 5..sof + 7].copy_from_slice(&side.to_be_bytes());
    jpeg[sof + 7..sof + 9].copy_from_slice(&side.to_be_bytes());
    let sos = jpeg.windows(2).position(|w| w == [0xFF, 0xDA]).expect("a JPEG has a scan");
    let sos_len = usize::from(u16::from_be_bytes([jpeg[sos + 2], jpeg[sos + 3]]));
    jpeg.truncate(sos + 2 + sos_len + 16);
    jpeg
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn the_limit_is_read_from_the_header() {
    // 9459² is under 89,478,485 pixels, 9460² over; neither file holds more than two rows.
    let header = read_image_header(&png_declaring(9459, 9459)).unwrap();
    assert_eq!((header.width, header.height), (9459, 9459));
    const { assert!(9459u64 * 9459 <= MAX_IMAGE_PIXELS && 9460u64 * 9460 > MAX_IMAGE_PIXELS) };
    let err = read_image_header(&png_declaring(9460, 9460)).unwrap_err();
    assert!(err.contains("9460×9460") && err.contains("not decoded"), "{err}");
    let err = read_image_header(&jpeg_declaring(16384)).unwrap_err();
    assert!(err.contains("16384×16384") && err.contains("not decoded"), "{err}");
}

#[test]
fn validate_refuses_bombs_at_their_line_without_decoding_them() {
    let dir = tempfile::tempdir().unwrap();
    let items = concat!(
        r#"{"item_id": "a", "title": "Alpha", "image": "images/bomb.png"}"#,
        "\n",
        r#"{"item_id": "b", "title": "Beta", "image": "images/bomb.jpg"}"#,
        "\n",
        r#"{"item_id": "c", "title": "Gamma", "image": "images/short.png"}"#,
        "\n",
    );
    write(dir.path(), "items.jsonl", items.as_bytes());
    write(dir.path(), "interactions.csv", b"user_id,item_id,timestamp\nu1,a,1\nu1,b,2\nu2,c,3\nu2,a,4\n");
    write(dir.path(), "images/bomb.png", &png_declaring(20000, 20000));
    write(dir.path(), "images/bomb.jpg", &jpeg_declaring(16384));
    write(dir.path(), "images/short.png", &png_declaring(4, 4)[..]);
    let v = validate_dir(dir.path(), &|_, _| {});
    let found: Vec<_> = v
        .problems()
        .iter()
        .map(|p| (p.kind, p.file.as_str(), p.line, p.field.as_deref(), p.message.as_str()))
        .filter(|p| p.1 == "items.jsonl")
        .collect();
    assert_eq!(found.len(), 3, "{found:#?}");
    // The message is the header check's, not a decoder's: the bombs were never decoded (decoding
    // would have failed on the missing rows with "does not decode", after allocating the image).
    for (i, (path, size)) in [("images/bomb.png", "20000×20000"), ("images/bomb.jpg", "16384×16384")].iter().enumerate()
    {
        let (kind, _, line, field, message) = found[i];
        assert_eq!((kind, line, field), (ProblemKind::ImageUndecodable, Some(i + 1), Some("image")));
        assert!(message.starts_with(&format!("{path}: {size} pixels")), "{message}");
        assert!(message.contains("not decoded") && !message.contains("does not decode"), "{message}");
    }
    // The small PNG with missing rows is refused by the decoder, as before.
    assert!(found[2].4.contains("does not decode"), "{}", found[2].4);
    assert_eq!(v.images.usable, vec![false, false, false]);
}

#[test]
fn the_encoders_decoder_refuses_bombs_naming_the_origin() {
    for (bytes, size) in [(png_declaring(20000, 20000), "20000×20000"), (jpeg_declaring(16384), "16384×16384")] {
        let err = decode_bytes(&bytes, "items.jsonl:7 image").unwrap_err();
        assert!(matches!(err, ImageEncoderError::Decode { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("items.jsonl:7 image") && text.contains(size) && text.contains("megapixels"), "{text}");
    }
    // `embed --image FILE` goes through `decode_file`, which names the file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.png");
    std::fs::write(&path, png_declaring(20000, 20000)).unwrap();
    let text = decode_file(&path).unwrap_err().to_string();
    assert!(text.contains("bomb.png") && text.contains("over the limit"), "{text}");
}
