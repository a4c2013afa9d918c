//! Export of a contact list as CSV with the columns the import reads back (a lossless round
//! trip): streamed page by page, or written to S3 and handed out as a presigned URL.

use bytes::Bytes;
use contact_files::{CsvExport, ExportRow};
use futures_util::{Stream, StreamExt};
use vocelio_shared::dynamo::Item;
use vocelio_shared::ids::TenantId;
use vocelio_shared::{ApiError, ApiResult, AppState};

use crate::keys;
use crate::model::Contact;
use crate::service::{Contacts, s3_error};
use crate::store::{self, attr};

/// Members read per page of the export.
const PAGE: i32 = 200;

fn row_bytes(writer: &mut CsvExport, contact: &Contact) -> Vec<u8> {
    let custom = if contact.custom_fields.is_empty() {
        String::new()
    } else {
        serde_json::to_string(&contact.custom_fields).unwrap_or_default()
    };
    writer.row(&ExportRow {
        first_name: &contact.first_name,
        last_name: contact.last_name.as_deref().unwrap_or_default(),
        phone: &contact.phone,
        phone_type: contact.phone_type.as_str(),
        email: contact.email.as_deref().unwrap_or_default(),
        company: contact.company.as_deref().unwrap_or_default(),
        status: contact.status.as_str(),
        tags: &contact.tags,
        custom_fields_json: &custom,
        notes: contact.notes.as_deref().unwrap_or_default(),
    })
}

struct Cursor {
    state: AppState,
    tenant: TenantId,
    list_id: String,
    writer: CsvExport,
    start: Option<Item>,
    header_sent: bool,
    done: bool,
}

/// The list's members as CSV chunks (a header, then one chunk per page of members).
pub fn stream(
    state: AppState,
    tenant: TenantId,
    list_id: String,
) -> impl Stream<Item = Result<Bytes, ApiError>> {
    let cursor = Cursor {
        state,
        tenant,
        list_id,
        writer: CsvExport::new(),
        start: None,
        header_sent: false,
        done: false,
    };
    futures_util::stream::unfold(cursor, |mut cursor| async move {
        if cursor.done {
            return None;
        }
        if !cursor.header_sent {
            cursor.header_sent = true;
            let header = cursor.writer.header();
            return Some((Ok(Bytes::from(header)), cursor));
        }
        let page = match store::query_page(
            &cursor.state,
            &keys::members_pk(&cursor.tenant, &cursor.list_id),
            keys::MEMBER_PREFIX,
            cursor.start.take(),
            PAGE,
            true,
        )
        .await
        {
            Ok(page) => page,
            Err(e) => {
                cursor.done = true;
                return Some((Err(e), cursor));
            }
        };
        let ids: Vec<String> = page
            .items
            .iter()
            .filter_map(|i| attr(i, vocelio_shared::keys::SK))
            .filter_map(|sk| sk.strip_prefix(keys::MEMBER_PREFIX))
            .map(str::to_owned)
            .collect();
        let contacts = match store::contacts(&cursor.state, &cursor.tenant, &ids).await {
            Ok(c) => c,
            Err(e) => {
                cursor.done = true;
                return Some((Err(e), cursor));
            }
        };
        let mut chunk = Vec::new();
        for contact in &contacts {
            chunk.extend(row_bytes(&mut cursor.writer, contact));
        }
        cursor.start = page.last_key;
        cursor.done = cursor.start.is_none();
        Some((Ok(Bytes::from(chunk)), cursor))
    })
}

/// Writes the export to S3 (through a temporary file, so memory stays flat) and returns a
/// presigned download URL with the number of rows.
pub async fn to_s3(
    svc: &Contacts,
    tenant: &TenantId,
    list_id: &str,
    file_name: &str,
) -> ApiResult<(String, String)> {
    use tokio::io::AsyncWriteExt;
    let export_id = vocelio_shared::ids::new_id("exp");
    let path = std::env::temp_dir().join(format!("{export_id}.csv"));
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(ApiError::internal)?;
    let chunks = stream(svc.app.clone(), tenant.clone(), list_id.to_owned());
    futures_util::pin_mut!(chunks);
    while let Some(chunk) = chunks.next().await {
        file.write_all(&chunk?).await.map_err(ApiError::internal)?;
    }
    file.flush().await.map_err(ApiError::internal)?;
    drop(file);
    let key = format!("exports/contacts/{tenant}/{list_id}/{export_id}.csv");
    let body = aws_sdk_s3::primitives::ByteStream::from_path(&path)
        .await
        .map_err(ApiError::internal)?;
    let put = svc
        .s3
        .put_object()
        .bucket(svc.bucket())
        .key(&key)
        .content_type("text/csv; charset=utf-8")
        .body(body)
        .send()
        .await;
    tokio::fs::remove_file(&path).await.ok();
    put.map_err(s3_error("PutObject"))?;
    let url = svc.download_url(&key, file_name).await?;
    Ok((url, key))
}
