//! Facts given at run time, without re-exporting the bundle: what changes by the hour (stock,
//! price, a sale). A small JSON object of fields, each mapping item ids to values:
//!
//! ```text
//! { "in_stock": { "12": false, "57": true }, "price": { "12": 8.5 }, "genres": { "9": ["Sale"] } }
//! ```
//!
//! A fact replaces the bundle's value of that field for that item (`null`: no value); items not
//! named keep the bundle's. A field the bundle lacks may be given here, and rules may then use it.
//! Values are `true`/`false` (a bool field), numbers, or a string / list of strings (a category
//! field); one field holds one type, the bundle column's when it has one. Ids the catalogue does not
//! hold are ignored (counted in [`Facts::unknown_ids`] when resolved). Errors are [`RuntimeError::Rule`]
//! with attribute `facts`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::columns::{is_field_name, ColumnKind};
use crate::error::RuntimeError;

/// Most bytes a facts document may have (it is meant to be small: hourly changes).
pub const MAX_FACTS_BYTES: usize = 16 << 20;

/// One fact's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Fact {
    Missing,
    Bool(bool),
    Number(f64),
    Categories(Vec<String>),
}

/// The facts of one document, by field, then by item id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Facts {
    fields: BTreeMap<String, FactField>,
}

/// One field's facts: their type and values by item id.
#[derive(Debug, Clone, PartialEq)]
pub struct FactField {
    pub kind: Option<ColumnKind>,
    pub values: BTreeMap<String, Fact>,
}

fn error(reason: impl Into<String>) -> RuntimeError {
    RuntimeError::rule("facts", reason)
}

impl Facts {
    /// Parses a facts document (a JSON object; a key given twice is an error).
    pub fn parse(text: &str) -> Result<Facts, RuntimeError> {
        if text.len() > MAX_FACTS_BYTES {
            return Err(error(format!("{} bytes, at most {MAX_FACTS_BYTES}", text.len())));
        }
        let value = crate::json::parse_unique_keys(text.as_bytes()).map_err(|e| error(format!("not JSON: {e}")))?;
        let Value::Object(object) = value else {
            return Err(error("must be a JSON object of fields, e.g. {\"in_stock\": {\"12\": false}}"));
        };
        let mut fields = BTreeMap::new();
        for (field, items) in object {
            if !is_field_name(&field) {
                return Err(error(format!("{field:?} is not a plain field name ([A-Za-z0-9_.-], 1 to 64)")));
            }
            let Value::Object(items) = items else {
                return Err(error(format!("field {field:?} must map item ids to values")));
            };
            let mut kind: Option<ColumnKind> = None;
            let mut values = BTreeMap::new();
            for (id, v) in items {
                let (fact, this) = match v {
                    Value::Null => (Fact::Missing, None),
                    Value::Bool(b) => (Fact::Bool(b), Some(ColumnKind::Bool)),
                    Value::Number(n) => match n.as_f64().filter(|x| x.is_finite()) {
                        Some(x) => (Fact::Number(x), Some(ColumnKind::Number)),
                        None => return Err(error(format!("field {field:?}, item {id:?}: {n} is not a finite number"))),
                    },
                    Value::String(s) => (Fact::Categories(vec![s]), Some(ColumnKind::Category)),
                    Value::Array(list) => {
                        let strings: Option<Vec<String>> =
                            list.into_iter().map(|x| x.as_str().map(String::from)).collect();
                        match strings {
                            Some(s) => (Fact::Categories(s), Some(ColumnKind::Category)),
                            None => {
                                return Err(error(format!("field {field:?}, item {id:?}: a list must hold strings")))
                            }
                        }
                    }
                    Value::Object(_) => {
                        return Err(error(format!("field {field:?}, item {id:?}: an object is not a value")));
                    }
                };
                match (kind, this) {
                    (Some(k), Some(t)) if k != t => {
                        return Err(error(format!(
                            "field {field:?} mixes {} and {} values (item {id:?})",
                            k.as_str(),
                            t.as_str()
                        )));
                    }
                    (None, Some(t)) => kind = Some(t),
                    _ => {}
                }
                values.insert(id, fact);
            }
            fields.insert(field, FactField { kind, values });
        }
        Ok(Facts { fields })
    }

    pub fn field(&self, name: &str) -> Option<&FactField> {
        self.fields.get(name)
    }

    pub fn fields(&self) -> impl Iterator<Item = (&String, &FactField)> {
        self.fields.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_each_type() {
        let f =
            Facts::parse(r#"{"in_stock":{"1":false,"2":null},"price":{"1":8.5},"tags":{"3":"Sale","4":["A","B"]}}"#)
                .unwrap();
        assert_eq!(f.field("in_stock").unwrap().kind, Some(ColumnKind::Bool));
        assert_eq!(f.field("in_stock").unwrap().values["2"], Fact::Missing);
        assert_eq!(f.field("price").unwrap().values["1"], Fact::Number(8.5));
        assert_eq!(f.field("tags").unwrap().values["4"], Fact::Categories(vec!["A".into(), "B".into()]));
    }

    #[test]
    fn refuses_malformed_facts_naming_the_attribute() {
        for (text, expected) in [
            ("[1]", "must be a JSON object"),
            ("{\"p\": 3}", "must map item ids"),
            ("{\"p\": {\"1\": 1, \"2\": true}}", "mixes number and bool"),
            ("{\"p\": {\"1\": [1]}}", "must hold strings"),
            ("{\"a b\": {}}", "not a plain field name"),
            ("{\"p\": {\"1\": 1, \"1\": 2}}", "not JSON"),
            ("{", "not JSON"),
        ] {
            let e = Facts::parse(text).unwrap_err();
            assert!(matches!(&e, RuntimeError::Rule { attribute, .. } if attribute == "facts"), "{e:?}");
            assert!(e.to_string().contains(expected), "{text}: {e}");
        }
    }
}
