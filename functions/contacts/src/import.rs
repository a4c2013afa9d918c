//! Contact imports: a job, a presigned S3 PUT for the file, then a worker that streams the
//! file (CSV of any delimiter/encoding, or XLSX), validates and merges rows by phone, and
//! writes them in transactions that also move the job's checkpoint — so a worker that dies
//! resumes exactly after the last committed row and nothing is imported twice.
//!
//! On AWS the worker is a Lambda on the bucket's object-created notifications (the upload
//! itself, and the queue objects `imports/queue/...` that `start` and a worker running out
//! of time write); locally the stack delivers the same notifications.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::Instant;

use aws_sdk_dynamodb::types::TransactWriteItem;
use contact_files::{Checkpoint, ColumnMapping, ContactField, FileError, FileKind, MappedRow, Row};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use vocelio_shared::dynamo::{Item, create_action, from_record, n, record_item, s};
use vocelio_shared::events::{DomainEvent, types};
use vocelio_shared::ids::{TenantId, new_id};
use vocelio_shared::keys::{ENTITY, PK, SK};
use vocelio_shared::{ApiError, ApiResult, AppState, FieldError, clock};

use crate::contacts::new_contact;
use crate::input::{NameRule, RawContact, validate};
use crate::keys;
use crate::lists;
use crate::model::{Contact, ContactStatus, ListStatus, PhoneType};
use crate::service::{Contacts, s3_error};
use crate::store::{
    self, CountDelta, Key, attr, commit_retrying, contact_write_actions, update_action,
};

/// Where uploads land: `uploads/contacts/<tenant>/<job_id>/source`.
pub const UPLOAD_PREFIX: &str = "uploads/contacts/";
/// Where `start` and a worker out of time queue a job: `imports/queue/<tenant>/<job_id>/<n>`.
pub const QUEUE_PREFIX: &str = "imports/queue/";
/// Most error rows shown in the job; every one is in the error report.
pub const ERRORS_SHOWN: i32 = 100;
/// Most error rows kept per job (beyond: counted, not stored).
pub const MAX_ERROR_ROWS: u64 = 100_000;
/// Attempts before a job that keeps failing is marked failed.
pub const MAX_ATTEMPTS: u32 = 5;

/// What to do with a row whose phone already belongs to a contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Duplicates {
    /// Fill the contact's fields from the row (non-empty cells win; tags and custom fields
    /// are merged).
    Update,
    /// Leave the contact as it is.
    Skip,
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JobStatus {
    AwaitingUpload,
    Queued,
    Processing,
    Completed,
    Failed,
}

/// An import job as stored and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportJob {
    pub job_id: String,
    pub file_name: String,
    pub content_type: String,
    #[serde(default)]
    pub list_id: Option<String>,
    /// The mapping the user gave (header → field), if any.
    #[serde(default)]
    pub mapping: Option<BTreeMap<String, String>>,
    pub duplicates: Duplicates,
    pub status: JobStatus,
    #[serde(default)]
    pub total_rows: u64,
    #[serde(default)]
    pub processed: u64,
    #[serde(default)]
    pub imported: u64,
    #[serde(default)]
    pub updated: u64,
    /// Rows whose phone appeared earlier in the same file (merged into that contact).
    #[serde(default)]
    pub duplicates_in_file: u64,
    #[serde(default)]
    pub skipped: u64,
    /// Rows refused (bad phone, bad email, ...); listed in `errors` and the report.
    #[serde(default)]
    pub failed: u64,
    /// Rows imported as `doNotCall` because their number is on a DNC list.
    #[serde(default)]
    pub do_not_call: u64,
    #[serde(default)]
    pub bytes_total: u64,
    #[serde(default)]
    pub bytes_processed: u64,
    #[serde(default)]
    pub file_kind: Option<String>,
    #[serde(default)]
    pub headers: Option<Vec<String>>,
    #[serde(default)]
    pub columns: Option<ColumnMapping>,
    #[serde(default)]
    pub delimiter: Option<String>,
    #[serde(default)]
    pub encoding: Option<String>,
    #[serde(default)]
    pub bom_len: u64,
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub lease_owner: Option<String>,
    #[serde(default)]
    pub lease_until: i64,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_report_key: Option<String>,
    pub upload_key: String,
    pub created_by: String,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
}

impl ImportJob {
    /// The API's view: counts and state, without the worker's bookkeeping.
    pub fn view(&self) -> Value {
        let percent = if self.status == JobStatus::Completed {
            100.0
        } else if self.bytes_total > 0 {
            ((self.bytes_processed as f64 / self.bytes_total as f64) * 1000.0).round() / 10.0
        } else {
            0.0
        };
        json!({
            "jobId": self.job_id,
            "status": self.status,
            "fileName": self.file_name,
            "contentType": self.content_type,
            "fileKind": self.file_kind,
            "listId": self.list_id,
            "duplicates": self.duplicates,
            "totalRows": self.total_rows,
            "processed": self.processed,
            "imported": self.imported,
            "updated": self.updated,
            "duplicatesInFile": self.duplicates_in_file,
            "skipped": self.skipped,
            "failed": self.failed,
            "doNotCall": self.do_not_call,
            "percent": percent,
            "headers": self.headers,
            "mapping": self.columns.as_ref().map(describe_mapping),
            "attempts": self.attempts,
            "error": self.error,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "startedAt": self.started_at,
            "finishedAt": self.finished_at,
        })
    }
}

fn describe_mapping(mapping: &ColumnMapping) -> Vec<Value> {
    mapping
        .columns
        .iter()
        .map(|c| match c {
            contact_files::Column::Field(f) => json!(f.as_str()),
            contact_files::Column::Custom(name) => json!(format!("custom:{name}")),
            contact_files::Column::Ignore => json!("ignore"),
        })
        .collect()
}

/// `POST /v1/uploads/contacts`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UploadBody {
    pub file_name: String,
    pub content_type: String,
    #[serde(default)]
    pub list_id: Option<String>,
    #[serde(default)]
    pub mapping: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub duplicates: Option<Duplicates>,
}

const CONTENT_TYPES: [&str; 8] = [
    "text/csv",
    "application/csv",
    "text/plain",
    "application/vnd.ms-excel",
    "text/tab-separated-values",
    "text/comma-separated-values",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/octet-stream",
];

fn job_item(tenant: &TenantId, job: &ImportJob) -> ApiResult<Item> {
    let mut item = record_item(
        job,
        vec![
            (PK, keys::imports_pk(tenant)),
            (SK, keys::import_sk(&job.job_id)),
        ],
    )?;
    item.insert(ENTITY.to_owned(), s("import_job"));
    Ok(item)
}

/// Reads a job or answers 404.
pub async fn find(state: &AppState, tenant: &TenantId, job_id: &str) -> ApiResult<ImportJob> {
    if !vocelio_shared::ids::is_id("imp", job_id) {
        return Err(ApiError::not_found("import job"));
    }
    store::get_item(state, &keys::imports_pk(tenant), &keys::import_sk(job_id))
        .await?
        .map(from_record)
        .transpose()?
        .ok_or_else(|| ApiError::not_found("import job"))
}

