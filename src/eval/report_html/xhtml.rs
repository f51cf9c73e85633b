//! Escaping for the page, which is polyglot XHTML (an HTML and an XML parser both read it).
//!
//! The template engine runs every value through [`Xhtml`] unless the template says `|safe`
//! (`src/eval/templates/askama.toml` makes it the escaper of `.html` templates). askama's own HTML
//! escaper would not do: it passes control characters through, and most of them are not allowed
//! in an XML document at all, not even as character references. This one also writes the
//! entities the page always had (`&lt;`, `&#39;`...), where askama's writes `&#60;`, `&#39;`...

use std::fmt;

/// The page's escaper: the five markup characters as entities, and control characters other
/// than tab and newline (forbidden in XML) replaced by U+FFFD. Safe in element content and in
/// quoted attribute values alike.
#[derive(Debug, Clone, Copy, Default)]
pub struct Xhtml;

impl askama::filters::Escaper for Xhtml {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, text: &str) -> fmt::Result {
        let mut plain = 0;
        for (i, c) in text.char_indices() {
            let replacement = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                c if forbidden_in_xml(c) => "\u{FFFD}",
                _ => continue,
            };
            dest.write_str(&text[plain..i])?;
            dest.write_str(replacement)?;
            plain = i + c.len_utf8();
        }
        dest.write_str(&text[plain..])
    }
}

/// Control characters other than tab and newline, and the noncharacters U+FFFE and U+FFFF: XML
/// allows them neither raw nor as references (its `Char` production stops at U+FFFD below the
/// supplementary planes; carriage return would be allowed, but an XML parser turns it into a newline).
pub(super) fn forbidden_in_xml(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t') || c == '\u{FFFE}' || c == '\u{FFFF}'
}

/// Text made safe for HTML/XML element content and attribute values (what the template does to
/// every value it inserts).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    askama::filters::Escaper::write_escaped_str(&Xhtml, &mut out, text).expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noncharacters_xml_forbids_are_replaced() {
        assert_eq!(escape("a\u{FFFF}b\u{FFFE}c\u{FFFD}"), "a\u{FFFD}b\u{FFFD}c\u{FFFD}");
        assert_eq!(escape("\u{10000}\u{E000}"), "\u{10000}\u{E000}");
    }

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(escape("a\u{0}b"), "a\u{FFFD}b");
        assert_eq!(escape("é\r\n\t→"), "é\u{FFFD}\n\t→");
    }
}
