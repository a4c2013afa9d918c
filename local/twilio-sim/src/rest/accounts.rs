//! `Accounts.json` (create a subaccount, list) and `Accounts/{AC}.json` (fetch, update).
//!
//! The main account is the configured one; only it creates, suspends, reactivates and
//! closes subaccounts. A subaccount sees (and may rename) only itself.

use axum::http::StatusCode;

use super::{Reply, Request, render};
use crate::errors::{ApiError, INVALID_PARAMETER};
use crate::state::{Account, AccountStatus};
use crate::util;

/// Twilio's limit on friendly names.
pub(crate) const MAX_FRIENDLY_NAME: usize = 64;

/// `FriendlyName`: at most 64 characters (400 20001).
pub(crate) fn friendly_name(request: &Request<'_>) -> Result<Option<String>, ApiError> {
    match request.params.get("FriendlyName") {
        Some(name) if name.chars().count() > MAX_FRIENDLY_NAME => Err(ApiError::bad_request(
            INVALID_PARAMETER,
            format!("FriendlyName must be at most {MAX_FRIENDLY_NAME} characters"),
        )),
        other => Ok(other.map(str::to_owned)),
    }
}

/// `POST Accounts.json` (`FriendlyName`): 201 with a new active subaccount of the main
/// account. A subaccount's credentials get 401 20003.
pub(crate) fn create(request: &Request<'_>) -> Result<Reply, ApiError> {
    let name = friendly_name(request)?;
    let mut state = request.sim.lock();
    if !state.account(&request.user).is_some_and(Account::is_main) {
        return Err(ApiError::authenticate());
    }
    let name = name.unwrap_or_else(|| util::default_subaccount_name(util::now()));
    let account = Account::sub(&request.user, name);
    let body = render::account(&account);
    state.accounts.push(account);
    Ok(Reply::Json(StatusCode::CREATED, body))
}

/// `GET Accounts.json?FriendlyName=&Status=`: the authenticated account and its
/// subaccounts (a subaccount sees only itself), in creation order.
pub(crate) fn list(request: &Request<'_>) -> Result<Reply, ApiError> {
    let params = &request.params;
    let status = params
        .one_of("Status", &["active", "suspended", "closed"])?
        .and_then(|s| AccountStatus::parse(&s));
    let name = params.get("FriendlyName");
    let state = request.sim.lock();
    let accounts = state
        .accounts
        .iter()
        .filter(|a| a.sid == request.user || (a.owner == request.user && !a.is_main()))
        .filter(|a| name.is_none_or(|n| a.friendly_name == n))
        .filter(|a| status.is_none_or(|s| a.status == s))
        .map(render::account)
        .collect();
    Ok(Reply::Json(
        StatusCode::OK,
        render::page(request.path, "accounts", accounts),
    ))
}

/// `GET Accounts/{AC}.json` (the router checked the user may see it).
pub(crate) fn fetch(request: &Request<'_>, sid: &str) -> Result<Reply, ApiError> {
    let state = request.sim.lock();
    let account = state
        .account(sid)
        .ok_or_else(|| ApiError::not_found(request.path))?;
    Ok(Reply::Json(StatusCode::OK, render::account(account)))
}

/// `POST Accounts/{AC}.json`: `FriendlyName` (the account itself or its parent), `Status`
/// (`active`, `suspended`, `closed`; only the parent, on a subaccount: its own credentials
/// get 401 20003, the main account's own status 400 20001). `closed` is final (400 20001
/// afterwards) and releases the account's numbers.
pub(crate) fn update(request: &Request<'_>, sid: &str) -> Result<Reply, ApiError> {
    let name = friendly_name(request)?;
    let status = request
        .params
        .one_of("Status", &["active", "suspended", "closed"])?
        .and_then(|s| AccountStatus::parse(&s));
    let mut state = request.sim.lock();
    let account = state
        .account(sid)
        .ok_or_else(|| ApiError::not_found(request.path))?;
    if let Some(status) = status
        && status != account.status
    {
        if account.is_main() {
            return Err(ApiError::bad_request(
                INVALID_PARAMETER,
                "The main account's status cannot be changed",
            ));
        }
        if account.owner != request.user {
            return Err(ApiError::authenticate());
        }
        if account.status == AccountStatus::Closed {
            return Err(ApiError::bad_request(
                INVALID_PARAMETER,
                "A closed account cannot be reopened",
            ));
        }
    }
    if status == Some(AccountStatus::Closed) {
        state.numbers.retain(|n| n.account_sid != sid);
    }
    let account = state
        .account_mut(sid)
        .ok_or_else(|| ApiError::not_found(request.path))?;
    if let Some(name) = name {
        account.friendly_name = name;
    }
    if let Some(status) = status {
        account.status = status;
    }
    account.updated = util::now();
    Ok(Reply::Json(StatusCode::OK, render::account(account)))
}
