//! The one error type every handler returns, and its JSON form.
//!
//! Body: `{"error": "<human sentence>", "message": "<the same>", "code": "<machine_code>"}`
//! (the app shows `message`) plus `details` for field
//! errors. 5xx bodies never carry the cause: it is logged with the request's span instead.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;

/// A field that failed validation, as reported in `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The JSON path of the field (`phone_number`, `business_hours.timezone`).
    pub field: String,
    /// What is wrong with it, as a sentence.
    pub message: String,
}

impl FieldError {
    /// A field error for `field` with `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every way a request can fail, mapped to an HTTP status and a machine code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request cannot be read at all (body not JSON, bad cursor, bad header).
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 401: no token, or a token that is expired, tampered or unsigned.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the token is fine but its role or tenant may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 403 with its own code: a rule refuses this action (`do_not_call`, ...).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// 404: nothing by that name in the caller's tenant (or no such route).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// 405: the path exists but not with this method.
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// 409: the state of the record forbids this change; `current` shows it when useful.
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        current: Option<Value>,
    },
    /// 413: the body is larger than allowed.
    #[error("request body too large")]
    PayloadTooLarge,
    /// 415: the body is not declared as JSON.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: the JSON is well-formed but its fields break the rules.
    #[error("{message}")]
    Validation {
        message: String,
        details: Vec<FieldError>,
    },
    /// 429: too many requests; retry after the given seconds.
    #[error("too many requests")]
    TooManyRequests { retry_after_seconds: u64 },
    /// 429 with its own code: a quota of the tenant refuses this now (`calls_per_minute`,
    /// ...); `retry_after_seconds` when waiting helps.
    #[error("{message}")]
    Limited {
        code: &'static str,
        message: String,
        retry_after_seconds: Option<u64>,
    },
    /// A third-party provider (speech, telephony) failed: 502 for its own faults or our
    /// credentials, 503 when it is down or not configured, 429 when it rate limits us.
    #[error("{message}")]
    Upstream {
        status: StatusCode,
        code: &'static str,
        message: String,
        retry_after_seconds: Option<u64>,
    },
    /// 503: a dependency (the table) does not answer; safe to retry.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected dependency answer. The cause is logged, never returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// 422 for one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::fields(vec![FieldError::new(field, message)])
    }

    /// 422 for several fields; the sentence names the first.
    pub fn fields(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [] => "the request is invalid".to_owned(),
            [one] => format!("{}: {}", one.field, one.message),
            [first, rest @ ..] => format!(
                "{}: {} (and {} more field error{})",
                first.field,
                first.message,
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            ),
        };
        Self::Validation { message, details }
    }

    /// 404 for a named kind of record.
    pub fn not_found(what: &str) -> Self {
        Self::NotFound {
            code: "not_found",
            message: format!("{what} not found"),
        }
    }

    /// 409 with a code and a sentence.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
            current: None,
        }
    }

    /// 400 with a code and a sentence.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// 500 from any displayable cause (logged, not returned).
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::Refused { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::TooManyRequests { .. } | Self::Limited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Upstream { status, .. } => *status,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. } | Self::NotFound { code, .. } => code,
            Self::Refused { code, .. } | Self::Limited { code, .. } => code,
            Self::Conflict { code, .. } | Self::Upstream { code, .. } => code,
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::Validation { .. } => "validation_failed",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Unavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The JSON body sent to the client.
    pub fn body(&self) -> Value {
        let message = match self {
            Self::Internal(_) => "an internal error occurred; it has been logged".to_owned(),
            Self::Unavailable(_) => "a dependency is unavailable; retry shortly".to_owned(),
            Self::TooManyRequests {
                retry_after_seconds,
            } => format!("too many requests; retry after {retry_after_seconds} s"),
            other => other.to_string(),
        };
        let mut body =
            serde_json::json!({ "error": message, "message": message, "code": self.code() });
        match self {
            Self::Validation { details, .. } => {
                body["details"] = serde_json::to_value(details).unwrap_or(Value::Null);
            }
            Self::Conflict {
                current: Some(current),
                ..
            } => {
                body["current"] = current.clone();
            }
            _ => {}
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, code = self.code(), "request failed");
        } else {
            tracing::info!(
                status = status.as_u16(),
                code = self.code(),
                "request refused"
            );
        }
        let mut response = (status, Json(self.body())).into_response();
        let retry_after = match self {
            Self::TooManyRequests {
                retry_after_seconds,
            } => Some(retry_after_seconds),
            Self::Upstream {
                retry_after_seconds,
                ..
            }
            | Self::Limited {
                retry_after_seconds,
                ..
            } => retry_after_seconds,
            _ => None,
        };
        if let Some(seconds) = retry_after
            && let Ok(value) = seconds.to_string().parse()
        {
            response
                .headers_mut()
                .insert(http::header::RETRY_AFTER, value);
        }
        response
    }
}

/// Result alias for handlers and domain code.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let body = ApiError::internal("dynamodb said: secret table arn").body();
        assert_eq!(body["code"], "internal_error");
        assert!(!body["error"].as_str().unwrap_or_default().contains("arn"));
    }

    #[test]
    fn validation_errors_name_every_field() {
        let err = ApiError::fields(vec![
            FieldError::new("name", "must not be empty"),
            FieldError::new("email", "is not an email address"),
        ]);
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let body = err.body();
        assert_eq!(body["details"][1]["field"], "email");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or_default()
                .starts_with("name:")
        );
    }
}
