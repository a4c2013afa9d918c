//! Call flows: which numbers a tenant answers and how (the AI agent's webhook, or a
//! greeting), and the answer to an inbound call.

use serde::Deserialize;
use serde_json::{Value, json};
use transfers::engine::Engine;
use transfers::model::{Call, CallStatus, Direction};
use vocelio_shared::ids::{self, TenantId};
use vocelio_shared::{ApiError, ApiResult, AuthUser, clock, phone};

use crate::callback::CallStatus as TwilioStatus;
use crate::calls::new_leg;
use crate::service::Telephony;
use crate::store::{self, Flow, SidOwner};
use crate::twiml;

/// Numbers one registration may map.
pub const MAX_NUMBERS: usize = 50;

/// `POST /admin/register-flow`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterFlow {
    pub flow_id: String,
    pub phone_numbers: Vec<String>,
    #[serde(default)]
    pub webhook_url: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub greeting: Option<String>,
    #[serde(default)]
    pub voice: Option<String>,
}

fn is_http_url(raw: &str) -> bool {
    url::Url::parse(raw).is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
}

/// Maps numbers to a flow (the flow keeps numbers registered before): one transaction
/// claims every number, so a number taken by another flow or tenant changes nothing (409).
pub async fn register(tel: &Telephony, user: &AuthUser, body: RegisterFlow) -> ApiResult<Value> {
    let mut errors = Vec::new();
    let flow_id = body.flow_id.trim().to_owned();
    if !ids::is_key_safe(&flow_id) || flow_id.len() > 64 {
        errors.push(vocelio_shared::FieldError::new(
            "flow_id",
            "must be 1-64 of letters, digits, '.', '_', '@', ':' and '-'",
        ));
    }
    if body.phone_numbers.is_empty() || body.phone_numbers.len() > MAX_NUMBERS {
        errors.push(vocelio_shared::FieldError::new(
            "phone_numbers",
            format!("must list 1 to {MAX_NUMBERS} numbers"),
        ));
    }
    let mut numbers = Vec::new();
    for (i, raw) in body.phone_numbers.iter().enumerate() {
        match phone::normalize(raw, tel.app.config.default_phone_region) {
            Ok(n) if !numbers.contains(&n.as_str().to_owned()) => {
                numbers.push(n.as_str().to_owned())
            }
            Ok(_) => {}
            Err(e) => errors.push(vocelio_shared::FieldError::new(
                format!("phone_numbers[{i}]"),
                e.to_string(),
            )),
        }
    }
    if let Some(url) = &body.webhook_url
        && !is_http_url(url)
    {
        errors.push(vocelio_shared::FieldError::new(
            "webhook_url",
            "must be an http(s) URL",
        ));
    }
    for (field, value, max) in [
        ("name", &body.name, 120),
        ("greeting", &body.greeting, 1000),
        ("voice", &body.voice, 64),
    ] {
        if let Some(v) = value
            && (v.trim().is_empty() || v.chars().count() > max)
        {
            errors.push(vocelio_shared::FieldError::new(
                field,
                format!("must be 1-{max} characters"),
            ));
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let tenant = &user.tenant;
    let now = clock::rfc3339(clock::now());
    let existing = store::flow(&tel.app, tenant, &flow_id).await?;
    let mut all = existing
        .as_ref()
        .map(|f| f.phone_numbers.clone())
        .unwrap_or_default();
    for n in &numbers {
        if !all.contains(n) {
            all.push(n.clone());
        }
    }
    if all.len() > MAX_NUMBERS {
        return Err(ApiError::field(
            "phone_numbers",
            format!("a flow answers at most {MAX_NUMBERS} numbers"),
        ));
    }
    let flow = Flow {
        flow_id: flow_id.clone(),
        name: body
            .name
            .clone()
            .or(existing.as_ref().and_then(|f| f.name.clone())),
        webhook_url: body
            .webhook_url
            .clone()
            .or(existing.as_ref().and_then(|f| f.webhook_url.clone())),
        greeting: body
            .greeting
            .clone()
            .or(existing.as_ref().and_then(|f| f.greeting.clone())),
        voice: body
            .voice
            .clone()
            .or(existing.as_ref().and_then(|f| f.voice.clone())),
        phone_numbers: all,
        created_at: existing
            .as_ref()
            .map(|f| f.created_at.clone())
            .unwrap_or_else(|| now.clone()),
        updated_at: now,
    };
    // Only numbers the tenant owns (bought through POST /api/numbers/buy) can be mapped.
    let mut not_owned = Vec::new();
    for n in &numbers {
        if crate::numbers::owned(tel, tenant, n).await?.is_none() {
            not_owned.push(n.clone());
        }
    }
    if !not_owned.is_empty() {
        return Err(ApiError::Refused {
            code: "number_not_owned",
            message: format!(
                "not numbers of this account: {}; buy them first (POST /api/numbers/buy)",
                not_owned.join(", ")
            ),
        });
    }
    let mut actions = vec![store::put_flow(&tel.app, tenant, &flow)?];
    for n in &numbers {
        actions.extend(crate::numbers::claim_for_flow(tel, tenant, n, &flow_id)?);
    }
    if let Some(cancelled) = vocelio_shared::dynamo::commit(&tel.app.db, actions).await? {
        let taken: Vec<&String> = numbers
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                cancelled.condition_failed(1 + 2 * i) || cancelled.condition_failed(2 + 2 * i)
            })
            .map(|(_, n)| n)
            .collect();
        return Err(ApiError::Conflict {
            code: "number_taken",
            message: "a number is already answered by another flow, or is being released; unregister it first".into(),
            current: Some(json!({ "phone_numbers": taken })),
        });
    }
    Ok(json!({ "success": true, "flow": flow, "registered": numbers }))
}

