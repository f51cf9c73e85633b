//! BERT WordPiece tokenization, read from a Hugging Face `tokenizer.json`.
//!
//! Why our own and not the `tokenizers` crate: on native targets `tokenizers` already comes with
//! candle-core, but on wasm32 it would add rayon, two regex engines, a suffix-array trainer and
//! serde-heavy model variants to the browser download, while a BERT tokenizer is four small steps.
//! Exactness is kept by using the very Unicode tables `tokenizers` uses (`unicode_categories` for
//! control/punctuation/mark classes, `unicode-normalization-alignments` for NFD) and by following
//! its order of operations step for step; `tests/text_encoder_golden.rs` checks the ids against the
//! sentence-transformers goldens and against the `tokenizers` crate itself on generated text.
//!
//! The steps, as in `tokenizers` 0.23 for all-MiniLM-L6-v2:
//! 1. added tokens (`[CLS]`, `[SEP]`, ... with `normalized: false`) are cut out of the raw text
//!    and map to their ids directly;
//! 2. `BertNormalizer`: drop NUL, U+FFFD and control/format characters, whitespace → ' ', spaces
//!    around CJK ideographs, NFD + drop non-spacing marks (when stripping accents), lowercase;
//! 3. `BertPreTokenizer`: split on whitespace, isolate every punctuation character;
//! 4. `WordPiece`: greedy longest match, `##` continuation, one `[UNK]` for a word with no
//!    segmentation or longer than `max_input_chars_per_word` characters;
//! 5. truncation to `max_len` tokens *including* the template's special tokens, then the template
//!    (`[CLS] … [SEP]`).
//!
//! The truncation (128) and fixed padding (128) stored in all-MiniLM-L6-v2's `tokenizer.json` are
//! deliberately ignored: sentence-transformers overrides them with its `max_seq_length` (256) and
//! pads to the longest text of a batch, which the encoder does with an attention mask.

use std::collections::HashMap;

use serde::Deserialize;
use unicode_categories::UnicodeCategories;
use unicode_normalization_alignments::UnicodeNormalization;

use super::EncoderError;

/// A BERT WordPiece tokenizer (normalizer, pre-tokenizer, model and `[CLS] … [SEP]` template).
#[derive(Debug, Clone)]
pub struct WordPieceTokenizer {
    normalizer: BertNormalizer,
    vocab: HashMap<String, u32>,
    unk_id: u32,
    continuing_prefix: String,
    max_input_chars_per_word: usize,
    /// Added tokens matched verbatim in the raw text, longest first.
    added_tokens: Vec<(String, u32)>,
    /// Whether some added token starts with this byte.
    added_first_bytes: [bool; 256],
    /// Ids the template puts before and after the text (`[CLS]` and `[SEP]` for BERT).
    prefix_ids: Vec<u32>,
    suffix_ids: Vec<u32>,
}

/// Options of `BertNormalizer`, with the meaning `tokenizers` gives them.
#[derive(Debug, Clone, Copy, Deserialize)]
struct BertNormalizer {
    clean_text: bool,
    handle_chinese_chars: bool,
    /// `None` follows `lowercase` (BERT's convention).
    strip_accents: Option<bool>,
    lowercase: bool,
}

