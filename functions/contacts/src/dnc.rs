//! Do-not-call lists: their entries, the tenant-wide registry item per number (what every
//! dialler reads with one GetItem), scrubbing numbers or a whole contact list.

use aws_sdk_dynamodb::types::AttributeValue;
use serde::{Deserialize, Serialize};
use serde_json::json;
use vocelio_shared::dynamo::{create_action, from_record, n, record_item, s};
use vocelio_shared::events::{DomainEvent, types};
use vocelio_shared::ids::{TenantId, new_id};
use vocelio_shared::keys::{self as shared_keys, ENTITY, PK, SK};
use vocelio_shared::phone;
use vocelio_shared::{ApiError, ApiResult, AppState, FieldError, clock};

use crate::bulk;
use crate::keys;
use crate::lists::Failure;
use crate::model::{ContactStatus, DncEntry, DncList};
use crate::store::{self, Key, attr, commit_retrying, update_action};

/// The most numbers one request may add or scrub.
pub const MAX_PHONES: usize = 1000;
/// Numbers per transaction: entry + registry each, plus the list's count and the event.
const PHONES_PER_TRANSACTION: usize = 48;

/// `POST /v1/dnc-lists`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DncListBody {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
}

/// `POST /v1/dnc-lists/{id}/entries`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntriesBody {
    pub phones: Vec<String>,
}

/// `POST /v1/dnc/scrub`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScrubBody {
    #[serde(default)]
    pub list_id: Option<String>,
    #[serde(default)]
    pub phones: Option<Vec<String>>,
    /// With `listId`: also set the blocked contacts' status to `doNotCall`.
    #[serde(default)]
    pub mark_contacts: bool,
}

