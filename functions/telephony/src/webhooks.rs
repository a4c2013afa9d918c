//! Twilio's webhooks (a function URL, no JWT): the voice webhook of inbound calls, status
//! callbacks, `<Dial>` actions and conference events. Every request must carry a valid
//! `X-Twilio-Signature` (form and `bodySHA256` JSON variants, compared in constant time)
//! made with the auth token of the account its `AccountSid` names: one of our tenants'
//! subaccounts (which names the tenant) or our own account; anything else is a 403.
//!
//! Nothing in a callback URL is believed on Twilio's signature alone: a tenant controls
//! the TwiML of its own calls, so it can make Twilio send genuinely signed requests to any
//! URL. What our callback URLs carry (tenant, call, transfer, agent) is signed with our own
//! key ([`crate::seal`]); the tenant must be the one the account names; a report must be
//! about the leg we recorded for that call.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiError, ApiResult};

use crate::callback::{StatusCallback, is_sid};
use crate::service::Telephony;
use crate::signature::{self, SignatureError};
use crate::store::{self, Leg};
use crate::{calls, flows, transfer};

/// The webhook routes, on the function URL (`/twilio/...`).
pub fn routes() -> Router<Telephony> {
    Router::new()
        .route("/twilio/voice", post(voice))
        .route("/twilio/status", post(status))
        .route("/twilio/dial-action", post(dial_action))
        .route("/twilio/conference-status", post(conference_status))
}

/// A verified webhook: its form parameters, our callback URL's query (only when our own
/// signature on it checked out) and the tenant its account names.
struct Verified {
    params: Vec<(String, String)>,
    query: Vec<(String, String)>,
    /// The tenant of the subaccount that sent it (`None`: our own account).
    account_tenant: Option<TenantId>,
}

impl Verified {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The tenant and call our callback URL names (both required).
    fn tenant_and_call(&self) -> ApiResult<(TenantId, &str)> {
        let missing = || {
            ApiError::bad_request(
                "invalid_callback",
                "the callback URL names no tenant or call",
            )
        };
        let tenant = self.tenant()?.ok_or_else(missing)?;
        let call_id = self.query("call_id").ok_or_else(missing)?;
        Ok((tenant, call_id))
    }

    /// The tenant the (signed) query names, which must be the account's tenant.
    fn tenant(&self) -> ApiResult<Option<TenantId>> {
        let Some(raw) = self.query("tenant") else {
            return Ok(None);
        };
        let tenant = TenantId::parse(raw).map_err(|_| {
            ApiError::bad_request("bad_tenant", "the callback URL names no valid tenant")
        })?;
        if self.account_tenant.as_ref().is_some_and(|t| *t != tenant) {
            return Err(refused(
                "the callback names another tenant than its account",
            ));
        }
        Ok(Some(tenant))
    }
}

fn refused(why: &str) -> ApiError {
    ApiError::Forbidden(format!("not a valid Twilio request: {why}"))
}

/// The URLs the request may have been signed for. With `TWILIO_WEBHOOK_BASE_URL` set, only
/// that base (never a `Host` the client chose); without it, the URL rebuilt from the proxy
/// headers (`X-Forwarded-Proto`/`-Port`, `Host`).
fn candidate_urls(tel: &Telephony, uri: &Uri, headers: &HeaderMap) -> Vec<String> {
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(base) = &tel.config.webhook_base_url {
        let base_path = url::Url::parse(base)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        // A base with a path (an API Gateway stage) may or may not reach us with it.
        if !base_path.is_empty() && !path_and_query.starts_with(&base_path) {
            return vec![format!("{base}{path_and_query}")];
        }
        let origin = base.strip_suffix(&base_path).unwrap_or(base);
        return vec![format!("{origin}{path_and_query}")];
    }
    header_str("host")
        .map(|host| {
            signature::public_url(
                header_str("x-forwarded-proto"),
                host,
                header_str("x-forwarded-port"),
                path_and_query,
            )
        })
        .into_iter()
        .collect()
}

