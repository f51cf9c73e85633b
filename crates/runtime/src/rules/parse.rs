//! The rules' text, as a shop writes it in the element's attributes and `omakase recommend`'s flags
//! (docs/rules.md is the reference; the two read the same text with this one parser):
//!
//! ```text
//! filter    = clause { ";" clause }          every clause must hold
//! clause    = field                          a bool field is true
//!           | "!" field                      a bool field is false
//!           | field ("=" | "!=") value { "|" value }
//!                                            category: has (has none of) the values;
//!                                            number: equals / lies in a range "a..b", "a..", "..b";
//!                                            bool: "true" / "false"
//!           | field ("<" | "<=" | ">" | ">=") number
//! boost     = weight clause { ";" weight clause }   e.g. "+0.1 on_sale; -0.05 genres=Horror"
//! exclude   = id { (" " | ",") id }                   e.g. the basket
//! pin       = id "@" position { (" " | ",") id "@" position }   positions from 1
//! diversity = field ":" n                              at most n items per value of the field
//! ```
//!
//! An item without a value for a clause's field fails the clause, except `!=`, which it passes.
//! Parsing checks the text only; whether the fields exist and have the right type is checked when
//! the rules meet a bundle ([`super::compile`]). Errors are [`RuntimeError::Rule`] naming the
//! attribute and the clause.

use super::columns::is_field_name;
use crate::error::RuntimeError;

/// Most clauses, ids or pins one attribute may hold.
pub const MAX_RULE_ITEMS: usize = 10_000;
/// Largest pin position and diversity cap.
pub const MAX_POSITION: usize = 1_000;

/// What a clause tests.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// Bare `field` (true) or `!field` (false): a bool field's value.
    Is(bool),
    /// `field=v1|v2`: the value is one of these (as written; typed against the column later).
    Eq(Vec<String>),
    /// `field!=v1|v2`: the value is none of these (or there is no value).
    Ne(Vec<String>),
    /// `field<x`, `<=`, `>`, `>=`.
    Cmp(Cmp, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl Cmp {
    pub fn holds(self, value: f64, bound: f64) -> bool {
        match self {
            Cmp::Lt => value < bound,
            Cmp::Le => value <= bound,
            Cmp::Gt => value > bound,
            Cmp::Ge => value >= bound,
        }
    }
}

/// One clause: a field and its test; `text` is the clause as written (for messages).
#[derive(Debug, Clone, PartialEq)]
pub struct Clause {
    pub field: String,
    pub test: Test,
    pub text: String,
}

/// The rules of one list, parsed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rules {
    pub filter: Vec<Clause>,
    pub boosts: Vec<(f32, Clause)>,
    pub exclude: Vec<String>,
    /// `(id, position)`, positions from 1, in the order written.
    pub pins: Vec<(String, usize)>,
    /// `(field, n)`: at most n items per value.
    pub diversity: Option<(String, usize)>,
}

/// The rules' text by attribute (`None` or blank: no such rule).
#[derive(Debug, Clone, Copy, Default)]
pub struct RuleText<'a> {
    pub filter: Option<&'a str>,
    pub boost: Option<&'a str>,
    pub exclude: Option<&'a str>,
    pub pin: Option<&'a str>,
    pub diversity: Option<&'a str>,
}

impl Rules {
    /// Parses every attribute; the first error names its attribute.
    pub fn parse(text: &RuleText<'_>) -> Result<Rules, RuntimeError> {
        Ok(Rules {
            filter: parse_filter(text.filter.unwrap_or(""))?,
            boosts: parse_boost(text.boost.unwrap_or(""))?,
            exclude: parse_ids("exclude", text.exclude.unwrap_or(""))?,
            pins: parse_pins(text.pin.unwrap_or(""))?,
            diversity: parse_diversity(text.diversity.unwrap_or(""))?,
        })
    }

    /// No rule at all: the list is the plain top-K.
    pub fn is_empty(&self) -> bool {
        self.filter.is_empty()
            && self.boosts.is_empty()
            && self.exclude.is_empty()
            && self.pins.is_empty()
            && self.diversity.is_none()
    }
}

fn clauses(text: &str) -> impl Iterator<Item = &str> {
    text.split(';').map(str::trim).filter(|c| !c.is_empty())
}

fn too_many(attribute: &str, n: usize) -> Result<(), RuntimeError> {
    if n > MAX_RULE_ITEMS {
        return Err(RuntimeError::rule(attribute, format!("{n} entries, at most {MAX_RULE_ITEMS}")));
    }
    Ok(())
}