/// Creates a job and the presigned PUT the browser uploads the file with.
pub async fn create(
    svc: &Contacts,
    tenant: &TenantId,
    user_id: &str,
    body: &UploadBody,
) -> ApiResult<Value> {
    let mut errors = Vec::new();
    let file_name = body.file_name.trim();
    if file_name.is_empty()
        || file_name.chars().count() > 255
        || file_name.chars().any(char::is_control)
    {
        errors.push(FieldError::new(
            "fileName",
            "must be 1-255 characters without control characters",
        ));
    }
    let content_type = body.content_type.trim().to_ascii_lowercase();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    if !CONTENT_TYPES.contains(&mime.as_str()) {
        errors.push(FieldError::new(
            "contentType",
            "must be a CSV (text/csv) or XLSX type",
        ));
    }
    let lower = file_name.to_ascii_lowercase();
    if lower.ends_with(".xls") || lower.ends_with(".numbers") || lower.ends_with(".ods") {
        errors.push(FieldError::new(
            "fileName",
            "save the sheet as .xlsx or .csv first",
        ));
    } else if !(lower.ends_with(".csv")
        || lower.ends_with(".txt")
        || lower.ends_with(".tsv")
        || lower.ends_with(".xlsx"))
    {
        errors.push(FieldError::new(
            "fileName",
            "must end in .csv, .txt, .tsv or .xlsx",
        ));
    }
    if let Some(mapping) = &body.mapping {
        if mapping.len() > 200 {
            errors.push(FieldError::new("mapping", "must have at most 200 entries"));
        }
        for (header, target) in mapping {
            let t = target.trim();
            let ok = t.eq_ignore_ascii_case("ignore")
                || t.strip_prefix("custom:")
                    .is_some_and(|n| !n.trim().is_empty() && n.len() <= 64)
                || ContactField::parse(t).is_some();
            if !ok {
                errors.push(FieldError::new(
                    format!("mapping.{header}"),
                    "must be a contact field (firstName, lastName, fullName, phone, phoneType, email, company, tags, status, customFields, notes), custom:<name> or ignore",
                ));
            }
        }
    }
    if let Some(list_id) = &body.list_id {
        match lists::get(&svc.app, tenant, list_id).await? {
            Some(list) if list.status == ListStatus::Active => {}
            Some(_) => errors.push(FieldError::new("listId", "the list is archived")),
            None => errors.push(FieldError::new("listId", "no contact list has this id")),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::fields(errors));
    }
    let job_id = new_id("imp");
    let upload_key = format!("{UPLOAD_PREFIX}{tenant}/{job_id}/source");
    let at = clock::rfc3339(clock::now());
    let job = ImportJob {
        job_id: job_id.clone(),
        file_name: file_name.to_owned(),
        content_type: content_type.clone(),
        list_id: body.list_id.clone(),
        mapping: body.mapping.clone(),
        // A re-import never overwrites what the tenant has unless asked (README: `skip` is the
        // default), status included.
        duplicates: body.duplicates.unwrap_or(Duplicates::Skip),
        status: JobStatus::AwaitingUpload,
        total_rows: 0,
        processed: 0,
        imported: 0,
        updated: 0,
        duplicates_in_file: 0,
        skipped: 0,
        failed: 0,
        do_not_call: 0,
        bytes_total: 0,
        bytes_processed: 0,
        file_kind: None,
        headers: None,
        columns: None,
        delimiter: None,
        encoding: None,
        bom_len: 0,
        checkpoint: None,
        attempts: 0,
        lease_owner: None,
        lease_until: 0,
        error: None,
        error_report_key: None,
        upload_key: upload_key.clone(),
        created_by: user_id.to_owned(),
        created_at: at.clone(),
        updated_at: at,
        started_at: None,
        finished_at: None,
    };
    let presigned = svc
        .s3
        .put_object()
        .bucket(svc.bucket())
        .key(&upload_key)
        .content_type(&content_type)
        .presigned(svc.presigning()?)
        .await
        .map_err(s3_error("presign PutObject"))?;
    commit_retrying(
        &svc.app,
        vec![create_action(svc.app.table(), job_item(tenant, &job)?)?],
    )
    .await?;
    let expires = clock::now() + time::Duration::seconds(svc.config.url_seconds as i64);
    Ok(json!({
        "jobId": job_id,
        "uploadUrl": presigned.uri(),
        "uploadMethod": "PUT",
        "uploadHeaders": { "Content-Type": content_type },
        "expiresAt": clock::rfc3339(expires),
        "maxBytes": svc.config.import_max_bytes,
        "job": job.view(),
    }))
}

fn epoch_now() -> i64 {
    clock::now().unix_timestamp()
}

/// Queues a job after its upload (`POST .../start`): 409 when the file is not uploaded,
/// the finished job as it is when it is done (a re-run imports nothing twice), and a
/// stalled job (its worker's lease ran out) is resumed from its checkpoint.
pub async fn start(
    svc: &Contacts,
    tenant: &TenantId,
    job_id: &str,
) -> ApiResult<(bool, ImportJob)> {
    let job = find(&svc.app, tenant, job_id).await?;
    match job.status {
        JobStatus::Completed | JobStatus::Failed => return Ok((false, job)),
        JobStatus::Processing | JobStatus::Queued if job.lease_until > epoch_now() => {
            return Ok((false, job));
        }
        _ => {}
    }
    let head = svc
        .s3
        .head_object()
        .bucket(svc.bucket())
        .key(&job.upload_key)
        .send()
        .await;
    let size = match head {
        Ok(head) => head.content_length().unwrap_or_default().max(0) as u64,
        Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 404) => {
            return Err(ApiError::conflict(
                "upload_missing",
                "the file has not been uploaded yet: PUT it to the job's uploadUrl first",
            ));
        }
        Err(e) => return Err(s3_error("HeadObject")(e)),
    };
    if size > svc.config.import_max_bytes {
        fail(
            svc,
            tenant,
            &job,
            &format!(
                "the file is {size} bytes; the limit is {}",
                svc.config.import_max_bytes
            ),
        )
        .await?;
        return Err(ApiError::Validation {
            message: format!(
                "the file is larger than {} bytes",
                svc.config.import_max_bytes
            ),
            details: vec![FieldError::new("file", "is too large")],
        });
    }
    let now = clock::now();
    let queued = update_action(
        &svc.app,
        keys::imports_pk(tenant),
        keys::import_sk(job_id),
        "SET #status = :queued, #bytesTotal = :size, #updatedAt = :at, #leaseUntil = :zero",
        Some(
            "#status IN (:awaiting, :queued, :processing) AND (attribute_not_exists(#leaseUntil) OR #leaseUntil < :now)",
        ),
        vec![
            (":queued", s("queued")),
            (":awaiting", s("awaitingUpload")),
            (":processing", s("processing")),
            (":size", n(size)),
            (":at", s(clock::rfc3339(now))),
            (":zero", n(0)),
            (":now", n(epoch_now())),
        ],
        vec![("#status", "status")],
    )?;
    if commit_retrying(&svc.app, vec![queued]).await?.is_some() {
        // Another start (or the upload's own notification) got there first.
        return Ok((false, find(&svc.app, tenant, job_id).await?));
    }
    enqueue(svc, tenant, job_id).await?;
    Ok((true, find(&svc.app, tenant, job_id).await?))
}

