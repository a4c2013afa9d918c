//! Sign-in throttling per account and per client address.
//!
//! Each failure (wrong password, unknown email, wrong two-factor code) is counted for the
//! email and for the address. Past the allowed failures, each further one doubles the wait
//! (1 s, 2 s, 4 s, … up to `LOGIN_MAX_LOCK_SECONDS`) during which sign-in answers 429 with
//! `Retry-After`, even with the right password. Failures are forgotten after a quiet window
//! and a successful sign-in clears the account's count, so a real user is never locked out
//! for longer than the cap.

use serde::{Deserialize, Serialize};
use vocelio_shared::dynamo::{from_record, record_item, s, sdk_error};
use vocelio_shared::keys::{EXPIRES_AT, PK, SK};
use vocelio_shared::{ApiError, ApiResult, AppState, clock};

use crate::password::sha256_hex;
use crate::settings::AccountsSettings;

/// A counter of failures (times in epoch milliseconds).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Counter {
    failures: u32,
    last_failure_ms: i64,
    locked_until_ms: i64,
}

fn now_ms() -> i64 {
    (clock::now().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Which counter.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    /// An email (stored by digest).
    Account(&'a str),
    /// A client address.
    Address(&'a str),
}

impl Subject<'_> {
    fn pk(&self) -> String {
        match self {
            Self::Account(email) => format!("THROTTLE#ACCOUNT#{}", sha256_hex(email)),
            Self::Address(ip) => format!("THROTTLE#ADDRESS#{ip}"),
        }
    }

    fn allowed(&self, settings: &AccountsSettings) -> u32 {
        match self {
            Self::Account(_) => settings.account_failures,
            Self::Address(_) => settings.address_failures,
        }
    }
}

/// The wait after `failures` failures when `allowed` are free: none, then 1 s doubling.
pub fn lock_seconds(failures: u32, allowed: u32, cap: i64) -> i64 {
    if failures < allowed {
        return 0;
    }
    let over = (failures - allowed).min(30);
    (1i64 << over).min(cap)
}

async fn read(state: &AppState, subject: Subject<'_>) -> ApiResult<Counter> {
    match crate::store::get(state, subject.pk(), "THROTTLE").await? {
        Some(item) => from_record(item),
        None => Ok(Counter::default()),
    }
}

/// 429 with `Retry-After` when the account or the address must wait.
pub async fn check(state: &AppState, subjects: &[Subject<'_>]) -> ApiResult<()> {
    let now = now_ms();
    let mut wait_ms = 0;
    for subject in subjects {
        let counter = read(state, *subject).await?;
        wait_ms = wait_ms.max(counter.locked_until_ms - now);
    }
    if wait_ms > 0 {
        let wait = (wait_ms + 999) / 1000;
        return Err(ApiError::Limited {
            code: "too_many_attempts",
            message: format!("too many failed sign-ins; try again in {wait} s"),
            retry_after_seconds: Some(wait as u64),
        });
    }
    Ok(())
}

/// Counts one failure for each subject.
pub async fn fail(
    state: &AppState,
    settings: &AccountsSettings,
    subjects: &[Subject<'_>],
) -> ApiResult<()> {
    let now = now_ms();
    for subject in subjects {
        let mut counter = read(state, *subject).await?;
        if now - counter.last_failure_ms > settings.failure_window_seconds * 1000 {
            counter = Counter::default();
        }
        counter.failures += 1;
        counter.last_failure_ms = now;
        let lock = lock_seconds(
            counter.failures,
            subject.allowed(settings),
            settings.max_lock_seconds,
        );
        if lock > 0 {
            counter.locked_until_ms = now + lock * 1000;
        }
        let mut item = record_item(&counter, vec![(PK, subject.pk()), (SK, "THROTTLE".into())])?;
        item.insert(
            EXPIRES_AT.into(),
            vocelio_shared::dynamo::n(
                now / 1000 + settings.failure_window_seconds + settings.max_lock_seconds,
            ),
        );
        state
            .db
            .put_item()
            .table_name(state.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(sdk_error)?;
    }
    Ok(())
}

/// Clears an account's failures after a successful sign-in.
pub async fn clear(state: &AppState, subject: Subject<'_>) -> ApiResult<()> {
    state
        .db
        .delete_item()
        .table_name(state.table())
        .key(PK, s(subject.pk()))
        .key(SK, s("THROTTLE"))
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_past_the_allowance_and_stop_at_the_cap() {
        assert_eq!(lock_seconds(4, 5, 900), 0);
        assert_eq!(lock_seconds(5, 5, 900), 1);
        assert_eq!(lock_seconds(6, 5, 900), 2);
        assert_eq!(lock_seconds(9, 5, 900), 16);
        assert_eq!(lock_seconds(40, 5, 900), 900);
        assert_eq!(lock_seconds(u32::MAX, 5, 900), 900);
    }
}
