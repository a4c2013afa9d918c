//! The numbers a tenant owns: searched and bought in its Twilio account with our webhooks
//! (whatever URLs a client sends are ignored), listed, released. A number belongs to one
//! tenant: `PHONENUMBER#<e164>` (`OWNER`) names it, with the flow that answers it, and
//! `TENANT#t#NUMBERS` lists the tenant's. Flows answer only numbers their tenant owns,
//! and outbound calls present only such numbers as caller ID.

use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vocelio_shared::dynamo::{from_record, record_item, s, sdk_error};
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiError, ApiResult, AuthUser, clock, keys, phone};

use crate::client::{BuyNumber, IncomingNumber, TwilioFailure};
use crate::service::{Telephony, twilio_error};
use crate::store::{self, NumberOwner};

/// A number the tenant owns (`TENANT#t#NUMBERS`, `NUMBER#<e164>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnedNumber {
    pub sid: String,
    pub phone_number: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub capabilities: Value,
    #[serde(default)]
    pub flow_id: Option<String>,
    pub created_at: String,
}

impl OwnedNumber {
    /// As `GET /api/numbers` shows it (`capabilities` both as Twilio's object and as the
    /// flow designer's array).
    pub fn view(&self) -> Value {
        let caps = &self.capabilities;
        let list: Vec<&str> = [("voice", "voice"), ("sms", "sms"), ("mms", "mms")]
            .into_iter()
            .filter(|(k, _)| {
                caps[k].as_bool().unwrap_or(false)
                    || caps[k.to_ascii_uppercase()].as_bool().unwrap_or(false)
            })
            .map(|(_, v)| v)
            .collect();
        json!({
            "sid": self.sid,
            "phone_number": self.phone_number,
            "friendly_name": self.friendly_name,
            "capabilities": list,
            "capability_flags": caps,
            "flow_id": self.flow_id,
            "status": if self.flow_id.is_some() { "in-use" } else { "active" },
            "created_at": self.created_at,
        })
    }
}

/// `GET /api/numbers/search` query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub area_code: Option<String>,
    #[serde(default)]
    pub contains: Option<String>,
    /// `local` (default) or `toll_free`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A query parameter's trimmed value, when it has one.
