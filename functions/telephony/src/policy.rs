//! Who may dial what, and how much: the checks every path that starts or bridges a call
//! runs before anything reaches Twilio.
//!
//! - **Roles.** Admins and supervisors place calls and cold-transfer; an agent only when
//!   the tenant's policy names them (`agents_may_dial`). Ending, holding, muting and
//!   department transfers: managers, or the agent the call is connected to.
//! - **Destinations.** The number must be valid (libphonenumber) and in an allowed country
//!   (ISO 3166, the operator's list narrowed by the tenant's: countries, not calling codes,
//!   since `+1` is some twenty-five countries); premium-rate, shared-cost, UAN, personal and
//!   pager numbers (libphonenumber's types) and North American `976` exchanges are refused;
//!   so is any operator-denied prefix.
//! - **Quotas** per tenant: calls started per minute (one conditional counter update),
//!   outbound calls live at once, outbound minutes per UTC day: each call reserves its
//!   `TimeLimit` (at most `MAX_CALL_SECONDS`) from the day's budget with one conditional
//!   update before it is dialled, and gives back what it did not use when Twilio's final
//!   report says how long it lasted — so live calls together can never exceed the day.
//!
//! Refusals are 403 (a rule) or 429 (a quota) with a code naming the rule.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use transfers::model::Call;
use vocelio_shared::dynamo::{from_record, n, record_item, s, sdk_error};
use vocelio_shared::ids::TenantId;
use vocelio_shared::phone::{self, NumberKind};
use vocelio_shared::{ApiError, ApiResult, AuthUser, Role, clock, keys};

use crate::service::Telephony;
use crate::store;

const POLICY_SK: &str = "POLICY";

/// Number kinds never dialled.
pub const REFUSED_KINDS: [NumberKind; 5] = [
    NumberKind::PremiumRate,
    NumberKind::SharedCost,
    NumberKind::Uan,
    NumberKind::PersonalNumber,
    NumberKind::Pager,
];

/// A tenant's own dialling rules (`TENANT#t#TELEPHONY`, `POLICY`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DialPolicy {
    /// Countries (ISO 3166) the tenant dials, within the operator's; `None`: the operator's.
    #[serde(default)]
    pub allowed_countries: Option<Vec<String>>,
    /// Agents who may place calls and cold-transfer.
    #[serde(default)]
    pub agents_may_dial: Vec<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// `PUT /api/telephony/policy` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyBody {
    #[serde(default)]
    pub allowed_countries: Option<Vec<String>>,
    #[serde(default)]
    pub agents_may_dial: Vec<String>,
}

impl From<PolicyBody> for DialPolicy {
    fn from(body: PolicyBody) -> Self {
        Self {
            allowed_countries: body
                .allowed_countries
                .map(|c| c.iter().map(|s| s.trim().to_ascii_uppercase()).collect()),
            agents_may_dial: body.agents_may_dial,
            updated_at: None,
        }
    }
}

fn refused(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Refused {
        code,
        message: message.into(),
    }
}

/// Whether `user` manages the tenant (admin or supervisor).
pub fn is_manager(user: &AuthUser) -> bool {
    matches!(user.role, Role::Admin | Role::Supervisor)
}

/// `Ok` when `user` may place calls or bridge a call to a number.
pub fn may_dial(user: &AuthUser, policy: &DialPolicy) -> ApiResult<()> {
    if is_manager(user) || policy.agents_may_dial.contains(&user.user_id) {
        Ok(())
    } else {
        Err(refused(
            "dial_not_permitted",
            "only admins, supervisors and agents the tenant allows may place calls or transfer them to numbers",
        ))
    }
}

/// `Ok` when `user` may end, hold, mute or transfer `call`: a manager, or the agent the
/// call is connected to.
pub fn may_control(user: &AuthUser, call: &Call) -> ApiResult<()> {
    if is_manager(user) || call.assigned_agent.as_deref() == Some(user.user_id.as_str()) {
        Ok(())
    } else {
        Err(refused(
            "call_control_not_permitted",
            "only admins, supervisors and the agent connected to this call may control it",
        ))
    }
}

