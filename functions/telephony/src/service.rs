//! The telephony service: its settings, the Twilio client (absent without credentials),
//! the TTS service for spoken messages, and how Twilio's failures become our answers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use vocelio_shared::{ApiError, ApiResult, AppState};

use crate::client::{TwilioClient, TwilioFailure};
use crate::config::TelephonyConfig;
use crate::twilio_error::Blame;

/// The telephony service; cheap to clone.
#[derive(Clone)]
pub struct Telephony {
    /// The shared state (table, auth, prices).
    pub app: AppState,
    pub config: Arc<TelephonyConfig>,
    client: Option<TwilioClient>,
    tts: Option<tts::Tts>,
    /// Tenants' Twilio accounts seen by this instance, so a warm function reads and opens
    /// each one once.
    accounts: Arc<Mutex<AccountCache>>,
}

impl std::fmt::Debug for Telephony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telephony")
            .field("twilio", &self.client)
            .finish_non_exhaustive()
    }
}

/// Tenant → account, and account SID → tenant (what a webhook looks up).
#[derive(Default)]
struct AccountCache {
    by_tenant: HashMap<String, crate::accounts::TenantAccount>,
    by_sid: HashMap<String, String>,
}

/// 503 naming what is missing.
fn not_configured(what: &str) -> ApiError {
    ApiError::Upstream {
        status: StatusCode::SERVICE_UNAVAILABLE,
        code: "telephony_not_configured",
        message: format!("telephony is not configured: {what}"),
        retry_after_seconds: None,
    }
}

