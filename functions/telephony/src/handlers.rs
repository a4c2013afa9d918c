//! The JSON API of the telephony adapter (JWT-authenticated): thin handlers over
//! [`crate::calls`], [`crate::transfer`] and [`crate::flows`].

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use transfers::engine::Engine;
use vocelio_shared::auth::{Admins, Authorized, Managers};
use vocelio_shared::extract::{IdempotencyKey, JsonBody, OptionalJsonBody, QueryParams};
use vocelio_shared::{ApiError, ApiResult, AppState, AuthUser, clock};

use crate::calls::{self, MakeCall, ParticipantChange};
use crate::flows::{self, RegisterFlow};
use crate::service::Telephony;
use crate::transfer;

type JsonResult = ApiResult<Json<Value>>;

/// `POST /api/calls/make` → 201 `{call_sid, call_id, status, to, from}`.
pub async fn make_call(
    Extension(tel): Extension<Telephony>,
    user: AuthUser,
    IdempotencyKey(key): IdempotencyKey,
    JsonBody(body): JsonBody<MakeCall>,
) -> ApiResult<Response> {
    let (status, body, replayed) = calls::make(&tel, &user, body, key.as_deref()).await?;
    let mut response = (status, Json(body)).into_response();
    if replayed {
        response.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// `GET /api/calls/{call_sid}/status` (a `call_id` works too).
pub async fn call_status(
    Extension(tel): Extension<Telephony>,
    user: AuthUser,
    Path(id): Path<String>,
) -> JsonResult {
    tel.twilio()?;
    Ok(Json(calls::status(&tel, &user, &id).await?))
}

/// `POST /api/calls/{call_sid}/end` and `DELETE /api/calls/{call_sid}`.
pub async fn end_call(
    Extension(tel): Extension<Telephony>,
    user: AuthUser,
    Path(id): Path<String>,
) -> JsonResult {
    let view = calls::end(&tel, &user, &id).await?;
    Ok(Json(
        json!({ "success": true, "call": view, "status": view["status"] }),
    ))
}

/// `POST /api/calls/{call_sid}/mute` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MuteBody {
    muted: bool,
}

/// `POST /api/calls/{call_sid}/hold` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldBody {
    hold: bool,
}

/// `POST /api/calls/{call_sid}/mute` `{muted}`.
pub async fn mute(
    Extension(tel): Extension<Telephony>,
    user: AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<MuteBody>,
) -> JsonResult {
    let view = calls::participant(&tel, &user, &id, ParticipantChange::Mute(body.muted)).await?;
    Ok(Json(view))
}

/// `POST /api/calls/{call_sid}/hold` `{hold}`.
pub async fn hold(
    Extension(tel): Extension<Telephony>,
    user: AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<HoldBody>,
) -> JsonResult {
    let view = calls::participant(&tel, &user, &id, ParticipantChange::Hold(body.hold)).await?;
    Ok(Json(view))
}

/// `POST /api/calls/{call_id}/transfer` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferBody {
    transfer_to: String,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    mode: Option<String>,
}