impl Telephony {
    /// The tenant's dialling rules (defaults when it set none).
    pub async fn dial_policy(&self, tenant: &TenantId) -> ApiResult<DialPolicy> {
        Ok(store::get(&self.app, keys::telephony_pk(tenant), POLICY_SK)
            .await?
            .map(from_record)
            .transpose()?
            .unwrap_or_default())
    }

    /// The countries `policy` allows: the operator's, narrowed by the tenant's.
    pub fn allowed_countries(&self, policy: &DialPolicy) -> Vec<String> {
        let operator = &self.config.limits.allowed_countries;
        match &policy.allowed_countries {
            Some(own) => own
                .iter()
                .filter(|c| operator.contains(c))
                .cloned()
                .collect(),
            None => operator.clone(),
        }
    }

    /// `Ok` when `e164` may be dialled under `policy` (no I/O).
    pub fn check_destination(&self, policy: &DialPolicy, e164: &str) -> ApiResult<()> {
        if let Some(prefix) = self
            .config
            .limits
            .deny_prefixes
            .iter()
            .find(|p| e164.starts_with(p.as_str()))
        {
            return Err(refused(
                "destination_denied",
                format!("numbers starting {prefix} are never dialled"),
            ));
        }
        let Some((country, kind)) = phone::classify_valid(e164) else {
            return Err(ApiError::field(
                "to",
                format!("{e164} is not a valid number of any country"),
            ));
        };
        let allowed = self.allowed_countries(policy);
        if !allowed.contains(&country) {
            return Err(refused(
                "destination_country_not_allowed",
                format!(
                    "calls to {country} are not allowed (allowed: {})",
                    allowed.join(", ")
                ),
            ));
        }
        // North America's premium exchange: +1 NPA 976 XXXX, in every area code.
        let nanp_premium = e164.len() == 12 && e164.starts_with("+1") && &e164[5..8] == "976";
        if REFUSED_KINDS.contains(&kind) || nanp_premium {
            return Err(refused(
                "destination_type_refused",
                format!(
                    "{e164} is a premium-rate, shared-cost, UAN, personal or pager number; these are never dialled"
                ),
            ));
        }
        Ok(())
    }

