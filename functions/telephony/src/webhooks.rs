//! Twilio's webhooks (a function URL, no JWT): the voice webhook of inbound calls, status
//! callbacks, `<Dial>` actions and conference events. Every request must carry a valid
//! `X-Twilio-Signature` over the public URL it was sent to (form and `bodySHA256` JSON
//! variants, compared in constant time) and name our account; anything else is a 403.
//! Query parameters of our callback URLs (tenant, call) are trusted only because the
//! signature covers them.

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

/// A verified webhook: its form parameters and our callback URL's query.
struct Verified {
    params: Vec<(String, String)>,
    query: Vec<(String, String)>,
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

    fn tenant(&self) -> ApiResult<Option<TenantId>> {
        self.query("tenant")
            .map(|t| {
                TenantId::parse(t).map_err(|_| {
                    ApiError::bad_request("bad_tenant", "the callback URL names no valid tenant")
                })
            })
            .transpose()
    }
}

fn refused(why: &str) -> ApiError {
    ApiError::Forbidden(format!("not a valid Twilio request: {why}"))
}

/// Checks the signature against every URL the request may have been sent to: the
/// configured public base + the path and query received, and the URL rebuilt from the
/// proxy headers (`X-Forwarded-Proto`/`-Port`, `Host`).
fn verify(tel: &Telephony, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> ApiResult<Verified> {
    let token = tel.auth_token()?;
    let path_and_query = uri.path_and_query().map_or("/", |p| p.as_str());
    let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut candidates = Vec::new();
    if let Some(base) = &tel.config.webhook_base_url {
        let base_path = url::Url::parse(base)
            .map(|u| u.path().trim_end_matches('/').to_owned())
            .unwrap_or_default();
        // A base with a path (an API Gateway stage) may or may not reach us with it.
        if !base_path.is_empty() && !path_and_query.starts_with(&base_path) {
            candidates.push(format!("{base}{path_and_query}"));
        } else {
            let origin = base.strip_suffix(&base_path).unwrap_or(base);
            candidates.push(format!("{origin}{path_and_query}"));
        }
    }
    if let Some(host) = header_str("host") {
        candidates.push(signature::public_url(
            header_str("x-forwarded-proto"),
            host,
            header_str("x-forwarded-port"),
            path_and_query,
        ));
    }
    let given = header_str("x-twilio-signature");
    let is_json = header_str(header::CONTENT_TYPE.as_str())
        .is_some_and(|c| c.starts_with("application/json"));
    let params = if is_json {
        Vec::new()
    } else {
        signature::form_pairs(body)
    };
    let mut outcome = Err(SignatureError::Missing);
    for url in &candidates {
        let result = if is_json {
            signature::validate_json(token, url, body, given)
        } else {
            signature::validate_form(token, url, &params, given)
        };
        if result.is_ok() {
            outcome = Ok(());
            break;
        }
        if outcome.is_err() {
            outcome = result;
        }
    }
    match outcome {
        Ok(()) => {}
        Err(SignatureError::Missing) if given.is_none() => {
            return Err(refused("X-Twilio-Signature is missing"));
        }
        Err(_) => return Err(refused("X-Twilio-Signature does not match")),
    }
    let params = if is_json {
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
        params
    };
    let query = uri
        .query()
        .map(|q| signature::form_pairs(q.as_bytes()))
        .unwrap_or_default();
    let verified = Verified { params, query };
    if let (Some(ours), Some(theirs)) = (tel.account_sid(), verified.param("AccountSid"))
        && ours != theirs
    {
        return Err(refused("the request names another account"));
    }
    Ok(verified)
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
    let hook = verify(&tel, &uri, &headers, &body)?;
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
    Ok(xml(flows::answer(&tel, sid, from, to).await?))
}

/// A status callback: of the caller's leg (our call record moves, never backwards), or of
/// an agent's leg (the transfer's offer is accepted, declined or completed).
async fn status(
    State(tel): State<Telephony>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let hook = verify(&tel, &uri, &headers, &body)?;
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
        _ => match store::sid_owner(&tel.app, &update.call_sid).await? {
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
    let hook = verify(&tel, &uri, &headers, &body)?;
    let (tenant, call_id) = hook.tenant_and_call()?;
    let kind = hook.query("kind").unwrap_or("cold");
    Ok(xml(transfer::after_dial(
        &tel,
        &tenant,
        call_id,
        kind,
        hook.param("DialCallStatus"),
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
    let hook = verify(&tel, &uri, &headers, &body)?;
    let (tenant, call_id) = hook.tenant_and_call()?;
    transfer::on_conference(&tel, &tenant, call_id, &hook.params).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