/// `POST /api/calls/{call_id}/transfer` `{transfer_to, context, mode?}` → 201.
pub async fn transfer_call(
    Extension(tel): Extension<Telephony>,
    user: AuthUser,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<TransferBody>,
) -> ApiResult<Response> {
    let out = transfer::transfer(
        &tel,
        &user,
        &id,
        &body.transfer_to,
        body.context,
        body.mode.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// `POST /calls/transfer` body (the guide's).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuideTransferBody {
    call_sid: String,
    transfer_to: String,
    #[serde(default)]
    context: Option<String>,
    #[serde(default)]
    mode: Option<String>,
}

/// `POST /calls/transfer` `{call_sid, transfer_to}` → 201.
pub async fn transfer_guide(
    Extension(tel): Extension<Telephony>,
    user: AuthUser,
    JsonBody(body): JsonBody<GuideTransferBody>,
) -> ApiResult<Response> {
    let out = transfer::transfer(
        &tel,
        &user,
        &body.call_sid,
        &body.transfer_to,
        body.context,
        body.mode.as_deref(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// `GET /admin/active-calls` → `{active_calls: [{call_sid, call_id, phone_number, flow_id,
/// duration, status}]}`.
pub async fn active_calls(
    State(state): State<AppState>,
    Authorized(user, _): Authorized<Managers>,
) -> JsonResult {
    let calls = Engine::new(&state, &user.tenant)
        .store
        .active_calls()
        .await?;
    let now = clock::now();
    let rows: Vec<Value> = calls
        .iter()
        .map(|c| {
            let view = calls::status_view(c, now);
            json!({
                "call_sid": c.call_sid,
                "call_id": c.call_id,
                "phone_number": c.caller_number,
                "flow_id": c.current_flow,
                "duration": c.live_duration(now),
                "status": view["status"],
                "call_status": c.status,
                "direction": view["direction"],
                "start_time": c.start_time,
            })
        })
        .collect();
    Ok(Json(json!({ "active_calls": rows, "total": rows.len() })))
}

/// `POST /admin/register-flow` (admins).
pub async fn register_flow(
    Extension(tel): Extension<Telephony>,
    Authorized(user, _): Authorized<Admins>,
    JsonBody(body): JsonBody<RegisterFlow>,
) -> ApiResult<Response> {
    let out = flows::register(&tel, &user, body).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// `{phone_number}` of an unregistration, in the body or the query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumberParam {
    #[serde(default)]
    phone_number: Option<String>,
}

/// `POST` or `DELETE /admin/unregister-flow` `{phone_number}` (or `?phone_number=`).
pub async fn unregister_flow(
    Extension(tel): Extension<Telephony>,
    Authorized(user, _): Authorized<Admins>,
    QueryParams(query): QueryParams<NumberParam>,
    OptionalJsonBody(body): OptionalJsonBody<NumberParam>,
) -> JsonResult {
    let number = body
        .and_then(|b| b.phone_number)
        .or(query.phone_number)
        .ok_or_else(|| ApiError::field("phone_number", "is required (in the body or the query)"))?;
    Ok(Json(flows::unregister(&tel, &user, &number).await?))
}

/// `GET /api/numbers/search?country=&area_code=&contains=&type=` (admins, supervisors).
pub async fn search_numbers(
    Extension(tel): Extension<Telephony>,
    Authorized(user, _): Authorized<Managers>,
    QueryParams(query): QueryParams<crate::numbers::SearchQuery>,
) -> JsonResult {
    Ok(Json(
        crate::numbers::search(&tel, &user.tenant, query).await?,
    ))
}

/// `POST /api/numbers/buy {phone_number, friendly_name}` (admins) → 201 `{sid, ...}`.
pub async fn buy_number(
    Extension(tel): Extension<Telephony>,
    Authorized(user, _): Authorized<Admins>,
    JsonBody(body): JsonBody<crate::numbers::BuyBody>,
) -> ApiResult<Response> {
    let out = crate::numbers::buy(&tel, &user, body).await?;
    let status = if out["already_owned"] == true {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Json(out)).into_response())
}

/// `GET /api/numbers` and `GET /numbers` → `{numbers: [...]}`.
pub async fn list_numbers(Extension(tel): Extension<Telephony>, user: AuthUser) -> JsonResult {
    let numbers: Vec<Value> = crate::numbers::list(&tel, &user.tenant)
        .await?
        .iter()
        .map(crate::numbers::OwnedNumber::view)
        .collect();
    Ok(Json(json!({ "numbers": numbers, "total": numbers.len() })))
}

/// `DELETE /api/numbers/{sid}` (admins): released at Twilio; refused while a flow uses it.
pub async fn release_number(
    Extension(tel): Extension<Telephony>,
    Authorized(user, _): Authorized<Admins>,
    Path(sid): Path<String>,
) -> JsonResult {
    tel.twilio()?;
    Ok(Json(
        crate::numbers::release(&tel, &user.tenant, &sid).await?,
    ))
}

/// `GET /api/telephony/policy` (admins, supervisors): who may dial what, the quotas and
/// today's use.
pub async fn get_policy(
    Extension(tel): Extension<Telephony>,
    Authorized(user, _): Authorized<Managers>,
) -> JsonResult {
    let policy = tel.dial_policy(&user.tenant).await?;
    Ok(Json(tel.policy_view(&user.tenant, &policy).await?))
}

/// `PUT /api/telephony/policy {allowed_countries?, agents_may_dial}` (admins).
pub async fn put_policy(
    Extension(tel): Extension<Telephony>,
    Authorized(user, _): Authorized<Admins>,
    JsonBody(body): JsonBody<crate::policy::PolicyBody>,
) -> JsonResult {
    Ok(Json(tel.set_dial_policy(&user.tenant, body.into()).await?))
}

/// `GET /api/telephony/identity`: the caller's own Twilio Client identity (what their
/// softphone registers as; transfers ring it).
pub async fn identity(Extension(tel): Extension<Telephony>, user: AuthUser) -> JsonResult {
    Ok(Json(json!({
        "identity": tel.client_identity(&user.tenant, &user.user_id)?,
        "agent_id": user.user_id,
    })))
}
