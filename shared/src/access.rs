//! The one access table of the API: which scope an API key needs for a route, and what a
//! read-only viewer may do. Every function applies it through the [`crate::AuthUser`]
//! extractor (REST) and the stream authenticators (SSE, WebSocket), so a route cannot be
//! added without falling under it: a route this table does not name is closed to API keys.

use std::fmt;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::auth::{AuthUser, Role};
use crate::error::ApiError;

/// What an API key may be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Read calls, call logs, live calls and their events.
    #[serde(rename = "calls:read")]
    CallsRead,
    /// Place, end, hold and mute calls.
    #[serde(rename = "calls:write")]
    CallsWrite,
    /// Read transfers, queues and transfer analytics.
    #[serde(rename = "transfers:read")]
    TransfersRead,
    /// Request, accept, decline, complete and cancel transfers.
    #[serde(rename = "transfers:write")]
    TransfersWrite,
    /// Read contacts, lists, imports and do-not-call entries.
    #[serde(rename = "contacts:read")]
    ContactsRead,
    /// Create, change and import contacts and do-not-call entries.
    #[serde(rename = "contacts:write")]
    ContactsWrite,
    /// Read agents.
    #[serde(rename = "agents:read")]
    AgentsRead,
    /// Register agents and change their status.
    #[serde(rename = "agents:write")]
    AgentsWrite,
    /// Read departments.
    #[serde(rename = "departments:read")]
    DepartmentsRead,
    /// Read the tenant's phone numbers.
    #[serde(rename = "numbers:read")]
    NumbersRead,
    /// Synthesize speech and read voices.
    #[serde(rename = "tts:write")]
    TtsWrite,
    /// Read analytics.
    #[serde(rename = "analytics:read")]
    AnalyticsRead,
    /// Read campaigns (reserved for the campaigns API).
    #[serde(rename = "campaigns:read")]
    CampaignsRead,
    /// Change campaigns (reserved for the campaigns API).
    #[serde(rename = "campaigns:write")]
    CampaignsWrite,
}

impl Scope {
    /// Every scope, in documentation order.
    pub const ALL: [Scope; 14] = [
        Self::CallsRead,
        Self::CallsWrite,
        Self::TransfersRead,
        Self::TransfersWrite,
        Self::ContactsRead,
        Self::ContactsWrite,
        Self::AgentsRead,
        Self::AgentsWrite,
        Self::DepartmentsRead,
        Self::NumbersRead,
        Self::TtsWrite,
        Self::AnalyticsRead,
        Self::CampaignsRead,
        Self::CampaignsWrite,
    ];