/// `filter`'s clauses.
pub fn parse_filter(text: &str) -> Result<Vec<Clause>, RuntimeError> {
    let out: Vec<Clause> = clauses(text).map(|c| parse_clause("filter", c)).collect::<Result<_, _>>()?;
    too_many("filter", out.len())?;
    Ok(out)
}

/// `boost`'s weighted clauses.
pub fn parse_boost(text: &str) -> Result<Vec<(f32, Clause)>, RuntimeError> {
    let out: Vec<(f32, Clause)> = clauses(text)
        .map(|c| {
            let (weight, clause) = c.split_once(char::is_whitespace).ok_or_else(|| {
                RuntimeError::rule("boost", format!("`{c}`: expected a weight then a clause, e.g. `+0.1 on_sale`"))
            })?;
            let w: f32 = weight.parse().ok().filter(|w: &f32| w.is_finite() && w.abs() <= 100.0).ok_or_else(|| {
                RuntimeError::rule("boost", format!("`{c}`: {weight:?} is not a weight (a number from -100 to 100)"))
            })?;
            Ok((w, parse_clause("boost", clause.trim())?))
        })
        .collect::<Result<_, RuntimeError>>()?;
    too_many("boost", out.len())?;
    Ok(out)
}

/// Ids separated by spaces or commas (duplicates kept once, in order).
pub fn parse_ids(attribute: &str, text: &str) -> Result<Vec<String>, RuntimeError> {
    let mut out: Vec<String> = Vec::new();
    for id in text.split(|c: char| c.is_whitespace() || c == ',').filter(|s| !s.is_empty()) {
        if !out.iter().any(|o| o == id) {
            out.push(id.to_string());
        }
    }
    too_many(attribute, out.len())?;
    Ok(out)
}

/// `id@position` entries.
pub fn parse_pins(text: &str) -> Result<Vec<(String, usize)>, RuntimeError> {
    let out: Vec<(String, usize)> = parse_ids("pin", text)?
        .into_iter()
        .map(|entry| {
            let bad = || {
                RuntimeError::rule(
                    "pin",
                    format!("`{entry}`: expected ID@POSITION with a position from 1 to {MAX_POSITION}, e.g. `42@1`"),
                )
            };
            let (id, position) = entry.rsplit_once('@').ok_or_else(bad)?;
            let position: usize = position.parse().ok().filter(|p| (1..=MAX_POSITION).contains(p)).ok_or_else(bad)?;
            if id.is_empty() {
                return Err(bad());
            }
            Ok((id.to_string(), position))
        })
        .collect::<Result<_, RuntimeError>>()?;
    Ok(out)
}

/// `field:n`.
pub fn parse_diversity(text: &str) -> Result<Option<(String, usize)>, RuntimeError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || {
        RuntimeError::rule(
            "diversity",
            format!("`{text}`: expected FIELD:N with N from 1 to {MAX_POSITION}, e.g. `genres:2`"),
        )
    };
    let (field, n) = text.rsplit_once(':').ok_or_else(bad)?;
    let field = field.trim();
    let n: usize = n.trim().parse().ok().filter(|n| (1..=MAX_POSITION).contains(n)).ok_or_else(bad)?;
    if !is_field_name(field) {
        return Err(bad());
    }
    Ok(Some((field.to_string(), n)))
}

/// One clause of `attribute`.
pub fn parse_clause(attribute: &str, text: &str) -> Result<Clause, RuntimeError> {
    let bad = |why: &str| RuntimeError::rule(attribute, format!("`{text}`: {why}"));
    if let Some(field) = text.strip_prefix('!') {
        let field = field.trim();
        if is_field_name(field) {
            return Ok(Clause { field: field.into(), test: Test::Is(false), text: text.into() });
        }
        return Err(bad("expected !FIELD (a bool field that is false)"));
    }
    let end = text.find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))).unwrap_or(text.len());
    let (field, rest) = (&text[..end], text[end..].trim_start());
    if !is_field_name(field) {
        return Err(bad("a clause starts with a field name ([A-Za-z0-9_.-])"));
    }
    if rest.is_empty() {
        return Ok(Clause { field: field.into(), test: Test::Is(true), text: text.into() });
    }
    let ops: [(&str, Option<Cmp>); 6] = [
        ("!=", None),
        ("<=", Some(Cmp::Le)),
        (">=", Some(Cmp::Ge)),
        ("=", None),
        ("<", Some(Cmp::Lt)),
        (">", Some(Cmp::Gt)),
    ];
    let Some((op, cmp)) = ops.iter().find(|(op, _)| rest.starts_with(op)) else {
        return Err(bad("expected =, !=, <, <=, > or >= after the field"));
    };
    let value = rest[op.len()..].trim();
    if value.is_empty() {
        return Err(bad("no value after the operator"));
    }
    let test = match (op, cmp) {
        (_, Some(cmp)) => {
            let x: f64 = value.parse().ok().filter(|x: &f64| x.is_finite()).ok_or_else(|| bad("expected a number"))?;
            Test::Cmp(*cmp, x)
        }
        (&"=", None) | (&"!=", None) => {
            let values: Vec<String> = value.split('|').map(|v| v.trim().to_string()).collect();
            if values.iter().any(String::is_empty) {
                return Err(bad("an empty value between |"));
            }
            if *op == "=" {
                Test::Eq(values)
            } else {
                Test::Ne(values)
            }
        }
        _ => unreachable!("every operator is listed"),
    };
    Ok(Clause { field: field.into(), test, text: text.into() })
}