impl Telephony {
    /// The service over `app` with `config`; `tts` speaks messages with cloud or local
    /// voices (without it, messages are `<Say>`).
    pub fn new(
        app: AppState,
        config: TelephonyConfig,
        tts: Option<tts::Tts>,
    ) -> Result<Self, String> {
        let client = match &config.credentials {
            Some(c) => Some(
                TwilioClient::new(
                    &config.api_base,
                    &c.account_sid,
                    c.auth_token.expose(),
                    config.timeout,
                )
                .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        Ok(Self {
            app,
            config: Arc::new(config),
            client,
            tts,
            accounts: Arc::default(),
        })
    }

    pub(crate) fn cached_account(
        &self,
        tenant: &vocelio_shared::ids::TenantId,
    ) -> Option<crate::accounts::TenantAccount> {
        self.accounts
            .lock()
            .ok()
            .and_then(|m| m.by_tenant.get(tenant.as_str()).cloned())
    }

    pub(crate) fn cache_account(
        &self,
        tenant: &vocelio_shared::ids::TenantId,
        account: &crate::accounts::TenantAccount,
    ) {
        if let Ok(mut m) = self.accounts.lock() {
            if m.by_tenant.len() > 10_000 {
                *m = AccountCache::default();
            }
            m.by_sid
                .insert(account.sid.clone(), tenant.as_str().to_owned());
            m.by_tenant
                .insert(tenant.as_str().to_owned(), account.clone());
        }
    }

    pub(crate) fn cached_owner(&self, account_sid: &str) -> Option<crate::accounts::AccountOwner> {
        let m = self.accounts.lock().ok()?;
        let tenant = m.by_sid.get(account_sid)?;
        let account = m.by_tenant.get(tenant)?;
        Some(crate::accounts::AccountOwner {
            tenant: Some(vocelio_shared::ids::TenantId::parse(tenant).ok()?),
            token: account.token().to_owned(),
        })
    }

    /// The derived keys (callback signatures, client identities, sealed tokens).
    pub fn seal_keys(&self) -> ApiResult<&crate::seal::Keys> {
        self.config
            .keys
            .as_ref()
            .ok_or_else(|| not_configured("set TELEPHONY_SECRETS_KEY"))
    }

    /// The Twilio Client identity of `agent_id` of `tenant` (see [`crate::seal`]).
    pub fn client_identity(
        &self,
        tenant: &vocelio_shared::ids::TenantId,
        agent_id: &str,
    ) -> ApiResult<String> {
        Ok(self.seal_keys()?.client_identity(tenant.as_str(), agent_id))
    }

    /// The Twilio client: 503 `telephony_not_configured` without credentials or without the
    /// public webhook URL Twilio must call back.
    pub fn twilio(&self) -> ApiResult<&TwilioClient> {
        let client = self
            .client
            .as_ref()
            .ok_or_else(|| not_configured("set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"))?;
        if self.config.webhook_base_url.is_none() {
            return Err(not_configured(
                "set TWILIO_WEBHOOK_BASE_URL (where Twilio reaches our webhooks)",
            ));
        }
        Ok(client)
    }

    /// The auth token that signs webhooks (503 without credentials).
    pub fn auth_token(&self) -> ApiResult<&str> {
        self.config
            .credentials
            .as_ref()
            .map(|c| c.auth_token.expose())
            .ok_or_else(|| not_configured("set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"))
    }

    /// Our account SID (webhooks from another account are refused).
    pub fn account_sid(&self) -> Option<&str> {
        self.config
            .credentials
            .as_ref()
            .map(|c| c.account_sid.as_str())
    }

    /// The TTS service, when it is wired in.
    pub fn tts(&self) -> Option<&tts::Tts> {
        self.tts.as_ref()
    }

    /// The public URL of our webhook `path` with `query` (Twilio signs exactly this URL).
    /// A query is signed with our own key (`sig`): Twilio's signature proves only that
    /// Twilio sent the request, not that we wrote the URL (a tenant's TwiML can name any
    /// callback URL), so what the query says is believed only with our signature.
    pub fn webhook_url(&self, path: &str, query: &[(&str, &str)]) -> ApiResult<String> {
        let base = self.config.webhook_base_url.as_deref().ok_or_else(|| {
            not_configured("set TWILIO_WEBHOOK_BASE_URL (where Twilio reaches our webhooks)")
        })?;
        let mut url = format!("{base}{path}");
        if !query.is_empty() {
            let signature = self.seal_keys()?.sign_callback(path, query);
            url.push('?');
            url.push_str(
                &form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .append_pair("sig", &signature)
                    .finish(),
            );
        }
        Ok(url)
    }
}

/// Our answer to a failed Twilio request: the caller's 4xx (with Twilio's code and message)
/// for what they sent wrong, 502 for Twilio's or our account's faults, 429 with
/// `Retry-After` when Twilio rate limits, 503 when it does not answer.
pub fn twilio_error(failure: TwilioFailure) -> ApiError {
    match failure {
        TwilioFailure::Invalid { code, message } => ApiError::Upstream {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "twilio_rejected",
            message: match code {
                Some(code) => format!("Twilio would refuse this ({code}): {message}"),
                None => format!("Twilio would refuse this: {message}"),
            },
            retry_after_seconds: None,
        },
        TwilioFailure::Unreachable(detail) => {
            tracing::warn!(%detail, "Twilio unreachable");
            ApiError::Upstream {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "twilio_unavailable",
                message: "Twilio did not answer; retry shortly".into(),
                retry_after_seconds: Some(2),
            }
        }
        TwilioFailure::Twilio(error) => {
            let code = error.code.map(|c| format!(" ({c})")).unwrap_or_default();
            let more = error
                .more_info
                .as_deref()
                .map(|m| format!(" See {m}"))
                .unwrap_or_default();
            match error.blame() {
                Blame::Caller => ApiError::Upstream {
                    status: if error.status == 404 {
                        StatusCode::NOT_FOUND
                    } else {
                        StatusCode::UNPROCESSABLE_ENTITY
                    },
                    code: "twilio_rejected",
                    message: format!(
                        "Twilio refused the request{code}: {}.{more}",
                        error.message.trim_end_matches('.')
                    ),
                    retry_after_seconds: None,
                },
                Blame::Account => ApiError::Upstream {
                    status: StatusCode::BAD_GATEWAY,
                    code: "twilio_auth_failed",
                    message: format!(
                        "Twilio refused our credentials{code}; check TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN"
                    ),
                    retry_after_seconds: None,
                },
                Blame::RateLimited => ApiError::Upstream {
                    status: StatusCode::TOO_MANY_REQUESTS,
                    code: "twilio_rate_limited",
                    message: format!("Twilio is rate limiting us{code}; retry later"),
                    retry_after_seconds: Some(1),
                },
                Blame::Twilio => {
                    tracing::warn!(status = error.status, message = %error.message, "Twilio failed");
                    ApiError::Upstream {
                        status: StatusCode::BAD_GATEWAY,
                        code: "twilio_failed",
                        message: format!(
                            "Twilio failed{code} (HTTP {}); retry shortly",
                            error.status
                        ),
                        retry_after_seconds: None,
                    }
                }
            }
        }
    }
}