    /// The scope's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallsRead => "calls:read",
            Self::CallsWrite => "calls:write",
            Self::TransfersRead => "transfers:read",
            Self::TransfersWrite => "transfers:write",
            Self::ContactsRead => "contacts:read",
            Self::ContactsWrite => "contacts:write",
            Self::AgentsRead => "agents:read",
            Self::AgentsWrite => "agents:write",
            Self::DepartmentsRead => "departments:read",
            Self::NumbersRead => "numbers:read",
            Self::TtsWrite => "tts:write",
            Self::AnalyticsRead => "analytics:read",
            Self::CampaignsRead => "campaigns:read",
            Self::CampaignsWrite => "campaigns:write",
        }
    }

    /// Parses a scope name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The write scope implies the read scope of the same resource.
    fn satisfies(self, needed: Scope) -> bool {
        self == needed
            || matches!(
                (self, needed),
                (Self::CallsWrite, Self::CallsRead)
                    | (Self::TransfersWrite, Self::TransfersRead)
                    | (Self::ContactsWrite, Self::ContactsRead)
                    | (Self::AgentsWrite, Self::AgentsRead)
                    | (Self::CampaignsWrite, Self::CampaignsRead)
            )
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `method` only reads.
pub fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The scope an API key needs for `method` on the route pattern `route` (as axum matched
/// it, e.g. `/api/calls/{call_id}/end`); `None`: no API key may call it (accounts,
/// organisations, keys, admin routes, and every route this table does not name).
pub fn scope_for(method: &Method, route: &str) -> Option<Scope> {
    let path = route.strip_prefix("/api").unwrap_or(route);
    let path = path.strip_prefix("/v1").unwrap_or(path);
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    let last = path.rsplit('/').next().unwrap_or("");
    let read = is_read(method);
    let pick = |r: Scope, w: Scope| Some(if read { r } else { w });
    // Handing a call to a human and a department's queue are transfer operations, whatever
    // resource their path starts with.
    if last == "transfer" || last == "transfer-history" {
        return pick(Scope::TransfersRead, Scope::TransfersWrite);
    }
    if first == "departments" && last == "queue" {
        return read.then_some(Scope::TransfersRead);
    }
    match first {
        "calls" | "call" | "call-logs" | "telephony" => pick(Scope::CallsRead, Scope::CallsWrite),
        "ws" => read.then_some(Scope::TransfersRead),
        "transfers" | "transfer" | "queue" => pick(Scope::TransfersRead, Scope::TransfersWrite),
        "contacts" | "contact-lists" | "uploads" | "dnc-lists" | "dnc" => {
            pick(Scope::ContactsRead, Scope::ContactsWrite)
        }
        "agents" => pick(Scope::AgentsRead, Scope::AgentsWrite),
        "departments" if read => Some(Scope::DepartmentsRead),
        "numbers" if read => Some(Scope::NumbersRead),
        "synthesize" | "stream" | "voices" | "tiers" | "usage" => Some(Scope::TtsWrite),
        "analytics" if read => Some(Scope::AnalyticsRead),
        _ => None,
    }
}

/// Routes a viewer may call with a writing method: their own sign-in, profile, password,
/// two-factor and sessions.
fn viewer_may_write(route: &str) -> bool {
    route.starts_with("/auth/")
}

/// Applies the access table to an authenticated caller of `method` `route`: a viewer only
/// reads (their own account aside); an API key only reaches routes its scopes name.
pub fn check(user: &AuthUser, method: &Method, route: &str) -> Result<(), ApiError> {
    if user.role == Role::Viewer && !is_read(method) && !viewer_may_write(route) {
        return Err(ApiError::Forbidden(
            "the viewer role is read-only: it cannot change anything".into(),
        ));
    }
    if let Some(granted) = &user.scopes {
        let Some(needed) = scope_for(method, route) else {
            return Err(ApiError::Refused {
                code: "insufficient_scope",
                message: "API keys cannot call this route; sign in as a user".into(),
            });
        };
        if !granted.iter().any(|g| g.satisfies(needed)) {
            return Err(ApiError::Refused {
                code: "insufficient_scope",
                message: format!("this API key lacks the scope {needed}"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::ids::TenantId;

    fn key(scopes: &[Scope]) -> AuthUser {
        AuthUser {
            user_id: "key_1".into(),
            tenant: TenantId::parse("acme").unwrap(),
            role: Role::Supervisor,
            scopes: Some(scopes.to_vec().into()),
        }
    }

    #[test]
    fn routes_map_to_scopes() {
        assert_eq!(
            scope_for(&Method::POST, "/api/calls/make"),
            Some(Scope::CallsWrite)
        );
        assert_eq!(
            scope_for(&Method::GET, "/api/transfers/{id}"),
            Some(Scope::TransfersRead)
        );
        assert_eq!(
            scope_for(&Method::POST, "/v1/contacts"),
            Some(Scope::ContactsWrite)
        );
        assert_eq!(scope_for(&Method::POST, "/api/departments"), None);
        assert_eq!(scope_for(&Method::GET, "/auth/me"), None);
        assert_eq!(scope_for(&Method::POST, "/api/numbers/buy"), None);
        assert_eq!(
            scope_for(&Method::POST, "/api/calls/transfer"),
            Some(Scope::TransfersWrite)
        );
        assert_eq!(
            scope_for(&Method::POST, "/api/calls/{call_id}/transfer"),
            Some(Scope::TransfersWrite)
        );
        assert_eq!(
            scope_for(&Method::GET, "/api/departments/{id}/queue"),
            Some(Scope::TransfersRead)
        );
        assert_eq!(
            scope_for(&Method::GET, "/call/{call_id}/transfer-history"),
            Some(Scope::TransfersRead)
        );
    }

    #[test]
    fn keys_need_their_scope_and_viewers_only_read() {
        let k = key(&[Scope::CallsWrite]);
        assert!(check(&k, &Method::GET, "/api/calls/{call_id}/status").is_ok());
        assert!(check(&k, &Method::POST, "/api/transfers/{id}/accept").is_err());
        assert!(check(&k, &Method::GET, "/settings/api-keys").is_err());
        let viewer = AuthUser {
            role: Role::Viewer,
            scopes: None,
            ..k
        };
        assert!(check(&viewer, &Method::GET, "/api/departments").is_ok());
        assert!(check(&viewer, &Method::POST, "/api/departments").is_err());
        assert!(check(&viewer, &Method::PUT, "/auth/profile").is_ok());
    }
}