/// Writes the queue object that (through the bucket's notification) runs the worker.
pub async fn enqueue(svc: &Contacts, tenant: &TenantId, job_id: &str) -> ApiResult<()> {
    let key = format!("{QUEUE_PREFIX}{tenant}/{job_id}/{}", new_id("q"));
    svc.s3
        .put_object()
        .bucket(svc.bucket())
        .key(key)
        .content_type("application/json")
        .body(json!({ "jobId": job_id }).to_string().into_bytes().into())
        .send()
        .await
        .map_err(s3_error("PutObject"))?;
    Ok(())
}

async fn fail(svc: &Contacts, tenant: &TenantId, job: &ImportJob, why: &str) -> ApiResult<()> {
    let now = clock::now();
    let mut failed = job.clone();
    failed.status = JobStatus::Failed;
    failed.error = Some(why.to_owned());
    let actions = vec![
        update_action(
            &svc.app,
            keys::imports_pk(tenant),
            keys::import_sk(&job.job_id),
            "SET #status = :failed, #error = :why, #finishedAt = :at, #updatedAt = :at, #leaseUntil = :zero",
            Some("#status <> :completed"),
            vec![
                (":failed", s("failed")),
                (":why", s(why)),
                (":at", s(clock::rfc3339(now))),
                (":zero", n(0)),
                (":completed", s("completed")),
            ],
            vec![("#status", "status"), ("#error", "error")],
        )?,
        DomainEvent::new(types::IMPORT_PROGRESS, &failed.view(), now)?.put(&svc.app, tenant)?,
    ];
    commit_retrying(&svc.app, actions).await?;
    Ok(())
}

/// The first error rows of a job.
pub async fn error_rows(
    state: &AppState,
    tenant: &TenantId,
    job_id: &str,
    limit: i32,
) -> ApiResult<Vec<Value>> {
    let page = store::query_page(
        state,
        &keys::import_rows_pk(tenant, job_id),
        keys::ERROR_ROW_PREFIX,
        None,
        limit,
        false,
    )
    .await?;
    Ok(page
        .items
        .iter()
        .map(|item| {
            json!({
                "row": item.get("row").and_then(|v| v.as_n().ok()).and_then(|v| v.parse::<u64>().ok()),
                "field": attr(item, "field"),
                "message": attr(item, "message"),
                "value": attr(item, "value"),
            })
        })
        .collect())
}

/// The job as `GET /v1/uploads/contacts/{jobId}` shows it: counts, the first error rows and
/// a presigned URL of the full error report once the job is done.
pub async fn status(svc: &Contacts, tenant: &TenantId, job_id: &str) -> ApiResult<Value> {
    let job = find(&svc.app, tenant, job_id).await?;
    let mut view = job.view();
    view["errors"] = json!(error_rows(&svc.app, tenant, job_id, ERRORS_SHOWN).await?);
    view["errorReportUrl"] = match &job.error_report_key {
        Some(key) => json!(
            svc.download_url(key, &format!("{job_id}-errors.csv"))
                .await?
        ),
        None => Value::Null,
    };
    Ok(view)
}

/// The tenant's recent jobs, newest first.
pub async fn recent(state: &AppState, tenant: &TenantId, limit: i32) -> ApiResult<Vec<Value>> {
    let answer = state
        .db
        .query()
        .table_name(state.table())
        .key_condition_expression("PK = :pk AND begins_with(SK, :prefix)")
        .expression_attribute_values(":pk", s(keys::imports_pk(tenant)))
        .expression_attribute_values(":prefix", s("J#"))
        .scan_index_forward(false)
        .limit(limit)
        .send()
        .await
        .map_err(vocelio_shared::dynamo::sdk_error)?;
    answer
        .items
        .unwrap_or_default()
        .into_iter()
        .map(|item| from_record::<ImportJob>(item).map(|j| j.view()))
        .collect()
}

// ---------------------------------------------------------------------------------------
// The worker.

/// What one worker invocation did with a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RunOutcome {
    /// The job finished.
    Completed,
    /// The job failed (its counts stay; the reason is on the job).
    Failed,
    /// Time ran out: checkpointed and queued for the next invocation.
    Continued,
    /// Another worker holds the job, or it is already done: nothing to do.
    NotClaimed,
}

/// A row read from the file, validated.
enum ReadRow {
    Valid {
        line: u64,
        next: Checkpoint,
        raw: Box<RawContact>,
        fields: Box<crate::input::ContactFields>,
    },
    Invalid {
        line: u64,
        next: Checkpoint,
        errors: Vec<FieldError>,
        value: String,
    },
}

impl ReadRow {
    fn next(&self) -> Checkpoint {
        match self {
            Self::Valid { next, .. } | Self::Invalid { next, .. } => *next,
        }
    }
}

