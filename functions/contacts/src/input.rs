//! Contact fields as users send them (API bodies, import rows) and the rules that turn them
//! into a record's fields: names, E.164 phone, email, tags, bounded custom fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use vocelio_shared::FieldError;
use vocelio_shared::phone::{self, Region};
use vocelio_shared::validate::is_email;

use crate::model::{ContactStatus, PhoneType};

/// Most custom fields per contact.
pub const MAX_CUSTOM_FIELDS: usize = 50;
/// Longest custom field value (characters).
pub const MAX_CUSTOM_VALUE_CHARS: usize = 1000;
/// Largest custom-field object (bytes of JSON).
pub const MAX_CUSTOM_FIELDS_BYTES: usize = 8 * 1024;
/// Most tags per contact.
pub const MAX_TAGS: usize = 20;

/// Contact fields before validation; `None` = not given.
#[derive(Debug, Clone, Default)]
pub struct RawContact {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub phone_type: Option<String>,
    pub email: Option<String>,
    pub company: Option<String>,
    pub tags: Option<Vec<String>>,
    pub custom_fields: Option<BTreeMap<String, Value>>,
    pub notes: Option<String>,
    pub status: Option<String>,
}

/// Validated contact fields.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContactFields {
    pub first_name: String,
    pub last_name: Option<String>,
    pub phone: String,
    pub phone_type: PhoneType,
    pub email: Option<String>,
    pub company: Option<String>,
    pub tags: Vec<String>,
    pub custom_fields: BTreeMap<String, Value>,
    pub notes: Option<String>,
    pub status: Option<ContactStatus>,
}

/// Whether a first name is required (the API) or may be empty (imports of number-only
/// lists).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRule {
    Required,
    Optional,
}

fn optional_text(
    errors: &mut Vec<FieldError>,
    field: &str,
    value: Option<String>,
    max: usize,
) -> Option<String> {
    let text = value
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())?;
    if text.chars().count() > max {
        errors.push(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    } else if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        errors.push(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Some(text)
}

/// Normalises a tag as people type them (`West Coast` → `west-coast`).
pub fn normalize_tag(tag: &str) -> String {
    tag.trim()
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("-")
}

/// Checks tags: at most [`MAX_TAGS`], each 1-32 of `a-z 0-9 _ -`; de-duplicated, order kept.
pub fn check_tags(errors: &mut Vec<FieldError>, field: &str, tags: &[String]) -> Vec<String> {
    if tags.len() > MAX_TAGS {
        errors.push(FieldError::new(
            field,
            format!("must have at most {MAX_TAGS} entries"),
        ));
    }
    let mut out: Vec<String> = Vec::new();
    for (i, raw) in tags.iter().enumerate() {
        let tag = normalize_tag(raw);
        if !vocelio_shared::validate::is_tag(&tag) {
            errors.push(FieldError::new(
                format!("{field}[{i}]"),
                "must be a short tag: 1-32 of a-z, 0-9, '_' and '-'",
            ));
        } else if !out.contains(&tag) {
            out.push(tag);
        }
    }
    out
}

/// Checks custom fields: at most [`MAX_CUSTOM_FIELDS`] keys of 1-64 letters, digits, spaces,
/// `_ . -`; values strings (≤ [`MAX_CUSTOM_VALUE_CHARS`]), numbers, booleans or null; the
/// whole object at most [`MAX_CUSTOM_FIELDS_BYTES`].
pub fn check_custom_fields(
    errors: &mut Vec<FieldError>,
    fields: BTreeMap<String, Value>,
) -> BTreeMap<String, Value> {
    if fields.len() > MAX_CUSTOM_FIELDS {
        errors.push(FieldError::new(
            "customFields",
            format!("must have at most {MAX_CUSTOM_FIELDS} fields"),
        ));
        return BTreeMap::new();
    }
    let mut out = BTreeMap::new();
    for (key, value) in fields {
        let name = key.trim().to_owned();
        let key_ok = (1..=64).contains(&name.chars().count())
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '_' | '.' | '-'));
        if !key_ok {
            errors.push(FieldError::new(
                format!("customFields.{}", key.chars().take(64).collect::<String>()),
                "names must be 1-64 letters, digits, spaces, '_', '.' or '-'",
            ));
            continue;
        }
        match &value {
            Value::String(text) if text.chars().count() > MAX_CUSTOM_VALUE_CHARS => {
                errors.push(FieldError::new(
                    format!("customFields.{name}"),
                    format!("must be at most {MAX_CUSTOM_VALUE_CHARS} characters"),
                ));
            }
            Value::Array(_) | Value::Object(_) => errors.push(FieldError::new(
                format!("customFields.{name}"),
                "must be a string, number, boolean or null",
            )),
            _ => {
                out.insert(name, value);
            }
        }
    }
    let size = serde_json::to_vec(&out).map(|v| v.len()).unwrap_or(0);
    if size > MAX_CUSTOM_FIELDS_BYTES {
        errors.push(FieldError::new(
            "customFields",
            format!("must be at most {MAX_CUSTOM_FIELDS_BYTES} bytes as JSON"),
        ));
    }
    out
}

