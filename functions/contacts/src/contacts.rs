//! Contacts: create, read, replace, patch, delete; listing with filters and page numbers or
//! cursors; search through the index items (phone, email, name prefix) — never a Scan.

use std::collections::{BTreeMap, HashSet};

use aws_sdk_dynamodb::types::TransactWriteItem;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use vocelio_shared::dynamo::{Item, create_action, decode_cursor, encode_cursor, n, s};
use vocelio_shared::events::{DomainEvent, types};
use vocelio_shared::ids::{TenantId, new_id};
use vocelio_shared::keys::{ENTITY, PK, SK};
use vocelio_shared::phone;
use vocelio_shared::{ApiError, ApiResult, AppState, FieldError, clock};

use crate::input::{ContactBody, ContactFields, NameRule, validate};
use crate::keys::{self, fold};
use crate::lists;
use crate::model::{Contact, ContactStatus, ListStatus, MAX_LISTS_PER_CONTACT};
use crate::store::{
    self, CountDelta, attr, commit_retrying, contact_delete_actions, contact_write_actions,
    phone_taken, update_action,
};

/// A contact built from checked fields.
pub fn new_contact(
    fields: ContactFields,
    source: &str,
    import_job_id: Option<String>,
    at: &str,
) -> Contact {
    let mut contact = Contact {
        id: new_id("con"),
        first_name: fields.first_name,
        last_name: fields.last_name,
        phone: fields.phone,
        phone_type: fields.phone_type,
        email: fields.email,
        company: fields.company,
        tags: fields.tags,
        custom_fields: fields.custom_fields,
        notes: fields.notes,
        status: ContactStatus::Active,
        do_not_call: false,
        list_ids: Vec::new(),
        source: source.to_owned(),
        import_job_id,
        created_at: at.to_owned(),
        updated_at: at.to_owned(),
        version: 1,
    };
    contact.set_status(fields.status.unwrap_or(ContactStatus::Active));
    contact
}

/// Replaces the editable fields of `contact` with `fields` (status kept when not given).
pub fn apply_fields(contact: &mut Contact, fields: ContactFields, at: &str) {
    contact.first_name = fields.first_name;
    contact.last_name = fields.last_name;
    contact.phone = fields.phone;
    contact.phone_type = fields.phone_type;
    contact.email = fields.email;
    contact.company = fields.company;
    contact.tags = fields.tags;
    contact.custom_fields = fields.custom_fields;
    contact.notes = fields.notes;
    if let Some(status) = fields.status {
        contact.set_status(status);
    }
    contact.updated_at = at.to_owned();
    contact.version += 1;
}

/// Reads a contact or answers 404.
pub async fn find(state: &AppState, tenant: &TenantId, id: &str) -> ApiResult<Contact> {
    store::contact(state, tenant, id)
        .await?
        .ok_or_else(|| ApiError::not_found("contact"))
}

fn membership_actions_for_new(
    state: &AppState,
    tenant: &TenantId,
    contact: &Contact,
    at: &str,
) -> ApiResult<Vec<TransactWriteItem>> {
    let mut actions = Vec::new();
    for list_id in &contact.list_ids {
        let member: Item = [
            (PK.to_owned(), s(keys::members_pk(tenant, list_id))),
            (SK.to_owned(), s(keys::member_sk(&contact.id))),
            (ENTITY.to_owned(), s("contact_list_member")),
            ("contactId".to_owned(), s(&contact.id)),
            ("addedAt".to_owned(), s(at)),
        ]
        .into_iter()
        .collect();
        actions.push(create_action(state.table(), member)?);
        actions.push(update_action(
            state,
            keys::lists_pk(tenant),
            keys::list_sk(list_id),
            "ADD contactCount :one",
            Some("attribute_exists(PK) AND #status = :active"),
            vec![(":one", n(1)), (":active", s(ListStatus::Active.as_str()))],
            vec![("#status", "status")],
        )?);
    }
    Ok(actions)
}

/// Checks `listIds` of a new contact: known, active lists, at most the limit.
async fn check_list_ids(
    state: &AppState,
    tenant: &TenantId,
    list_ids: &[String],
) -> ApiResult<Vec<String>> {
    let mut unique: Vec<String> = Vec::new();
    for id in list_ids {
        if !unique.contains(id) {
            unique.push(id.clone());
        }
    }
    if unique.len() > MAX_LISTS_PER_CONTACT {
        return Err(ApiError::field(
            "listIds",
            format!("must have at most {MAX_LISTS_PER_CONTACT} entries"),
        ));
    }
    let mut errors = Vec::new();
    for (i, id) in unique.iter().enumerate() {
        match lists::get(state, tenant, id).await? {
            Some(list) if list.status == ListStatus::Active => {}
            Some(_) => errors.push(FieldError::new(
                format!("listIds[{i}]"),
                "the list is archived",
            )),
            None => errors.push(FieldError::new(
                format!("listIds[{i}]"),
                "no contact list has this id",
            )),
        }
    }
    if errors.is_empty() {
        Ok(unique)
    } else {
        Err(ApiError::fields(errors))
    }
}

