//! Password-guessing throttles: sign-in, and the password checks of signed-in routes.
//!
//! Every attempt is counted *before* the password is verified, with one atomic update per
//! counter, so a burst of parallel guesses is counted whole. Counters live per hour: what
//! happened in an earlier hour is forgotten.
//!
//! - Per email **and** client address: 5 attempts are free; past them, each attempt must
//!   wait for the previous one's lock (1 s, doubling, up to `LOGIN_MAX_LOCK_SECONDS`), and
//!   only one attempt takes each slot (429 with `Retry-After` for the others). Only the
//!   guesser's own address is locked, so nobody can lock a real user out.
//! - Per client address (all emails): 50 attempts are free, then the same locks.
//! - Per email (all addresses): never refused; past 20 attempts in the hour, each one is
//!   slowed down (250 ms more per attempt, up to 3 s), which a distributed guesser pays and
//!   a real user barely notices.
//!
//! A successful sign-in gives its attempt back to every counter.

use aws_sdk_dynamodb::types::ReturnValue;
use vocelio_shared::dynamo::{n, s, sdk_error};
use vocelio_shared::keys::{EXPIRES_AT, PK, SK};
use vocelio_shared::{ApiError, ApiResult, AppState, clock};

use crate::password::sha256_hex;
use crate::settings::AccountsSettings;

/// Attempts of one email, all addresses together, before each one is slowed down.
const SLOW_DOWN_AFTER: u32 = 20;

fn now_ms() -> i64 {
    (clock::now().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The wait after `attempts` attempts when `allowed` are free: none, then 1 s doubling.
pub fn lock_seconds(attempts: u32, allowed: u32, cap: i64) -> i64 {
    if attempts <= allowed {
        return 0;
    }
    let over = (attempts - allowed - 1).min(30);
    (1i64 << over).min(cap)
}

/// The slow-down of the `attempts`-th attempt on one email from all addresses.
pub fn slow_down(attempts: u32) -> std::time::Duration {
    let over = attempts.saturating_sub(SLOW_DOWN_AFTER);
    std::time::Duration::from_millis(u64::from(over.min(12)) * 250)
}

/// The counters one password attempt touches.
#[derive(Debug, Clone)]
pub struct Attempt {
    pair: String,
    address: String,
    account: String,
    hour: i64,
}

impl Attempt {
    /// The attempt of `email` from `address` in the current hour.
    pub fn new(email: &str, address: &str) -> Self {
        let digest = sha256_hex(email);
        Self {
            pair: format!("THROTTLE#PAIR#{digest}#{address}"),
            address: format!("THROTTLE#ADDRESS#{address}"),
            account: format!("THROTTLE#ACCOUNT#{digest}"),
            hour: clock::now().unix_timestamp() / 3600,
        }
    }

    fn sk(&self) -> String {
        format!("HOUR#{}", self.hour)
    }

    /// Counts the attempt (before the password is checked): 429 while the email-from-this-
    /// address or the address is locked or another attempt took the slot; sleeps when the
    /// email is under a distributed attack.
    pub async fn begin(&self, state: &AppState, settings: &AccountsSettings) -> ApiResult<()> {
        let cap = settings.max_lock_seconds;
        let (pair, address, account) = tokio::join!(
            self.count(state, &self.pair),
            self.count(state, &self.address),
            self.count(state, &self.account),
        );
        for (counted, allowed) in [
            (pair?, settings.account_failures),
            (address?, settings.address_failures),
        ] {
            if let Counted::Locked(wait_ms) = counted {
                return Err(limited(wait_ms));
            }
            if let Counted::Attempts(attempts, key) = counted {
                let lock = lock_seconds(attempts, allowed, cap);
                if lock > 0 {
                    self.take_slot(state, &key, lock).await?;
                }
            }
        }
        if let Counted::Attempts(attempts, _) = account? {
            let pause = slow_down(attempts);
            if !pause.is_zero() {
                tokio::time::sleep(pause).await;
            }
        }
        Ok(())
    }

    /// Gives the attempt back after a success (the pair's failures are forgotten).
    pub async fn succeeded(&self, state: &AppState) -> ApiResult<()> {
        let (pair, address, account) = tokio::join!(
            state
                .db
                .delete_item()
                .table_name(state.table())
                .key(PK, s(&self.pair))
                .key(SK, s(self.sk()))
                .send(),
            self.give_back(state, &self.address),
            self.give_back(state, &self.account),
        );
        pair.map_err(sdk_error)?;
        address?;
        account?;
        Ok(())
    }

    async fn count(&self, state: &AppState, pk: &str) -> ApiResult<Counted> {
        let now = now_ms();
        let result = state
            .db
            .update_item()
            .table_name(state.table())
            .key(PK, s(pk))
            .key(SK, s(self.sk()))
            .update_expression("ADD attempts :one SET #exp = :exp")
            .condition_expression(
                "attribute_not_exists(locked_until_ms) OR locked_until_ms <= :now",
            )
            .expression_attribute_names("#exp", EXPIRES_AT)
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":exp", n((self.hour + 2) * 3600))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(
                aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld,
            )
            .send()
            .await;
        match result {
            Ok(out) => {
                let attempts = out
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get("attempts"))
                    .and_then(|v| v.as_n().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(1);
                Ok(Counted::Attempts(attempts, pk.to_owned()))
            }
            Err(err) => {
                if let Some(failed) = err.as_service_error()
                    && failed.is_conditional_check_failed_exception()
                {
                    let until = match failed {
                        aws_sdk_dynamodb::operation::update_item::UpdateItemError::ConditionalCheckFailedException(e) => e
                            .item()
                            .and_then(|i| i.get("locked_until_ms"))
                            .and_then(|v| v.as_n().ok())
                            .and_then(|v| v.parse::<i64>().ok())
                            .unwrap_or(now + 1000),
                        _ => now + 1000,
                    };
                    return Ok(Counted::Locked(until - now));
                }
                Err(sdk_error(err))
            }
        }
    }

    /// Past the free attempts, one attempt per lock period: this one sets the next lock if
    /// the last has expired, else it is refused.
    async fn take_slot(&self, state: &AppState, pk: &str, lock_seconds: i64) -> ApiResult<()> {
        let now = now_ms();
        let result = state
            .db
            .update_item()
            .table_name(state.table())
            .key(PK, s(pk))
            .key(SK, s(self.sk()))
            .update_expression("SET locked_until_ms = :until")
            .condition_expression(
                "attribute_not_exists(locked_until_ms) OR locked_until_ms <= :now",
            )
            .expression_attribute_values(":until", n(now + lock_seconds * 1000))
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if vocelio_shared::dynamo::is_condition_failure(&err) => Err(limited(1000)),
            Err(err) => Err(sdk_error(err)),
        }
    }

    async fn give_back(&self, state: &AppState, pk: &str) -> ApiResult<()> {
        let result = state
            .db
            .update_item()
            .table_name(state.table())
            .key(PK, s(pk))
            .key(SK, s(self.sk()))
            .update_expression("ADD attempts :minus")
            .condition_expression("attempts > :zero")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if vocelio_shared::dynamo::is_condition_failure(&err) => Ok(()),
            Err(err) => Err(sdk_error(err)),
        }
    }
}