/// Turns a mapped row into contact fields as the API would take them.
fn raw_contact(mapped: MappedRow, mapping: &ColumnMapping) -> (RawContact, Vec<FieldError>) {
    let mut errors = Vec::new();
    let (mut first, mut last) = (mapped.first_name, mapped.last_name);
    if first.is_empty() && last.is_empty() && !mapped.full_name.is_empty() {
        let full = mapped.full_name.trim().to_owned();
        match full.rsplit_once(' ') {
            Some((f, l)) => {
                first = f.trim().to_owned();
                last = l.trim().to_owned();
            }
            None => first = full,
        }
    } else if first.is_empty() && !mapped.full_name.is_empty() {
        first = mapped.full_name;
    }
    let mut custom: BTreeMap<String, Value> = BTreeMap::new();
    if !mapped.custom_fields_json.is_empty() {
        match serde_json::from_str::<BTreeMap<String, Value>>(&mapped.custom_fields_json) {
            Ok(map) => custom.extend(map),
            Err(_) => errors.push(FieldError::new("customFields", "is not a JSON object")),
        }
    }
    for (name, value) in mapped.custom {
        custom.entry(name).or_insert(Value::String(value));
    }
    let tags: Vec<String> = mapped
        .tags
        .split([';', ',', '|'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let phone_type = if mapped.phone_type.is_empty() {
        mapping.implied_phone_type().map(str::to_owned)
    } else {
        Some(mapped.phone_type)
    };
    let some = |t: String| (!t.is_empty()).then_some(t);
    let raw = RawContact {
        first_name: some(first),
        last_name: some(last),
        phone: some(mapped.phone),
        phone_type,
        email: some(mapped.email),
        company: some(mapped.company),
        tags: (!tags.is_empty()).then_some(tags),
        custom_fields: (!custom.is_empty()).then_some(custom),
        notes: some(mapped.notes),
        status: some(mapped.status),
    };
    (raw, errors)
}

fn read_row(row: Row, mapping: &ColumnMapping, region: vocelio_shared::phone::Region) -> ReadRow {
    let value = row.fields.join(", ").chars().take(500).collect::<String>();
    let (raw, mut errors) = raw_contact(mapping.apply(&row), mapping);
    match validate(raw.clone(), region, NameRule::Optional) {
        Ok(fields) if errors.is_empty() => ReadRow::Valid {
            line: row.line,
            next: row.next,
            raw: Box::new(raw),
            fields: Box::new(fields),
        },
        Ok(_) => ReadRow::Invalid {
            line: row.line,
            next: row.next,
            errors,
            value,
        },
        Err(mut more) => {
            errors.append(&mut more);
            ReadRow::Invalid {
                line: row.line,
                next: row.next,
                errors,
                value,
            }
        }
    }
}

/// Messages from the file reader thread.
enum Read {
    Row(Row),
    End,
    Broken(FileError),
}

/// Counts one transaction adds to the job.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    rows: u64,
    imported: u64,
    updated: u64,
    duplicates: u64,
    skipped: u64,
    failed: u64,
    do_not_call: u64,
}

/// A worker's hold on a job.
struct Lease {
    owner: String,
    processed: u64,
}

/// Claims a job for this invocation: only a queued job, or a processing one whose lease
/// has run out (its worker died), and never a finished one.
async fn claim(
    svc: &Contacts,
    tenant: &TenantId,
    job_id: &str,
) -> ApiResult<Option<(ImportJob, Lease)>> {
    let job = match find(&svc.app, tenant, job_id).await {
        Ok(job) => job,
        Err(ApiError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let now = epoch_now();
    let claimable = match job.status {
        JobStatus::Queued | JobStatus::AwaitingUpload => job.lease_until <= now,
        JobStatus::Processing => job.lease_until <= now,
        JobStatus::Completed | JobStatus::Failed => false,
    };
    if !claimable {
        return Ok(None);
    }
    if job.attempts >= MAX_ATTEMPTS {
        fail(
            svc,
            tenant,
            &job,
            &format!(
                "gave up after {MAX_ATTEMPTS} attempts: {}",
                job.error.clone().unwrap_or_default()
            ),
        )
        .await?;
        return Ok(None);
    }
    let owner = new_id("worker");
    let at = clock::rfc3339(clock::now());
    let action = update_action(
        &svc.app,
        keys::imports_pk(tenant),
        keys::import_sk(job_id),
        "SET #status = :processing, #leaseOwner = :owner, #leaseUntil = :until, #updatedAt = :at, #startedAt = if_not_exists(#startedAt, :at) ADD #attempts :one",
        Some(
            "#processed = :processed AND #attempts = :attempts AND #status IN (:queued, :processing, :awaiting) AND (attribute_not_exists(#leaseUntil) OR #leaseUntil <= :now)",
        ),
        vec![
            (":processing", s("processing")),
            (":queued", s("queued")),
            (":awaiting", s("awaitingUpload")),
            (":owner", s(&owner)),
            (":until", n(now + svc.config.import_lease_seconds as i64)),
            (":at", s(&at)),
            (":one", n(1)),
            (":processed", n(job.processed)),
            (":attempts", n(job.attempts)),
            (":now", n(now)),
        ],
        vec![("#status", "status")],
    )?;
    if commit_retrying(&svc.app, vec![action]).await?.is_some() {
        return Ok(None);
    }
    let processed = job.processed;
    let job = find(&svc.app, tenant, job_id).await?;
    Ok(Some((job, Lease { owner, processed })))
}

/// Runs (or resumes) a job until it is done or `budget` has passed.
pub async fn run(
    svc: &Contacts,
    tenant: &TenantId,
    job_id: &str,
    budget: std::time::Duration,
) -> ApiResult<RunOutcome> {
    let Some((job, lease)) = claim(svc, tenant, job_id).await? else {
        return Ok(RunOutcome::NotClaimed);
    };
    let owner = lease.owner.clone();
    match work(svc, tenant, job, lease, budget).await {
        Ok(outcome) => Ok(outcome),
        Err(err) => {
            // Leave the job to be resumed (lease expiry) and say why on it.
            tracing::warn!(job_id, error = %err, "import attempt failed");
            // Release the lease at once so the redelivered notification resumes the job.
            let note = update_action(
                &svc.app,
                keys::imports_pk(tenant),
                keys::import_sk(job_id),
                "SET #error = :why, #leaseUntil = :zero",
                Some("#leaseOwner = :me"),
                vec![
                    (":why", s(format!("attempt failed: {}", err.code()))),
                    (":zero", n(0)),
                    (":me", s(&owner)),
                ],
                vec![("#error", "error")],
            )?;
            commit_retrying(&svc.app, vec![note]).await.ok();
            Err(err)
        }
    }
}

/// Starts the reader thread for the job's file, from its checkpoint.
async fn open_reader(
    svc: &Contacts,
    job: &mut ImportJob,
) -> ApiResult<Result<(Vec<String>, tokio::sync::mpsc::Receiver<Read>), String>> {
    let resume = job.checkpoint;
    let head_bytes = svc
        .s3
        .get_object()
        .bucket(svc.bucket())
        .key(&job.upload_key)
        .range("bytes=0-65535")
        .send()
        .await
        .map_err(s3_error("GetObject"))?;
    let prefix = head_bytes
        .body
        .collect()
        .await
        .map_err(|e| ApiError::Unavailable(format!("S3 read: {e}")))?
        .into_bytes();
    let kind = FileKind::detect(&job.file_name, Some(&job.content_type), &prefix);
    let (tx, rx) = tokio::sync::mpsc::channel::<Read>(2048);
    match kind {
        None => Ok(Err(
            "the file is neither CSV nor XLSX (old .xls files must be saved as .xlsx or .csv)"
                .into(),
        )),
        Some(FileKind::Csv) => {
            let sniffed = contact_files::sniff(&prefix);
            job.file_kind = Some("csv".into());
            let start = resume.map_or(0, |c| c.byte);
            let object = svc
                .s3
                .get_object()
                .bucket(svc.bucket())
                .key(&job.upload_key)
                .range(format!("bytes={start}-"))
                .send()
                .await;
            let object = match object {
                Ok(o) => o,
                // Resuming exactly at the end of the file: nothing left to read.
                Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) => {
                    let headers = job.headers.clone().unwrap_or_default();
                    tx.send(Read::End).await.ok();
                    return Ok(Ok((headers, rx)));
                }
                Err(e) => return Err(s3_error("GetObject")(e)),
            };
            let bridge = tokio_util::io::SyncIoBridge::new(object.body.into_async_read());
            let (headers_tx, headers_rx) = tokio::sync::oneshot::channel();
            tokio::task::spawn_blocking(move || {
                let mut rows = match resume {
                    Some(cp) => contact_files::CsvRows::resume(bridge, &sniffed, cp),
                    None => contact_files::CsvRows::new(bridge, &sniffed),
                };
                match rows.headers() {
                    Ok(h) => {
                        headers_tx.send(Ok(h)).ok();
                    }
                    Err(e) => {
                        headers_tx.send(Err(e)).ok();
                        return;
                    }
                }
                pump(rows, &tx);
            });
            job.delimiter = Some((sniffed.delimiter as char).to_string());
            job.encoding = Some(format!("{:?}", sniffed.encoding).to_lowercase());
            job.bom_len = sniffed.bom_len as u64;
            match headers_rx.await {
                Ok(Ok(h)) if resume.is_none() => Ok(Ok((h, rx))),
                Ok(Ok(_)) => Ok(Ok((job.headers.clone().unwrap_or_default(), rx))),
                Ok(Err(e)) => Ok(Err(e.to_string())),
                Err(_) => Err(ApiError::internal("the reader stopped before the header")),
            }
        }
        Some(FileKind::Xlsx) => {
            job.file_kind = Some("xlsx".into());
            let path = std::env::temp_dir().join(format!("{}.xlsx", job.job_id));
            let mut object = svc
                .s3
                .get_object()
                .bucket(svc.bucket())
                .key(&job.upload_key)
                .send()
                .await
                .map_err(s3_error("GetObject"))?;
            {
                use tokio::io::AsyncWriteExt;
                let mut file = tokio::fs::File::create(&path)
                    .await
                    .map_err(ApiError::internal)?;
                while let Some(chunk) = object
                    .body
                    .try_next()
                    .await
                    .map_err(|e| ApiError::Unavailable(format!("S3 read: {e}")))?
                {
                    file.write_all(&chunk).await.map_err(ApiError::internal)?;
                }
                file.flush().await.map_err(ApiError::internal)?;
            }
            let (headers_tx, headers_rx) = tokio::sync::oneshot::channel();
            let skip_until = resume.map_or(0, |c| c.line);
            tokio::task::spawn_blocking(move || {
                let opened = if skip_until > 0 {
                    contact_files::XlsxRows::open_at(&path, skip_until)
                } else {
                    contact_files::XlsxRows::open(&path)
                };
                let mut rows = match opened {
                    Ok(rows) => rows,
                    Err(e) => {
                        headers_tx.send(Err(e)).ok();
                        std::fs::remove_file(&path).ok();
                        return;
                    }
                };
                match rows.headers() {
                    Ok(h) => {
                        headers_tx.send(Ok(h)).ok();
                    }
                    Err(e) => {
                        headers_tx.send(Err(e)).ok();
                        std::fs::remove_file(&path).ok();
                        return;
                    }
                }
                pump(rows, &tx);
                std::fs::remove_file(&path).ok();
            });
            match headers_rx.await {
                Ok(Ok(h)) => Ok(Ok((h, rx))),
                Ok(Err(e)) => Ok(Err(e.to_string())),
                Err(_) => Err(ApiError::internal("the reader stopped before the header")),
            }
        }
    }
}

/// Sends every row of a reader to the worker (blocking thread; the channel bounds memory).
fn pump(rows: impl Iterator<Item = Result<Row, FileError>>, tx: &tokio::sync::mpsc::Sender<Read>) {
    for row in rows {
        let message = match row {
            Ok(row) => Read::Row(row),
            Err(e) => {
                tx.blocking_send(Read::Broken(e)).ok();
                return;
            }
        };
        if tx.blocking_send(message).is_err() {
            return; // the worker stopped (out of time)
        }
    }
    tx.blocking_send(Read::End).ok();
}

/// Rows per planned transaction before the action budget trims it.
const ROWS_PER_BATCH: usize = 16;
/// Actions reserved for the job, the counters, the list's count and the event.
const FIXED_ACTIONS: usize = 4;

async fn work(
    svc: &Contacts,
    tenant: &TenantId,
    mut job: ImportJob,
    mut lease: Lease,
    budget: std::time::Duration,
) -> ApiResult<RunOutcome> {
    let started = Instant::now();
    let region = svc.app.config.default_phone_region;
    let (headers, mut rx) = match open_reader(svc, &mut job).await? {
        Ok(v) => v,
        Err(why) => {
            fail(svc, tenant, &job, &why).await?;
            return Ok(RunOutcome::Failed);
        }
    };
    let mapping = match &job.columns {
        Some(columns) => columns.clone(),
        None => {
            let mapped = match &job.mapping {
                Some(explicit) => contact_files::from_explicit(&headers, explicit),
                None => Ok(contact_files::auto_detect(&headers)),
            };
            match mapped {
                Ok(m) if m.has(ContactField::Phone) => m,
                Ok(_) => {
                    fail(
                        svc,
                        tenant,
                        &job,
                        &format!(
                            "no phone column among the headers {headers:?}; name one in mapping"
                        ),
                    )
                    .await?;
                    return Ok(RunOutcome::Failed);
                }
                Err(e) => {
                    fail(svc, tenant, &job, &format!("mapping: {e}")).await?;
                    return Ok(RunOutcome::Failed);
                }
            }
        }
    };
    if job.columns.is_none() {
        job.headers = Some(headers.clone());
        job.columns = Some(mapping.clone());
        let setup = update_action(
            &svc.app,
            keys::imports_pk(tenant),
            keys::import_sk(&job.job_id),
            "SET #headers = :headers, #columns = :columns, #fileKind = :kind, #delimiter = :delimiter, #encoding = :encoding, #bomLen = :bom",
            Some("#leaseOwner = :me"),
            vec![
                (
                    ":headers",
                    serde_dynamo::to_attribute_value(&headers).map_err(ApiError::internal)?,
                ),
                (
                    ":columns",
                    serde_dynamo::to_attribute_value(&mapping).map_err(ApiError::internal)?,
                ),
                (":kind", s(job.file_kind.clone().unwrap_or_default())),
                (":delimiter", s(job.delimiter.clone().unwrap_or_default())),
                (":encoding", s(job.encoding.clone().unwrap_or_default())),
                (":bom", n(job.bom_len)),
                (":me", s(&lease.owner)),
            ],
            vec![("#columns", "columns")],
        )?;
        if commit_retrying(&svc.app, vec![setup]).await?.is_some() {
            return Ok(RunOutcome::NotClaimed);
        }
    }
    let list_id = job.list_id.clone();
    let mut pending: VecDeque<ReadRow> = VecDeque::new();
    let mut finished_reading = false;
    let mut last_event_at = job.processed;
    loop {
        // Fill a batch: rows with distinct phones (a repeat ends the batch).
        let mut phones: HashSet<String> = pending
            .iter()
            .filter_map(|r| match r {
                ReadRow::Valid { fields, .. } => Some(fields.phone.clone()),
                ReadRow::Invalid { .. } => None,
            })
            .collect();
        let mut repeat = false;
        while !finished_reading && !repeat && pending.len() < ROWS_PER_BATCH {
            match rx.recv().await {
                Some(Read::Row(row)) => {
                    let read = read_row(row, &mapping, region);
                    if let ReadRow::Valid { fields, .. } = &read
                        && !phones.insert(fields.phone.clone())
                    {
                        repeat = true;
                    }
                    pending.push_back(read);
                }
                Some(Read::End) | None => finished_reading = true,
                Some(Read::Broken(e)) => {
                    // Commit what was read before the broken record, then fail with counts.
                    while !pending.is_empty() {
                        commit_batch(
                            svc,
                            tenant,
                            &job,
                            &mut lease,
                            &mut pending,
                            &mapping,
                            list_id.as_deref(),
                            &mut last_event_at,
                            usize::MAX,
                        )
                        .await?;
                    }
                    let job = find(&svc.app, tenant, &job.job_id).await?;
                    fail(
                        svc,
                        tenant,
                        &job,
                        &format!("the file could not be read past {e}"),
                    )
                    .await?;
                    return Ok(RunOutcome::Failed);
                }
            }
        }
        if pending.is_empty() && finished_reading {
            break;
        }
        // A repeated phone must not share a transaction with its first occurrence.
        let take = if repeat {
            pending.len() - 1
        } else {
            pending.len()
        };
        commit_batch(
            svc,
            tenant,
            &job,
            &mut lease,
            &mut pending,
            &mapping,
            list_id.as_deref(),
            &mut last_event_at,
            take,
        )
        .await?;
        if started.elapsed() >= budget && !(finished_reading && pending.is_empty()) {
            // Out of time: rows read but not committed are read again by the next worker.
            let release = update_action(
                &svc.app,
                keys::imports_pk(tenant),
                keys::import_sk(&job.job_id),
                "SET #status = :queued, #leaseUntil = :zero, #updatedAt = :at",
                Some("#leaseOwner = :me"),
                vec![
                    (":queued", s("queued")),
                    (":zero", n(0)),
                    (":at", s(clock::rfc3339(clock::now()))),
                    (":me", s(&lease.owner)),
                ],
                vec![("#status", "status")],
            )?;
            commit_retrying(&svc.app, vec![release]).await?;
            drop(rx);
            enqueue(svc, tenant, &job.job_id).await?;
            return Ok(RunOutcome::Continued);
        }
    }
    finish(svc, tenant, &job.job_id, &lease).await?;
    Ok(RunOutcome::Completed)
}

/// Plans and commits the first `take` pending rows (fewer when the transaction would exceed
/// its action budget), with the job's counts and checkpoint in the same transaction.
#[allow(clippy::too_many_arguments)]
async fn commit_batch(
    svc: &Contacts,
    tenant: &TenantId,
    job: &ImportJob,
    lease: &mut Lease,
    pending: &mut VecDeque<ReadRow>,
    mapping: &ColumnMapping,
    list_id: Option<&str>,
    last_event_at: &mut u64,
    take: usize,
) -> ApiResult<()> {
    let _ = mapping;
    let state = &svc.app;
    for _attempt in 0..6 {
        let take = take.min(pending.len());
        if take == 0 {
            return Ok(());
        }
        let rows: Vec<&ReadRow> = pending.iter().take(take).collect();
        // Who owns each phone, their records, and the DNC registry: three BatchGetItems.
        let phones: Vec<String> = rows
            .iter()
            .filter_map(|r| match r {
                ReadRow::Valid { fields, .. } => Some(fields.phone.clone()),
                ReadRow::Invalid { .. } => None,
            })
            .collect();
        let claims: Vec<Key> = phones
            .iter()
            .map(|p| {
                let sk = keys::phone_sk(p);
                (keys::index_pk(tenant, &sk), sk)
            })
            .collect();
        let owners: HashMap<String, String> = store::batch_get(state, &claims)
            .await?
            .iter()
            .filter_map(|i| {
                let phone = attr(i, SK)?.strip_prefix(keys::PHONE_PREFIX)?.to_owned();
                Some((phone, attr(i, "contactId")?.to_owned()))
            })
            .collect();
        let owner_ids: Vec<String> = owners.values().cloned().collect();
        let existing: HashMap<String, Contact> = store::contacts(state, tenant, &owner_ids)
            .await?
            .into_iter()
            .map(|c| (c.phone.clone(), c))
            .collect();
        let blocked = crate::dnc::blocking_lists(state, tenant, &phones).await?;
        let at = clock::rfc3339(clock::now());
        let mut actions: Vec<TransactWriteItem> = Vec::new();
        let mut tally = Tally::default();
        let mut delta = CountDelta::default();
        let mut list_added = 0i64;
        let mut used = 0usize;
        let mut checkpoint = None;
        for row in &rows {
            let (row_actions, row_tally, row_delta, joined) =
                plan_row(state, tenant, job, row, &existing, &blocked, list_id, &at)?;
            if actions.len() + row_actions.len() + FIXED_ACTIONS > store::MAX_TRANSACTION_ACTIONS {
                break;
            }
            actions.extend(row_actions);
            tally.rows += row_tally.rows;
            tally.imported += row_tally.imported;
            tally.updated += row_tally.updated;
            tally.duplicates += row_tally.duplicates;
            tally.skipped += row_tally.skipped;
            tally.failed += row_tally.failed;
            tally.do_not_call += row_tally.do_not_call;
            delta.total += row_delta.total;
            for i in 0..3 {
                delta.by_status[i] += row_delta.by_status[i];
            }
            list_added += i64::from(joined);
            used += 1;
            checkpoint = Some(row.next());
        }
        let Some(checkpoint) = checkpoint else {
            return Err(ApiError::internal(
                "a single import row needs more than one transaction",
            ));
        };
        actions.extend(delta.action(state, tenant)?);
        if let (Some(list_id), true) = (list_id, list_added > 0) {
            actions.push(update_action(
                state,
                keys::lists_pk(tenant),
                keys::list_sk(list_id),
                "ADD contactCount :count SET updatedAt = :at",
                Some("attribute_exists(PK)"),
                vec![(":count", n(list_added)), (":at", s(&at))],
                vec![],
            )?);
        }
        let processed = lease.processed + tally.rows;
        let now = clock::now();
        let job_slot = actions.len();
        actions.push(update_action(
            state,
            keys::imports_pk(tenant),
            keys::import_sk(&job.job_id),
            "SET #checkpoint = :checkpoint, #bytesProcessed = :bytes, #updatedAt = :at, #leaseUntil = :until \
             ADD #processed :rows, #totalRows :rows, #imported :imported, #updated :updated, #duplicatesInFile :dups, #skipped :skipped, #failed :failed, #doNotCall :dnc", Some("#leaseOwner = :me AND #processed = :seen"),
            vec![
                (":checkpoint", serde_dynamo::to_attribute_value(checkpoint).map_err(ApiError::internal)?),
                (":bytes", n(checkpoint.byte)),
                (":at", s(&at)),
                (":until", n(epoch_now() + svc.config.import_lease_seconds as i64)),
                (":rows", n(tally.rows)),
                (":imported", n(tally.imported)),
                (":updated", n(tally.updated)),
                (":dups", n(tally.duplicates)),
                (":skipped", n(tally.skipped)),
                (":failed", n(tally.failed)),
                (":dnc", n(tally.do_not_call)),
                (":me", s(&lease.owner)),
                (":seen", n(lease.processed)),
            ],
            vec![],
        )?);
        if processed / svc.config.import_progress_rows
            > *last_event_at / svc.config.import_progress_rows
        {
            let mut progress = job.clone();
            progress.processed = processed;
            progress.bytes_processed = checkpoint.byte;
            actions.push(
                DomainEvent::new(types::IMPORT_PROGRESS, &json!({ "jobId": job.job_id, "status": "processing", "processed": processed, "bytesProcessed": checkpoint.byte, "bytesTotal": job.bytes_total }), now)?
                    .put(state, tenant)?,
            );
        }
        match commit_retrying(state, actions).await? {
            None => {
                lease.processed = processed;
                if processed / svc.config.import_progress_rows
                    > *last_event_at / svc.config.import_progress_rows
                {
                    *last_event_at = processed;
                }
                pending.drain(..used);
                return Ok(());
            }
            Some(cancellation) if cancellation.condition_failed(job_slot) => {
                return Err(ApiError::conflict(
                    "lease_lost",
                    "another worker took over this import",
                ));
            }
            Some(_) => {
                // A contact changed or a phone was claimed meanwhile: plan again from fresh reads.
                tokio::time::sleep(store::backoff(1)).await;
            }
        }
    }
    Err(ApiError::conflict(
        "concurrent_update",
        "import rows kept racing other writes",
    ))
}

/// The writes of one row, its counts, its counter change and whether it joined the list.
#[allow(clippy::too_many_arguments)]
fn plan_row(
    state: &AppState,
    tenant: &TenantId,
    job: &ImportJob,
    row: &ReadRow,
    existing: &HashMap<String, Contact>,
    blocked: &HashMap<String, Vec<String>>,
    list_id: Option<&str>,
    at: &str,
) -> ApiResult<(Vec<TransactWriteItem>, Tally, CountDelta, bool)> {
    let mut tally = Tally {
        rows: 1,
        ..Tally::default()
    };
    let mut delta = CountDelta::default();
    let mut actions = Vec::new();
    let (line, fields, raw) = match row {
        ReadRow::Invalid {
            line,
            errors,
            value,
            ..
        } => {
            tally.failed = 1;
            if job.failed < MAX_ERROR_ROWS {
                let first = errors
                    .first()
                    .cloned()
                    .unwrap_or_else(|| FieldError::new("row", "is invalid"));
                let message = errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.message))
                    .collect::<Vec<_>>()
                    .join("; ");
                let item: Item = [
                    (PK.to_owned(), s(keys::import_rows_pk(tenant, &job.job_id))),
                    (SK.to_owned(), s(keys::error_row_sk(*line))),
                    (ENTITY.to_owned(), s("import_error")),
                    ("row".to_owned(), n(*line)),
                    ("field".to_owned(), s(first.field)),
                    ("message".to_owned(), s(message)),
                    ("value".to_owned(), s(value.as_str())),
                ]
                .into_iter()
                .collect();
                actions.push(store::put_action(state, item)?);
            }
            return Ok((actions, tally, delta, false));
        }
        ReadRow::Valid {
            line, fields, raw, ..
        } => (line, fields, raw),
    };
    let _ = line;
    let on_dnc = blocked.contains_key(&fields.phone);
    match existing.get(&fields.phone) {
        None => {
            let mut contact =
                new_contact((**fields).clone(), "import", Some(job.job_id.clone()), at);
            if on_dnc {
                contact.set_status(ContactStatus::DoNotCall);
                tally.do_not_call = 1;
            }
            if let Some(list_id) = list_id {
                contact.list_ids = vec![list_id.to_owned()];
            }
            let (writes, _) = contact_write_actions(state, tenant, None, &contact, 0)?;
            actions.extend(writes);
            let joined = if let Some(list_id) = list_id {
                actions.push(store::put_action(
                    state,
                    member_item(tenant, list_id, &contact.id, at),
                )?);
                true
            } else {
                false
            };
            delta.record(None, Some(contact.status));
            tally.imported = 1;
            Ok((actions, tally, delta, joined))
        }
        Some(current) => {
            let in_file = current.import_job_id.as_deref() == Some(job.job_id.as_str());
            if in_file {
                tally.duplicates = 1;
            }
            let mut updated = current.clone();
            if job.duplicates == Duplicates::Update {
                merge(&mut updated, fields, raw);
                if !in_file {
                    tally.updated = 1;
                }
            } else if !in_file {
                tally.skipped = 1;
            }
            if on_dnc && updated.status != ContactStatus::DoNotCall {
                updated.set_status(ContactStatus::DoNotCall);
                tally.do_not_call = 1;
            }
            let joins = list_id.is_some_and(|l| !updated.list_ids.iter().any(|x| x == l))
                && updated.list_ids.len() < crate::model::MAX_LISTS_PER_CONTACT;
            if let (Some(list_id), true) = (list_id, joins) {
                updated.list_ids.push(list_id.to_owned());
            }
            if updated == *current {
                return Ok((actions, tally, delta, false));
            }
            updated.import_job_id = Some(job.job_id.clone());
            updated.updated_at = at.to_owned();
            updated.version += 1;
            let (writes, _) = contact_write_actions(state, tenant, Some(current), &updated, 0)?;
            actions.extend(writes);
            if let (Some(list_id), true) = (list_id, joins) {
                actions.push(store::put_action(
                    state,
                    member_item(tenant, list_id, &updated.id, at),
                )?);
            }
            if current.status != updated.status {
                delta.record(Some(current.status), Some(updated.status));
            }
            Ok((actions, tally, delta, joins))
        }
    }
}