/// Creates a contact (phone unique in the tenant; on a DNC list → `doNotCall`); `extra`
/// joins the transaction (the idempotency record).
pub async fn create(
    state: &AppState,
    tenant: &TenantId,
    body: &ContactBody,
    extra: impl FnOnce(&Contact) -> ApiResult<Vec<TransactWriteItem>>,
) -> ApiResult<Contact> {
    let fields = validate(
        body.raw(),
        state.config.default_phone_region,
        NameRule::Required,
    )
    .map_err(ApiError::fields)?;
    let list_ids =
        check_list_ids(state, tenant, body.list_ids.as_deref().unwrap_or_default()).await?;
    let now = clock::now();
    let at = clock::rfc3339(now);
    let mut contact = new_contact(fields, "api", None, &at);
    contact.list_ids = list_ids;
    if !vocelio_shared::dnc::lists_blocking(state, tenant, &contact.phone)
        .await?
        .is_empty()
    {
        contact.set_status(ContactStatus::DoNotCall);
    }
    let (mut actions, slots) = contact_write_actions(state, tenant, None, &contact, 0)?;
    let mut delta = CountDelta::default();
    delta.record(None, Some(contact.status));
    actions.extend(delta.action(state, tenant)?);
    actions.extend(membership_actions_for_new(state, tenant, &contact, &at)?);
    actions
        .push(DomainEvent::new(types::CONTACT_CREATED, &contact.view(), now)?.put(state, tenant)?);
    actions.extend(extra(&contact)?);
    match commit_retrying(state, actions).await? {
        None => Ok(contact),
        Some(c) => match slots.claim {
            Some(slot) if c.condition_failed(slot) => {
                let owner = c
                    .item(slot)
                    .and_then(|i| attr(i, "contactId"))
                    .map(str::to_owned);
                Err(phone_taken(&contact.phone, owner.as_deref()))
            }
            _ => Err(ApiError::conflict(
                "concurrent_update",
                "a list of this contact changed meanwhile; retry",
            )),
        },
    }
}

/// The editable fields of a contact as a body (the base of a PATCH).
fn body_of(contact: &Contact) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("firstName".into(), json!(contact.first_name));
    map.insert("lastName".into(), json!(contact.last_name));
    map.insert("phone".into(), json!(contact.phone));
    map.insert("phoneType".into(), json!(contact.phone_type.as_str()));
    map.insert("email".into(), json!(contact.email));
    map.insert("company".into(), json!(contact.company));
    map.insert("tags".into(), json!(contact.tags));
    map.insert("customFields".into(), json!(contact.custom_fields));
    map.insert("notes".into(), json!(contact.notes));
    map.insert("status".into(), json!(contact.status.as_str()));
    map
}

/// How an update reads its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    /// PUT: the body is the whole contact; fields left out are cleared.
    Replace,
    /// PATCH: only the fields in the body change; `null` clears one.
    Merge,
}

