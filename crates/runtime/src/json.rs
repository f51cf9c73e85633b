//! JSON from untrusted files, parsed as `serde_json::Value` but refusing an object that names a key
//! twice, at any depth. RFC 8259 only says names SHOULD be unique, and parsers disagree on which value
//! wins (serde_json keeps the last, others the first), so a file that repeats one is ambiguous: a
//! catalogue row `{"item_id": "d1", "item_id": "d2"}` or a manifest naming a file's `sha256` twice
//! must be an error, not a silent pick. Used for `manifest.json` here and `items.jsonl` by the
//! training crate's loaders.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// `text` as a JSON value, an error naming the key when an object repeats one (the message reads
/// "key \"K\" appears twice in one object at line L column C").
pub fn parse_unique_keys(text: &[u8]) -> Result<Value, serde_json::Error> {
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    let value = UniqueValue.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// Builds a `Value` exactly as serde_json's own visitor does, checking each object's keys.
struct UniqueValue;

impl<'de> DeserializeSeed<'de> for UniqueValue {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UniqueValue {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = seq.next_element_seed(UniqueValue)? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(de::Error::custom(format_args!("key {key:?} appears twice in one object")));
            }
            let value = map.next_value_seed(UniqueValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_equal_serde_json_s_own() {
        for text in [
            r#"{"a": 1, "b": -2, "c": 1.5, "d": 18446744073709551615, "e": [true, null, "x"], "f": {"g": {}}}"#,
            r#"[1e300, -0.0, "\u00e9", {"k": [{"k": 1}]}]"#,
            r#""plain""#,
        ] {
            let ours = parse_unique_keys(text.as_bytes()).unwrap();
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(ours, theirs, "{text}");
        }
    }

    #[test]
    fn a_repeated_key_is_refused_at_any_depth_naming_it() {
        for (text, key) in [
            (r#"{"item_id": "d1", "item_id": "d2"}"#, "item_id"),
            (r#"{"files": [{"path": "a", "sha256": "1", "sha256": "2"}]}"#, "sha256"),
            (r#"{"a": {"b": {"c": 1, "c": 1}}}"#, "c"),
        ] {
            let err = parse_unique_keys(text.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(&format!("key \"{key}\" appears twice")), "{text}: {err}");
        }
        // The same key in two different objects is fine.
        parse_unique_keys(br#"[{"k": 1}, {"k": 2}, {"k": {"k": 3}}]"#).unwrap();
    }

    #[test]
    fn trailing_data_and_bad_json_are_still_errors() {
        assert!(parse_unique_keys(b"{} x").is_err());
        assert!(parse_unique_keys(b"{\"a\": }").is_err());
    }
}