    /// Replaces the tenant's rules (admins): `allowed_countries` must be within the
    /// operator's, `agents_may_dial` lists agent ids.
    pub async fn set_dial_policy(&self, tenant: &TenantId, body: DialPolicy) -> ApiResult<Value> {
        let mut errors = Vec::new();
        if let Some(countries) = &body.allowed_countries {
            let operator = &self.config.limits.allowed_countries;
            if countries.len() > 50 {
                errors.push(vocelio_shared::FieldError::new(
                    "allowed_countries",
                    "lists at most 50 countries",
                ));
            }
            for c in countries {
                if !operator.contains(c) {
                    errors.push(vocelio_shared::FieldError::new(
                        "allowed_countries",
                        format!("{c} is not allowed on this platform"),
                    ));
                }
            }
        }
        if body.agents_may_dial.len() > 500
            || body
                .agents_may_dial
                .iter()
                .any(|a| !vocelio_shared::ids::is_key_safe(a))
        {
            errors.push(vocelio_shared::FieldError::new(
                "agents_may_dial",
                "must be at most 500 agent ids",
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::fields(errors));
        }
        let policy = DialPolicy {
            updated_at: Some(clock::rfc3339(clock::now())),
            ..body
        };
        let item = record_item(
            &policy,
            vec![
                (keys::PK, keys::telephony_pk(tenant)),
                (keys::SK, POLICY_SK.to_owned()),
                (keys::ENTITY, "dial_policy".to_owned()),
            ],
        )?;
        self.app
            .db
            .put_item()
            .table_name(self.app.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(sdk_error)?;
        self.policy_view(tenant, &policy).await
    }

    /// The policy as `GET /api/telephony/policy` shows it, with the quotas and today's use.
    pub async fn policy_view(&self, tenant: &TenantId, policy: &DialPolicy) -> ApiResult<Value> {
        let limits = &self.config.limits;
        let used = self.minutes_used_today(tenant).await?;
        Ok(json!({
            "allowed_countries": self.allowed_countries(policy),
            "platform_countries": limits.allowed_countries,
            "denied_prefixes": limits.deny_prefixes,
            "refused_number_types": ["premium_rate", "shared_cost", "uan", "personal_number", "pager", "nanp_976"],
            "agents_may_dial": policy.agents_may_dial,
            "limits": {
                "calls_per_minute": limits.calls_per_minute,
                "concurrent_calls": limits.concurrent_calls,
                "minutes_per_day": limits.minutes_per_day,
                "max_call_seconds": limits.max_call_seconds,
            },
            "usage": { "minutes_today": used.div_ceil(60), "seconds_today": used },
            "updated_at": policy.updated_at,
        }))
    }

    async fn minutes_used_today(&self, tenant: &TenantId) -> ApiResult<u64> {
        let day = day_sk(clock::now());
        Ok(store::get(&self.app, keys::telephony_pk(tenant), &day)
            .await?
            .and_then(|item| {
                item.get("seconds")
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0))
    }

    /// Takes one call from the tenant's quotas, before dialling: 429 `concurrent_calls`,
    /// `calls_per_minute` or `minutes_per_day` when one is used up. Returns the seconds
    /// reserved from the day's budget — the call's `TimeLimit` — which the call's end gives
    /// back in part ([`Telephony::count_minutes`] with the difference). Two round trips:
    /// the live calls and the day's use read at once, then one transaction that counts the
    /// call in its minute and reserves its time, each under its own condition.
    pub async fn reserve_call(&self, tenant: &TenantId) -> ApiResult<u32> {
        let limits = &self.config.limits;
        let budget = u64::from(limits.minutes_per_day) * 60;
        for _ in 0..5 {
            let now = clock::now();
            // Outbound calls we carry that are live (one that outlived any possible
            // TimeLimit lost its final report and no longer counts).
            let oldest = clock::rfc3339(
                now - time::Duration::seconds(i64::from(limits.max_call_seconds) + 300),
            );
            let engine = transfers::engine::Engine::new(&self.app, tenant);
            let (active, used) =
                tokio::join!(engine.store.active_calls(), self.minutes_used_today(tenant));
            let live = active?
                .iter()
                .filter(|c| {
                    c.direction == transfers::model::Direction::Outbound
                        && c.carrier.is_some()
                        && c.start_time >= oldest
                })
                .count();
            if live >= limits.concurrent_calls as usize {
                return Err(ApiError::Limited {
                    code: "concurrent_calls",
                    message: format!(
                        "the tenant already has {live} outbound calls live (at most {})",
                        limits.concurrent_calls
                    ),
                    retry_after_seconds: Some(10),
                });
            }
            let left = budget.saturating_sub(used?);
            if left < 60 {
                return Err(minutes_used_up(limits.minutes_per_day, now));
            }
            let reserve = left.min(u64::from(limits.max_call_seconds));
            let ttl = now.unix_timestamp();
            let per_minute = aws_sdk_dynamodb::types::Update::builder()
                .table_name(self.app.table())
                .key(keys::PK, s(keys::telephony_pk(tenant)))
                .key(keys::SK, s(format!("RATE#{}", &clock::rfc3339(now)[..16])))
                .update_expression("ADD calls :one SET expires_at = :ttl")
                .condition_expression("attribute_not_exists(calls) OR calls < :limit")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":limit", n(limits.calls_per_minute))
                .expression_attribute_values(":ttl", n(ttl + 120))
                .build()
                .map_err(ApiError::internal)?;
            let day = aws_sdk_dynamodb::types::Update::builder()
                .table_name(self.app.table())
                .key(keys::PK, s(keys::telephony_pk(tenant)))
                .key(keys::SK, s(day_sk(now)))
                .update_expression("ADD seconds :r SET expires_at = :ttl")
                .condition_expression("attribute_not_exists(seconds) OR seconds <= :most")
                .expression_attribute_values(":r", n(reserve))
                .expression_attribute_values(":most", n(budget - reserve))
                .expression_attribute_values(":ttl", n(ttl + 3 * 86_400))
                .build()
                .map_err(ApiError::internal)?;
            let actions = vec![
                aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .update(per_minute)
                    .build(),
                aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .update(day)
                    .build(),
            ];
            match vocelio_shared::dynamo::commit(&self.app.db, actions).await? {
                None => {
                    return Ok(u32::try_from(reserve).unwrap_or(limits.max_call_seconds));
                }
                Some(cancelled) if cancelled.condition_failed(0) => {
                    return Err(ApiError::Limited {
                        code: "calls_per_minute",
                        message: format!(
                            "the tenant may start at most {} calls per minute",
                            limits.calls_per_minute
                        ),
                        retry_after_seconds: Some(60 - u64::from(now.second())),
                    });
                }
                // Another call reserved first: read the day again.
                Some(_) => {}
            }
        }
        Err(ApiError::Limited {
            code: "minutes_per_day",
            message: "the tenant's minutes for today are being reserved by other calls; retry"
                .into(),
            retry_after_seconds: Some(1),
        })
    }

    /// The update that adds `seconds` (negative: gives back) to the tenant's day.
    pub fn count_minutes(
        &self,
        tenant: &TenantId,
        seconds: i64,
    ) -> ApiResult<aws_sdk_dynamodb::types::TransactWriteItem> {
        let now = clock::now();
        let update = aws_sdk_dynamodb::types::Update::builder()
            .table_name(self.app.table())
            .key(keys::PK, s(keys::telephony_pk(tenant)))
            .key(keys::SK, s(day_sk(now)))
            .update_expression("ADD seconds :s SET expires_at = :ttl")
            .expression_attribute_values(":s", n(seconds))
            .expression_attribute_values(":ttl", n(now.unix_timestamp() + 3 * 86_400))
            .build()
            .map_err(ApiError::internal)?;
        Ok(aws_sdk_dynamodb::types::TransactWriteItem::builder()
            .update(update)
            .build())
    }

    /// Gives back `seconds` of a reservation no call used (the dial failed).
    pub async fn refund_minutes(&self, tenant: &TenantId, seconds: u32) {
        let action = match self.count_minutes(tenant, -i64::from(seconds)) {
            Ok(action) => action,
            Err(e) => {
                tracing::error!(error = %e, "reservation not given back");
                return;
            }
        };
        if let Err(e) = vocelio_shared::dynamo::commit(&self.app.db, vec![action]).await {
            tracing::error!(error = %e, "reservation not given back");
        }
    }
}

fn minutes_used_up(minutes_per_day: u32, now: time::OffsetDateTime) -> ApiError {
    ApiError::Limited {
        code: "minutes_per_day",
        message: format!(
            "the tenant's {minutes_per_day} outbound minutes for today (UTC) are used or reserved by live calls"
        ),
        retry_after_seconds: Some(seconds_to_midnight(now)),
    }
}

fn day_sk(now: time::OffsetDateTime) -> String {
    format!("MINUTES#{}", &clock::rfc3339(now)[..10])
}

fn seconds_to_midnight(now: time::OffsetDateTime) -> u64 {
    let since =
        u64::from(now.hour()) * 3600 + u64::from(now.minute()) * 60 + u64::from(now.second());
    86_400 - since
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, id: &str) -> AuthUser {
        AuthUser {
            user_id: id.into(),
            tenant: TenantId::parse("acme").expect("tenant"),
            role,
            scopes: None,
        }
    }

    #[test]
    fn agents_dial_only_when_named() {
        let mut policy = DialPolicy::default();
        assert!(may_dial(&user(Role::Admin, "a"), &policy).is_ok());
        assert!(may_dial(&user(Role::Supervisor, "s"), &policy).is_ok());
        let ana = user(Role::Agent, "ana");
        assert_eq!(
            may_dial(&ana, &policy).err().map(|e| e.code()),
            Some("dial_not_permitted")
        );
        policy.agents_may_dial.push("ana".into());
        assert!(may_dial(&ana, &policy).is_ok());
        assert!(may_dial(&user(Role::Agent, "bob"), &policy).is_err());
    }

    #[test]
    fn premium_and_shared_cost_kinds_are_refused_and_ordinary_ones_are_not() {
        for refused in [
            "+449098790000",
            "+448712345678",
            "+445512345678",
            "+447012345678",
        ] {
            let (code, kind) = phone::classify(refused).expect("parses");
            assert_eq!(code, 44);
            assert!(REFUSED_KINDS.contains(&kind), "{refused} is {kind:?}");
        }
        for fine in ["+447400123456", "+442071838750", "+14155550123"] {
            let (_, kind) = phone::classify(fine).expect("parses");
            assert!(!REFUSED_KINDS.contains(&kind), "{fine} is {kind:?}");
        }
    }
}