fn member_item(tenant: &TenantId, list_id: &str, contact_id: &str, at: &str) -> Item {
    [
        (PK.to_owned(), s(keys::members_pk(tenant, list_id))),
        (SK.to_owned(), s(keys::member_sk(contact_id))),
        (ENTITY.to_owned(), s("contact_list_member")),
        ("contactId".to_owned(), s(contact_id)),
        ("addedAt".to_owned(), s(at)),
    ]
    .into_iter()
    .collect()
}

/// Fills a contact from a row: cells the row has win; tags and custom fields are merged.
fn merge(contact: &mut Contact, fields: &crate::input::ContactFields, raw: &RawContact) {
    if raw.first_name.is_some() {
        contact.first_name = fields.first_name.clone();
    }
    if fields.last_name.is_some() {
        contact.last_name = fields.last_name.clone();
    }
    if raw.phone_type.is_some() && fields.phone_type != PhoneType::Mobile
        || raw.phone_type.as_deref().is_some_and(|t| !t.is_empty())
    {
        contact.phone_type = fields.phone_type;
    }
    if fields.email.is_some() {
        contact.email = fields.email.clone();
    }
    if fields.company.is_some() {
        contact.company = fields.company.clone();
    }
    for tag in &fields.tags {
        if !contact.tags.contains(tag) && contact.tags.len() < crate::input::MAX_TAGS {
            contact.tags.push(tag.clone());
        }
    }
    for (k, v) in &fields.custom_fields {
        if contact.custom_fields.len() < crate::input::MAX_CUSTOM_FIELDS
            || contact.custom_fields.contains_key(k)
        {
            contact.custom_fields.insert(k.clone(), v.clone());
        }
    }
    if fields.notes.is_some() {
        contact.notes = fields.notes.clone();
    }
    if let Some(status) = fields.status {
        contact.set_status(status);
    }
}

