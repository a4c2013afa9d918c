//! Extractors whose rejections speak the API's error format.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::error::{ApiError, FieldError};

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A JSON body: 415 unless declared as JSON, 400 unless it parses, 422 naming the field
/// when it does not fit `T` (unknown fields included, when `T` denies them).
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

fn is_json_content_type(parts: &http::HeaderMap) -> bool {
    let Some(value) = parts
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType(
                "the body must be JSON: send Content-Type: application/json".into(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request("unreadable_body", "the request body could not be read")
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// An optional JSON body: none when the request has no body, else the rules of [`JsonBody`].
#[derive(Debug, Clone)]
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<S, T> FromRequest<S> for OptionalJsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let declared_json = is_json_content_type(req.headers());
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::bad_request("unreadable_body", "the request body could not be read")
            }
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        if !declared_json {
            return Err(ApiError::UnsupportedMediaType(
                "the body must be JSON: send Content-Type: application/json".into(),
            ));
        }
        parse_json(&bytes).map(|v| Self(Some(v)))
    }
}

/// Parses JSON bytes into `T` with the rules of [`JsonBody`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value = crate::json::from_slice(bytes).map_err(|e| match e {
        crate::json::StrictJsonError::DuplicateKey(key) => ApiError::bad_request(
            "duplicate_key",
            format!("the body names {key:?} twice; send each field once"),
        ),
        crate::json::StrictJsonError::Syntax(e) => {
            ApiError::bad_request("invalid_json", format!("the body is not valid JSON: {e}"))
        }
    })?;
    if !value.is_object() {
        return Err(ApiError::field("body", "must be a JSON object"));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        ApiError::fields(vec![field_error(
            &err.path().to_string(),
            &err.inner().to_string(),
        )])
    })
}

/// Names the field of a serde error: the path, or for unknown/missing fields the name in
/// backticks of serde's message.
fn field_error(path: &str, message: &str) -> FieldError {
    // serde_path_to_error writes `?` for a map key it could not read; name the map instead.
    let path = path.strip_suffix(".?").unwrap_or(path);
    let quoted = message
        .split('`')
        .nth(1)
        .filter(|_| message.starts_with("unknown field") || message.starts_with("missing field"));
    let field = match (path, quoted) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (p, Some(name)) if message.starts_with("missing field") => format!("{p}.{name}"),
        (p, _) => p.to_owned(),
    };
    let message = if message.starts_with("unknown field") {
        "is not a known field".to_owned()
    } else if message.starts_with("missing field") {
        "is required".to_owned()
    } else {
        message
            .split(" at line ")
            .next()
            .unwrap_or(message)
            .to_owned()
    };
    FieldError::new(field, message)
}

/// Query-string parameters; a value of the wrong type is a 422 naming the parameter.
#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(v)| QueryParams(v))
            .map_err(|rejection| {
                let text = rejection.body_text();
                let detail = text
                    .strip_prefix("Failed to deserialize query string: ")
                    .unwrap_or(&text)
                    .to_owned();
                let field = detail
                    .split(':')
                    .next()
                    .filter(|f| !f.contains(' '))
                    .unwrap_or("query");
                ApiError::field(field, detail.clone())
            })
    }
}

/// The `Idempotency-Key` header, if sent: 1-255 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get("idempotency-key") else {
            return Ok(Self(None));
        };
        let key = value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1-255 visible ASCII characters",
                )
            })?;
        Ok(Self(Some(key.to_owned())))
    }
}

/// A field of a partial update: absent (keep), `null` (clear) or a value (set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Patch<T> {
    /// Not in the body: keep the stored value.
    #[default]
    Missing,
    /// `null`: clear the stored value.
    Null,
    /// A new value.
    Value(T),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Patch<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<T>::deserialize(deserializer)? {
            Some(v) => Self::Value(v),
            None => Self::Null,
        })
    }
}

impl<T> Patch<T> {
    /// Whether the body named this field at all.
    pub fn is_present(&self) -> bool {
        !matches!(self, Self::Missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        #[serde(default)]
        rating: Option<f64>,
        #[serde(default)]
        note: Patch<String>,
    }

    fn code_and_field(err: ApiError) -> (u16, String) {
        let body = err.body();
        (
            err.status().as_u16(),
            body["details"][0]["field"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        )
    }

    #[test]
    fn bad_bodies_are_named() {
        assert_eq!(
            parse_json::<Body>(b"{nope").unwrap_err().status().as_u16(),
            400
        );
        assert_eq!(
            code_and_field(parse_json::<Body>(b"[1]").unwrap_err()),
            (422, "body".into())
        );
        assert_eq!(
            code_and_field(parse_json::<Body>(b"{}").unwrap_err()),
            (422, "name".into())
        );
        assert_eq!(
            code_and_field(parse_json::<Body>(br#"{"name":"a","colour":"red"}"#).unwrap_err()),
            (422, "colour".into())
        );
        assert_eq!(
            code_and_field(parse_json::<Body>(br#"{"name":"a","rating":"high"}"#).unwrap_err()),
            (422, "rating".into())
        );
    }

    #[test]
    fn patch_tells_absent_from_null() {
        let b: Body = parse_json(br#"{"name":"a"}"#).unwrap();
        assert_eq!(b.note, Patch::Missing);
        let b: Body = parse_json(br#"{"name":"a","note":null}"#).unwrap();
        assert_eq!(b.note, Patch::Null);
        let b: Body = parse_json(br#"{"name":"a","note":"x"}"#).unwrap();
        assert_eq!(b.note, Patch::Value("x".into()));
    }
}