impl WordPieceTokenizer {
    /// Parses a `tokenizer.json`; refuses anything that is not a BERT WordPiece pipeline rather
    /// than tokenizing it differently from the reference.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EncoderError> {
        let file: TokenizerFile = serde_json::from_slice(bytes).map_err(|e| {
            tokenizer_error(format!("not a valid tokenizer.json (line {}, column {}): {e}", e.line(), e.column()))
        })?;
        file.into_tokenizer()
    }

    /// Token ids of one text, `[CLS]` and `[SEP]` included, truncated to `max_len` ids in all
    /// (the text keeps its first `max_len - 2` tokens). `max_len` must leave room for the template.
    ///
    /// Linear in the text, and in practice bounded by `max_len`: the text is cut into added tokens
    /// and runs of plain text in one pass, plain text is tokenized a piece at a time, and tokenizing
    /// stops as soon as the budget is full (what follows could only be truncated away).
    pub fn encode(&self, text: &str, max_len: usize) -> Vec<u32> {
        self.encode_counting(text, max_len).0
    }

    /// [`Self::encode`], also returning its work: bytes scanned for added tokens, plus added-token
    /// comparisons, plus bytes of plain text tokenized. A machine-independent cost for tests and
    /// fuzzing (hostile text must cost at most a constant times its length, never its square).
    #[doc(hidden)]
    pub fn encode_counting(&self, text: &str, max_len: usize) -> (Vec<u32>, u64) {
        let budget = max_len.saturating_sub(self.prefix_ids.len() + self.suffix_ids.len());
        let mut ids = self.prefix_ids.clone();
        let content_start = ids.len();
        let mut segments = AddedTokenSplitter { tokenizer: self, text, at: 0, pending: None, work: 0 };
        let mut text_work = 0u64;
        while ids.len() - content_start < budget {
            match segments.next() {
                None => break,
                Some(Segment::Added(id)) => ids.push(id),
                Some(Segment::Text(raw)) => {
                    text_work += raw.len() as u64;
                    self.encode_plain(raw, &mut ids);
                }
            }
        }
        ids.truncate(content_start + budget);
        ids.extend_from_slice(&self.suffix_ids);
        (ids, segments.work + text_work)
    }

    /// Number of ids the template adds around every text.
    pub fn num_special_tokens(&self) -> usize {
        self.prefix_ids.len() + self.suffix_ids.len()
    }

    /// Normalizes, pre-tokenizes and WordPiece-encodes text that holds no added token.
    fn encode_plain(&self, raw: &str, ids: &mut Vec<u32>) {
        let normalized = self.normalizer.normalize(raw);
        for word in pre_tokenize(&normalized) {
            self.word_piece(word, ids);
        }
    }

    /// Greedy longest-match-first WordPiece of one pre-token, as `tokenizers`' `WordPiece::tokenize`.
    fn word_piece(&self, word: &str, ids: &mut Vec<u32>) {
        if word.chars().count() > self.max_input_chars_per_word {
            ids.push(self.unk_id);
            return;
        }
        let first_piece = ids.len();
        let mut candidate = String::with_capacity(word.len() + self.continuing_prefix.len());
        let mut start = 0;
        while start < word.len() {
            let mut end = word.len();
            let found = loop {
                if start >= end {
                    break None;
                }
                candidate.clear();
                if start > 0 {
                    candidate.push_str(&self.continuing_prefix);
                }
                candidate.push_str(&word[start..end]);
                if let Some(&id) = self.vocab.get(&candidate) {
                    break Some(id);
                }
                end -= word[start..end].chars().next_back().map_or(1, char::len_utf8);
            };
            match found {
                Some(id) => ids.push(id),
                None => {
                    // No segmentation: the whole word becomes one [UNK], as in `tokenizers`.
                    ids.truncate(first_piece);
                    ids.push(self.unk_id);
                    return;
                }
            }
            start = end;
        }
    }
}

enum Segment<'a> {
    Added(u32),
    Text(&'a str),
}

/// Cuts the raw text at every occurrence of an added token (leftmost match, longest first, as
/// `tokenizers`), lazily and in one pass: each byte is looked at once, and only a byte that starts
/// some added token is compared with them. (Searching the rest of the text for every added token at
/// every cut, as before, was quadratic: 100,000 `[SEP]`s took minutes.)
///
/// Plain text comes in pieces of about [`PLAIN_TEXT_PIECE`] bytes, each further piece starting at an
/// ASCII space, tab, CR or LF, so that [`WordPieceTokenizer::encode_counting`] can stop reading
/// once its budget is full. Tokenizing the pieces one after another gives the ids of the whole: such
/// a character is never dropped by the normalizer, becomes a space and separates words; it has no
/// decomposition and canonical combining class 0, so NFD does not reorder marks across it; every
/// other normalizer step works character by character. (Not any Unicode whitespace: U+0085 is a
/// control character, which `clean_text` drops, joining its neighbours.)
struct AddedTokenSplitter<'t, 'a> {
    tokenizer: &'t WordPieceTokenizer,
    text: &'a str,
    /// Where the text not yet returned starts.
    at: usize,
    /// An added token found after a piece of plain text, returned next: (its end, its id).
    pending: Option<(usize, u32)>,
    /// Bytes scanned plus added-token comparisons.
    work: u64,
}

/// Bytes of plain text normalized and tokenized at a time (a few hundred words): small enough that
/// stopping at a full budget wastes little, large enough that the per-piece cost does not matter.
const PLAIN_TEXT_PIECE: usize = 4096;