/// Creates a DNC list.
pub async fn create_list(
    state: &AppState,
    tenant: &TenantId,
    body: &DncListBody,
) -> ApiResult<DncList> {
    let name = body.name.trim();
    let mut errors = Vec::new();
    if name.is_empty() || name.chars().count() > 100 {
        errors.push(FieldError::new("name", "must be 1-100 characters long"));
    }
    let description = body
        .description
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty());
    if description.is_some_and(|d| d.chars().count() > 1000) {
        errors.push(FieldError::new(
            "description",
            "must be at most 1000 characters",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let now = clock::now();
    let at = clock::rfc3339(now);
    let list = DncList {
        id: new_id("dnc"),
        name: name.to_owned(),
        description: description.map(str::to_owned),
        entry_count: 0,
        created_at: at.clone(),
        updated_at: at,
    };
    let mut item = record_item(
        &list,
        vec![
            (PK, keys::dnc_lists_pk(tenant)),
            (SK, keys::dnc_list_sk(&list.id)),
        ],
    )?;
    item.insert(ENTITY.to_owned(), s("dnc_list"));
    let actions = vec![
        create_action(state.table(), item)?,
        DomainEvent::new(
            types::DNC_LIST_UPDATED,
            &json!({ "list": list, "change": "created" }),
            now,
        )?
        .put(state, tenant)?,
    ];
    commit_retrying(state, actions).await?;
    Ok(list)
}

/// Every DNC list of the tenant.
pub async fn all_lists(state: &AppState, tenant: &TenantId) -> ApiResult<Vec<DncList>> {
    let mut out = Vec::new();
    let mut start = None;
    loop {
        let page = store::query_page(
            state,
            &keys::dnc_lists_pk(tenant),
            keys::DNC_LIST_PREFIX,
            start,
            500,
            false,
        )
        .await?;
        for item in page.items {
            out.push(from_record::<DncList>(item)?);
        }
        start = page.last_key;
        if start.is_none() || out.len() >= 5000 {
            return Ok(out);
        }
    }
}

/// Reads one DNC list or answers 404.
pub async fn find_list(state: &AppState, tenant: &TenantId, id: &str) -> ApiResult<DncList> {
    if !vocelio_shared::ids::is_id("dnc", id) {
        return Err(ApiError::not_found("do-not-call list"));
    }
    store::get_item(state, &keys::dnc_lists_pk(tenant), &keys::dnc_list_sk(id))
        .await?
        .map(from_record)
        .transpose()?
        .ok_or_else(|| ApiError::not_found("do-not-call list"))
}

/// What adding numbers did.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AddOutcome {
    pub added: Vec<String>,
    pub already_listed: Vec<String>,
    pub invalid: Vec<Failure>,
    /// Contacts whose status became `doNotCall`.
    pub contacts_marked: usize,
}

/// Adds numbers to a DNC list (normalised to E.164; each once), updates the registry item of
/// each number and marks the tenant's contacts with those numbers `doNotCall`.
pub async fn add_entries(
    state: &AppState,
    tenant: &TenantId,
    user_id: &str,
    list_id: &str,
    body: &EntriesBody,
) -> ApiResult<AddOutcome> {
    if body.phones.is_empty() || body.phones.len() > MAX_PHONES {
        return Err(ApiError::field(
            "phones",
            format!("must hold 1-{MAX_PHONES} numbers"),
        ));
    }
    find_list(state, tenant, list_id).await?;
    let mut outcome = AddOutcome::default();
    let mut numbers: Vec<String> = Vec::new();
    for raw in &body.phones {
        match phone::normalize(raw, state.config.default_phone_region) {
            Ok(e164) => {
                let e164 = e164.as_str().to_owned();
                if !numbers.contains(&e164) {
                    numbers.push(e164);
                }
            }
            Err(why) => outcome.invalid.push(Failure::new(
                raw,
                "invalid_phone",
                format!("phone number {why}"),
            )),
        }
    }
    let at = clock::rfc3339(clock::now());
    for chunk in numbers.chunks(PHONES_PER_TRANSACTION) {
        let mut pending: Vec<&String> = chunk.iter().collect();
        for _round in 0..4 {
            if pending.is_empty() {
                break;
            }
            let now = clock::now();
            let mut actions = vec![update_action(
                state,
                keys::dnc_lists_pk(tenant),
                keys::dnc_list_sk(list_id),
                "ADD entryCount :count SET updatedAt = :at",
                Some("attribute_exists(PK)"),
                vec![(":count", n(pending.len())), (":at", s(&at))],
                vec![],
            )?];
            for e164 in &pending {
                let entry = DncEntry {
                    phone: (*e164).clone(),
                    list_id: list_id.to_owned(),
                    added_at: at.clone(),
                    added_by: user_id.to_owned(),
                };
                let mut item = record_item(
                    &entry,
                    vec![
                        (PK, keys::dnc_entries_pk(tenant, list_id)),
                        (SK, keys::dnc_entry_sk(e164)),
                    ],
                )?;
                item.insert(ENTITY.to_owned(), s("dnc_entry"));
                actions.push(create_action(state.table(), item)?);
                actions.push(update_action(
                    state,
                    shared_keys::dnc_number_pk(tenant, e164),
                    shared_keys::DNC_NUMBER_SK.to_owned(),
                    "ADD #lists :list SET phone = :phone, entity = :entity",
                    None,
                    vec![
                        (":list", AttributeValue::Ss(vec![list_id.to_owned()])),
                        (":phone", s(e164.as_str())),
                        (":entity", s("dnc_number")),
                    ],
                    vec![("#lists", shared_keys::DNC_LISTS_ATTR)],
                )?);
            }
            let added: Vec<&str> = pending.iter().map(|p| p.as_str()).collect();
            actions.push(
                DomainEvent::new(
                    types::DNC_LIST_UPDATED,
                    &json!({ "listId": list_id, "change": "added", "phones": added }),
                    now,
                )?
                .put(state, tenant)?,
            );
            match commit_retrying(state, actions).await? {
                None => {
                    outcome.added.extend(pending.iter().map(|p| (*p).clone()));
                    pending.clear();
                }
                Some(c) => {
                    if c.condition_failed(0) {
                        return Err(ApiError::not_found("do-not-call list"));
                    }
                    let mut keep = Vec::new();
                    for (i, e164) in pending.iter().enumerate() {
                        if c.condition_failed(1 + 2 * i) {
                            outcome.already_listed.push((*e164).clone());
                        } else {
                            keep.push(*e164);
                        }
                    }
                    pending = keep;
                }
            }
        }
    }
    outcome.contacts_marked = mark_contacts(state, tenant, &outcome.added).await?;
    Ok(outcome)
}

/// Sets the tenant's contacts with these numbers to `doNotCall`; returns how many changed.
pub async fn mark_contacts(
    state: &AppState,
    tenant: &TenantId,
    numbers: &[String],
) -> ApiResult<usize> {
    let claims: Vec<Key> = numbers
        .iter()
        .map(|p| {
            let sk = keys::phone_sk(p);
            (keys::index_pk(tenant, &sk), sk)
        })
        .collect();
    let ids: Vec<String> = store::batch_get(state, &claims)
        .await?
        .iter()
        .filter_map(|i| attr(i, "contactId").map(str::to_owned))
        .collect();
    if ids.is_empty() {
        return Ok(0);
    }
    let results = bulk::rewrite(state, tenant, &ids, |c| {
        if c.status == ContactStatus::DoNotCall {
            return Ok(false);
        }
        c.set_status(ContactStatus::DoNotCall);
        Ok(true)
    })
    .await?;
    Ok(results.iter().filter(|r| r.status == "ok").count())
}

/// Removes one number from a DNC list (404 when it is not on it). The tenant's contacts keep
/// their `doNotCall` status: making them callable again is a deliberate user action.
pub async fn remove_entry(
    state: &AppState,
    tenant: &TenantId,
    list_id: &str,
    raw_phone: &str,
) -> ApiResult<String> {
    find_list(state, tenant, list_id).await?;
    let e164 = phone::normalize(raw_phone, state.config.default_phone_region)
        .map_err(|why| ApiError::field("phone", format!("phone number {why}")))?
        .as_str()
        .to_owned();
    let now = clock::now();
    let actions = vec![
        store::delete_existing_action(
            state,
            keys::dnc_entries_pk(tenant, list_id),
            keys::dnc_entry_sk(&e164),
            None,
        )?,
        update_action(
            state,
            shared_keys::dnc_number_pk(tenant, &e164),
            shared_keys::DNC_NUMBER_SK.to_owned(),
            "DELETE #lists :list",
            None,
            vec![(":list", AttributeValue::Ss(vec![list_id.to_owned()]))],
            vec![("#lists", shared_keys::DNC_LISTS_ATTR)],
        )?,
        update_action(
            state,
            keys::dnc_lists_pk(tenant),
            keys::dnc_list_sk(list_id),
            "ADD entryCount :minus SET updatedAt = :at",
            Some("attribute_exists(PK)"),
            vec![(":minus", n(-1)), (":at", s(clock::rfc3339(now)))],
            vec![],
        )?,
        DomainEvent::new(
            types::DNC_LIST_UPDATED,
            &json!({ "listId": list_id, "change": "removed", "phones": [e164] }),
            now,
        )?
        .put(state, tenant)?,
    ];
    match commit_retrying(state, actions).await? {
        None => Ok(e164),
        Some(_) => Err(ApiError::NotFound {
            code: "not_on_list",
            message: format!("{e164} is not on this do-not-call list"),
        }),
    }
}

/// One page of a DNC list's entries.
pub async fn entries(
    state: &AppState,
    tenant: &TenantId,
    list_id: &str,
    limit: i32,
    cursor: Option<&str>,
) -> ApiResult<(Vec<DncEntry>, Option<String>)> {
    find_list(state, tenant, list_id).await?;
    let pk = keys::dnc_entries_pk(tenant, list_id);
    let start = cursor
        .map(|c| vocelio_shared::dynamo::decode_cursor(c, &[(PK, pk.as_str())]))
        .transpose()?;
    let page = store::query_page(state, &pk, keys::DNC_ENTRY_PREFIX, start, limit, false).await?;
    let entries = page
        .items
        .into_iter()
        .map(from_record)
        .collect::<ApiResult<Vec<DncEntry>>>()?;
    Ok((
        entries,
        page.last_key
            .as_ref()
            .map(vocelio_shared::dynamo::encode_cursor),
    ))
}

/// Which DNC lists hold each number: one BatchGetItem per 100 numbers.
pub async fn blocking_lists(
    state: &AppState,
    tenant: &TenantId,
    numbers: &[String],
) -> ApiResult<std::collections::HashMap<String, Vec<String>>> {
    let keys: Vec<Key> = numbers
        .iter()
        .map(|p| {
            (
                shared_keys::dnc_number_pk(tenant, p),
                shared_keys::DNC_NUMBER_SK.to_owned(),
            )
        })
        .collect();
    let mut out = std::collections::HashMap::new();
    for item in store::batch_get(state, &keys).await? {
        let lists: Vec<String> = item
            .get(shared_keys::DNC_LISTS_ATTR)
            .and_then(|v| v.as_ss().ok())
            .cloned()
            .unwrap_or_default();
        if let Some(phone) = attr(&item, "phone")
            && !lists.is_empty()
        {
            let mut lists = lists;
            lists.sort();
            out.insert(phone.to_owned(), lists);
        }
    }
    Ok(out)
}

/// Scrubs numbers, or every member of a contact list, against the tenant's DNC lists.
pub async fn scrub(
    state: &AppState,
    tenant: &TenantId,
    body: &ScrubBody,
) -> ApiResult<serde_json::Value> {
    match (&body.list_id, &body.phones) {
        (Some(_), Some(_)) | (None, None) => {
            Err(ApiError::field("body", "send either listId or phones"))
        }
        (None, Some(phones)) => {
            if phones.is_empty() || phones.len() > MAX_PHONES {
                return Err(ApiError::field(
                    "phones",
                    format!("must hold 1-{MAX_PHONES} numbers"),
                ));
            }
            let mut normalized: Vec<(String, Result<String, String>)> = Vec::new();
            for raw in phones {
                let result = phone::normalize(raw, state.config.default_phone_region)
                    .map(|e| e.as_str().to_owned())
                    .map_err(|why| format!("phone number {why}"));
                normalized.push((raw.clone(), result));
            }
            let valid: Vec<String> = normalized
                .iter()
                .filter_map(|(_, r)| r.as_ref().ok().cloned())
                .collect();
            let blocked = blocking_lists(state, tenant, &valid).await?;
            let results: Vec<serde_json::Value> = normalized
                .iter()
                .map(|(input, result)| match result {
                    Ok(e164) => {
                        let lists = blocked.get(e164).cloned().unwrap_or_default();
                        json!({ "input": input, "phone": e164, "blocked": !lists.is_empty(), "lists": lists })
                    }
                    Err(message) => json!({ "input": input, "phone": null, "blocked": false, "error": { "code": "invalid_phone", "message": message } }),
                })
                .collect();
            let blocked_count = results.iter().filter(|r| r["blocked"] == true).count();
            Ok(json!({ "checked": phones.len(), "blocked": blocked_count, "results": results }))
        }
        (Some(list_id), None) => {
            crate::lists::find(state, tenant, list_id).await?;
            let pk = keys::members_pk(tenant, list_id);
            let mut start = None;
            let mut checked = 0usize;
            let mut hits: Vec<serde_json::Value> = Vec::new();
            let mut blocked_numbers = Vec::new();
            loop {
                let page =
                    store::query_page(state, &pk, keys::MEMBER_PREFIX, start, 100, true).await?;
                let ids: Vec<String> = page
                    .items
                    .iter()
                    .filter_map(|i| attr(i, SK))
                    .filter_map(|sk| sk.strip_prefix(keys::MEMBER_PREFIX))
                    .map(str::to_owned)
                    .collect();
                let contacts = store::contacts(state, tenant, &ids).await?;
                checked += contacts.len();
                let numbers: Vec<String> = contacts.iter().map(|c| c.phone.clone()).collect();
                let blocked = blocking_lists(state, tenant, &numbers).await?;
                for contact in &contacts {
                    if let Some(lists) = blocked.get(&contact.phone) {
                        hits.push(json!({ "contactId": contact.id, "phone": contact.phone, "status": contact.status.as_str(), "lists": lists }));
                        blocked_numbers.push(contact.phone.clone());
                    }
                }
                start = page.last_key;
                if start.is_none() {
                    break;
                }
            }
            let marked = if body.mark_contacts {
                mark_contacts(state, tenant, &blocked_numbers).await?
            } else {
                0
            };
            Ok(
                json!({ "listId": list_id, "checked": checked, "blocked": hits.len(), "contactsMarked": marked, "results": hits }),
            )
        }
    }
}