fn given(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Numbers for sale, in the app's shape.
pub async fn search(tel: &Telephony, tenant: &TenantId, query: SearchQuery) -> ApiResult<Value> {
    let mut errors = Vec::new();
    let country = query
        .country
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or("US")
        .to_ascii_uppercase();
    if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
        errors.push(vocelio_shared::FieldError::new(
            "country",
            "must be an ISO 3166 country code like US",
        ));
    }
    let area_code = given(&query.area_code);
    if let Some(a) = area_code
        && (a.len() != 3 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        errors.push(vocelio_shared::FieldError::new(
            "area_code",
            "must be three digits",
        ));
    }
    let contains = given(&query.contains);
    if let Some(c) = contains
        && (c.len() < 2
            || c.len() > 16
            || !c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'*'))
    {
        errors.push(vocelio_shared::FieldError::new(
            "contains",
            "must be 2-16 digits, letters or *",
        ));
    }
    let kind = match query.kind.as_deref().unwrap_or("local") {
        "local" | "Local" => "Local",
        "toll_free" | "tollfree" | "TollFree" => "TollFree",
        _ => {
            errors.push(vocelio_shared::FieldError::new(
                "type",
                "must be local or toll_free",
            ));
            "Local"
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let limit = query.limit.unwrap_or(20).clamp(1, 50);
    let client = tel.client_for(tenant).await?;
    let found = client
        .available_numbers(&country, kind, area_code, contains, limit)
        .await
        .map_err(twilio_error)?;
    let numbers: Vec<Value> = found
        .iter()
        .map(|n| {
            json!({
                "phone_number": n["phone_number"],
                "friendly_name": n["friendly_name"],
                "locality": n["locality"],
                "region": n["region"],
                "postal_code": n["postal_code"],
                "iso_country": n["iso_country"],
                "capabilities": n["capabilities"],
                "type": if kind == "Local" { "local" } else { "toll_free" },
            })
        })
        .collect();
    Ok(json!({ "available_numbers": numbers, "total": numbers.len() }))
}

/// `POST /api/numbers/buy` body (the app also sends `voice_url`/`sms_url`: ignored).
#[derive(Debug, Deserialize)]
pub struct BuyBody {
    pub phone_number: String,
    #[serde(default)]
    pub friendly_name: Option<String>,
    #[serde(default)]
    pub voice_url: Option<Value>,
    #[serde(default)]
    pub sms_url: Option<Value>,
}

fn owner_item(
    table: &str,
    tenant: &TenantId,
    number: &OwnedNumber,
) -> ApiResult<TransactWriteItem> {
    let item = record_item(
        &NumberOwner {
            tenant_id: tenant.as_str().to_owned(),
            flow_id: None,
            phone_number: number.phone_number.clone(),
            number_sid: Some(number.sid.clone()),
        },
        vec![
            (keys::PK, keys::phone_number_pk(&number.phone_number)),
            (keys::SK, keys::OWNER_SK.to_owned()),
            (keys::ENTITY, "phone_number".to_owned()),
        ],
    )?;
    Ok(TransactWriteItem::builder()
        .put(
            Put::builder()
                .table_name(table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(PK) OR tenant_id = :tenant")
                .expression_attribute_values(":tenant", s(tenant.as_str()))
                .build()
                .map_err(ApiError::internal)?,
        )
        .build())
}

/// Buys a number in the tenant's account, pointed at our webhooks (admins).
pub async fn buy(tel: &Telephony, user: &AuthUser, body: BuyBody) -> ApiResult<Value> {
    let tenant = &user.tenant;
    let e164 = phone::normalize(&body.phone_number, tel.app.config.default_phone_region)
        .map_err(|e| ApiError::field("phone_number", e.to_string()))?
        .as_str()
        .to_owned();
    if let Some(name) = &body.friendly_name
        && name.chars().count() > 64
    {
        return Err(ApiError::field(
            "friendly_name",
            "must be at most 64 characters",
        ));
    }
    if let Some(owner) = store::number_owner(&tel.app, &e164).await? {
        if owner.tenant_id != tenant.as_str() {
            return Err(ApiError::conflict(
                "number_taken",
                "this number belongs to another account",
            ));
        }
        if let Some(mine) = owned(tel, tenant, &e164).await? {
            return Ok(
                json!({ "already_owned": true, "number": mine.view(), "sid": mine.sid, "phone_number": mine.phone_number }),
            );
        }
    }
    let most = tel.config.limits.numbers_per_tenant;
    if list(tel, tenant).await?.len() >= most as usize {
        return Err(ApiError::Refused {
            code: "number_limit",
            message: format!(
                "this account owns {most} numbers, the most it may; release one first"
            ),
        });
    }
    let client = tel.client_for(tenant).await?;
    let order = BuyNumber {
        phone_number: e164.clone(),
        friendly_name: body.friendly_name.clone(),
        voice_url: tel.webhook_url("/twilio/voice", &[])?,
        status_callback: tel.webhook_url("/twilio/status", &[])?,
    };
    let bought: IncomingNumber = match client.buy_number(&order).await {
        Ok(n) => n,
        // Bought by an earlier attempt whose record was not written: adopt it.
        Err(TwilioFailure::Twilio(e)) if e.code == Some(21422) => client
            .find_numbers(&e164)
            .await
            .map_err(twilio_error)?
            .into_iter()
            .next()
            .ok_or_else(|| twilio_error(TwilioFailure::Twilio(e)))?,
        Err(e) => return Err(twilio_error(e)),
    };
    let number = OwnedNumber {
        sid: bought.sid.clone(),
        phone_number: bought.phone_number.clone(),
        friendly_name: bought.friendly_name.clone().or(body.friendly_name),
        capabilities: bought.capabilities.clone().unwrap_or(Value::Null),
        flow_id: None,
        created_at: clock::rfc3339(clock::now()),
    };
    let listed = record_item(
        &number,
        vec![
            (keys::PK, keys::tenant_numbers_pk(tenant)),
            (keys::SK, keys::tenant_number_sk(&number.phone_number)),
            (keys::ENTITY, "owned_number".to_owned()),
        ],
    )?;
    let actions = vec![
        owner_item(tel.app.table(), tenant, &number)?,
        store::put(&tel.app, listed, Some("attribute_not_exists(PK)"))?,
    ];
    if vocelio_shared::dynamo::commit(&tel.app.db, actions)
        .await?
        .is_some()
    {
        // Recorded meanwhile by a concurrent retry: answer with what is stored.
        if let Some(mine) = owned(tel, tenant, &number.phone_number).await? {
            return Ok(
                json!({ "already_owned": true, "number": mine.view(), "sid": mine.sid, "phone_number": mine.phone_number }),
            );
        }
        return Err(ApiError::conflict(
            "number_taken",
            "this number belongs to another account",
        ));
    }
    Ok(json!({
        "sid": number.sid,
        "phone_number": number.phone_number,
        "friendly_name": number.friendly_name,
        "capabilities": number.capabilities,
        "number": number.view(),
    }))
}

/// The tenant's number `e164`, if it owns it.
pub async fn owned(
    tel: &Telephony,
    tenant: &TenantId,
    e164: &str,
) -> ApiResult<Option<OwnedNumber>> {
    store::get(
        &tel.app,
        keys::tenant_numbers_pk(tenant),
        &keys::tenant_number_sk(e164),
    )
    .await?
    .map(from_record)
    .transpose()
}

/// Every number the tenant owns (one Query; a tenant owns a few hundred at most).
pub async fn list(tel: &Telephony, tenant: &TenantId) -> ApiResult<Vec<OwnedNumber>> {
    let mut pages = tel
        .app
        .db
        .query()
        .table_name(tel.app.table())
        .key_condition_expression("PK = :pk")
        .expression_attribute_values(":pk", s(keys::tenant_numbers_pk(tenant)))
        .consistent_read(true)
        .into_paginator()
        .send();
    let mut out = Vec::new();
    while let Some(page) = pages.next().await {
        for item in page.map_err(sdk_error)?.items.unwrap_or_default() {
            out.push(from_record(item)?);
            if out.len() >= 1000 {
                return Ok(out);
            }
        }
    }
    Ok(out)
}

/// The caller ID of an outbound call: `requested` if the tenant owns it (403
/// `caller_id_not_owned` otherwise), else the tenant's first number (409 `no_number`
/// when it owns none). With subaccounts off, the configured `TWILIO_PHONE_NUMBER` is the
/// organisation's too.
pub async fn caller_id(
    tel: &Telephony,
    tenant: &TenantId,
    requested: Option<&str>,
) -> ApiResult<String> {
    let fallback = (!tel.config.subaccounts)
        .then(|| tel.config.phone_number.clone())
        .flatten();
    match requested {
        Some(number) => {
            if fallback.as_deref() == Some(number) || owned(tel, tenant, number).await?.is_some() {
                Ok(number.to_owned())
            } else {
                Err(ApiError::Refused {
                    code: "caller_id_not_owned",
                    message: format!(
                        "{number} is not one of this account's numbers; buy it first (POST /api/numbers/buy)"
                    ),
                })
            }
        }
        None => {
            let first = tel
                .app
                .db
                .query()
                .table_name(tel.app.table())
                .key_condition_expression("PK = :pk")
                .expression_attribute_values(":pk", s(keys::tenant_numbers_pk(tenant)))
                .limit(1)
                .send()
                .await
                .map_err(sdk_error)?
                .items
                .unwrap_or_default()
                .into_iter()
                .next()
                .map(from_record::<OwnedNumber>)
                .transpose()?;
            first
                .map(|n| n.phone_number)
                .or(fallback)
                .ok_or_else(|| {
                    ApiError::conflict(
                        "no_number",
                        "this account owns no phone number to call from; buy one first (POST /api/numbers/buy)",
                    )
                })
        }
    }
}

/// Releases the tenant's number `sid` (admins): refused while a flow answers it.
pub async fn release(tel: &Telephony, tenant: &TenantId, sid: &str) -> ApiResult<Value> {
    if !crate::callback::is_sid("PN", sid) {
        return Err(ApiError::not_found("number"));
    }
    let number = list(tel, tenant)
        .await?
        .into_iter()
        .find(|n| n.sid == sid)
        .ok_or_else(|| ApiError::not_found("number"))?;
    if let Some(flow) = &number.flow_id {
        return Err(ApiError::Conflict {
            code: "number_in_use",
            message: format!("flow {flow} answers this number; unregister it first"),
            current: Some(number.view()),
        });
    }
    // Mark it first, so no flow can claim it while Twilio releases it.
    let marked = tel
        .app
        .db
        .update_item()
        .table_name(tel.app.table())
        .key(keys::PK, s(keys::phone_number_pk(&number.phone_number)))
        .key(keys::SK, s(keys::OWNER_SK))
        .update_expression("SET releasing = :t")
        .condition_expression(
            "tenant_id = :tenant AND (attribute_not_exists(flow_id) OR attribute_type(flow_id, :null))",
        )
        .expression_attribute_values(":t", vocelio_shared::dynamo::n(1))
        .expression_attribute_values(":tenant", s(tenant.as_str()))
        .expression_attribute_values(":null", s("NULL"))
        .send()
        .await;
    if let Err(e) = marked {
        if e.as_service_error()
            .is_some_and(|e| e.is_conditional_check_failed_exception())
        {
            return Err(ApiError::conflict(
                "number_in_use",
                "a flow answers this number; unregister it first",
            ));
        }
        return Err(sdk_error(e));
    }
    tel.client_for(tenant)
        .await?
        .release_number(sid)
        .await
        .map_err(twilio_error)?;
    let delete = |pk: String, sk: String| -> ApiResult<TransactWriteItem> {
        Ok(TransactWriteItem::builder()
            .delete(
                Delete::builder()
                    .table_name(tel.app.table())
                    .key(keys::PK, s(pk))
                    .key(keys::SK, s(sk))
                    .build()
                    .map_err(ApiError::internal)?,
            )
            .build())
    };
    vocelio_shared::dynamo::commit(
        &tel.app.db,
        vec![
            delete(
                keys::phone_number_pk(&number.phone_number),
                keys::OWNER_SK.to_owned(),
            )?,
            delete(
                keys::tenant_numbers_pk(tenant),
                keys::tenant_number_sk(&number.phone_number),
            )?,
        ],
    )
    .await?;
    Ok(
        json!({ "success": true, "sid": sid, "phone_number": number.phone_number, "status": "released" }),
    )
}

/// The claim of an owned number by flow `flow_id`: the number must be the tenant's, not
/// being released, and answered by no other flow.
pub fn claim_for_flow(
    tel: &Telephony,
    tenant: &TenantId,
    e164: &str,
    flow_id: &str,
) -> ApiResult<[TransactWriteItem; 2]> {
    flow_mapping(
        tel,
        tenant,
        e164,
        Some(flow_id),
        "tenant_id = :tenant AND attribute_not_exists(releasing) AND (attribute_not_exists(flow_id) OR flow_id = :flow OR attribute_type(flow_id, :null))",
    )
}

/// The un-claim of a number by its flow (the tenant keeps owning it).
pub fn unclaim(
    tel: &Telephony,
    tenant: &TenantId,
    e164: &str,
) -> ApiResult<[TransactWriteItem; 2]> {
    flow_mapping(tel, tenant, e164, None, "tenant_id = :tenant")
}

/// The two writes that set (or, with `None`, remove) the flow answering `e164`: on the
/// number's owner item under `owner_condition`, and on the tenant's list item, which must
/// exist (a conditional update never creates an item).
fn flow_mapping(
    tel: &Telephony,
    tenant: &TenantId,
    e164: &str,
    flow_id: Option<&str>,
    owner_condition: &str,
) -> ApiResult<[TransactWriteItem; 2]> {
    let expression = if flow_id.is_some() {
        "SET flow_id = :flow"
    } else {
        "REMOVE flow_id"
    };
    let flow = flow_id.map(s);
    let mut owner = Update::builder()
        .table_name(tel.app.table())
        .key(keys::PK, s(keys::phone_number_pk(e164)))
        .key(keys::SK, s(keys::OWNER_SK))
        .update_expression(expression)
        .condition_expression(owner_condition)
        .expression_attribute_values(":tenant", s(tenant.as_str()));
    let mut listed = Update::builder()
        .table_name(tel.app.table())
        .key(keys::PK, s(keys::tenant_numbers_pk(tenant)))
        .key(keys::SK, s(keys::tenant_number_sk(e164)))
        .update_expression(expression)
        .condition_expression("attribute_exists(PK)");
    if let Some(flow) = flow {
        owner = owner
            .expression_attribute_values(":flow", flow.clone())
            .expression_attribute_values(":null", s("NULL"));
        listed = listed.expression_attribute_values(":flow", flow);
    }
    Ok([
        TransactWriteItem::builder()
            .update(owner.build().map_err(ApiError::internal)?)
            .build(),
        TransactWriteItem::builder()
            .update(listed.build().map_err(ApiError::internal)?)
            .build(),
    ])
}