/// Changes a contact (PUT or PATCH); memberships change through the list routes.
pub async fn update(
    state: &AppState,
    tenant: &TenantId,
    id: &str,
    patch: Map<String, Value>,
    mode: UpdateMode,
    may_change_do_not_call: bool,
) -> ApiResult<Contact> {
    if patch.contains_key("listIds") {
        return Err(ApiError::field(
            "listIds",
            "memberships change through POST/DELETE /v1/contact-lists/{id}/contacts",
        ));
    }
    let current = find(state, tenant, id).await?;
    let mut merged = match mode {
        UpdateMode::Merge => body_of(&current),
        UpdateMode::Replace => {
            let mut keep = Map::new();
            keep.insert("status".into(), json!(current.status.as_str()));
            keep
        }
    };
    for (key, value) in patch {
        merged.insert(key, value);
    }
    let body: ContactBody = vocelio_shared::extract::parse_json(
        &serde_json::to_vec(&Value::Object(merged)).map_err(ApiError::internal)?,
    )?;
    let fields = validate(
        body.raw(),
        state.config.default_phone_region,
        NameRule::Required,
    )
    .map_err(ApiError::fields)?;
    let now = clock::now();
    let at = clock::rfc3339(now);
    let mut updated = current.clone();
    apply_fields(&mut updated, fields, &at);
    let do_not_call = |c: &Contact| c.status == ContactStatus::DoNotCall;
    if do_not_call(&updated) != do_not_call(&current) && !may_change_do_not_call {
        // Flipping `doNotCall` back to active would let the number be dialled again.
        return Err(ApiError::Refused {
            code: "status_change_forbidden",
            message: "only admins and supervisors set or lift a contact's do-not-call status"
                .into(),
        });
    }
    if updated.phone != current.phone
        && updated.status == ContactStatus::Active
        && !vocelio_shared::dnc::lists_blocking(state, tenant, &updated.phone)
            .await?
            .is_empty()
    {
        updated.set_status(ContactStatus::DoNotCall);
    }
    let (mut actions, slots) = contact_write_actions(state, tenant, Some(&current), &updated, 0)?;
    let mut delta = CountDelta::default();
    delta.record(Some(current.status), Some(updated.status));
    actions.extend(delta.action(state, tenant)?);
    actions
        .push(DomainEvent::new(types::CONTACT_UPDATED, &updated.view(), now)?.put(state, tenant)?);
    match commit_retrying(state, actions).await? {
        None => Ok(updated),
        Some(c) => match slots.claim {
            Some(slot) if c.condition_failed(slot) => {
                let owner = c
                    .item(slot)
                    .and_then(|i| attr(i, "contactId"))
                    .map(str::to_owned);
                Err(phone_taken(&updated.phone, owner.as_deref()))
            }
            _ => Err(ApiError::Conflict {
                code: "version_conflict",
                message: "the contact was changed by another request; read it and retry".into(),
                current: store::contact(state, tenant, id).await?.map(|c| c.view()),
            }),
        },
    }
}

/// Deletes a contact with its claim, index items and memberships (list counts included).
pub async fn delete(state: &AppState, tenant: &TenantId, id: &str) -> ApiResult<Contact> {
    for _ in 0..5 {
        let current = find(state, tenant, id).await?;
        let now = clock::now();
        let mut actions = contact_delete_actions(state, tenant, &current)?;
        let mut delta = CountDelta::default();
        delta.record(Some(current.status), None);
        actions.extend(delta.action(state, tenant)?);
        actions.push(
            DomainEvent::new(
                types::CONTACT_DELETED,
                &json!({ "id": id, "phone": current.phone }),
                now,
            )?
            .put(state, tenant)?,
        );
        if commit_retrying(state, actions).await?.is_none() {
            return Ok(current);
        }
    }
    Err(ApiError::conflict(
        "concurrent_update",
        "the contact kept changing while being deleted; retry",
    ))
}

/// Which contacts a listing reads.
#[derive(Debug, Clone)]
pub enum Source {
    /// Every contact of the tenant, oldest first.
    Tenant,
    /// The members of one list, in the order they joined... by contact id (time-ordered).
    List(String),
}

/// Filters of a listing.
#[derive(Debug, Clone, Default)]
pub struct Filters {
    pub status: Option<ContactStatus>,
    /// Every one of these tags.
    pub tags: Vec<String>,
    /// Folded text found in the name, email, company or phone digits.
    pub text: Option<String>,
}

impl Filters {
    /// Whether any filter is set.
    pub fn any(&self) -> bool {
        self.status.is_some() || !self.tags.is_empty() || self.text.is_some()
    }

    /// Whether `contact` passes every filter.
    pub fn matches(&self, contact: &Contact) -> bool {
        if self.status.is_some_and(|s| s != contact.status) {
            return false;
        }
        if !self.tags.iter().all(|t| contact.tags.contains(t)) {
            return false;
        }
        match &self.text {
            None => true,
            Some(text) => {
                let digits: String = text.chars().filter(char::is_ascii_digit).collect();
                let haystack = fold(&format!(
                    "{} {} {} {}",
                    contact.full_name(),
                    contact.email.as_deref().unwrap_or_default(),
                    contact.company.as_deref().unwrap_or_default(),
                    contact.notes.as_deref().unwrap_or_default(),
                ));
                haystack.contains(text.as_str())
                    || (digits.len() >= 3
                        && digits.len() == text.chars().filter(|c| !" +-().".contains(*c)).count()
                        && contact.phone.contains(&digits))
            }
        }
    }
}