/// Marks the job completed, writes the error report, and announces the end.
async fn finish(svc: &Contacts, tenant: &TenantId, job_id: &str, lease: &Lease) -> ApiResult<()> {
    let job = find(&svc.app, tenant, job_id).await?;
    let report_key = if job.failed > 0 {
        Some(write_error_report(svc, tenant, &job).await?)
    } else {
        None
    };
    let now = clock::now();
    let mut done = job.clone();
    done.status = JobStatus::Completed;
    done.error = None;
    done.bytes_processed = done.bytes_total;
    let mut values = vec![
        (":completed", s("completed")),
        (":at", s(clock::rfc3339(now))),
        (":zero", n(0)),
        (":me", s(&lease.owner)),
        (":bytes", n(job.bytes_total)),
    ];
    let mut expression = "SET #status = :completed, #finishedAt = :at, #updatedAt = :at, #leaseUntil = :zero, #bytesProcessed = :bytes REMOVE #error".to_owned();
    if let Some(key) = &report_key {
        expression = expression.replace(" REMOVE", ", #errorReportKey = :report REMOVE");
        values.push((":report", s(key)));
    }
    let actions = vec![
        update_action(
            &svc.app,
            keys::imports_pk(tenant),
            keys::import_sk(job_id),
            &expression,
            Some("#leaseOwner = :me"),
            values,
            vec![("#status", "status"), ("#error", "error")],
        )?,
        DomainEvent::new(types::IMPORT_PROGRESS, &done.view(), now)?.put(&svc.app, tenant)?,
    ];
    if commit_retrying(&svc.app, actions).await?.is_some() {
        return Err(ApiError::conflict(
            "lease_lost",
            "another worker took over this import",
        ));
    }
    Ok(())
}

