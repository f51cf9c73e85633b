//! The text encoder's WordPiece tokenizer on arbitrary text (bytes read as UTF-8, lossily, as a
//! title or description would be): `encode_counting` at the encoders' `max_len` (256) and without a
//! limit. Fails when
//! - more ids come back than `max_len`, or an id is not in the vocab;
//! - the 256-id encoding is not the unlimited one truncated (the tokenizer stops reading once its
//!   budget is full, which must not change the ids it returns);
//! - the work (`encode_counting`'s count of inner steps) exceeds `WORK_PER_BYTE × (bytes + 1)`.
//!
//! The tokenizer is a small BERT `tokenizer.json` written below (the five special tokens, a few
//! dozen pieces, `##` continuations); with `OMAKASE_FUZZ_TOKENIZER=models/all-minilm-l6-v2/tokenizer.json`
//! (fetched by `scripts/fetch-models.sh`) the real MiniLM one is used instead.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use omakase::encoders::text::{WordPieceTokenizer, DEFAULT_MAX_SEQ_LEN};

/// Work allowed per byte of text. What the tokenizer counts: each byte scanned for added tokens (1),
/// each comparison of a byte that starts an added token with the added tokens (at most one per added
/// token: 5 here and in MiniLM, all starting with `[`), and each byte of plain text tokenized (1). So
/// the design's worst case is 2 + 5 = 7 per byte (text made of `[`), and ordinary text measures 2 per
/// byte (the title and description seeds: 2.00; `OMAKASE_FUZZ_REPORT_WORK=1` prints it). 16 is more
/// than twice the worst case, so only a change in kind fails: work growing with the square of the
/// text (re-scanning the rest of it at every cut, as the splitter once did) exceeds 16 per byte within
/// a few hundred bytes of input.
const WORK_PER_BYTE: u64 = 16;

/// A small BERT tokenizer.json: [PAD] [UNK] [CLS] [SEP] [MASK] as added tokens, BertNormalizer
/// (lowercase, accents stripped, CJK split), BertPreTokenizer, `[CLS] A [SEP]`, and whole words plus
/// `##` pieces so that words segment, fail to segment ([UNK]) and hit the 100-character word limit.
const VOCAB: &[&str] = &[
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "e", "i", "x", "the", "un", "##aff", "##able", "cafe",
    "shoe", "##s", "red", "blue", "run", "##ner", "##ing", "and", "for", "with", "##b", "##e", "##i", "##x", "##a",
    "1", "##1", "0", "##0", ",", ".", "!", "-", "'", "(", ")", "[", "]", "#", "##", "###", "中", "##中", "ß", "σ",
];

fn tiny_tokenizer_json() -> String {
    let vocab: Vec<String> = VOCAB.iter().enumerate().map(|(i, t)| format!("{t:?}: {i}")).collect();
    format!(
        r###"{{
  "added_tokens": [
    {{"id": 0, "content": "[PAD]", "special": true, "normalized": false}},
    {{"id": 1, "content": "[UNK]", "special": true, "normalized": false}},
    {{"id": 2, "content": "[CLS]", "special": true, "normalized": false}},
    {{"id": 3, "content": "[SEP]", "special": true, "normalized": false}},
    {{"id": 4, "content": "[MASK]", "special": true, "normalized": false}}
  ],
  "normalizer": {{"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                  "strip_accents": null, "lowercase": true}},
  "pre_tokenizer": {{"type": "BertPreTokenizer"}},
  "post_processor": {{"type": "TemplateProcessing",
    "single": [{{"SpecialToken": {{"id": "[CLS]", "type_id": 0}}}}, {{"Sequence": {{"id": "A", "type_id": 0}}}},
               {{"SpecialToken": {{"id": "[SEP]", "type_id": 0}}}}],
    "special_tokens": {{"[CLS]": {{"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]}},
                       "[SEP]": {{"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}}}}},
  "model": {{"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100, "vocab": {{{}}}}}
}}"###,
        vocab.join(", ")
    )
}

/// The tokenizer and one more than its largest id.
fn tokenizer() -> &'static (WordPieceTokenizer, u32) {
    static TOKENIZER: OnceLock<(WordPieceTokenizer, u32)> = OnceLock::new();
    TOKENIZER.get_or_init(|| {
        let json = match std::env::var_os("OMAKASE_FUZZ_TOKENIZER") {
            Some(path) => std::fs::read(&path).unwrap_or_else(|e| panic!("OMAKASE_FUZZ_TOKENIZER {path:?}: {e}")),
            None => tiny_tokenizer_json().into_bytes(),
        };
        let tokenizer = WordPieceTokenizer::from_json(&json).expect("the harness's tokenizer.json");
        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let ids = value["model"]["vocab"].as_object().expect("a vocab").values();
        let end = ids.filter_map(|id| id.as_u64()).max().expect("a non-empty vocab") as u32 + 1;
        (tokenizer, end)
    })
}

fuzz_target!(|data: &[u8]| {
    let (tokenizer, id_end) = tokenizer();
    let text = String::from_utf8_lossy(data);
    let bytes = text.len() as u64;
    let max_len = DEFAULT_MAX_SEQ_LEN;

    let (ids, work) = tokenizer.encode_counting(&text, max_len);
    let (all, all_work) = tokenizer.encode_counting(&text, usize::MAX);
    if std::env::var_os("OMAKASE_FUZZ_REPORT_WORK").is_some() {
        eprintln!(
            "{bytes} bytes: work {all_work} ({:.2}/byte), {work} at max_len {max_len}",
            all_work as f64 / bytes.max(1) as f64
        );
    }
    let bound = WORK_PER_BYTE * (bytes + 1);
    assert!(work <= bound, "work {work} for {bytes} bytes (bound {bound}) at max_len {max_len}");
    assert!(all_work <= bound, "work {all_work} for {bytes} bytes (bound {bound}) without max_len");
    assert!(work <= all_work, "stopping early cost more: {work} > {all_work}");

    assert!(ids.len() <= max_len, "{} ids for max_len {max_len}", ids.len());
    assert!(ids.iter().chain(&all).all(|&id| id < *id_end), "an id outside the vocab: {ids:?}");
    // The template around the text, and the text's first max_len − 2 tokens of the whole encoding.
    let special = tokenizer.num_special_tokens();
    assert_eq!(special, 2);
    assert!(all.len() >= special);
    let kept = (all.len() - special).min(max_len - special);
    let expected: Vec<u32> = all[..1 + kept].iter().chain(&all[all.len() - 1..]).copied().collect();
    assert_eq!(ids, expected, "max_len {max_len} is not the whole encoding truncated");
});
