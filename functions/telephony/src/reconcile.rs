//! The reconciler: Twilio does not retry a status callback we could not apply (or never
//! received), so an agent's leg whose `answered` or `completed` report was lost would
//! leave its offer ringing until it lapsed, or its agent busy for ever. Every agent leg we
//! place is therefore also a check in a sparse index (GSI3, partition `LEGCHECKS`, sorted
//! by when it is due); the check goes when the leg's final report is applied. A due check
//! re-reads the leg from Twilio and applies what it finds as if it were the report (an
//! answered leg accepts the offer, an ended one declines or completes it, a leg Twilio no
//! longer knows counts as ended), then is due again later while the leg lives.
//!
//! On AWS the events function runs [`reconcile`] on a one-minute schedule; the local stack
//! runs it every second.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::Serialize;
use transfers::engine::Engine;
use transfers::model::TransferStatus;
use vocelio_shared::dynamo::{s, sdk_error};
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiResult, clock, keys};

use crate::callback::{CallStatus as TwilioStatus, StatusCallback};
use crate::client::TwilioFailure;
use crate::service::Telephony;
use crate::store::{self, Leg};
use crate::transfer;

/// The GSI3 partition of leg checks.
pub const LEG_CHECKS_PK: &str = "LEGCHECKS";

/// The GSI3 sort key of a check of `call_sid` due at `due` (RFC 3339).
pub fn check_sk(due: &str, call_sid: &str) -> String {
    format!("{due}#{call_sid}")
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Reconciled {
    /// Checks that were due.
    pub checked: usize,
    /// Legs whose state was applied from Twilio's answer (a report had been lost).
    pub repaired: usize,
    /// Checks that failed (tried again at the next pass).
    pub errors: usize,
}

/// Runs every due check.
pub async fn reconcile(tel: &Telephony) -> ApiResult<Reconciled> {
    let mut done = Reconciled::default();
    if tel.twilio().is_err() {
        return Ok(done);
    }
    let now = clock::rfc3339(clock::now());
    let mut start = None;
    loop {
        let out = tel
            .app
            .db
            .query()
            .table_name(tel.app.table())
            .index_name(keys::GSI3)
            .key_condition_expression("GSI3PK = :pk AND GSI3SK <= :now")
            .expression_attribute_values(":pk", s(LEG_CHECKS_PK))
            .expression_attribute_values(":now", s(format!("{now}~")))
            .limit(100)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(sdk_error)?;
        for item in out.items.unwrap_or_default() {
            let Some(sid) = item
                .get(keys::PK)
                .and_then(|v| v.as_s().ok())
                .and_then(|pk| {
                    pk.strip_prefix(&keys::carrier_call_pk(""))
                        .map(str::to_owned)
                })
            else {
                continue;
            };
            done.checked += 1;
            match check(tel, &sid).await {
                Ok(true) => done.repaired += 1,
                Ok(false) => {}
                Err(e) => {
                    done.errors += 1;
                    tracing::warn!(error = %e, call_sid = %sid, "leg check failed; tried again later");
                }
            }
        }
        match out.last_evaluated_key {
            Some(key) if done.checked < 1000 => start = Some(key),
            _ => return Ok(done),
        }
    }
}

/// Checks one agent leg; `true` when Twilio's state had to be applied.
async fn check(tel: &Telephony, sid: &str) -> ApiResult<bool> {
    let Some(owner) = store::sid_owner(&tel.app, sid).await? else {
        return Ok(false);
    };
    let (Leg::Agent, Some(transfer_id), Some(agent_id)) =
        (owner.leg, owner.transfer_id.clone(), owner.agent_id.clone())
    else {
        store::clear_leg_check(&tel.app, sid).await?;
        return Ok(false);
    };
    let tenant: TenantId = owner.tenant()?;
    let engine = Engine::new(&tel.app, &tenant);
    let open = engine
        .store
        .transfer(&transfer_id)
        .await?
        .map(|(t, _)| t)
        .filter(|t| {
            t.agent_id.as_deref() == Some(agent_id.as_str())
                && matches!(
                    t.status,
                    TransferStatus::Assigned | TransferStatus::Connected
                )
        });
    let Some(transfer) = open else {
        // The offer moved on (its reports arrived, or the transfer ended): nothing to do.
        store::clear_leg_check(&tel.app, sid).await?;
        return Ok(false);
    };
    let client = tel.client_for(&tenant).await?;
    let status = match client.fetch_call(sid).await {
        Ok(call) => TwilioStatus::parse(&call.status).unwrap_or(TwilioStatus::Queued),
        // Twilio no longer knows the leg: it is over.
        Err(TwilioFailure::Twilio(e)) if e.status == 404 => {
            if transfer.status == TransferStatus::Connected {
                TwilioStatus::Completed
            } else {
                TwilioStatus::NoAnswer
            }
        }
        Err(e) => return Err(crate::service::twilio_error(e)),
    };
    let report = StatusCallback::bare(sid, client.account_sid(), status);
    let stale = match (status, transfer.status) {
        (TwilioStatus::InProgress, TransferStatus::Assigned) => true,
        (s, _) if s.is_final() => true,
        _ => false,
    };
    if stale {
        tracing::info!(call_sid = %sid, %transfer_id, status = status.as_str(), "applying a lost report of an agent's leg");
        transfer::on_agent_leg(tel, &tenant, &transfer_id, &agent_id, &report).await?;
    }
    if status.is_final() {
        store::clear_leg_check(&tel.app, sid).await?;
    } else {
        store::push_leg_check(tel, sid).await?;
    }
    Ok(stale)
}

/// The GSI3 attributes that make an agent leg's owner item a check due in `seconds`.
pub fn check_attributes(seconds: u64, call_sid: &str) -> [(String, AttributeValue); 2] {
    let due = clock::rfc3339(
        clock::now() + time::Duration::seconds(i64::try_from(seconds).unwrap_or(60)),
    );
    [
        (keys::GSI3PK.to_owned(), s(LEG_CHECKS_PK)),
        (keys::GSI3SK.to_owned(), s(check_sk(&due, call_sid))),
    ]
}
