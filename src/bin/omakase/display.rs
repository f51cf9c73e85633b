//! Text from data (titles, ids, paths, problem messages) made safe for a terminal: a title holding
//! `ESC ] 0 ; … BEL` would otherwise retitle the terminal, `ESC [ 31 m` recolour it, a NUL or a
//! carriage return hide what precedes it. Control characters, and the bidirectional overrides that
//! reorder what is shown, are written visibly in Rust's escape notation (`\u{1b}`, `\n`, `\t`, ...);
//! every other character, ordinary Unicode included, is kept. JSON output needs none of this (serde
//! already escapes control characters).

use std::borrow::Cow;

/// `text` with every control character and bidirectional formatting character escaped.
pub fn terminal_safe(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// C0, DEL and C1 controls (ESC, BEL, NUL, CR, CSI U+009B, ...), and the bidi embeddings, overrides
/// and isolates (U+202A–U+202E, U+2066–U+2069) and marks (U+200E, U+200F, U+061C).
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;

    #[test]
    fn controls_are_written_visibly_and_unicode_is_kept() {
        assert_eq!(terminal_safe("\u{1b}]0;pwned\u{7}Tea"), "\\u{1b}]0;pwned\\u{7}Tea");
        assert_eq!(terminal_safe("a\0b\r\n\t\u{9b}31m\u{7f}"), "a\\u{0}b\\r\\n\\t\\u{9b}31m\\u{7f}");
        assert_eq!(terminal_safe("abc\u{202e}gpj.exe"), "abc\\u{202e}gpj.exe");
        assert_eq!(terminal_safe("Café 東京 🍣 \"quoted\" back\\slash"), "Café 東京 🍣 \"quoted\" back\\slash");
        assert!(matches!(terminal_safe("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
