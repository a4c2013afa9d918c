//! The telephony adapter's own items: which tenant and call a Twilio `CallSid` belongs to,
//! call flows and the numbers they answer, and the once-only markers of transfer legs.
//! Calls themselves are the transfer service's records ([`transfers::model::Call`]).

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use vocelio_shared::dynamo::{Item, from_record, record_item, s, sdk_error};
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiError, ApiResult, AppState, keys};

/// Which leg of our call a Twilio call is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Leg {
    /// The customer's call (outbound or inbound).
    Caller,
    /// An agent's leg dialled into a transfer's conference.
    Agent,
}

/// A `CallSid`'s owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SidOwner {
    pub tenant_id: String,
    pub call_id: String,
    pub leg: Leg,
    #[serde(default)]
    pub transfer_id: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
}

impl SidOwner {
    /// The owner of a customer's leg: call `call_id` of `tenant`.
    pub fn caller(tenant: &TenantId, call_id: &str) -> Self {
        Self {
            tenant_id: tenant.as_str().to_owned(),
            call_id: call_id.to_owned(),
            leg: Leg::Caller,
            transfer_id: None,
            agent_id: None,
        }
    }

    /// The owner's tenant.
    pub fn tenant(&self) -> ApiResult<TenantId> {
        TenantId::parse(&self.tenant_id).map_err(|_| ApiError::internal("bad tenant on a SID"))
    }
}

/// A call flow: what answers calls to its numbers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub flow_id: String,
    pub name: Option<String>,
    /// Where Twilio is sent for the flow's TwiML (the AI agent's webhook).
    pub webhook_url: Option<String>,
    /// Spoken when the flow has no webhook.
    pub greeting: Option<String>,
    /// The `<Say>` voice of the greeting.
    pub voice: Option<String>,
    pub phone_numbers: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A number's owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NumberOwner {
    pub tenant_id: String,
    /// The flow that answers it (none: owned, answered by the default greeting).
    #[serde(default)]
    pub flow_id: Option<String>,
    pub phone_number: String,
    /// Twilio's `PN…` of a number bought through us (absent on claims made before numbers
    /// were bought through the API).
    #[serde(default)]
    pub number_sid: Option<String>,
}

pub(crate) async fn get(state: &AppState, pk: String, sk: &str) -> ApiResult<Option<Item>> {
    let out = state
        .db
        .get_item()
        .table_name(state.table())
        .key(keys::PK, s(pk))
        .key(keys::SK, s(sk))
        .consistent_read(true)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(out.item)
}

pub(crate) fn put(
    state: &AppState,
    item: Item,
    condition: Option<&str>,
) -> ApiResult<TransactWriteItem> {
    let put = Put::builder()
        .table_name(state.table())
        .set_item(Some(item))
        .set_condition_expression(condition.map(str::to_owned))
        .build()
        .map_err(ApiError::internal)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// The owner of `call_sid`, if it is one of ours.
pub async fn sid_owner(state: &AppState, call_sid: &str) -> ApiResult<Option<SidOwner>> {
    get(state, keys::carrier_call_pk(call_sid), keys::OWNER_SK)
        .await?
        .map(from_record)
        .transpose()
}

fn owner_item(call_sid: &str, owner: &SidOwner) -> ApiResult<Item> {
    record_item(
        owner,
        vec![
            (keys::PK, keys::carrier_call_pk(call_sid)),
            (keys::SK, keys::OWNER_SK.to_owned()),
            (keys::ENTITY, "carrier_call".to_owned()),
        ],
    )
}

/// Records `owner` of `call_sid` (the same content every time: safe to repeat).
pub fn put_sid_owner(
    state: &AppState,
    call_sid: &str,
    owner: &SidOwner,
) -> ApiResult<TransactWriteItem> {
    put(state, owner_item(call_sid, owner)?, None)
}

/// Records `owner` of an agent's leg `call_sid`, with its reconciler check due in
/// `check_seconds` (see [`crate::reconcile`]).
pub fn put_agent_leg_owner(
    state: &AppState,
    call_sid: &str,
    owner: &SidOwner,
    check_seconds: u64,
) -> ApiResult<TransactWriteItem> {
    let mut item = owner_item(call_sid, owner)?;
    item.extend(crate::reconcile::check_attributes(check_seconds, call_sid));
    put(state, item, None)
}

/// Takes `call_sid` out of the reconciler's checks (its final report was applied).
pub async fn clear_leg_check(state: &AppState, call_sid: &str) -> ApiResult<()> {
    let result = state
        .db
        .update_item()
        .table_name(state.table())
        .key(keys::PK, s(keys::carrier_call_pk(call_sid)))
        .key(keys::SK, s(keys::OWNER_SK))
        .update_expression("REMOVE GSI3PK, GSI3SK")
        .condition_expression("attribute_exists(PK)")
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(())
        }
        Err(e) => Err(sdk_error(e)),
    }
}

