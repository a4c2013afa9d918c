//! The tenant-wide do-not-call check: one GetItem per number, read by every function that
//! dials (telephony) and by the contacts API, written only by the contacts API.

use crate::dynamo::{s, sdk_error};
use crate::error::{ApiError, ApiResult};
use crate::ids::TenantId;
use crate::keys;
use crate::state::AppState;

/// The DNC lists of `tenant` that hold `e164` (empty: the number may be called).
pub async fn lists_blocking(
    state: &AppState,
    tenant: &TenantId,
    e164: &str,
) -> ApiResult<Vec<String>> {
    let found = state
        .db
        .get_item()
        .table_name(state.table())
        .key(keys::PK, s(keys::dnc_number_pk(tenant, e164)))
        .key(keys::SK, s(keys::DNC_NUMBER_SK))
        .consistent_read(true)
        .projection_expression("#lists")
        .expression_attribute_names("#lists", keys::DNC_LISTS_ATTR)
        .send()
        .await
        .map_err(sdk_error)?;
    let mut lists: Vec<String> = found
        .item
        .and_then(|mut item| item.remove(keys::DNC_LISTS_ATTR))
        .and_then(|value| value.as_ss().ok().cloned())
        .unwrap_or_default();
    lists.sort();
    Ok(lists)
}

/// The partition and sort key of the item that says which contact of `tenant` has the
/// number `e164` (written by the contacts API: `TENANT#t#CIDX#PHONE#<+ and 3 digits>`,
/// `PHONE#<e164>`).
pub fn contact_phone_claim_key(tenant: &TenantId, e164: &str) -> (String, String) {
    let shard: String = e164.chars().take(4).collect();
    (
        format!("TENANT#{tenant}#CIDX#PHONE#{shard}"),
        format!("PHONE#{e164}"),
    )
}

/// The partition and sort key of contact `contact_id` of `tenant`.
pub fn contact_key(tenant: &TenantId, contact_id: &str) -> (String, String) {
    (
        format!("TENANT#{tenant}#CONTACTS"),
        format!("C#{contact_id}"),
    )
}

async fn get_attribute(
    state: &AppState,
    (pk, sk): (String, String),
    attribute: &str,
) -> ApiResult<Option<String>> {
    let found = state
        .db
        .get_item()
        .table_name(state.table())
        .key(keys::PK, s(pk))
        .key(keys::SK, s(sk))
        .consistent_read(true)
        .projection_expression("#a")
        .expression_attribute_names("#a", attribute)
        .send()
        .await
        .map_err(sdk_error)?;
    Ok(found
        .item
        .and_then(|mut item| item.remove(attribute))
        .and_then(|value| value.as_s().ok().cloned()))
}

/// Whether contact `contact_id` of `tenant` is marked `doNotCall`.
pub async fn contact_is_do_not_call(
    state: &AppState,
    tenant: &TenantId,
    contact_id: &str,
) -> ApiResult<bool> {
    Ok(
        get_attribute(state, contact_key(tenant, contact_id), "status")
            .await?
            .as_deref()
            == Some("doNotCall"),
    )
}

fn refused(e164: &str, why: String) -> ApiError {
    ApiError::Refused {
        code: "do_not_call",
        message: format!("{e164} {why}; the call was not placed"),
    }
}

/// `Ok` when `e164` may be called; 403 `do_not_call` when it is on one of the tenant's
/// do-not-call lists, or when the contact that has this number (or `contact_id`, the
/// contact the call is for) is marked `doNotCall`. Every path that dials a number calls
/// this (outbound calls, cold transfers, agents reached at a number). Reads are strongly
/// consistent: a number added a moment ago is already refused.
pub async fn ensure_callable_for(
    state: &AppState,
    tenant: &TenantId,
    e164: &str,
    contact_id: Option<&str>,
) -> ApiResult<()> {
    // The registry, the number's contact and the named contact: independent reads, at once.
    let named = async {
        match contact_id {
            Some(id) => contact_is_do_not_call(state, tenant, id).await,
            None => Ok(false),
        }
    };
    let (lists, owner, named) = tokio::join!(
        lists_blocking(state, tenant, e164),
        get_attribute(state, contact_phone_claim_key(tenant, e164), "contactId"),
        named,
    );
    let lists = lists?;
    if !lists.is_empty() {
        return Err(refused(
            e164,
            format!("is on a do-not-call list ({})", lists.join(", ")),
        ));
    }
    if named? {
        let contact = contact_id.unwrap_or_default();
        return Err(refused(
            e164,
            format!("is for contact {contact}, marked do-not-call"),
        ));
    }
    if let Some(contact) = owner?
        && contact_is_do_not_call(state, tenant, &contact).await?
    {
        return Err(refused(
            e164,
            format!("belongs to contact {contact}, marked do-not-call"),
        ));
    }
    Ok(())
}

/// [`ensure_callable_for`] with no contact named by the request.
pub async fn ensure_callable(state: &AppState, tenant: &TenantId, e164: &str) -> ApiResult<()> {
    ensure_callable_for(state, tenant, e164, None).await
}