/// A number or range as written in an `=` value: `x`, `a..b`, `a..`, `..b` (inclusive). `None`
/// when the text is neither.
pub fn parse_range(value: &str) -> Option<(f64, f64)> {
    let number = |s: &str| s.trim().parse::<f64>().ok().filter(|x| x.is_finite());
    match value.split_once("..") {
        Some((lo, hi)) => {
            let lo = if lo.trim().is_empty() { Some(f64::NEG_INFINITY) } else { number(lo) }?;
            let hi = if hi.trim().is_empty() { Some(f64::INFINITY) } else { number(hi) }?;
            (lo <= hi && (lo.is_finite() || hi.is_finite())).then_some((lo, hi))
        }
        None => number(value).map(|x| (x, x)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_rule_kind() {
        let rules = Rules::parse(&RuleText {
            filter: Some(" genres=Comedy|Drama ; price=10..50; in_stock; !discontinued; year>=1990 ;"),
            boost: Some("+0.1 on_sale; -0.05 genres=Horror"),
            exclude: Some("a, b  a\nc"),
            pin: Some("42@1 x@y@3"),
            diversity: Some("genres:2"),
        })
        .unwrap();
        assert_eq!(rules.filter.len(), 5);
        assert_eq!(rules.filter[0].test, Test::Eq(vec!["Comedy".into(), "Drama".into()]));
        assert_eq!(rules.filter[2].test, Test::Is(true));
        assert_eq!(rules.filter[3].test, Test::Is(false));
        assert_eq!(rules.filter[4].test, Test::Cmp(Cmp::Ge, 1990.0));
        assert_eq!(rules.boosts[1].0, -0.05);
        assert_eq!(rules.exclude, vec!["a", "b", "c"]);
        assert_eq!(rules.pins, vec![("42".to_string(), 1), ("x@y".to_string(), 3)]);
        assert_eq!(rules.diversity, Some(("genres".to_string(), 2)));
        assert!(Rules::parse(&RuleText::default()).unwrap().is_empty());
        assert_eq!(parse_range("10..50"), Some((10.0, 50.0)));
        assert_eq!(parse_range("..5"), Some((f64::NEG_INFINITY, 5.0)));
        assert_eq!(parse_range("7"), Some((7.0, 7.0)));
        assert_eq!(parse_range("5..1"), None);
        assert_eq!(parse_range(".."), None);
        assert_eq!(parse_range("Comedy"), None);
    }

    #[test]
    fn malformed_rules_name_their_attribute() {
        let cases: [(RuleText, &str, &str); 9] = [
            (RuleText { filter: Some("price= "), ..Default::default() }, "filter", "no value"),
            (RuleText { filter: Some("price<abc"), ..Default::default() }, "filter", "expected a number"),
            (RuleText { filter: Some("=3"), ..Default::default() }, "filter", "starts with a field name"),
            (RuleText { filter: Some("g=a||b"), ..Default::default() }, "filter", "empty value"),
            (RuleText { boost: Some("on_sale"), ..Default::default() }, "boost", "a weight then a clause"),
            (RuleText { boost: Some("lots on_sale"), ..Default::default() }, "boost", "is not a weight"),
            (RuleText { pin: Some("42@0"), ..Default::default() }, "pin", "ID@POSITION"),
            (RuleText { pin: Some("42"), ..Default::default() }, "pin", "ID@POSITION"),
            (RuleText { diversity: Some("genres"), ..Default::default() }, "diversity", "FIELD:N"),
        ];
        for (text, attribute, expected) in cases {
            let e = Rules::parse(&text).unwrap_err();
            assert!(matches!(&e, RuntimeError::Rule { attribute: a, .. } if a == attribute), "{e:?}");
            assert!(e.to_string().starts_with(&format!("{attribute}: ")) && e.to_string().contains(expected), "{e}");
        }
    }
}