/// The most items a filtered listing reads per request (beyond it, `total` is unknown and
/// the answer carries a cursor to read on).
pub const MAX_FILTER_READ: usize = 20_000;
/// The deepest page number a listing skips to (`page * limit`); deeper pages use cursors.
pub const MAX_PAGE_DEPTH: u64 = 10_000;

/// One page of contacts.
#[derive(Debug, Clone)]
pub struct ContactPage {
    pub contacts: Vec<Contact>,
    pub page: u64,
    pub limit: u64,
    /// `None` when a filtered listing could not count every match in its budget.
    pub total: Option<u64>,
    pub next_cursor: Option<String>,
}

fn partition(tenant: &TenantId, source: &Source) -> (String, &'static str) {
    match source {
        Source::Tenant => (keys::contacts_pk(tenant), keys::CONTACT_PREFIX),
        Source::List(list_id) => (keys::members_pk(tenant, list_id), keys::MEMBER_PREFIX),
    }
}

/// Resolves a page of source items into contacts (list members → contact records).
async fn resolve(
    state: &AppState,
    tenant: &TenantId,
    source: &Source,
    items: Vec<Item>,
) -> ApiResult<Vec<(Item, Contact)>> {
    match source {
        Source::Tenant => items
            .into_iter()
            .map(|item| {
                let key = store::key_of(&item);
                store::contact_from(item).map(|c| (key, c))
            })
            .collect(),
        Source::List(_) => {
            let ids: Vec<String> = items
                .iter()
                .filter_map(|i| attr(i, SK))
                .filter_map(|sk| sk.strip_prefix(keys::MEMBER_PREFIX))
                .map(str::to_owned)
                .collect();
            let contacts = store::contacts(state, tenant, &ids).await?;
            let mut by_id: BTreeMap<String, Contact> =
                contacts.into_iter().map(|c| (c.id.clone(), c)).collect();
            Ok(items
                .into_iter()
                .filter_map(|item| {
                    let id = attr(&item, SK)?
                        .strip_prefix(keys::MEMBER_PREFIX)?
                        .to_owned();
                    let contact = by_id.remove(&id)?;
                    Some((store::key_of(&item), contact))
                })
                .collect())
        }
    }
}

/// Lists contacts of a source: by page number (`page` from 1) or from a cursor; `total`
/// from the exact counters when unfiltered.
pub async fn list(
    state: &AppState,
    tenant: &TenantId,
    source: &Source,
    filters: &Filters,
    page: u64,
    limit: u64,
    cursor: Option<&str>,
) -> ApiResult<ContactPage> {
    let (pk, prefix) = partition(tenant, source);
    let mut start = cursor
        .map(|c| decode_cursor(c, &[(PK, pk.as_str())]))
        .transpose()?;
    let skip = if cursor.is_some() {
        0
    } else {
        (page - 1) * limit
    };
    if skip + limit > MAX_PAGE_DEPTH {
        return Err(ApiError::field(
            "page",
            format!(
                "page × limit must stay within {MAX_PAGE_DEPTH}; follow nextCursor to read further"
            ),
        ));
    }
    if !filters.any() {
        let total = match source {
            Source::Tenant => store::counts(state, tenant).await?.total,
            Source::List(id) => lists::find(state, tenant, id).await?.contact_count,
        };
        let mut skipped = 0u64;
        while skipped < skip {
            let want = (skip - skipped).min(1000) as i32;
            let keys_page = store::query_page(state, &pk, prefix, start.take(), want, true).await?;
            skipped += keys_page.items.len() as u64;
            match keys_page.last_key {
                Some(key) => start = Some(key),
                None => {
                    return Ok(ContactPage {
                        contacts: Vec::new(),
                        page,
                        limit,
                        total: Some(total),
                        next_cursor: None,
                    });
                }
            }
        }
        let mut contacts = Vec::new();
        let mut next = start;
        // Members whose contact vanished mid-read are skipped; read on to fill the page.
        loop {
            let want = (limit as usize - contacts.len()) as i32;
            let result = store::query_page(state, &pk, prefix, next.take(), want, false).await?;
            let last_key = result.last_key;
            for (_, contact) in resolve(state, tenant, source, result.items).await? {
                contacts.push(contact);
            }
            next = last_key;
            if next.is_none() || contacts.len() >= limit as usize {
                break;
            }
        }
        return Ok(ContactPage {
            contacts,
            page,
            limit,
            total: Some(total),
            next_cursor: next.as_ref().map(encode_cursor),
        });
    }
    // Filtered: read the partition from the start (or cursor) in pages, keep matches.
    let mut matched = 0u64;
    let mut contacts = Vec::new();
    let mut next_cursor = None;
    let mut read = 0usize;
    let mut exhausted = false;
    let mut position = start;
    while read < MAX_FILTER_READ {
        let result = store::query_page(state, &pk, prefix, position.take(), 500, false).await?;
        read += result.items.len();
        let last_key = result.last_key;
        for (key, contact) in resolve(state, tenant, source, result.items).await? {
            if !filters.matches(&contact) {
                continue;
            }
            matched += 1;
            if matched > skip && contacts.len() < limit as usize {
                contacts.push(contact);
                if contacts.len() == limit as usize {
                    next_cursor = Some(encode_cursor(&key));
                }
            }
        }
        match last_key {
            Some(key) => position = Some(key),
            None => {
                exhausted = true;
                break;
            }
        }
    }
    let total = (exhausted && cursor.is_none()).then_some(matched);
    if exhausted && matched <= skip + limit {
        next_cursor = None;
    }
    if !exhausted && next_cursor.is_none() {
        next_cursor = position.as_ref().map(encode_cursor);
    }
    Ok(ContactPage {
        contacts,
        page,
        limit,
        total,
        next_cursor,
    })
}