impl<'a> Iterator for AddedTokenSplitter<'_, 'a> {
    type Item = Segment<'a>;

    fn next(&mut self) -> Option<Segment<'a>> {
        if let Some((end, id)) = self.pending.take() {
            self.at = end;
            return Some(Segment::Added(id));
        }
        let (text, start) = (self.text, self.at);
        let bytes = text.as_bytes();
        if start >= bytes.len() {
            return None;
        }
        for (at, &byte) in bytes.iter().enumerate().skip(start) {
            self.work += 1;
            if at >= start + PLAIN_TEXT_PIECE && matches!(byte, b' ' | b'\t' | b'\r' | b'\n') {
                self.at = at;
                return Some(Segment::Text(&text[start..at]));
            }
            // A token's first byte is never a UTF-8 continuation byte, so `at` is a char boundary.
            if !self.tokenizer.added_first_bytes[byte as usize] {
                continue;
            }
            // Longest first: the first token that matches here is the one `tokenizers` takes.
            for (content, id) in &self.tokenizer.added_tokens {
                self.work += 1;
                if bytes[at..].starts_with(content.as_bytes()) {
                    if at == start {
                        self.at = at + content.len();
                        return Some(Segment::Added(*id));
                    }
                    self.pending = Some((at + content.len(), *id));
                    self.at = at;
                    return Some(Segment::Text(&text[start..at]));
                }
            }
        }
        self.at = bytes.len();
        Some(Segment::Text(&text[start..]))
    }
}

impl BertNormalizer {
    /// The normalizer's steps in `tokenizers`' order: clean, CJK, accents, lowercase.
    fn normalize(&self, text: &str) -> String {
        let mut chars: Vec<char> = text.chars().collect();
        if self.clean_text {
            chars = chars
                .into_iter()
                .filter(|&c| !(c == '\0' || c == '\u{fffd}' || is_control(c)))
                .map(|c| if is_whitespace(c) { ' ' } else { c })
                .collect();
        }
        if self.handle_chinese_chars {
            chars =
                chars.into_iter().flat_map(|c| if is_chinese_char(c) { vec![' ', c, ' '] } else { vec![c] }).collect();
        }
        let mut out: String = chars.into_iter().collect();
        if self.strip_accents.unwrap_or(self.lowercase) {
            out = out.nfd().map(|(c, _)| c).filter(|c| !c.is_mark_nonspacing()).collect();
        }
        if self.lowercase {
            // Per character (no final-sigma rule), as `NormalizedString::lowercase`.
            out = out.chars().flat_map(char::to_lowercase).collect();
        }
        out
    }
}

/// `BertPreTokenizer`: whitespace separates words and is dropped; punctuation is a word of its own.
fn pre_tokenize(text: &str) -> impl Iterator<Item = &str> {
    text.split(char::is_whitespace).flat_map(split_isolating_punctuation).filter(|w| !w.is_empty())
}

fn split_isolating_punctuation(word: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut start = 0;
    for (at, c) in word.char_indices() {
        if is_bert_punctuation(c) {
            pieces.push(&word[start..at]);
            pieces.push(&word[at..at + c.len_utf8()]);
            start = at + c.len_utf8();
        }
    }
    pieces.push(&word[start..]);
    pieces
}

/// `\t`, `\n`, `\r` and Unicode whitespace (NBSP included).
fn is_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || c.is_whitespace()
}

/// Unicode "Other" (Cc, Cf, Co, Cn, Cs) except the three whitespace controls.
fn is_control(c: char) -> bool {
    !matches!(c, '\t' | '\n' | '\r') && c.is_other()
}

fn is_bert_punctuation(c: char) -> bool {
    c.is_ascii_punctuation() || c.is_punctuation()
}

/// The CJK ideograph blocks BERT splits into single characters (not Hangul, Hiragana, Katakana).
fn is_chinese_char(c: char) -> bool {
    matches!(
        c as u32,
        0x4E00..=0x9FFF
            | 0x3400..=0x4DBF
            | 0x20000..=0x2A6DF
            | 0x2A700..=0x2B73F
            | 0x2B740..=0x2B81F
            | 0x2B920..=0x2CEAF
            | 0xF900..=0xFAFF
            | 0x2F800..=0x2FA1F
    )
}

fn tokenizer_error(reason: String) -> EncoderError {
    EncoderError::Tokenizer { reason }
}

