//! The contacts series of the benchmark: imports of generated CSV files (10k, 100k, 1M rows)
//! uploaded through the presigned URL and run by the import worker of the local stack
//! (rows/s, total time, the process's RSS while importing), contact search p50/p99 in the
//! tenant holding the 100k import, and the DNC check p50.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use vocelio_shared::Role;

use crate::bench::{concurrent, print_series};
use crate::stack;

/// Where the series run.
pub(crate) struct Target<'a> {
    pub base: &'a str,
    pub secret: &'a str,
}

/// Area codes of the generated numbers (all valid NANP geographic codes).
const AREAS: [u32; 8] = [212, 312, 415, 617, 646, 718, 805, 917];
const FIRST: [&str; 16] = [
    "Ana", "Ben", "Chloe", "Diego", "Emma", "Farah", "Gus", "Hana", "Ivan", "Julia", "Kofi",
    "Lena", "Mateo", "Nora", "Omar", "Priya",
];
const LAST: [&str; 16] = [
    "Silva", "Nguyen", "Okafor", "Müller", "Rossi", "Kim", "Haddad", "Novak", "Garcia", "Berg",
    "Tanaka", "Dubois", "Costa", "Ivanova", "Lopez", "Walsh",
];

/// The phone number of generated row `i`, formatted as people type them; unique per `i`
/// (up to 8 × 800 × 10,000 rows).
fn phone(i: usize) -> (String, String) {
    let area = AREAS[i % AREAS.len()];
    let rest = i / AREAS.len();
    let exchange = 200 + (rest / 10_000) as u32;
    let line = rest % 10_000;
    (
        format!("({area}) {exchange}-{line:04}"),
        format!("+1{area}{exchange}{line:04}"),
    )
}

/// Writes a CSV of `rows` generated contacts (a CRM export's headers) and returns its path.
fn generate_csv(dir: &Path, rows: usize) -> Result<PathBuf, String> {
    let path = dir.join(format!("contacts-{rows}.csv"));
    let file = std::fs::File::create(&path).map_err(|e| e.to_string())?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let io = |e: std::io::Error| e.to_string();
    out.write_all(b"First Name,Last Name,Phone Number,Email,Company,Tags\r\n")
        .map_err(io)?;
    for i in 0..rows {
        let first = FIRST[i % FIRST.len()];
        let last = LAST[(i / FIRST.len()) % LAST.len()];
        let (typed, _) = phone(i);
        writeln!(
            out,
            "{first},{last},{typed},{}.{}.{i}@example.com,\"Acme {}, Inc.\",bench\r",
            first.to_lowercase(),
            last.to_lowercase(),
            i % 97
        )
        .map_err(io)?;
    }
    out.flush().map_err(io)?;
    Ok(path)
}

/// Resident set size (VmRSS) of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{method} {path}: {status} {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{method} {path}: {e}"))
    }
}