enum Counted {
    Attempts(u32, String),
    Locked(i64),
}

fn limited(wait_ms: i64) -> ApiError {
    let wait = ((wait_ms.max(1) + 999) / 1000) as u64;
    ApiError::Limited {
        code: "too_many_attempts",
        message: format!("too many failed attempts; try again in {wait} s"),
        retry_after_seconds: Some(wait),
    }
}

/// A fixed hourly allowance of an unauthenticated, costly action (sign-up, password reset:
/// each hashes a password) per client address: 429 with `Retry-After` past `per_hour`.
pub async fn allow(state: &AppState, action: &str, address: &str, per_hour: u32) -> ApiResult<()> {
    let now = clock::now().unix_timestamp();
    let hour = now / 3600;
    let counted = state
        .db
        .update_item()
        .table_name(state.table())
        .key(PK, s(format!("THROTTLE#{action}#{address}")))
        .key(SK, s(format!("HOUR#{hour}")))
        .update_expression("ADD attempts :one SET #exp = :exp")
        .condition_expression("attribute_not_exists(attempts) OR attempts < :limit")
        .expression_attribute_names("#exp", EXPIRES_AT)
        .expression_attribute_values(":one", n(1))
        .expression_attribute_values(":limit", n(per_hour))
        .expression_attribute_values(":exp", n((hour + 2) * 3600))
        .send()
        .await;
    match counted {
        Ok(_) => Ok(()),
        Err(err) if vocelio_shared::dynamo::is_condition_failure(&err) => {
            let wait = (hour + 1) * 3600 - now;
            Err(ApiError::Limited {
                code: "too_many_attempts",
                message: format!("too many attempts from this address; try again in {wait} s"),
                retry_after_seconds: Some(wait.max(1) as u64),
            })
        }
        Err(err) => Err(sdk_error(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_past_the_allowance_and_stop_at_the_cap() {
        assert_eq!(lock_seconds(5, 5, 900), 0);
        assert_eq!(lock_seconds(6, 5, 900), 1);
        assert_eq!(lock_seconds(7, 5, 900), 2);
        assert_eq!(lock_seconds(10, 5, 900), 16);
        assert_eq!(lock_seconds(40, 5, 900), 900);
        assert_eq!(lock_seconds(u32::MAX, 5, 900), 900);
    }

    #[test]
    fn a_distributed_guesser_is_slowed_never_refused() {
        assert!(slow_down(20).is_zero());
        assert_eq!(slow_down(21), std::time::Duration::from_millis(250));
        assert_eq!(slow_down(10_000), std::time::Duration::from_secs(3));
    }
}
