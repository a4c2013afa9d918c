//! Field rules shared by the endpoints; violations are collected so one 422 names them all.

use crate::error::{ApiError, ApiResult, FieldError};

/// The field errors found so far in one request.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldError>);

impl Violations {
    /// Starts an empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` for `field` unless `ok`.
    pub fn check(&mut self, ok: bool, field: &str, message: &str) {
        if !ok {
            self.add(field, message);
        }
    }

    /// Records `message` for `field`.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push(FieldError::new(field, message));
    }

    /// Trims `value` and checks it has `min..=max` characters; returns the trimmed text.
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) -> String {
        let trimmed = value.trim();
        let len = trimmed.chars().count();
        if len < min || len > max {
            self.add(field, format!("must be {min}-{max} characters long"));
        } else if trimmed.chars().any(char::is_control) {
            self.add(field, "must not contain control characters");
        }
        trimmed.to_owned()
    }

    /// Normalises a list of tags (trimmed, lowercase, de-duplicated, order kept) and checks
    /// each is a short tag: 1-32 of `a-z 0-9 _ -`, starting with a letter or digit.
    pub fn tags(&mut self, field: &str, values: &[String], max_count: usize) -> Vec<String> {
        if values.len() > max_count {
            self.add(field, format!("must have at most {max_count} entries"));
        }
        let mut out: Vec<String> = Vec::with_capacity(values.len());
        for (i, value) in values.iter().enumerate() {
            let tag = value.trim().to_lowercase();
            if !is_tag(&tag) {
                self.add(
                    &format!("{field}[{i}]"),
                    "must be a short tag: 1-32 of a-z, 0-9, '_' and '-'",
                );
            } else if !out.contains(&tag) {
                out.push(tag);
            }
        }
        out
    }

    /// `Ok` when nothing was recorded, else one 422 naming every field.
    pub fn finish(self) -> ApiResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::fields(self.0))
        }
    }
}

/// A short lowercase tag (`spanish`, `en-us`, `billing_2`).
pub fn is_tag(tag: &str) -> bool {
    (1..=32).contains(&tag.len())
        && tag
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && tag
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A plausible email address: `local@domain.tld`, no spaces, at most 254 characters.
pub fn is_email(email: &str) -> bool {
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let labels: Vec<&str> = domain.split('.').collect();
    !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b >= 0x80)
        })
        && labels.last().is_some_and(|tld| tld.len() >= 2)
}

/// A CSS hex colour: `#rgb` or `#rrggbb`.
pub fn is_hex_color(color: &str) -> bool {
    color
        .strip_prefix('#')
        .is_some_and(|hex| matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        assert!(is_email("ana@example.com"));
        assert!(is_email("ana.b+calls@sub.example.co"));
        assert!(!is_email("ana@"));
        assert!(!is_email("ana example.com"));
        assert!(!is_email("ana@localhost"));
        assert!(!is_email("a b@example.com"));
        assert!(!is_email("ana@-example.com"));
    }

    #[test]
    fn tags_are_normalised_and_checked() {
        let mut v = Violations::new();
        let tags = v.tags(
            "skills",
            &["Billing".into(), " billing ".into(), "tech-support".into()],
            10,
        );
        assert_eq!(tags, vec!["billing", "tech-support"]);
        assert!(v.finish().is_ok());
        let mut v = Violations::new();
        v.tags("skills", &["no spaces".into(), "".into()], 10);
        let err = v.finish().unwrap_err();
        assert_eq!(err.body()["details"][1]["field"], "skills[1]");
    }

    #[test]
    fn text_and_colour() {
        let mut v = Violations::new();
        assert_eq!(v.text("name", "  Sales  ", 1, 255), "Sales");
        v.text("name", "   ", 1, 255);
        v.text("description", &"x".repeat(1001), 0, 1000);
        assert!(v.finish().is_err());
        assert!(is_hex_color("#1a2B3c") && is_hex_color("#fff"));
        assert!(!is_hex_color("red") && !is_hex_color("#12345"));
    }
}
