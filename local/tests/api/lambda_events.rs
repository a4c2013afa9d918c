//! Every sample event in `events/` is an API Gateway HTTP API (v2) event, dispatched here
//! through the router of the function its folder names, exactly as `sam local invoke` or
//! `cargo lambda invoke --data-file` would. The expected status is in the file name
//! (`create-department.201.json`); files run in name order per function: departments, then
//! agents, then transfers (which build on the department and agent the earlier ones made).

use std::path::PathBuf;

use tower::ServiceExt;
use vocelio_local::standins::project_root;

use crate::helpers::{spawn_app, stand};

fn event_files(function: &str) -> Vec<PathBuf> {
    let dir = project_root().join("events").join(function);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// The sample events carry example access tokens (their claims name the tenant, user and
/// role); access tokens live at most a day, so each is minted again, with the same claims,
/// by the local key before the event runs.
fn with_fresh_tokens(text: &str) -> String {
    use base64::Engine as _;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("eyJ") {
        out.push_str(&rest[..start]);
        let candidate = &rest[start..];
        let end = candidate
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
            .unwrap_or(candidate.len());
        let token = &candidate[..end];
        let claims = token
            .split('.')
            .nth(1)
            .and_then(|p| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(p)
                    .ok()
            })
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
        match claims {
            Some(c) if token.split('.').count() == 3 => {
                let role = c["role"].as_str().unwrap_or("admin").parse().unwrap();
                out.push_str(
                    &vocelio_local::stack::mint_token(
                        crate::helpers::dev_keys(),
                        c["tenant_id"].as_str().unwrap_or("events-demo"),
                        c["sub"].as_str().unwrap_or("admin-1"),
                        role,
                        1,
                    )
                    .unwrap(),
                );
            }
            _ => out.push_str(token),
        }
        rest = &candidate[end..];
    }
    out.push_str(rest);
    out
}

