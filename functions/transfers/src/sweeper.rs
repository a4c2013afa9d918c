//! Timers: offers not accepted in time are re-routed, wrap-ups that have run out end. On AWS a
//! scheduled function runs [`sweep`] every minute; the local stack runs it every second.

use aws_sdk_dynamodb::types::AttributeValue;
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiResult, AppState, clock, keys};

use crate::engine::Engine;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Swept {
    pub offers_expired: usize,
    pub wrap_ups_ended: usize,
    pub errors: usize,
}

/// Acts on every timer that is due.
pub async fn sweep(state: &AppState) -> ApiResult<Swept> {
    let now = clock::rfc3339(clock::now());
    let mut swept = Swept::default();
    let mut start = None;
    loop {
        let out = state
            .db
            .query()
            .table_name(state.table())
            .index_name(keys::GSI3)
            .key_condition_expression("GSI3PK = :pk AND GSI3SK <= :now")
            .expression_attribute_values(":pk", AttributeValue::S(keys::TIMERS_PK.to_owned()))
            .expression_attribute_values(":now", AttributeValue::S(format!("{now}~")))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(vocelio_shared::dynamo::sdk_error)?;
        for item in out.items.unwrap_or_default() {
            let Some(sk) = item.get(keys::GSI3SK).and_then(|v| v.as_s().ok()) else {
                continue;
            };
            // `<due>#<tenant>#<KIND>#<id>`; tenants and ids never contain '#'.
            let parts: Vec<&str> = sk.rsplitn(4, '#').collect();
            let [id, kind, tenant, _due] = parts.as_slice() else {
                continue;
            };
            let Ok(tenant) = TenantId::parse(tenant) else {
                continue;
            };
            let engine = Engine::new(state, &tenant);
            let result = match *kind {
                "TRANSFER" => engine
                    .decline(None, id, crate::engine::Decline::OfferTimeout)
                    .await
                    .map(|_| swept.offers_expired += 1),
                "AGENT" => engine
                    .end_wrap_up(id)
                    .await
                    .map(|_| swept.wrap_ups_ended += 1),
                _ => Ok(()),
            };
            if let Err(err) = result {
                swept.errors += 1;
                tracing::warn!(error = %err, timer = %sk, "sweep: timer not handled; retried next sweep");
            }
        }
        match out.last_evaluated_key {
            Some(key) => start = Some(key),
            None => return Ok(swept),
        }
    }
}