/// Writes every error row of the job as a CSV (`row,field,message,value`) next to the upload.
async fn write_error_report(
    svc: &Contacts,
    tenant: &TenantId,
    job: &ImportJob,
) -> ApiResult<String> {
    let mut body = b"row,field,message,value\r\n".to_vec();
    let pk = keys::import_rows_pk(tenant, &job.job_id);
    let mut start = None;
    loop {
        let page =
            store::query_page(&svc.app, &pk, keys::ERROR_ROW_PREFIX, start, 1000, false).await?;
        for item in &page.items {
            let cells = [
                item.get("row")
                    .and_then(|v| v.as_n().ok())
                    .cloned()
                    .unwrap_or_default(),
                attr(item, "field").unwrap_or_default().to_owned(),
                attr(item, "message").unwrap_or_default().to_owned(),
                attr(item, "value").unwrap_or_default().to_owned(),
            ];
            let line: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
            body.extend_from_slice(line.join(",").as_bytes());
            body.extend_from_slice(b"\r\n");
        }
        start = page.last_key;
        if start.is_none() {
            break;
        }
    }
    let key = format!("{UPLOAD_PREFIX}{tenant}/{}/errors.csv", job.job_id);
    svc.s3
        .put_object()
        .bucket(svc.bucket())
        .key(&key)
        .content_type("text/csv; charset=utf-8")
        .body(body.into())
        .send()
        .await
        .map_err(s3_error("PutObject"))?;
    Ok(key)
}

