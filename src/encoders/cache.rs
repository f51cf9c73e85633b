//! Encoding is cached by content: a feature row is keyed by the sha256 of what it was computed from —
//! the encoder's identity and the composed text, or the encoder's identity and the image file's bytes —
//! so a re-run encodes only items whose text or picture (or encoder) changed. Rows are found by hash, not
//! by item id: a renamed item or a duplicate picture costs nothing.
//!
//! Pure code (no file system): it compiles for wasm32.

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::features::{ContentHash, EncoderIdentity, ModalityFeatures};

/// sha256 over (length of the identity, identity, content): the length prefix keeps identity and
/// content from running into each other.
pub fn content_hash(encoder: &EncoderIdentity, content: &[u8]) -> ContentHash {
    let identity = encoder.canonical();
    let mut hasher = Sha256::new();
    hasher.update((identity.len() as u64).to_le_bytes());
    hasher.update(identity.as_bytes());
    hasher.update(content);
    hasher.finalize().into()
}

/// The key of an item's text row; `None` for an empty text (nothing to encode: the item has no text).
pub fn text_hash(encoder: &EncoderIdentity, text: &str) -> Option<ContentHash> {
    (!text.is_empty()).then(|| content_hash(encoder, text.as_bytes()))
}

/// Lower-case hex of any bytes (file digests in [`EncoderIdentity`]).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 of bytes, as hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// The present rows of a previous run, by content hash.
#[derive(Debug, Default)]
pub struct RowCache<'a> {
    dim: usize,
    rows: HashMap<ContentHash, &'a [f32]>,
}

impl<'a> RowCache<'a> {
    /// Indexes the present rows of `previous` (an empty cache when `None`).
    pub fn new(previous: Option<&'a ModalityFeatures>) -> Self {
        let Some(previous) = previous else { return Self::default() };
        let rows = (0..previous.len())
            .filter_map(|i| Some((previous.hashes[i]?, previous.row(i))))
            .filter(|_| previous.dim > 0)
            .collect();
        RowCache { dim: previous.dim, rows }
    }

    /// The row computed from this content, if it was, and has the expected width.
    pub fn get(&self, hash: &ContentHash, dim: usize) -> Option<&'a [f32]> {
        self.rows.get(hash).copied().filter(|_| self.dim == dim)
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(weights: &str) -> EncoderIdentity {
        EncoderIdentity {
            model: "m".into(),
            files_sha256: [("w".to_string(), weights.to_string())].into(),
            settings: Default::default(),
        }
    }

    #[test]
    fn the_hash_covers_encoder_and_content() {
        let (a, b) = (identity("1"), identity("2"));
        assert_eq!(content_hash(&a, b"x"), content_hash(&a, b"x"));
        assert_ne!(content_hash(&a, b"x"), content_hash(&a, b"y"));
        assert_ne!(content_hash(&a, b"x"), content_hash(&b, b"x"));
        assert_eq!(text_hash(&a, ""), None);
        assert_eq!(sha256_hex(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn only_present_rows_of_the_right_width_are_reused() {
        let mut previous = ModalityFeatures::absent(2, 3, None);
        previous.set_row(1, &[1.0, 2.0, 3.0], [5; 32]);
        let cache = RowCache::new(Some(&previous));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.get(&[5; 32], 3), Some(&[1.0, 2.0, 3.0][..]));
        assert_eq!(cache.get(&[5; 32], 4), None);
        assert_eq!(cache.get(&[0; 32], 3), None);
        assert!(RowCache::new(None).is_empty());
    }
}
