//! The text an item is known by: a configurable template over its fields.
//!
//! A template is a list of *parts* joined by `separator`. A part is literal text with `{field}`
//! placeholders and optional `[...]` groups:
//! - a part whose own (non-optional) field is empty is left out entirely;
//! - an optional group holding an empty field is left out, the rest of its part stays;
//! - `\` makes the next character literal (`\[`, `\{`, `\\`).
//!
//! Fields: `title` and `description` (trimmed), `id`, and any key of the item's metadata
//! (`year`, `genres`, `price`, ...): strings are trimmed, numbers and booleans printed as JSON
//! prints them, lists joined with `list_separator` (their empty elements skipped), null, objects
//! and absent keys are empty.
//!
//! The default, `["{title}[ ({year})].", "{genres}.", "{description}"]` joined by `" "` with
//! genres joined by `", "`, is the rule the MiniLM goldens were built with:
//! `Toy Story (1995). Animation, Children's, Comedy. A cowboy doll is …`, and `unknown. unknown.`
//! for an item without year or description.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A template part that does not parse, named with the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("item text template part `{part}`: {reason}")]
pub struct TemplateError {
    pub part: String,
    pub reason: String,
}

/// The fields a template reads from a product (the training crate's `data::Item`, the browser's
/// product object). Lives here because the template travels in the bundle manifest.
pub trait ItemFields {
    fn id(&self) -> &str;
    fn title(&self) -> &str;
    fn description(&self) -> &str;
    /// A metadata value (`year`, `genres`, ...); `None` when absent.
    fn metadata(&self, key: &str) -> Option<&Value>;
}

/// What a template is written as (e.g. in the training config's TOML); every field has a default.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemTextSpec {
    pub parts: Vec<String>,
    pub separator: String,
    pub list_separator: String,
}

impl Default for ItemTextSpec {
    fn default() -> Self {
        ItemTextSpec {
            parts: vec!["{title}[ ({year})].".into(), "{genres}.".into(), "{description}".into()],
            separator: " ".into(),
            list_separator: ", ".into(),
        }
    }
}

/// A parsed, checked template. Build it with [`ItemTextTemplate::new`] or deserialize an
/// [`ItemTextSpec`] into it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(try_from = "ItemTextSpec", into = "ItemTextSpec")]
pub struct ItemTextTemplate {
    spec: ItemTextSpec,
    parts: Vec<Vec<Piece>>,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Field(String),
    Optional(Vec<Piece>),
}

impl Default for ItemTextTemplate {
    fn default() -> Self {
        ItemTextTemplate::new(ItemTextSpec::default()).expect("the default template parses")
    }
}

impl TryFrom<ItemTextSpec> for ItemTextTemplate {
    type Error = TemplateError;
    fn try_from(spec: ItemTextSpec) -> Result<Self, TemplateError> {
        ItemTextTemplate::new(spec)
    }
}

impl From<ItemTextTemplate> for ItemTextSpec {
    fn from(template: ItemTextTemplate) -> Self {
        template.spec
    }
}

impl ItemTextTemplate {
    /// Parses every part; a malformed one is an error naming the part and the reason.
    pub fn new(spec: ItemTextSpec) -> Result<Self, TemplateError> {
        let parts = spec.parts.iter().map(|p| parse_part(p)).collect::<Result<_, _>>()?;
        Ok(ItemTextTemplate { spec, parts })
    }

    pub fn spec(&self) -> &ItemTextSpec {
        &self.spec
    }

    /// The item's text; empty when every part was left out.
    pub fn render(&self, item: &impl ItemFields) -> String {
        let rendered: Vec<String> =
            self.parts.iter().filter_map(|pieces| render_pieces(pieces, &|name| self.field(item, name))).collect();
        rendered.join(&self.spec.separator)
    }

    fn field(&self, item: &impl ItemFields, name: &str) -> String {
        match name {
            "title" => item.title().trim().to_string(),
            "description" => item.description().trim().to_string(),
            "id" => item.id().to_string(),
            _ => item.metadata(name).map_or(String::new(), |v| self.value_text(v)),
        }
    }

    fn value_text(&self, value: &Value) -> String {
        match value {
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Array(values) => values
                .iter()
                .map(|v| self.value_text(v))
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(&self.spec.list_separator),
            Value::Null | Value::Object(_) => String::new(),
        }
    }
}

/// Renders pieces; `None` when a required field is empty (optional groups drop themselves).
fn render_pieces(pieces: &[Piece], field: &dyn Fn(&str) -> String) -> Option<String> {
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Literal(text) => out.push_str(text),
            Piece::Field(name) => {
                let value = field(name);
                if value.is_empty() {
                    return None;
                }
                out.push_str(&value);
            }
            Piece::Optional(inner) => out.push_str(&render_pieces(inner, field).unwrap_or_default()),
        }
    }
    Some(out)
}