/// One RFC 4180 cell, formula-safe (an error report echoes what the file held).
fn csv_cell(text: &str) -> String {
    let text = contact_files::neutralise_cell(text);
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.into_owned()
    }
}

/// The tenant and job named by an object key of an upload or a queue object.
pub fn job_of_key(key: &str) -> Option<(TenantId, String)> {
    let rest = key
        .strip_prefix(UPLOAD_PREFIX)
        .or_else(|| key.strip_prefix(QUEUE_PREFIX))?;
    let mut parts = rest.split('/');
    let tenant = TenantId::parse(parts.next()?).ok()?;
    let job_id = parts.next()?.to_owned();
    if key.starts_with(UPLOAD_PREFIX) && parts.next() != Some("source") {
        return None;
    }
    vocelio_shared::ids::is_id("imp", &job_id).then_some((tenant, job_id))
}

/// What the worker did with one notification batch.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerReport {
    pub jobs: Vec<(String, RunOutcome)>,
}

/// Handles an S3 object-created notification batch (uploads and queue objects): each named
/// job is run (or resumed) for at most `budget`; queue objects are removed once handled.
pub async fn handle_s3_event(
    svc: &Contacts,
    event: &Value,
    budget: std::time::Duration,
) -> ApiResult<WorkerReport> {
    let mut report = WorkerReport { jobs: Vec::new() };
    for key in object_keys(event) {
        let Some((tenant, job_id)) = job_of_key(&key) else {
            continue;
        };
        if key.starts_with(UPLOAD_PREFIX) {
            // The upload itself: queue the job as `start` would (no-op if already queued).
            if let Ok(job) = find(&svc.app, &tenant, &job_id).await
                && job.status == JobStatus::AwaitingUpload
            {
                let _ = start(svc, &tenant, &job_id).await?;
            }
            continue;
        }
        let outcome = run(svc, &tenant, &job_id, budget).await?;
        svc.s3
            .delete_object()
            .bucket(svc.bucket())
            .key(&key)
            .send()
            .await
            .map_err(s3_error("DeleteObject"))?;
        report.jobs.push((job_id, outcome));
    }
    Ok(report)
}

/// The object keys an event names, in either form AWS delivers object-created events: S3
/// event notifications (`Records[].s3.object.key`, URL-encoded with spaces as `+`) and
/// EventBridge "Object Created" events (`detail.object.key`, as stored).
pub fn object_keys(event: &Value) -> Vec<String> {
    if let Some(key) = event.pointer("/detail/object/key").and_then(Value::as_str) {
        return vec![key.to_owned()];
    }
    event
        .get("Records")
        .and_then(Value::as_array)
        .map(|records| {
            records
                .iter()
                .filter_map(|record| record.pointer("/s3/object/key").and_then(Value::as_str))
                .filter_map(|raw| {
                    url::form_urlencoded::parse(format!("k={raw}").as_bytes())
                        .next()
                        .map(|(_, v)| v.into_owned())
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The S3 notification event of one object, as AWS delivers it (the local stack builds the
/// same for its queue objects).
pub fn notification_event(bucket: &str, key: &str, size: u64) -> Value {
    let encoded: String = url::form_urlencoded::byte_serialize(key.as_bytes())
        .collect::<String>()
        .replace("%2F", "/");
    json!({
        "Records": [{
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "eventName": "ObjectCreated:Put",
            "s3": {
                "s3SchemaVersion": "1.0",
                "bucket": { "name": bucket, "arn": format!("arn:aws:s3:::{bucket}") },
                "object": { "key": encoded, "size": size }
            }
        }]
    })
}

/// Contacts of a tenant the tests and benchmark read back: the key attributes of a job.
pub fn job_key(tenant: &TenantId, job_id: &str) -> (String, String) {
    (keys::imports_pk(tenant), keys::import_sk(job_id))
}
