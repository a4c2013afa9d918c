//! `GET /analytics/transfers`: what happened to transfers in a period, read by one bounded
//! Query (at most 90 days) over the tenant's transfers-by-time and calls-by-time indexes.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use vocelio_shared::extract::QueryParams;
use vocelio_shared::{ApiError, ApiResult, AppState, AuthUser, clock, directory};

use crate::engine::Engine;
use crate::model::{Call, Transfer, TransferStatus, parse_time, round2, seconds_between};

/// `?from=&to=&department=`.
#[derive(Debug, Deserialize)]
pub struct Params {
    from: Option<String>,
    to: Option<String>,
    department: Option<String>,
}

/// Counts and timings of a set of transfers and calls.
#[derive(Debug, Default)]
struct Tally {
    requested: usize,
    assigned: usize,
    queued: usize,
    connected: usize,
    completed: usize,
    cancelled: usize,
    failed: usize,
    declined: usize,
    waits: Vec<u64>,
    handles: Vec<u64>,
    ai_minutes: f64,
    human_minutes: f64,
    cost_ai: f64,
    cost_human: f64,
    calls: usize,
}

impl Tally {
    fn add_transfer(&mut self, t: &Transfer) {
        self.requested += 1;
        self.declined += t.declined_by.len();
        match t.status {
            TransferStatus::Queued => self.queued += 1,
            TransferStatus::Assigned => self.assigned += 1,
            TransferStatus::Connected => self.connected += 1,
            TransferStatus::Completed => self.completed += 1,
            TransferStatus::Cancelled => self.cancelled += 1,
            TransferStatus::Failed => self.failed += 1,
        }
        let requested = parse_time(&t.requested_at);
        if let (Some(r), Some(a)) = (requested, t.accepted_at.as_deref().and_then(parse_time)) {
            self.waits.push(seconds_between(r, a));
        }
        if let (Some(a), Some(e), TransferStatus::Completed) = (
            t.accepted_at.as_deref().and_then(parse_time),
            t.ended_at.as_deref().and_then(parse_time),
            t.status,
        ) {
            self.handles.push(seconds_between(a, e));
        }
    }

    fn add_call(&mut self, c: &Call) {
        if c.status.is_ended() {
            self.calls += 1;
            self.ai_minutes += c.ai_minutes;
            self.human_minutes += c.transfer_minutes;
            self.cost_ai += c.cost_ai;
            self.cost_human += c.cost_human;
        }
    }

    fn json(&mut self) -> Value {
        let ended = self.completed + self.cancelled + self.failed;
        json!({
            "requested": self.requested,
            "queued_now": self.queued,
            "offered_now": self.assigned,
            "connected_now": self.connected,
            "completed": self.completed,
            "cancelled": self.cancelled,
            "failed": self.failed,
            "declined": self.declined,
            "completion_rate": if ended == 0 { Value::Null } else { json!(round2(self.completed as f64 / ended as f64)) },
            "wait_seconds": percentiles(&mut self.waits),
            "handle_seconds": percentiles(&mut self.handles),
            "calls_ended": self.calls,
            "ai_minutes": round2(self.ai_minutes),
            "human_minutes": round2(self.human_minutes),
            "cost_ai": round2(self.cost_ai),
            "cost_human": round2(self.cost_human),
        })
    }
}

/// p50, p90, max and mean of a sample (exact, nearest-rank).
fn percentiles(samples: &mut [u64]) -> Value {
    if samples.is_empty() {
        return json!({"count": 0, "p50": null, "p90": null, "max": null, "mean": null});
    }
    samples.sort_unstable();
    let rank =
        |q: f64| samples[((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1];
    json!({
        "count": samples.len(),
        "p50": rank(0.5),
        "p90": rank(0.9),
        "max": samples[samples.len() - 1],
        "mean": round2(samples.iter().sum::<u64>() as f64 / samples.len() as f64),
    })
}

/// The analytics answer.
pub async fn transfers(
    State(state): State<AppState>,
    user: AuthUser,
    QueryParams(params): QueryParams<Params>,
) -> ApiResult<Json<Value>> {
    let now = clock::now();
    let (from, to) = crate::requests::period(params.from.as_deref(), params.to.as_deref(), 7, now)?;
    let department = match params.department.as_deref().filter(|d| !d.is_empty()) {
        Some(d) => Some(
            directory::resolve(&state, &user.tenant, d)
                .await?
                .ok_or_else(|| {
                    ApiError::field("department", "no department has this id or name")
                })?,
        ),
        None => None,
    };
    let (from_text, to_text) = (clock::rfc3339(from), clock::rfc3339(to));
    let engine = Engine::new(&state, &user.tenant);
    let transfers = engine.store.transfers_between(&from_text, &to_text).await?;
    let calls = engine.store.calls_between(&from_text, &to_text).await?;
    let names: BTreeMap<String, String> = directory::departments(&state, &user.tenant)
        .await?
        .into_iter()
        .map(|d| (d.id, d.name))
        .collect();

    let mut total = Tally::default();
    let mut by_department: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_day: BTreeMap<String, Tally> = BTreeMap::new();
    for t in transfers
        .iter()
        .filter(|t| department.as_deref().is_none_or(|d| t.department_id == d))
    {
        total.add_transfer(t);
        by_department
            .entry(t.department_id.clone())
            .or_default()
            .add_transfer(t);
        by_day
            .entry(t.requested_at.chars().take(10).collect())
            .or_default()
            .add_transfer(t);
    }
    for c in &calls {
        let in_department = department.as_deref().is_none_or(|d| {
            c.current_department.as_deref() == Some(d)
                || c.transfers.iter().any(|t| t.department_id == d)
        });
        if in_department {
            total.add_call(c);
            by_day
                .entry(c.start_time.chars().take(10).collect())
                .or_default()
                .add_call(c);
            if let Some(d) = &c.current_department {
                by_department.entry(d.clone()).or_default().add_call(c);
            }
        }
    }
    Ok(Json(json!({
        "from": from_text,
        "to": to_text,
        "department": department,
        "totals": total.json(),
        "by_department": by_department.iter_mut().map(|(id, t)| {
            let mut row = t.json();
            row["department_id"] = json!(id);
            row["name"] = json!(names.get(id));
            row
        }).collect::<Vec<_>>(),
        "by_day": by_day.iter_mut().map(|(day, t)| {
            let mut row = t.json();
            row["day"] = json!(day);
            row
        }).collect::<Vec<_>>(),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = vec![10, 1, 2, 3, 4, 5, 6, 7, 8, 9];
        let p = percentiles(&mut s);
        assert_eq!(p["p50"], 5);
        assert_eq!(p["p90"], 9);
        assert_eq!(p["max"], 10);
        assert_eq!(percentiles(&mut [])["count"], 0);
    }
}