/// Makes `call_sid`'s check due again in `LEG_CHECK_SECONDS`.
pub async fn push_leg_check(tel: &crate::Telephony, call_sid: &str) -> ApiResult<()> {
    let [(_, pk), (_, sk)] =
        crate::reconcile::check_attributes(tel.config.leg_check_seconds, call_sid);
    tel.app
        .db
        .update_item()
        .table_name(tel.app.table())
        .key(keys::PK, s(keys::carrier_call_pk(call_sid)))
        .key(keys::SK, s(keys::OWNER_SK))
        .update_expression("SET GSI3PK = :pk, GSI3SK = :sk")
        .condition_expression("attribute_exists(PK)")
        .expression_attribute_values(":pk", pk)
        .expression_attribute_values(":sk", sk)
        .send()
        .await
        .map(|_| ())
        .or_else(|e| {
            if e.as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception())
            {
                Ok(())
            } else {
                Err(sdk_error(e))
            }
        })
}

/// The flow `flow_id` of `tenant`.
pub async fn flow(state: &AppState, tenant: &TenantId, flow_id: &str) -> ApiResult<Option<Flow>> {
    get(state, keys::flows_pk(tenant), &keys::flow_sk(flow_id))
        .await?
        .map(from_record)
        .transpose()
}

/// Who answers `e164`.
pub async fn number_owner(state: &AppState, e164: &str) -> ApiResult<Option<NumberOwner>> {
    get(state, keys::phone_number_pk(e164), keys::OWNER_SK)
        .await?
        .map(from_record)
        .transpose()
}

/// The write of a flow (replacing the tenant's previous version of it).
pub fn put_flow(state: &AppState, tenant: &TenantId, flow: &Flow) -> ApiResult<TransactWriteItem> {
    let item = record_item(
        flow,
        vec![
            (keys::PK, keys::flows_pk(tenant)),
            (keys::SK, keys::flow_sk(&flow.flow_id)),
            (keys::ENTITY, "flow".to_owned()),
        ],
    )?;
    put(state, item, None)
}

/// The release of a number owned by `tenant` (fails if another tenant owns it).
pub fn release_number(
    state: &AppState,
    tenant: &TenantId,
    e164: &str,
) -> ApiResult<TransactWriteItem> {
    let delete = aws_sdk_dynamodb::types::Delete::builder()
        .table_name(state.table())
        .key(keys::PK, s(keys::phone_number_pk(e164)))
        .key(keys::SK, s(keys::OWNER_SK))
        .condition_expression("tenant_id = :tenant")
        .expression_attribute_values(":tenant", s(tenant.as_str()))
        .build()
        .map_err(ApiError::internal)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

/// Where a transfer leg's dial stands: a marker is `pending` from just before Twilio is
/// asked until it answered, then `done`. A redelivered event skips only `done` legs, so a
/// dial that failed (or whose Lambda died) is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegMark {
    /// This attempt should dial (the marker is now `pending`).
    Dial,
    /// The leg was dialled already.
    Done,
}

/// Marks the leg `who` of `transfer_id` pending, unless it is done.
pub async fn mark_leg(
    state: &AppState,
    tenant: &TenantId,
    transfer_id: &str,
    who: &str,
) -> ApiResult<LegMark> {
    let result = state
        .db
        .put_item()
        .table_name(state.table())
        .item(keys::PK, s(keys::transfer_pk(tenant, transfer_id)))
        .item(keys::SK, s(keys::transfer_leg_sk(who)))
        .item(keys::ENTITY, s("transfer_leg"))
        .item("state", s("pending"))
        .item(
            "created_at",
            s(vocelio_shared::clock::rfc3339(vocelio_shared::clock::now())),
        )
        .condition_expression("attribute_not_exists(PK) OR #state = :pending")
        .expression_attribute_names("#state", "state")
        .expression_attribute_values(":pending", s("pending"))
        .send()
        .await;
    match result {
        Ok(_) => Ok(LegMark::Dial),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_conditional_check_failed_exception()) =>
        {
            Ok(LegMark::Done)
        }
        Err(err) => Err(sdk_error(err)),
    }
}

/// The write that marks the leg `who` of `transfer_id` done (Twilio accepted it).
pub fn leg_done(
    state: &AppState,
    tenant: &TenantId,
    transfer_id: &str,
    who: &str,
) -> ApiResult<TransactWriteItem> {
    let item: Item = [
        (
            keys::PK.to_owned(),
            s(keys::transfer_pk(tenant, transfer_id)),
        ),
        (keys::SK.to_owned(), s(keys::transfer_leg_sk(who))),
        (keys::ENTITY.to_owned(), s("transfer_leg")),
        ("state".to_owned(), s("done")),
        (
            "created_at".to_owned(),
            s(vocelio_shared::clock::rfc3339(vocelio_shared::clock::now())),
        ),
    ]
    .into_iter()
    .collect();
    put(state, item, None)
}
