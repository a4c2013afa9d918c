//! Identifiers: time-ordered UUID v7 ids with a readable prefix, and the tenant id.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A new time-ordered id with a readable prefix: `dept_0193...` (UUID v7, hex, no dashes).
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", Uuid::now_v7().simple())
}

/// Whether `value` has the shape of an id made by [`new_id`] with `prefix`.
pub fn is_id(prefix: &str, value: &str) -> bool {
    value
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|hex| {
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// Whether a caller-chosen key part (agent id, idempotency key) is safe inside a table key:
/// 1-128 characters of letters, digits and `. _ @ : -` (never `#`, the key separator).
pub fn is_key_safe(value: &str) -> bool {
    (1..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'@' | b':' | b'-'))
}

/// The organisation a record belongs to; always taken from the verified token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

/// A tenant id is 1-64 characters of letters, digits, `_` and `-`.
#[derive(Debug, thiserror::Error)]
#[error("tenant id must be 1-64 characters of letters, digits, '_' and '-'")]
pub struct BadTenantId;

impl TenantId {
    /// Checks and wraps a tenant id.
    pub fn parse(value: &str) -> Result<Self, BadTenantId> {
        let ok = (1..=64).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(BadTenantId)
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = BadTenantId;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<TenantId> for String {
    fn from(value: TenantId) -> Self {
        value.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_time_ordered_and_recognised() {
        let a = new_id("dept");
        let b = new_id("dept");
        assert!(a.starts_with("dept_") && is_id("dept", &a));
        assert!(a < b, "v7 ids sort by creation time");
        assert!(!is_id("agent", &a));
        assert!(!is_id("dept", "dept_xyz"));
    }

    #[test]
    fn key_parts_never_contain_the_separator() {
        assert!(is_key_safe("agent.smith@acme"));
        assert!(!is_key_safe("a#b"));
        assert!(!is_key_safe(""));
        assert!(TenantId::parse("acme-1").is_ok());
        assert!(TenantId::parse("acme#evil").is_err());
    }
}