/// Checks the signature with the token of the account the request names, then our own
/// signature on the callback URL's query (if it has one).
async fn verify(
    tel: &Telephony,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Verified> {
    tel.auth_token()?;
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let given = header_str("x-twilio-signature");
    if given.is_none() {
        return Err(refused("X-Twilio-Signature is missing"));
    }
    let is_json = header_str(header::CONTENT_TYPE.as_str())
        .is_some_and(|c| c.starts_with("application/json"));
    let form = if is_json {
        Vec::new()
    } else {
        signature::form_pairs(body)
    };
    let json_params: Vec<(String, String)> = if is_json {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(body)
            .map_err(|_| ApiError::bad_request("invalid_body", "the JSON body is not an object"))?
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string()),
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    let named = |params: &[(String, String)]| {
        params
            .iter()
            .find(|(k, _)| k == "AccountSid")
            .map(|(_, v)| v.clone())
    };
    let account_sid = named(&form)
        .or_else(|| named(&json_params))
        .or_else(|| tel.account_sid().map(str::to_owned))
        .unwrap_or_default();
    let Some(owner) = tel.account_owner(&account_sid).await? else {
        return Err(refused("the request names an account that is not ours"));
    };
    let mut outcome = Err(SignatureError::Missing);
    for url in candidate_urls(tel, uri, headers) {
        let result = if is_json {
            signature::validate_json(&owner.token, &url, body, given)
        } else {
            signature::validate_form(&owner.token, &url, &form, given)
        };
        if result.is_ok() {
            outcome = Ok(());
            break;
        }
        if outcome.is_err() {
            outcome = result;
        }
    }
    if outcome.is_err() {
        return Err(refused("X-Twilio-Signature does not match"));
    }
    let mut query = uri
        .query()
        .map(|q| signature::form_pairs(q.as_bytes()))
        .unwrap_or_default();
    if !query.is_empty() {
        let sig = query
            .iter()
            .position(|(k, _)| k == "sig")
            .map(|i| query.remove(i).1);
        // Twilio appends `bodySHA256` to the URL of JSON requests: not ours to sign.
        let pairs: Vec<(&str, &str)> = query
            .iter()
            .filter(|(k, _)| k != "bodySHA256")
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let signed = sig.is_some_and(|sig| {
            tel.seal_keys()
                .is_ok_and(|k| k.verify_callback(uri.path(), &pairs, &sig))
        });
        if !signed {
            return Err(refused("the callback URL is not one we made"));
        }
    }
    Ok(Verified {
        params: if is_json { json_params } else { form },
        query,
        account_tenant: owner.tenant,
    })
}

fn xml(document: String) -> Response {
    (
        [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
        document,
    )
        .into_response()
}

/// The voice webhook: answers an inbound call from the flow of the number called.
async fn voice(
    State(tel): State<Telephony>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let hook = verify(&tel, &uri, &headers, &body).await?;
    let sid = hook
        .param("CallSid")
        .filter(|s| is_sid("CA", s))
        .ok_or_else(|| ApiError::field("CallSid", "is missing or malformed"))?;
    let to = hook
        .param("To")
        .or(hook.param("Called"))
        .ok_or_else(|| ApiError::field("To", "is missing"))?;
    let from = hook
        .param("From")
        .or(hook.param("Caller"))
        .unwrap_or("unknown");
    Ok(xml(flows::answer(
        &tel,
        hook.account_tenant.as_ref(),
        sid,
        from,
        to,
    )
    .await?))
}

/// A status callback: of the caller's leg (our call record moves, never backwards), or of
/// an agent's leg (the transfer's offer is accepted, declined or completed).
async fn status(
    State(tel): State<Telephony>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let hook = verify(&tel, &uri, &headers, &body).await?;
    let update = StatusCallback::from_form(&hook.params)
        .map_err(|e| ApiError::bad_request("invalid_callback", e.to_string()))?;
    let (tenant, call_id, leg, transfer_id, agent_id) = match (
        hook.tenant()?,
        hook.query("call_id"),
    ) {
        (Some(tenant), Some(call_id)) => (
            tenant,
            call_id.to_owned(),
            if hook.query("leg") == Some("agent") {
                Leg::Agent
            } else {
                Leg::Caller
            },
            hook.query("transfer_id").map(str::to_owned),
            hook.query("agent_id").map(str::to_owned),
        ),
        _ => match store::sid_owner(&tel.app, &update.call_sid)
            .await?
            .filter(|o| {
                hook.account_tenant
                    .as_ref()
                    .is_none_or(|t| t.as_str() == o.tenant_id)
            }) {
            Some(owner) => (
                owner.tenant()?,
                owner.call_id,
                owner.leg,
                owner.transfer_id,
                owner.agent_id,
            ),
            None => {
                tracing::info!(call_sid = %update.call_sid, "status of a call we do not know; ignored");
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
        },
    };
    match (leg, transfer_id, agent_id) {
        (Leg::Agent, Some(transfer_id), Some(agent_id)) => {
            transfer::on_agent_leg(&tel, &tenant, &transfer_id, &agent_id, &update).await?;
            if update.status.is_final() {
                store::clear_leg_check(&tel.app, &update.call_sid).await?;
            }
        }
        (Leg::Agent, ..) => {
            return Err(ApiError::bad_request(
                "invalid_callback",
                "an agent leg names no transfer",
            ));
        }
        (Leg::Caller, ..) => {
            calls::apply_status(&tel, &tenant, &call_id, &update).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The end of a transfer's `<Dial>` (cold dial or conference): what the caller hears next.
async fn dial_action(
    State(tel): State<Telephony>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let hook = verify(&tel, &uri, &headers, &body).await?;
    let (tenant, call_id) = hook.tenant_and_call()?;
    let kind = hook.query("kind").unwrap_or("cold");
    Ok(xml(transfer::after_dial(
        &tel,
        &tenant,
        call_id,
        kind,
        hook.param("DialCallStatus"),
        hook.param("DialCallDuration").and_then(|d| d.parse().ok()),
    )
    .await?))
}

/// A conference event of a transfer.
async fn conference_status(
    State(tel): State<Telephony>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let hook = verify(&tel, &uri, &headers, &body).await?;
    let (tenant, call_id) = hook.tenant_and_call()?;
    transfer::on_conference(&tel, &tenant, call_id, &hook.params).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