fn parse_part(part: &str) -> Result<Vec<Piece>, TemplateError> {
    let error = |reason: &str| TemplateError { part: part.to_string(), reason: reason.to_string() };
    let mut stack: Vec<Vec<Piece>> = vec![Vec::new()];
    let mut literal = String::new();
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        let top = stack.len() - 1;
        match c {
            '\\' => literal.push(chars.next().ok_or_else(|| error("ends with a lone `\\`"))?),
            '{' => {
                flush(&mut literal, &mut stack[top]);
                let mut name = String::new();
                loop {
                    match chars.next() {
                        Some('}') => break,
                        Some(c) if c.is_alphanumeric() || matches!(c, '_' | '-' | '.') => name.push(c),
                        _ => return Err(error("`{` must be followed by a field name and `}`")),
                    }
                }
                if name.is_empty() {
                    return Err(error("`{}` names no field"));
                }
                stack[top].push(Piece::Field(name));
            }
            '[' if stack.len() == 1 => {
                flush(&mut literal, &mut stack[top]);
                stack.push(Vec::new());
            }
            '[' => return Err(error("optional groups `[...]` cannot nest")),
            ']' if stack.len() == 2 => {
                flush(&mut literal, &mut stack[top]);
                let group = stack.pop().unwrap_or_default();
                stack[0].push(Piece::Optional(group));
            }
            ']' => return Err(error("`]` without `[` (write `\\]` for the character)")),
            '}' => return Err(error("`}` without `{` (write `\\}` for the character)")),
            c => literal.push(c),
        }
    }
    if stack.len() != 1 {
        return Err(error("`[` is never closed"));
    }
    let top = &mut stack[0];
    flush(&mut literal, top);
    Ok(stack.pop().unwrap_or_default())
}

fn flush(literal: &mut String, pieces: &mut Vec<Piece>) {
    if !literal.is_empty() {
        pieces.push(Piece::Literal(std::mem::take(literal)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Product {
        title: String,
        description: String,
        metadata: serde_json::Map<String, Value>,
    }

    impl ItemFields for Product {
        fn id(&self) -> &str {
            "7"
        }
        fn title(&self) -> &str {
            &self.title
        }
        fn description(&self) -> &str {
            &self.description
        }
        fn metadata(&self, key: &str) -> Option<&Value> {
            self.metadata.get(key)
        }
    }

    fn item(title: &str, description: &str, metadata: Value) -> Product {
        Product {
            title: title.into(),
            description: description.into(),
            metadata: metadata.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn default_rule_matches_the_golden_construction() {
        let t = ItemTextTemplate::default();
        let full = item(" Toy Story ", " A doll. ", json!({"year": 1995, "genres": ["Animation", "Comedy"]}));
        assert_eq!(t.render(&full), "Toy Story (1995). Animation, Comedy. A doll.");
        let sparse = item("unknown", "", json!({"year": null, "genres": ["unknown"]}));
        assert_eq!(t.render(&sparse), "unknown. unknown.");
        assert_eq!(t.render(&item("Pen", "", json!({}))), "Pen.");
        assert_eq!(t.render(&item("", "", json!({"genres": []}))), "");
    }

    #[test]
    fn custom_template_with_escapes_and_other_fields() {
        let spec = ItemTextSpec {
            parts: vec!["\\[{id}\\] {title}[, ${price}]".into(), "{brand}".into()],
            separator: " | ".into(),
            list_separator: "/".into(),
        };
        let t = ItemTextTemplate::new(spec).unwrap();
        assert_eq!(t.render(&item("Pen", "", json!({"price": 1.5}))), "[7] Pen, $1.5");
        assert_eq!(t.render(&item("Pen", "", json!({"brand": " Bic "}))), "[7] Pen | Bic");
    }

    #[test]
    fn malformed_templates_are_refused_with_the_part_named() {
        for bad in ["{title", "[{year}", "a]", "{}", "[[x]]", "x}", "end\\"] {
            let spec = ItemTextSpec { parts: vec![bad.into()], ..ItemTextSpec::default() };
            let err = ItemTextTemplate::new(spec).unwrap_err().to_string();
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[test]
    fn spec_round_trips_through_serde_and_rejects_bad_parts() {
        let t: ItemTextTemplate = serde_json::from_value(json!({"parts": ["{title}"]})).unwrap();
        assert_eq!(t.spec().separator, " ");
        assert_eq!(serde_json::to_value(&t).unwrap()["parts"], json!(["{title}"]));
        assert!(serde_json::from_value::<ItemTextTemplate>(json!({"parts": ["{title"]})).is_err());
    }
}