/// Validates and normalises every field; all problems are reported at once.
pub fn validate(
    raw: RawContact,
    region: Region,
    names: NameRule,
) -> Result<ContactFields, Vec<FieldError>> {
    let mut errors = Vec::new();
    let first_name = optional_text(&mut errors, "firstName", raw.first_name, 100);
    if first_name.is_none() && names == NameRule::Required {
        errors.push(FieldError::new("firstName", "is required"));
    }
    let last_name = optional_text(&mut errors, "lastName", raw.last_name, 100);
    let phone = match raw
        .phone
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        None => {
            errors.push(FieldError::new("phone", "is required"));
            String::new()
        }
        Some(text) => match phone::normalize(text, region) {
            Ok(e164) => e164.as_str().to_owned(),
            Err(why) => {
                errors.push(FieldError::new("phone", format!("phone number {why}")));
                String::new()
            }
        },
    };
    let phone_type = match raw
        .phone_type
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        None => PhoneType::Mobile,
        Some(text) => PhoneType::parse(text).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "phoneType",
                "must be mobile, landline, work, home or other",
            ));
            PhoneType::Other
        }),
    };
    let email = optional_text(&mut errors, "email", raw.email, 254).map(|e| e.to_lowercase());
    if let Some(email) = &email
        && !is_email(email)
    {
        errors.push(FieldError::new("email", "is not a valid email address"));
    }
    let company = optional_text(&mut errors, "company", raw.company, 200);
    let tags = check_tags(&mut errors, "tags", &raw.tags.unwrap_or_default());
    let custom_fields = check_custom_fields(&mut errors, raw.custom_fields.unwrap_or_default());
    let notes = optional_text(&mut errors, "notes", raw.notes, 2000);
    let status = match raw
        .status
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(text) => ContactStatus::parse(text).or_else(|| {
            errors.push(FieldError::new(
                "status",
                "must be active, inactive or doNotCall",
            ));
            None
        }),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ContactFields {
        first_name: first_name.unwrap_or_default(),
        last_name,
        phone,
        phone_type,
        email,
        company,
        tags,
        custom_fields,
        notes,
        status,
    })
}

/// `POST /v1/contacts` and `PUT /v1/contacts/{id}`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactBody {
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub phone_type: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    #[serde(default)]
    pub custom_fields: Option<BTreeMap<String, Value>>,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// Lists to add the new contact to (create only).
    #[serde(default)]
    pub list_ids: Option<Vec<String>>,
}

impl ContactBody {
    /// The fields to validate.
    pub fn raw(&self) -> RawContact {
        RawContact {
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            phone: self.phone.clone(),
            phone_type: self.phone_type.clone(),
            email: self.email.clone(),
            company: self.company.clone(),
            tags: self.tags.clone(),
            custom_fields: self.custom_fields.clone(),
            notes: self.notes.clone(),
            status: self.status.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(phone: &str, email: &str) -> RawContact {
        RawContact {
            first_name: Some(" Ana ".into()),
            phone: Some(phone.into()),
            email: Some(email.into()),
            tags: Some(vec!["VIP".into(), "West Coast".into(), "vip".into()]),
            ..RawContact::default()
        }
    }

    #[test]
    fn fields_are_normalised() {
        let f = validate(
            raw("(415) 555-2671", "Ana@Example.com"),
            Region::US,
            NameRule::Required,
        )
        .unwrap();
        assert_eq!(f.first_name, "Ana");
        assert_eq!(f.phone, "+14155552671");
        assert_eq!(f.email.as_deref(), Some("ana@example.com"));
        assert_eq!(f.tags, vec!["vip", "west-coast"]);
        assert_eq!(f.phone_type, PhoneType::Mobile);
    }

    #[test]
    fn every_problem_is_named() {
        let mut r = raw("12345", "ana@");
        r.first_name = None;
        r.status = Some("gone".into());
        r.custom_fields = Some(
            [
                ("ok".to_owned(), Value::from(1)),
                ("bad{".to_owned(), Value::from("x")),
                ("nested".to_owned(), serde_json::json!({"a": 1})),
            ]
            .into_iter()
            .collect(),
        );
        let errors = validate(r, Region::US, NameRule::Required).unwrap_err();
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            vec![
                "firstName",
                "phone",
                "email",
                "customFields.bad{",
                "customFields.nested",
                "status"
            ]
        );
    }

    #[test]
    fn custom_fields_are_bounded() {
        let many: BTreeMap<String, Value> =
            (0..51).map(|i| (format!("f{i}"), Value::from(i))).collect();
        let mut errors = Vec::new();
        check_custom_fields(&mut errors, many);
        assert_eq!(errors.len(), 1);
        let big: BTreeMap<String, Value> = (0..10)
            .map(|i| (format!("f{i}"), Value::from("x".repeat(999))))
            .collect();
        let mut errors = Vec::new();
        check_custom_fields(&mut errors, big);
        assert_eq!(errors[0].field, "customFields");
    }
}