fn expected_status(path: &std::path::Path) -> u16 {
    path.file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.rsplit('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{}: name must end in .<status>.json", path.display()))
}

#[tokio::test]
async fn every_sample_event_dispatches_through_its_function() {
    let _ = stand();
    let app = spawn_app().await;
    let folders: Vec<String> = std::fs::read_dir(project_root().join("events"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let known = [
        departments::SERVICE,
        agents::SERVICE,
        transfers::SERVICE,
        realtime::SERVICE,
        tts::SERVICE,
        telephony::SERVICE,
        TELEPHONY_WEBHOOKS,
        contacts::SERVICE,
        accounts::SERVICE,
    ];
    for folder in &folders {
        assert!(
            known.contains(&folder.as_str()) || folder == WEBSOCKET || folder == CONTACTS_IMPORT,
            "events/{folder} names no function"
        );
    }
    let mut count = 0;
    for function in known {
        for path in event_files(function) {
            let text = with_fresh_tokens(&std::fs::read_to_string(&path).unwrap());
            let request = lambda_http::request::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not an API Gateway event: {e}", path.display()));
            let request = request.map(|body| axum::body::Body::from(body.to_vec()));
            let router = match function {
                "departments" => departments::router(app.state.clone()),
                "agents" => agents::router(app.state.clone()),
                "transfers" => transfers::router(app.state.clone()),
                "tts" => tts::router(app.state.clone(), app.tts.clone()),
                "telephony" => telephony::router(app.state.clone(), app.telephony.clone()),
                TELEPHONY_WEBHOOKS => {
                    telephony::webhook_router(app.state.clone(), app.telephony.clone())
                }
                "contacts" => contacts::router(app.state.clone(), app.contacts.clone()),
                "accounts" => accounts::router(
                    app.state.clone(),
                    vocelio_local::stack::local_accounts(
                        &|_| None,
                        vocelio_local::stack::local_signing_keys().unwrap(),
                    )
                    .unwrap(),
                ),
                _ => realtime::router(app.state.clone()),
            };
            let response = router.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            assert_eq!(
                status,
                expected_status(&path),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&body)
            );
            let json: serde_json::Value = serde_json::from_slice(&body)
                .unwrap_or_else(|_| panic!("{}: answer is not JSON", path.display()));
            assert!(json.is_object());
            count += 1;
        }
    }
    assert!(count >= 6, "only {count} sample events");
}

/// The folder of the Twilio webhook function's events (function URL events).
const TELEPHONY_WEBHOOKS: &str = "telephony-webhooks";

/// The folder of the WebSocket function's events (API Gateway WebSocket events and
/// DynamoDB Streams batches).
const WEBSOCKET: &str = "websocket";

#[tokio::test]
async fn every_websocket_and_stream_sample_event_runs_through_the_websocket_function() {
    let app = spawn_app().await;
    let mut count = 0;
    for path in event_files(WEBSOCKET) {
        let text = with_fresh_tokens(&std::fs::read_to_string(&path).unwrap());
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let answer = realtime::fanout::dispatch(&app.realtime, event.clone())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        if name.ends_with(".stream.json") {
            let records = event["Records"].as_array().unwrap().len();
            assert_eq!(answer["events"], records, "{name}: {answer}");
        } else {
            assert_eq!(
                answer["statusCode"],
                expected_status(&path),
                "{name}: {answer}"
            );
            if name.contains("connect-to-transfers") {
                let id = event["requestContext"]["connectionId"].as_str().unwrap();
                let recorded = app.realtime.connections.connection(id).await.unwrap();
                let recorded = recorded.expect("the connection is recorded");
                assert_eq!(recorded.tenant_id, "events-demo");
                // WEBSOCKET_CALLBACK_URL (the local stack) wins over domainName/stage.
                assert_eq!(recorded.endpoint, app.base);
            }
        }
        count += 1;
    }
    assert!(count >= 5, "only {count} WebSocket sample events");
}

/// The folder of the import worker's events: an S3 event notification and an EventBridge
/// "Object Created" event of an uploaded file. Their object key names a placeholder job
/// (`imp_000…`), replaced here by a job made through the API.
const CONTACTS_IMPORT: &str = "contacts-import";

#[tokio::test]
async fn an_upload_notification_in_either_form_starts_its_import() {
    let app = spawn_app().await;
    let tenant = crate::helpers::new_tenant();
    let user = app.user_in(&tenant, vocelio_shared::Role::Admin, "importer");
    let csv = "First Name,Phone Number\nAna,415 555 0101\nBo,(415) 555-0102\n";
    let placeholder = "events-demo/imp_00000000000000000000000000000000";
    let files = event_files(CONTACTS_IMPORT);
    assert_eq!(files.len(), 2, "one event per delivery form");
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let job = user
            .post(
                "/v1/uploads/contacts",
                serde_json::json!({ "fileName": "crm.csv", "contentType": "text/csv",
                                    "duplicates": "update" }),
            )
            .await
            .expect(201);
        let job_id = job.body["jobId"].as_str().unwrap().to_owned();
        let put = app
            .http()
            .put(job.body["uploadUrl"].as_str().unwrap())
            .header("Content-Type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        assert!(put.status().is_success(), "{name}: upload {}", put.status());
        let text = with_fresh_tokens(&std::fs::read_to_string(&path).unwrap());
        assert!(
            text.contains(placeholder),
            "{name}: names the placeholder job"
        );
        let text = text.replace(placeholder, &format!("{tenant}/{job_id}"));
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        // No one called /start: the notification alone queues the job, which runs.
        contacts::import::handle_s3_event(
            &app.contacts,
            &event,
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let mut finished = serde_json::Value::Null;
        for _ in 0..300 {
            let reply = user
                .get(&format!("/v1/uploads/contacts/{job_id}"))
                .await
                .expect(200);
            if reply.body["status"] == "completed" || reply.body["status"] == "failed" {
                finished = reply.body;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(finished["status"], "completed", "{name}: {finished}");
        assert_eq!(finished["totalRows"], 2, "{name}: {finished}");
        assert_eq!(
            finished["imported"].as_u64().unwrap() + finished["updated"].as_u64().unwrap(),
            2,
            "{name}: {finished}"
        );
    }
}