/// Runs the contacts series; `sizes` are the row counts of the generated imports.
pub(crate) async fn run(
    target: &Target<'_>,
    sizes: &[usize],
    requests: usize,
) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("vocelio-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    println!("\nContacts (imports through the presigned upload and the import worker):");
    let mut search_tenant = None;
    for &rows in sizes {
        let tenant = format!("bench-contacts-{rows}-{}", uuid::Uuid::now_v7().simple());
        let api = Api {
            http: http.clone(),
            base: target.base.to_owned(),
            token: stack::mint_token(target.secret, &tenant, "admin-1", Role::Admin, 4)?,
        };
        let csv = generate_csv(&dir, rows)?;
        let size = std::fs::metadata(&csv).map_err(|e| e.to_string())?.len();
        let result = import_once(&api, &csv, size, rows).await;
        let _ = std::fs::remove_file(&csv);
        let figures = result?;
        println!(
            "  import {rows:>9} rows ({:>6.1} MiB): {:>8.1} s  {:>7.0} rows/s  (upload {:.1} s)   process RSS before {}  peak while importing {}",
            size as f64 / (1024.0 * 1024.0),
            figures.total.as_secs_f64(),
            rows as f64 / figures.total.as_secs_f64(),
            figures.upload.as_secs_f64(),
            mib(figures.rss_before),
            mib(figures.rss_peak),
        );
        // Search runs in the first tenant of at least 100k contacts (else the largest).
        let wanted = sizes
            .iter()
            .copied()
            .find(|&n| n >= 100_000)
            .or(sizes.iter().copied().max());
        if search_tenant.is_none() && Some(rows) == wanted {
            search_tenant = Some((api, rows));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    let Some((api, rows)) = search_tenant else {
        return Ok(());
    };
    search_and_dnc(api, rows, requests).await
}

struct ImportFigures {
    upload: Duration,
    total: Duration,
    rss_before: u64,
    rss_peak: u64,
}

async fn import_once(
    api: &Api,
    csv: &Path,
    size: u64,
    rows: usize,
) -> Result<ImportFigures, String> {
    let list = api
        .send(
            reqwest::Method::POST,
            "/v1/contact-lists",
            Some(json!({ "name": format!("Bench {rows}") })),
        )
        .await?;
    let list_id = list["data"]["id"].as_str().ok_or("no list id")?.to_owned();
    let rss_before = rss_kib();
    let peak = Arc::new(AtomicU64::new(rss_before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let job = api
        .send(
            reqwest::Method::POST,
            "/v1/uploads/contacts",
            Some(json!({ "fileName": "crm-export.csv", "contentType": "text/csv", "listId": list_id })),
        )
        .await?;
    let job_id = job["jobId"].as_str().ok_or("no job id")?.to_owned();
    let upload_url = job["uploadUrl"].as_str().ok_or("no upload url")?;
    let file = tokio::fs::File::open(csv)
        .await
        .map_err(|e| e.to_string())?;
    let put = api
        .http
        .put(upload_url)
        .header("Content-Type", "text/csv")
        .header("Content-Length", size)
        .body(reqwest::Body::wrap_stream(
            tokio_util::io::ReaderStream::with_capacity(file, 1 << 16),
        ))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !put.status().is_success() {
        return Err(format!("upload: {}", put.status()));
    }
    let upload = started.elapsed();
    api.send(
        reqwest::Method::POST,
        &format!("/v1/uploads/contacts/{job_id}/start"),
        Some(json!({})),
    )
    .await?;
    let status = loop {
        let status = api
            .send(
                reqwest::Method::GET,
                &format!("/v1/uploads/contacts/{job_id}"),
                None,
            )
            .await?;
        if status["status"] == "completed" || status["status"] == "failed" {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let total = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    if status["status"] != "completed" || status["imported"].as_u64() != Some(rows as u64) {
        return Err(format!("the {rows}-row import ended as {status}"));
    }
    let shown = api
        .send(
            reqwest::Method::GET,
            &format!("/v1/contact-lists/{list_id}"),
            None,
        )
        .await?;
    if shown["data"]["contactCount"].as_u64() != Some(rows as u64) {
        return Err(format!(
            "the list counts {} of {rows} rows",
            shown["data"]["contactCount"]
        ));
    }
    Ok(ImportFigures {
        upload,
        total,
        rss_before,
        rss_peak: peak.load(Ordering::Relaxed),
    })
}

/// What a search series types for generated row `i`.
type QueryOf = fn(usize) -> String;

/// Search by typed phone, email and name prefix, and DNC checks, in a tenant of `rows`.
async fn search_and_dnc(api: Api, rows: usize, requests: usize) -> Result<(), String> {
    let api = Arc::new(api);
    let next = Arc::new(AtomicUsize::new(0));
    let kinds: [(&str, QueryOf); 3] = [
        ("phone as typed", |i| phone(i).0),
        ("email", |i| {
            let first = FIRST[i % FIRST.len()];
            let last = LAST[(i / FIRST.len()) % LAST.len()];
            format!(
                "{}.{}.{i}@example.com",
                first.to_lowercase(),
                last.to_lowercase()
            )
        }),
        ("name prefix", |i| {
            let last: String = LAST[(i / FIRST.len()) % LAST.len()]
                .chars()
                .take(2)
                .collect();
            format!("{} {last}", FIRST[i % FIRST.len()])
        }),
    ];
    for (label, query) in kinds {
        for clients in [1, 16] {
            let (api, next) = (api.clone(), next.clone());
            let series = concurrent(clients, requests.min(2000), move || {
                let (api, next) = (api.clone(), next.clone());
                async move {
                    let i = next.fetch_add(7919, Ordering::Relaxed) % rows;
                    let q = query(i);
                    let encoded: String =
                        url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
                    let found = api
                        .send(
                            reqwest::Method::GET,
                            &format!("/v1/contacts?search={encoded}&limit=20"),
                            None,
                        )
                        .await?;
                    match found["data"].as_array() {
                        Some(list) if !list.is_empty() => Ok(()),
                        _ => Err(format!("search {q:?} found nothing: {found}")),
                    }
                }
            })
            .await?;
            print_series(
                &format!("search by {label} ({rows} contacts), {clients} client(s)"),
                &series,
            );
        }
    }

    // A DNC list of 10,000 of the tenant's numbers, then checks of listed and unlisted ones.
    let dnc = api
        .send(
            reqwest::Method::POST,
            "/v1/dnc-lists",
            Some(json!({ "name": "Bench DNC" })),
        )
        .await?;
    let dnc_id = dnc["data"]["id"]
        .as_str()
        .ok_or("no DNC list id")?
        .to_owned();
    let started = Instant::now();
    for chunk in (0..10_000usize).collect::<Vec<_>>().chunks(1000) {
        let phones: Vec<String> = chunk.iter().map(|&i| phone(i * 3).1).collect();
        api.send(
            reqwest::Method::POST,
            &format!("/v1/dnc-lists/{dnc_id}/entries"),
            Some(json!({ "phones": phones })),
        )
        .await?;
    }
    println!(
        "  DNC entries added: 10,000 in {:.2} s (1,000 per request)",
        started.elapsed().as_secs_f64()
    );
    for clients in [1, 16] {
        let (api, next) = (api.clone(), next.clone());
        let series = concurrent(clients, requests.min(2000), move || {
            let (api, next) = (api.clone(), next.clone());
            async move {
                let i = next.fetch_add(1, Ordering::Relaxed) % 30_000;
                let typed: String =
                    url::form_urlencoded::byte_serialize(phone(i).0.as_bytes()).collect();
                let checked = api
                    .send(
                        reqwest::Method::GET,
                        &format!("/v1/dnc/check?phone={typed}"),
                        None,
                    )
                    .await?;
                if checked["data"]["blocked"].as_bool() != Some(i % 3 == 0) {
                    return Err(format!("DNC check of row {i} answered {checked}"));
                }
                Ok(())
            }
        })
        .await?;
        print_series(&format!("DNC check, {clients} client(s)"), &series);
    }
    Ok(())
}
