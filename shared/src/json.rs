//! Request JSON read strictly: a body whose object repeats a key is refused, so no two
//! parsers on a request's path (a proxy, a WAF, ours) can disagree about what it says.

use std::fmt;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a body is not strict JSON.
#[derive(Debug, thiserror::Error)]
pub enum StrictJsonError {
    /// Not JSON at all.
    #[error("{0}")]
    Syntax(String),
    /// An object repeats a key.
    #[error("the key {0:?} appears twice in one object")]
    DuplicateKey(String),
}

/// Parses `bytes` as JSON, refusing an object that repeats a key (at any depth).
pub fn from_slice(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = deserializer
        .deserialize_any(StrictVisitor)
        .map_err(classify)?;
    deserializer.end().map_err(classify)?;
    Ok(value)
}

const DUPLICATE: &str = "duplicate key: ";

fn classify(err: serde_json::Error) -> StrictJsonError {
    let text = err.to_string();
    match text.strip_prefix(DUPLICATE) {
        Some(rest) => {
            StrictJsonError::DuplicateKey(rest.split(" at line ").next().unwrap_or(rest).to_owned())
        }
        None => StrictJsonError::Syntax(text),
    }
}

struct StrictValue(Value);

impl<'de> de::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("{DUPLICATE}{key}")));
            }
            let StrictValue(v) = map.next_value()?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_refused_at_any_depth() {
        assert!(matches!(
            from_slice(br#"{"to": "+1", "to": "+2"}"#),
            Err(StrictJsonError::DuplicateKey(k)) if k == "to"
        ));
        assert!(matches!(
            from_slice(br#"{"a": [{"b": 1, "b": 2}]}"#),
            Err(StrictJsonError::DuplicateKey(k)) if k == "b"
        ));
        assert_eq!(
            from_slice(br#"{"a": 1, "b": [1.5, "x", null, true], "c": {"a": 2}}"#).unwrap(),
            serde_json::json!({"a": 1, "b": [1.5, "x", null, true], "c": {"a": 2}})
        );
        assert!(matches!(
            from_slice(b"{\"a\": 1} x"),
            Err(StrictJsonError::Syntax(_))
        ));
        // Numbers keep their form: a large integer stays an integer.
        assert_eq!(
            from_slice(br#"{"n": 18446744073709551615}"#).unwrap()["n"],
            serde_json::json!(18446744073709551615u64)
        );
    }
}