/// Query parameters of search.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SearchOptions {
    pub include_inactive: bool,
}

/// Searches the tenant's contacts through index items: the phone claim (whatever format was
/// typed), phone prefixes, email prefix, and name (or company) prefix. At most `limit`.
pub async fn search(
    state: &AppState,
    tenant: &TenantId,
    query: &str,
    limit: usize,
    include_inactive: bool,
) -> ApiResult<Vec<Contact>> {
    let q = query.trim();
    if q.is_empty() {
        return Ok(Vec::new());
    }
    let mut ids: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let mut push = |id: String, ids: &mut Vec<String>| {
        if seen.insert(id.clone()) {
            ids.push(id);
        }
    };
    let phoneish = q
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c))
        && q.chars().filter(char::is_ascii_digit).count() >= 3;
    if phoneish {
        if let Ok(e164) = phone::normalize(q, state.config.default_phone_region)
            && let Some(owner) = store::phone_owner(state, tenant, e164.as_str()).await?
        {
            push(owner, &mut ids);
        }
        let digits: String = q.chars().filter(char::is_ascii_digit).collect();
        let mut prefixes = vec![format!("{}+{digits}", keys::PHONE_PREFIX)];
        if !q.starts_with('+')
            && let Some(code) = phone::country_code(state.config.default_phone_region)
        {
            prefixes.insert(0, format!("{}+{code}{digits}", keys::PHONE_PREFIX));
        }
        for prefix in prefixes {
            if ids.len() >= limit {
                break;
            }
            let pk = keys::index_pk(tenant, &prefix);
            let page =
                store::query_page(state, &pk, &prefix, None, (limit * 2) as i32, false).await?;
            for item in page.items {
                if let Some(id) = attr(&item, "contactId") {
                    push(id.to_owned(), &mut ids);
                }
            }
        }
    } else {
        let folded = fold(q).replace('#', "");
        let prefix = if q.contains('@') {
            format!(
                "{}{}",
                keys::EMAIL_PREFIX,
                q.to_lowercase().replace('#', "")
            )
        } else {
            format!("{}{folded}", keys::NAME_PREFIX)
        };
        if !keys::index_prefix_is_routable(&prefix) {
            // One character names no index partition: a bounded text filter instead.
            let filters = Filters {
                status: None,
                tags: Vec::new(),
                text: Some(folded),
            };
            let page = list(
                state,
                tenant,
                &Source::Tenant,
                &filters,
                1,
                limit.clamp(1, 100) as u64,
                None,
            )
            .await?;
            let mut contacts = page.contacts;
            if !include_inactive {
                contacts.retain(|c| c.status != ContactStatus::Inactive);
            }
            contacts.truncate(limit);
            return Ok(contacts);
        }
        let pk = keys::index_pk(tenant, &prefix);
        let page = store::query_page(state, &pk, &prefix, None, (limit * 3) as i32, false).await?;
        for item in page.items {
            if let Some(id) = attr(&item, "contactId") {
                push(id.to_owned(), &mut ids);
            }
        }
    }
    let mut contacts = store::contacts(state, tenant, &ids).await?;
    if !include_inactive {
        contacts.retain(|c| c.status != ContactStatus::Inactive);
    }
    contacts.truncate(limit);
    Ok(contacts)
}