/// Removes a number from the tenant's flow that answers it.
pub async fn unregister(tel: &Telephony, user: &AuthUser, raw: &str) -> ApiResult<Value> {
    let number = phone::normalize(raw, tel.app.config.default_phone_region)
        .map_err(|e| ApiError::field("phone_number", e.to_string()))?;
    let number = number.as_str().to_owned();
    let tenant = &user.tenant;
    let owner = store::number_owner(&tel.app, &number)
        .await?
        .filter(|o| o.tenant_id == tenant.as_str() && o.flow_id.is_some())
        .ok_or_else(|| ApiError::NotFound {
            code: "number_not_registered",
            message: "no flow of yours answers this number".into(),
        })?;
    let mut actions = match owner.number_sid {
        // A number bought through us stays the tenant's; only its flow goes.
        Some(_) => crate::numbers::unclaim(tel, tenant, &number)?.to_vec(),
        // A claim from before numbers were bought through us.
        None => vec![store::release_number(&tel.app, tenant, &number)?],
    };
    let flow_id = owner.flow_id.clone().unwrap_or_default();
    if let Some(mut flow) = store::flow(&tel.app, tenant, &flow_id).await? {
        flow.phone_numbers.retain(|n| *n != number);
        flow.updated_at = clock::rfc3339(clock::now());
        actions.push(store::put_flow(&tel.app, tenant, &flow)?);
    }
    if vocelio_shared::dynamo::commit(&tel.app.db, actions)
        .await?
        .is_some()
    {
        return Err(ApiError::conflict(
            "concurrent_update",
            "the number changed meanwhile; retry",
        ));
    }
    Ok(json!({ "success": true, "phone_number": number, "flow_id": owner.flow_id }))
}

/// The TwiML that answers an inbound call to `to`, after creating its call record: the
/// flow's webhook, or its greeting; an unknown number is told so politely.
pub async fn answer(
    tel: &Telephony,
    account_tenant: Option<&TenantId>,
    call_sid: &str,
    from: &str,
    to: &str,
) -> ApiResult<String> {
    let region = tel.app.config.default_phone_region;
    let to_e164 = phone::normalize(to, region)
        .map(|n| n.as_str().to_owned())
        .ok();
    let owner = match &to_e164 {
        Some(n) => store::number_owner(&tel.app, n).await?,
        None => None,
    };
    // A number nobody owns, or one whose owner maps no flow to it, is not in service.
    let Some(owner) = owner.filter(|o| o.flow_id.is_some()) else {
        return Ok(twiml::response([
            twiml::say("Sorry, this number is not in service. Goodbye."),
            twiml::hangup(),
        ]));
    };
    let tenant = TenantId::parse(&owner.tenant_id)
        .map_err(|_| ApiError::internal("bad tenant on a number"))?;
    // A call reaching another tenant's account than the number's owner is not answered
    // for the owner (a number moved between accounts, or a forged route).
    // With subaccounts, a number answers only through the account of the tenant that bought
    // it through us (a claim from before numbers were bought, or a call through our own
    // account, is not its owner's).
    if tel.config.subaccounts && (account_tenant != Some(&tenant) || owner.number_sid.is_none()) {
        tracing::warn!(%call_sid, "a number's call arrived through another tenant's account; refused");
        return Ok(twiml::response([
            twiml::say("Sorry, this number is not in service. Goodbye."),
            twiml::hangup(),
        ]));
    }
    let flow = match &owner.flow_id {
        Some(flow_id) => store::flow(&tel.app, &tenant, flow_id).await?,
        None => None,
    };
    let caller = phone::normalize(from, region)
        .map(|n| n.as_str().to_owned())
        .unwrap_or_else(|_| from.chars().filter(|c| !c.is_control()).take(64).collect());
    let now = clock::now();
    let at = clock::rfc3339(now);
    // The call id follows from the SID: Twilio retrying the webhook finds the same record.
    let call_id = format!("call_{}", call_sid.to_ascii_lowercase());
    let mut call = Call::new(
        call_id.clone(),
        caller.clone(),
        Direction::Inbound,
        CallStatus::Ringing,
        &at,
    );
    call.call_sid = Some(call_sid.to_owned());
    call.called_number = to_e164.clone();
    call.current_flow = owner.flow_id.clone();
    call.carrier = Some(new_leg(
        "inbound",
        to_e164.as_deref().unwrap_or(to),
        &caller,
        TwilioStatus::Ringing,
        &at,
    ));
    let owner_item =
        store::put_sid_owner(&tel.app, call_sid, &SidOwner::caller(&tenant, &call_id))?;
    Engine::new(&tel.app, &tenant)
        .create_call_with(call, vec![owner_item])
        .await?;
    let verbs = match flow {
        Some(Flow {
            webhook_url: Some(url),
            ..
        }) => vec![twiml::redirect(&url)],
        Some(Flow {
            greeting, voice, ..
        }) => vec![
            twiml::say(
                greeting
                    .as_deref()
                    .unwrap_or("Hello, thank you for calling."),
            )
            .attr_opt("voice", voice.or_else(|| tel.config.say_voice.clone())),
            twiml::hangup(),
        ],
        None => vec![twiml::say("Hello, thank you for calling."), twiml::hangup()],
    };
    Ok(twiml::response(verbs))
}