// ---- tokenizer.json, only the parts a BERT WordPiece pipeline uses -------------------------------

#[derive(Deserialize)]
struct TokenizerFile {
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
    normalizer: Option<TypedNormalizer>,
    pre_tokenizer: Option<Typed>,
    post_processor: Option<PostProcessor>,
    model: WordPieceModel,
}

#[derive(Deserialize)]
struct Typed {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct TypedNormalizer {
    #[serde(rename = "type")]
    kind: String,
    #[serde(flatten)]
    options: serde_json::Value,
}

#[derive(Deserialize)]
struct AddedToken {
    id: u32,
    content: String,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
    #[serde(default)]
    normalized: bool,
}

#[derive(Deserialize)]
struct WordPieceModel {
    #[serde(rename = "type")]
    kind: String,
    vocab: HashMap<String, u32>,
    unk_token: String,
    continuing_subword_prefix: String,
    max_input_chars_per_word: usize,
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum PostProcessor {
    TemplateProcessing {
        single: Vec<TemplatePiece>,
        special_tokens: HashMap<String, SpecialTokenIds>,
    },
    BertProcessing {
        cls: (String, u32),
        sep: (String, u32),
    },
    #[serde(other)]
    Unsupported,
}

#[derive(Deserialize)]
enum TemplatePiece {
    SpecialToken { id: String },
    Sequence { id: String },
}

#[derive(Deserialize)]
struct SpecialTokenIds {
    ids: Vec<u32>,
}

impl TokenizerFile {
    fn into_tokenizer(self) -> Result<WordPieceTokenizer, EncoderError> {
        let normalizer = match self.normalizer {
            Some(n) if n.kind == "BertNormalizer" => {
                serde_json::from_value(n.options).map_err(|e| tokenizer_error(format!("normalizer: {e}")))?
            }
            other => {
                let kind = other.map_or("none".to_string(), |n| n.kind);
                return Err(tokenizer_error(format!("normalizer `{kind}` is not supported (only BertNormalizer)")));
            }
        };
        match self.pre_tokenizer {
            Some(p) if p.kind == "BertPreTokenizer" => {}
            other => {
                let kind = other.map_or("none".to_string(), |p| p.kind);
                return Err(tokenizer_error(format!(
                    "pre_tokenizer `{kind}` is not supported (only BertPreTokenizer)"
                )));
            }
        }
        let model = self.model;
        if model.kind != "WordPiece" {
            return Err(tokenizer_error(format!("model `{}` is not supported (only WordPiece)", model.kind)));
        }
        let unk_id = *model
            .vocab
            .get(&model.unk_token)
            .ok_or_else(|| tokenizer_error(format!("model.unk_token `{}` is not in the vocab", model.unk_token)))?;
        let added_tokens = added_tokens(self.added_tokens)?;
        let mut added_first_bytes = [false; 256];
        for (content, _) in &added_tokens {
            added_first_bytes[content.as_bytes()[0] as usize] = true;
        }
        let (prefix_ids, suffix_ids) = template_ids(self.post_processor)?;
        Ok(WordPieceTokenizer {
            normalizer,
            vocab: model.vocab,
            unk_id,
            continuing_prefix: model.continuing_subword_prefix,
            max_input_chars_per_word: model.max_input_chars_per_word,
            added_tokens,
            added_first_bytes,
            prefix_ids,
            suffix_ids,
        })
    }
}

/// Added tokens matched on the raw text; the options we do not implement are refused.
fn added_tokens(tokens: Vec<AddedToken>) -> Result<Vec<(String, u32)>, EncoderError> {
    let mut out = Vec::with_capacity(tokens.len());
    for t in tokens {
        if t.normalized || t.lstrip || t.rstrip || t.single_word || t.content.is_empty() {
            return Err(tokenizer_error(format!(
                "added token `{}`: normalized/lstrip/rstrip/single_word or empty content are not supported",
                t.content
            )));
        }
        out.push((t.content, t.id));
    }
    out.sort_by_key(|(content, _)| std::cmp::Reverse(content.len()));
    Ok(out)
}

/// The ids the single-sequence template puts before and after the text.
fn template_ids(post: Option<PostProcessor>) -> Result<(Vec<u32>, Vec<u32>), EncoderError> {
    match post {
        None => Ok((Vec::new(), Vec::new())),
        Some(PostProcessor::BertProcessing { cls, sep }) => Ok((vec![cls.1], vec![sep.1])),
        Some(PostProcessor::TemplateProcessing { single, special_tokens }) => {
            let (mut prefix, mut suffix) = (Vec::new(), Vec::new());
            let mut seen_sequence = false;
            for piece in single {
                match piece {
                    TemplatePiece::Sequence { id } if id == "A" && !seen_sequence => seen_sequence = true,
                    TemplatePiece::Sequence { id } => {
                        return Err(tokenizer_error(format!(
                            "post_processor: unexpected sequence `{id}` in single template"
                        )))
                    }
                    TemplatePiece::SpecialToken { id } => {
                        let ids = &special_tokens
                            .get(&id)
                            .ok_or_else(|| tokenizer_error(format!("post_processor: special token `{id}` undefined")))?
                            .ids;
                        if seen_sequence { &mut suffix } else { &mut prefix }.extend_from_slice(ids);
                    }
                }
            }
            Ok((prefix, suffix))
        }
        Some(PostProcessor::Unsupported) => {
            Err(tokenizer_error("post_processor: only TemplateProcessing and BertProcessing are supported".into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny BERT tokenizer.json with a hand-made vocab.
    fn tiny() -> WordPieceTokenizer {
        let vocab: Vec<&str> = vec![
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff", "##able", "cafe", ",", "!", "a", "##b", "i", "\u{307}",
        ];
        let vocab: serde_json::Map<String, serde_json::Value> =
            vocab.iter().enumerate().map(|(i, t)| (t.to_string(), (i as u32).into())).collect();
        let json = serde_json::json!({
            "added_tokens": [
                {"id": 2, "content": "[CLS]", "special": true, "normalized": false},
                {"id": 3, "content": "[SEP]", "special": true, "normalized": false}
            ],
            "normalizer": {"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                           "strip_accents": null, "lowercase": true},
            "pre_tokenizer": {"type": "BertPreTokenizer"},
            "post_processor": {"type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                           {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
                "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                                   "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
            "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                      "max_input_chars_per_word": 9, "vocab": vocab}
        });
        WordPieceTokenizer::from_json(json.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn word_pieces_punctuation_accents_and_unknowns() {
        let t = tiny();
        assert_eq!(t.encode("Unaffable, CAFÉ!", 64), vec![2, 4, 5, 6, 8, 7, 9, 3]);
        // A word without a segmentation is one [UNK]; so is a word over 9 characters.
        assert_eq!(t.encode("ax abbbbbbbbb", 64), vec![2, 1, 1, 3]);
        assert_eq!(t.encode("abbbbbbbb", 64), vec![2, 10, 11, 11, 11, 11, 11, 11, 11, 11, 3]);
    }

    #[test]
    fn control_chars_vanish_and_whitespace_splits() {
        let t = tiny();
        assert_eq!(t.encode("a\u{200b}b\u{0}\t\u{a0}a", 64), vec![2, 10, 11, 10, 3]);
        assert_eq!(t.encode(" \r\n ", 64), vec![2, 3]);
    }

    #[test]
    fn added_tokens_match_in_raw_text_only() {
        let t = tiny();
        assert_eq!(t.encode("a[SEP]a", 64), vec![2, 10, 3, 10, 3]);
        // Lowercase "[sep]" is not the added token: it is tokenized as text ("[" is unknown here).
        assert_eq!(t.encode("[sep]", 64), vec![2, 1, 1, 1, 3]);
    }

    #[test]
    fn capitals_lose_their_accents_before_lowercasing() {
        // U+0130 (I with dot above) decomposes to I + U+0307; the mark goes, then I lowercases.
        assert_eq!(tiny().encode("\u{130}", 64), vec![2, 12, 3]);
    }

    #[test]
    fn truncation_counts_the_special_tokens() {
        let t = tiny();
        assert_eq!(t.encode("a a a a a", 5), vec![2, 10, 10, 10, 3]);
        assert_eq!(t.encode("a [SEP] a", 4), vec![2, 10, 3, 3]);
    }

    /// The splitting and encoding this module did before it was made linear: every added token
    /// searched for in the rest of the text at every cut, each run of plain text tokenized whole.
    fn reference_encode(t: &WordPieceTokenizer, text: &str, max_len: usize) -> Vec<u32> {
        let budget = max_len.saturating_sub(t.num_special_tokens());
        let mut ids = t.prefix_ids.clone();
        let mut rest = text;
        while !rest.is_empty() {
            let next = t
                .added_tokens
                .iter()
                .filter_map(|(content, id)| rest.find(content.as_str()).map(|at| (at, content.len(), *id)))
                .min_by_key(|&(at, len, _)| (at, std::cmp::Reverse(len)));
            match next {
                Some((at, len, id)) => {
                    t.encode_plain(&rest[..at], &mut ids);
                    ids.push(id);
                    rest = &rest[at + len..];
                }
                None => {
                    t.encode_plain(rest, &mut ids);
                    break;
                }
            }
        }
        ids.truncate(t.prefix_ids.len() + budget);
        ids.extend_from_slice(&t.suffix_ids);
        ids
    }

    /// Deterministic text from pieces that matter here: added tokens whole and cut, the four cut
    /// characters, marks right after a space, U+0085 (whitespace but a control), CJK, accents.
    fn generated_text(seed: u64, pieces: usize) -> String {
        const PARTS: [&str; 18] = [
            "[SEP]",
            "[CLS]",
            "[SE",
            "P]",
            "[",
            " ",
            "\t",
            "\r\n",
            " \u{301}",
            "\u{85}",
            "a",
            "b",
            "un",
            "aff",
            "\u{4e2d}",
            "CAF\u{c9}",
            "!",
            "\u{130}",
        ];
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..pieces)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                PARTS[(state >> 33) as usize % PARTS.len()]
            })
            .collect()
    }

    #[test]
    fn one_pass_splitting_and_pieces_give_the_reference_ids() {
        let t = tiny();
        for seed in 0..200 {
            // Up to ~8 KB: longer than a plain-text piece, so pieces are cut inside runs of text.
            let text = generated_text(seed, 1 + (seed as usize * 37) % 3000);
            for max_len in [4, 64, 256, usize::MAX] {
                assert_eq!(t.encode(&text, max_len), reference_encode(&t, &text, max_len), "seed {seed} {max_len}");
            }
        }
    }

    #[test]
    fn repeated_added_tokens_cost_linear_work() {
        // 100,000 `[SEP]` (500 KB): each cut used to search the whole rest for `[CLS]`, about 10^10
        // steps. Now each byte is scanned once and each `[` compared with the two added tokens.
        let t = tiny();
        let text = "[SEP]".repeat(100_000);
        let (ids, work) = t.encode_counting(&text, usize::MAX);
        assert_eq!(ids.len(), 100_002);
        assert!(ids[1..100_001].iter().all(|&id| id == 3));
        let bound = (1 + t.added_tokens.len() as u64) * text.len() as u64;
        assert!(work <= bound, "{work} steps for {} bytes", text.len());
        // Only prefixes of tokens, and text that is nothing but cut characters.
        for text in ["[SE".repeat(100_000), "[".repeat(300_000), " ".repeat(300_000), "a".repeat(300_000)] {
            let (_, work) = t.encode_counting(&text, usize::MAX);
            assert!(work <= 2 * bound.max(text.len() as u64), "{work} steps for {} bytes", text.len());
        }
    }

    #[test]
    fn tokenizing_stops_when_the_budget_is_full() {
        let t = tiny();
        for unit in ["[SEP]", "a ", "abbb, ", "a[SEP]b\n"] {
            let long = unit.repeat(1_000_000 / unit.len());
            let short = &long[..50_000 / unit.len() * unit.len()];
            let (ids, work) = t.encode_counting(&long, 256);
            assert_eq!(ids.len(), 256, "{unit:?}");
            // The same ids and the same work as for a 50 KB prefix: what follows is never read.
            assert_eq!((ids.clone(), work), t.encode_counting(short, 256), "{unit:?}");
            assert_eq!(ids, reference_encode(&t, short, 256), "{unit:?}");
        }
    }

    #[test]
    fn refuses_other_pipelines() {
        let json = br###"{"normalizer": null, "pre_tokenizer": null, "post_processor": null,
            "model": {"type": "WordPiece", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]",
                      "continuing_subword_prefix": "##", "max_input_chars_per_word": 100}}"###;
        let err = WordPieceTokenizer::from_json(json).unwrap_err().to_string();
        assert!(err.contains("normalizer"), "{err}");
        assert!(WordPieceTokenizer::from_json(b"{not json").is_err());
    }
}
