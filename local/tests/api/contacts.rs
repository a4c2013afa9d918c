//! Contact management as users meet it: lists, contacts, search, bulk changes, imports of
//! real-world files through the presigned upload, export, do-not-call lists.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use vocelio_shared::Role;

use crate::helpers::{Reply, Session, TestApp, events_of, new_tenant, spawn_app};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/contacts/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn data_id(reply: &Reply) -> String {
    reply.body["data"]["id"]
        .as_str()
        .expect("data.id")
        .to_owned()
}

async fn new_list(user: &Session<'_>, name: &str) -> String {
    data_id(
        &user
            .post("/v1/contact-lists", json!({ "name": name }))
            .await
            .expect(201),
    )
}

async fn new_contact(user: &Session<'_>, first: &str, phone: &str) -> String {
    data_id(
        &user
            .post(
                "/v1/contacts",
                json!({ "firstName": first, "lastName": "Test", "phone": phone }),
            )
            .await
            .expect(201),
    )
}

/// Uploads `bytes` through a new job's presigned PUT, starts it and waits for its end.
async fn import(
    app: &TestApp,
    user: &Session<'_>,
    file_name: &str,
    content_type: &str,
    bytes: Vec<u8>,
    extra: Value,
) -> Value {
    let mut body = json!({ "fileName": file_name, "contentType": content_type });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let job = user.post("/v1/uploads/contacts", body).await.expect(201);
    let job_id = job.body["jobId"].as_str().unwrap().to_owned();
    let url = job.body["uploadUrl"].as_str().unwrap();
    let put = app
        .http()
        .put(url)
        .header("Content-Type", content_type)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "upload: {}", put.status());
    user.post(&format!("/v1/uploads/contacts/{job_id}/start"), json!({}))
        .await
        .expect(202);
    wait_for_job(user, &job_id).await
}

async fn wait_for_job(user: &Session<'_>, job_id: &str) -> Value {
    for _ in 0..600 {
        let reply = user
            .get(&format!("/v1/uploads/contacts/{job_id}"))
            .await
            .expect(200);
        let status = reply.body["status"].as_str().unwrap_or("").to_owned();
        if status == "completed" || status == "failed" {
            return reply.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("import {job_id} did not finish");
}

/// Every contact of the tenant, by phone.
async fn contacts_by_phone(user: &Session<'_>) -> HashMap<String, Value> {
    let mut out = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/contacts?limit=100&cursor={c}"),
            None => "/v1/contacts?limit=100".to_owned(),
        };
        let reply = user.get(&path).await.expect(200);
        for c in reply.body["data"].as_array().unwrap() {
            out.insert(c["phone"].as_str().unwrap().to_owned(), c.clone());
        }
        match reply.body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

#[tokio::test]
async fn a_supervisor_builds_lists_and_the_errors_follow_the_contact_guide() {
    let app = spawn_app().await;
    let sup = app.supervisor();

    let created = sup
        .post(
            "/v1/contact-lists",
            json!({ "name": "Spring Leads", "description": "From the fair", "tags": ["Events", "2026"] }),
        )
        .await
        .expect(201);
    let list = &created.body["data"];
    assert_eq!(list["name"], "Spring Leads");
    assert_eq!(list["tags"], json!(["events", "2026"]));
    assert_eq!(list["contactCount"], 0);
    assert_eq!(list["status"], "active");
    let id = data_id(&created);

    // The same name in other letters: 409 in the guide's error form.
    let taken = sup
        .post("/v1/contact-lists", json!({ "name": "spring  LEADS" }))
        .await
        .expect(409);
    assert_eq!(taken.code(), "list_name_taken");
    let error = &taken.body["error"];
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("already exists")
    );
    assert!(error["timestamp"].as_str().unwrap().ends_with('Z'));
    assert!(!error["requestId"].as_str().unwrap().is_empty());
    assert_eq!(
        taken.headers["x-request-id"].to_str().unwrap(),
        error["requestId"]
    );

    let bad = sup
        .post(
            "/v1/contact-lists",
            json!({ "name": "", "tags": ["not a tag!"] }),
        )
        .await
        .expect(422);
    assert_eq!(bad.code(), "validation_failed");
    assert_eq!(bad.fields(), vec!["name", "tags[0]"]);
    let unknown = sup
        .post("/v1/contact-lists", json!({ "name": "X", "colour": "red" }))
        .await
        .expect(422);
    assert_eq!(unknown.fields(), vec!["colour"]);
    let no_token = app.anonymous().get("/v1/contact-lists").await.expect(401);
    assert_eq!(no_token.code(), "unauthorized");
    let not_json = sup
        .raw(Method::POST, "/v1/contact-lists", None)
        .await
        .status();
    assert_eq!(not_json, 415);

    // Edit, list with filters, the deployed app's bare array.
    let renamed = sup
        .put(
            &format!("/v1/contact-lists/{id}"),
            json!({ "name": "Spring Leads 2026", "tags": ["events"] }),
        )
        .await
        .expect(200);
    assert_eq!(renamed.body["data"]["name"], "Spring Leads 2026");
    assert_eq!(renamed.body["data"]["version"], 2);
    sup.post("/v1/contact-lists", json!({ "name": "Spring Leads" }))
        .await
        .expect(201); // the old name is free again
    new_list(&sup, "Renewals").await;
    let page = sup
        .get("/v1/contact-lists?search=spring&limit=1&page=2")
        .await
        .expect(200);
    assert_eq!(page.body["pagination"]["total"], 2);
    assert_eq!(page.body["pagination"]["pages"], 2);
    assert_eq!(page.body["data"].as_array().unwrap().len(), 1);
    let tagged = sup.get("/v1/contact-lists?tags=events").await.expect(200);
    assert_eq!(tagged.body["data"][0]["id"], id.as_str());
    assert_eq!(tagged.body["pagination"]["total"], 1);
    let bare = sup.get("/api/contacts/lists").await.expect(200);
    let names: BTreeSet<&str> = bare
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["Spring Leads 2026", "Spring Leads", "Renewals"])
    );
    assert!(bare.body[0]["lastUpdated"].is_string());
    assert!(bare.body[0]["contactCount"].is_number());

    // Delete archives; a hard delete is for admins.
    let archived = sup
        .delete(&format!("/v1/contact-lists/{id}"))
        .await
        .expect(200);
    assert_eq!(archived.body["data"]["status"], "archived");
    let active = sup.get("/v1/contact-lists").await.expect(200);
    assert_eq!(active.body["pagination"]["total"], 2);
    let archived_only = sup
        .get("/v1/contact-lists?status=archived")
        .await
        .expect(200);
    assert_eq!(archived_only.body["data"][0]["id"], id.as_str());
    let contact = new_contact(&sup, "Ana", "+1 415 555 0100").await;
    let refused = sup
        .post(
            &format!("/v1/contact-lists/{id}/contacts"),
            json!({ "contactIds": [contact] }),
        )
        .await
        .expect(409);
    assert_eq!(refused.code(), "list_archived");
    sup.delete(&format!("/v1/contact-lists/{id}?hard=true"))
        .await
        .expect(403);
    app.admin()
        .delete(&format!("/v1/contact-lists/{id}?hard=true"))
        .await
        .expect(200);
    let gone = sup
        .get(&format!("/v1/contact-lists/{id}"))
        .await
        .expect(404);
    assert_eq!(gone.code(), "not_found");
    let kinds: Vec<String> = events_of(&app, &app.tenant)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .filter(|t| t.starts_with("contact_list"))
        .collect();
    assert_eq!(
        kinds,
        vec![
            "contact_list_created",
            "contact_list_updated",
            "contact_list_created",
            "contact_list_created",
            "contact_list_deleted",
            "contact_list_deleted"
        ]
    );
}

#[tokio::test]
async fn contacts_are_validated_unique_by_phone_and_edited_field_by_field() {
    let app = spawn_app().await;
    let agent = app.agent("ana");
    let leads = new_list(&agent, "Leads").await;

    let created = agent
        .post(
            "/v1/contacts",
            json!({
                "firstName": " Maria ", "lastName": "García", "phone": "(415) 555-0123",
                "phoneType": "Cell", "email": "Maria@Example.com", "company": "Acme, Inc.",
                "tags": ["VIP", "West Coast"], "customFields": {"plan": "gold", "seats": 12},
                "listIds": [leads]
            }),
        )
        .await
        .expect(201);
    let contact = &created.body["data"];
    let id = data_id(&created);
    assert!(id.starts_with("con_"));
    assert_eq!(contact["firstName"], "Maria");
    assert_eq!(contact["phone"], "+14155550123");
    assert_eq!(contact["phoneType"], "mobile");
    assert_eq!(contact["email"], "maria@example.com");
    assert_eq!(contact["tags"], json!(["vip", "west-coast"]));
    assert_eq!(
        contact["customFields"],
        json!({"plan": "gold", "seats": 12})
    );
    assert_eq!(contact["status"], "active");
    assert_eq!(contact["doNotCall"], false);
    assert_eq!(contact["listIds"], json!([leads]));
    let list = agent
        .get(&format!("/v1/contact-lists/{leads}"))
        .await
        .expect(200);
    assert_eq!(list.body["data"]["contactCount"], 1);

    // The same number typed another way belongs to Maria already.
    let dup = agent
        .post(
            "/v1/contacts",
            json!({ "firstName": "Other", "phone": "+1 415-555-0123" }),
        )
        .await
        .expect(409);
    assert_eq!(dup.code(), "duplicate_phone");
    assert_eq!(
        dup.body["error"]["details"]["current"]["contactId"],
        id.as_str()
    );

    // Every bad field at once, nothing written.
    let many: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("f{i}"), json!(i))).collect();
    let bad = agent
        .post(
            "/v1/contacts",
            json!({ "phone": "12345", "email": "ana@", "phoneType": "pager", "status": "gone",
                    "tags": ["ok", "bad tag!"], "customFields": many }),
        )
        .await
        .expect(422);
    assert_eq!(
        bad.fields(),
        vec![
            "firstName",
            "phone",
            "phoneType",
            "email",
            "tags[1]",
            "customFields",
            "status"
        ]
    );
    let nested = agent
        .post(
            "/v1/contacts",
            json!({ "firstName": "N", "phone": "+14155550124", "customFields": {"a": {"b": 1}} }),
        )
        .await
        .expect(422);
    assert_eq!(nested.fields(), vec!["customFields.a"]);
    let unknown_list = agent
        .post(
            "/v1/contacts",
            json!({ "firstName": "N", "phone": "+14155550124", "listIds": ["lst_nope"] }),
        )
        .await
        .expect(422);
    assert_eq!(unknown_list.fields(), vec!["listIds[0]"]);
    let counts = agent.get("/v1/contacts").await.expect(200);
    assert_eq!(counts.body["pagination"]["total"], 1);

    // PATCH changes only what it names; null clears; a new phone frees the old one.
    let patched = agent
        .send(
            Method::PATCH,
            &format!("/v1/contacts/{id}"),
            Some(json!({ "email": null, "phone": "415 555 0199", "notes": "Call after 5" })),
        )
        .await
        .expect(200);
    let c = &patched.body["data"];
    assert_eq!(c["email"], Value::Null);
    assert_eq!(c["phone"], "+14155550199");
    assert_eq!(c["company"], "Acme, Inc.");
    assert_eq!(c["notes"], "Call after 5");
    assert_eq!(c["listIds"], json!([leads]));
    agent
        .post(
            "/v1/contacts",
            json!({ "firstName": "Reuse", "phone": "(415) 555-0123" }),
        )
        .await
        .expect(201);
    let by_old_email = agent.get("/v1/contacts?search=maria@").await.expect(200);
    assert_eq!(by_old_email.body["pagination"]["total"], 0);
    let taken = agent
        .send(
            Method::PATCH,
            &format!("/v1/contacts/{id}"),
            Some(json!({ "phone": "+14155550123" })),
        )
        .await
        .expect(409);
    assert_eq!(taken.code(), "duplicate_phone");
    let list_change = agent
        .send(
            Method::PATCH,
            &format!("/v1/contacts/{id}"),
            Some(json!({ "listIds": [] })),
        )
        .await
        .expect(422);
    assert_eq!(list_change.fields(), vec!["listIds"]);

    // PUT is the whole contact: what it leaves out is cleared.
    let replaced = agent
        .put(
            &format!("/v1/contacts/{id}"),
            json!({ "firstName": "María", "phone": "+14155550199", "status": "inactive" }),
        )
        .await
        .expect(200);
    assert_eq!(replaced.body["data"]["company"], Value::Null);
    assert_eq!(replaced.body["data"]["tags"], json!([]));
    assert_eq!(replaced.body["data"]["status"], "inactive");

    // Deleting is for managers; it leaves the list's count exact.
    agent
        .delete(&format!("/v1/contacts/{id}"))
        .await
        .expect(403);
    app.supervisor()
        .delete(&format!("/v1/contacts/{id}"))
        .await
        .expect(200);
    agent.get(&format!("/v1/contacts/{id}")).await.expect(404);
    let list = agent
        .get(&format!("/v1/contact-lists/{leads}"))
        .await
        .expect(200);
    assert_eq!(list.body["data"]["contactCount"], 0);
    agent
        .post(
            "/v1/contacts",
            json!({ "firstName": "Again", "phone": "+14155550199" }),
        )
        .await
        .expect(201);

    // A retried create with the same Idempotency-Key creates one contact.
    let first = agent
        .clone()
        .header("Idempotency-Key", "create-zoe-1")
        .post(
            "/v1/contacts",
            json!({ "firstName": "Zoe", "phone": "+14155550177" }),
        )
        .await
        .expect(201);
    let again = agent
        .clone()
        .header("Idempotency-Key", "create-zoe-1")
        .post(
            "/v1/contacts",
            json!({ "firstName": "Zoe", "phone": "+14155550177" }),
        )
        .await
        .expect(201);
    assert_eq!(data_id(&first), data_id(&again));
    assert_eq!(again.headers["idempotent-replayed"], "true");
}

#[tokio::test]
async fn list_counts_stay_exact_under_concurrent_adds_and_removes() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    let list = new_list(&sup, "Race").await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(new_contact(&sup, &format!("C{i}"), &format!("+1415555{:04}", 3000 + i)).await);
    }
    // Eight clients add overlapping halves at once, then four remove overlapping quarters.
    let adds = (0..8).map(|k| {
        let chunk: Vec<String> = ids.iter().skip(k * 3).take(20).cloned().collect();
        let sup = sup.clone();
        let list = list.clone();
        async move {
            sup.post(
                &format!("/v1/contact-lists/{list}/contacts"),
                json!({ "contactIds": chunk }),
            )
            .await
            .expect(200)
        }
    });
    let added: usize = futures_util::future::join_all(adds)
        .await
        .iter()
        .map(|r| {
            assert_eq!(r.body["data"]["failed"], json!([]), "{}", r.body);
            r.body["data"]["added"].as_array().unwrap().len()
        })
        .sum();
    let expected_members = (0..8)
        .flat_map(|k| (k * 3)..(k * 3 + 20))
        .filter(|i| *i < 40)
        .collect::<BTreeSet<_>>();
    assert_eq!(
        added,
        expected_members.len(),
        "each id is added exactly once"
    );
    let removes = (0..4).map(|k| {
        let chunk: Vec<String> = ids.iter().skip(k * 5).take(10).cloned().collect();
        let sup = sup.clone();
        let list = list.clone();
        async move {
            sup.send(
                Method::DELETE,
                &format!("/v1/contact-lists/{list}/contacts"),
                Some(json!({ "contactIds": chunk })),
            )
            .await
            .expect(200)
        }
    });
    let removed: usize = futures_util::future::join_all(removes)
        .await
        .iter()
        .map(|r| r.body["data"]["removed"].as_array().unwrap().len())
        .sum();
    let removed_expected = (0..4)
        .flat_map(|k| (k * 5)..(k * 5 + 10))
        .collect::<BTreeSet<_>>();
    assert_eq!(removed, removed_expected.len());
    let remaining = expected_members.difference(&removed_expected).count();
    let count = sup
        .get(&format!("/v1/contact-lists/{list}"))
        .await
        .expect(200);
    assert_eq!(count.body["data"]["contactCount"], remaining);
    let listed = sup
        .get(&format!("/v1/contacts?listId={list}&limit=100"))
        .await
        .expect(200);
    assert_eq!(listed.body["data"].as_array().unwrap().len(), remaining);
    assert_eq!(listed.body["pagination"]["total"], remaining);
    let with_list = contacts_by_phone(&sup)
        .await
        .values()
        .filter(|c| {
            c["listIds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|l| l == list.as_str())
        })
        .count();
    assert_eq!(with_list, remaining);
}

#[tokio::test]
async fn paging_walks_every_contact_exactly_once() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    let list = new_list(&sup, "Walk").await;
    let mut ids = BTreeSet::new();
    for i in 0..57 {
        let id = new_contact(&sup, &format!("P{i}"), &format!("+1415555{:04}", 4000 + i)).await;
        ids.insert(id);
    }
    let all: Vec<String> = ids.iter().cloned().collect();
    sup.post(
        &format!("/v1/contact-lists/{list}/contacts"),
        json!({ "contactIds": all }),
    )
    .await
    .expect(200);
    for source in ["", &format!("&listId={list}")] {
        // By page number.
        let mut seen = Vec::new();
        for page in 1..=6 {
            let reply = sup
                .get(&format!("/v1/contacts?limit=10&page={page}{source}"))
                .await
                .expect(200);
            assert_eq!(reply.body["pagination"]["total"], 57);
            assert_eq!(reply.body["pagination"]["pages"], 6);
            for c in reply.body["data"].as_array().unwrap() {
                seen.push(c["id"].as_str().unwrap().to_owned());
            }
        }
        assert_eq!(seen.len(), 57);
        assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), ids);
        // By cursor.
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let path = match &cursor {
                Some(c) => format!("/v1/contacts?limit=8&cursor={c}{source}"),
                None => format!("/v1/contacts?limit=8{source}"),
            };
            let reply = sup.get(&path).await.expect(200);
            for c in reply.body["data"].as_array().unwrap() {
                seen.push(c["id"].as_str().unwrap().to_owned());
            }
            match reply.body["nextCursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 57, "{source}");
        assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), ids);
    }
    // A filtered walk: 19 inactive contacts, in pages of 5.
    let inactive: Vec<String> = ids.iter().step_by(3).cloned().collect();
    app.supervisor()
        .post(
            "/v1/contacts/bulk",
            json!({ "operation": "setStatus", "status": "inactive", "contactIds": inactive }),
        )
        .await
        .expect(200);
    let mut seen = BTreeSet::new();
    for page in 1..=4 {
        let reply = sup
            .get(&format!(
                "/v1/contacts?status=inactive&limit=5&page={page}&listId={list}"
            ))
            .await
            .expect(200);
        assert_eq!(reply.body["pagination"]["total"], 19);
        for c in reply.body["data"].as_array().unwrap() {
            assert_eq!(c["status"], "inactive");
            assert!(seen.insert(c["id"].as_str().unwrap().to_owned()));
        }
    }
    assert_eq!(seen, inactive.into_iter().collect());
    // Bad paging is a 422 naming the parameter; a forged cursor a 400.
    let r = sup.get("/v1/contacts?limit=0").await.expect(422);
    assert_eq!(r.fields(), vec!["limit"]);
    let r = sup.get("/v1/contacts?page=abc").await.expect(422);
    assert_eq!(r.fields(), vec!["page"]);
    let r = sup
        .get("/v1/contacts?cursor=eyJQSyI6IlRFTkFOVCNvdGhlciJ9")
        .await
        .expect(400);
    assert_eq!(r.code(), "invalid_cursor");
}

#[tokio::test]
async fn contacts_are_found_by_any_way_of_typing_their_number_email_or_name() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    for (first, last, phone, email, company) in [
        (
            "Ana",
            "Lopez",
            "+14155552671",
            "ana.lopez@example.com",
            "Acme",
        ),
        (
            "Anabel",
            "Stone",
            "+14155552672",
            "anabel@stone.io",
            "Stone & Co",
        ),
        (
            "Ben",
            "Lopez",
            "+442079460958",
            "ben@example.co.uk",
            "Lopez Ltd",
        ),
    ] {
        sup.post(
            "/v1/contacts",
            json!({ "firstName": first, "lastName": last, "phone": phone, "email": email, "company": company }),
        )
        .await
        .expect(201);
    }
    let names = |reply: &Reply, key: &str| -> Vec<String> {
        let mut v: Vec<String> = reply.body[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["firstName"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    for typed in [
        "415 555-2671",
        "(415) 555 2671",
        "+1-415-555-2671",
        "4155552671",
    ] {
        let reply = sup
            .get(&format!("/v1/contacts?search={}", urlencode(typed)))
            .await
            .expect(200);
        assert_eq!(names(&reply, "data"), vec!["Ana"], "{typed}");
    }
    let prefix = sup
        .get("/v1/contacts?search=415%20555%2026")
        .await
        .expect(200);
    assert_eq!(names(&prefix, "data"), vec!["Ana", "Anabel"]);
    let uk = sup
        .get(&format!("/v1/contacts?search={}", urlencode("+44 20 7946")))
        .await
        .expect(200);
    assert_eq!(names(&uk, "data"), vec!["Ben"]);
    let email = sup.get("/v1/contacts?search=anabel@").await.expect(200);
    assert_eq!(names(&email, "data"), vec!["Anabel"]);
    let name = sup.get("/v1/contacts?search=ana").await.expect(200);
    assert_eq!(names(&name, "data"), vec!["Ana", "Anabel"]);
    let last = sup.get("/v1/contacts?search=LOPEZ").await.expect(200);
    assert_eq!(names(&last, "data"), vec!["Ana", "Ben"]);
    let full = sup.get("/v1/contacts?search=ana%20lo").await.expect(200);
    assert_eq!(names(&full, "data"), vec!["Ana"]);
    let company = sup.get("/v1/contacts?search=stone%20%26").await.expect(200);
    assert_eq!(names(&company, "data"), vec!["Anabel"]);
    // One letter names no index partition: it is a bounded text search instead.
    let letter = sup.get("/v1/contacts?search=B").await.expect(200);
    assert_eq!(names(&letter, "data"), vec!["Anabel", "Ben"]);
    // The deployed app's search, with and without inactive contacts.
    let ana = sup
        .get("/api/contacts/search?q=lopez&limit=5")
        .await
        .expect(200);
    assert_eq!(names(&ana, "contacts"), vec!["Ana", "Ben"]);
    let ben_id = ana.body["contacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["firstName"] == "Ben")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    sup.send(
        Method::PATCH,
        &format!("/v1/contacts/{ben_id}"),
        Some(json!({ "status": "inactive" })),
    )
    .await
    .expect(200);
    let active_only = sup.get("/api/contacts/search?q=lopez").await.expect(200);
    assert_eq!(names(&active_only, "contacts"), vec!["Ana"]);
    let all = sup
        .get("/api/contacts/search?q=lopez&includeInactive=true")
        .await
        .expect(200);
    assert_eq!(names(&all, "contacts"), vec!["Ana", "Ben"]);
    assert_eq!(all.body["total"], 2);
    // Free text inside one list.
    let list = new_list(&sup, "UK").await;
    sup.post(
        &format!("/v1/contact-lists/{list}/contacts"),
        json!({ "contactIds": [ben_id] }),
    )
    .await
    .expect(200);
    let in_list = sup
        .get(&format!("/api/contacts/lists/{list}/contacts?search=ltd"))
        .await
        .expect(200);
    assert_eq!(in_list.body["totalCount"], 1);
    assert_eq!(in_list.body["contacts"][0]["firstName"], "Ben");
    assert_eq!(in_list.body["currentPage"], 1);
    assert_eq!(in_list.body["totalPages"], 1);
    assert_eq!(in_list.body["hasMore"], false);
    let by_phone = sup
        .get(&format!(
            "/api/contacts/lists/{list}/contacts?phoneFilter=7946"
        ))
        .await
        .expect(200);
    assert_eq!(by_phone.body["totalCount"], 1);
    let none = sup
        .get(&format!("/api/contacts/lists/{list}/contacts?search=ana"))
        .await
        .expect(200);
    assert_eq!(none.body["totalCount"], 0);
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn bulk_changes_report_each_id() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    let list = new_list(&sup, "Bulk").await;
    let a = new_contact(&sup, "A", "+14155556001").await;
    let b = new_contact(&sup, "B", "+14155556002").await;
    let c = new_contact(&sup, "C", "+14155556003").await;
    let other = app.user_in(&new_tenant(), Role::Admin, "x");
    let foreign = new_contact(&other, "F", "+14155556004").await;
    let unknown = "con_0193a0000000700080000000000000ff".to_owned();
    let ids = json!([a, b, "not-an-id", foreign, unknown, c]);

    let tag = sup
        .post(
            "/v1/contacts/bulk",
            json!({ "operation": "tag", "tags": ["Hot"], "contactIds": ids }),
        )
        .await
        .expect(200);
    let data = &tag.body["data"];
    assert_eq!(data["requested"], 6);
    assert_eq!(data["succeeded"], 3);
    assert_eq!(data["failed"], 3);
    let results = data["results"].as_array().unwrap();
    assert_eq!(results[0]["id"], a.as_str());
    assert_eq!(results[0]["status"], "ok");
    assert_eq!(results[2]["id"], "not-an-id");
    assert_eq!(results[2]["code"], "not_found");
    assert_eq!(results[3]["id"], foreign.as_str()); // another tenant's id is simply unknown here
    assert_eq!(results[3]["code"], "not_found");
    let again = sup
        .post(
            "/v1/contacts/bulk",
            json!({ "operation": "tag", "tags": ["hot"], "contactIds": [a, b] }),
        )
        .await
        .expect(200);
    assert_eq!(again.body["data"]["unchanged"], 2);
    let shown = sup.get(&format!("/v1/contacts/{a}")).await.expect(200);
    assert_eq!(shown.body["data"]["tags"], json!(["hot"]));

    let added = sup
        .post(
            "/v1/contacts/bulk",
            json!({ "operation": "addToList", "listId": list, "contactIds": [a, b, unknown] }),
        )
        .await
        .expect(200);
    assert_eq!(added.body["data"]["succeeded"], 2);
    assert_eq!(added.body["data"]["failed"], 1);
    let status = sup
        .post(
            "/v1/contacts/bulk",
            json!({ "operation": "setStatus", "status": "doNotCall", "contactIds": [b, c] }),
        )
        .await
        .expect(200);
    assert_eq!(status.body["data"]["succeeded"], 2);
    let dnc = sup.get("/v1/contacts?status=doNotCall").await.expect(200);
    assert_eq!(dnc.body["pagination"]["total"], 2);
    assert_eq!(dnc.body["data"][0]["doNotCall"], true);
    sup.post(
        "/v1/contacts/bulk",
        json!({ "operation": "untag", "tags": ["hot"], "contactIds": [a] }),
    )
    .await
    .expect(200);
    let removed = sup
        .post(
            "/v1/contacts/bulk",
            json!({ "operation": "removeFromList", "listId": list, "contactIds": [a, c] }),
        )
        .await
        .expect(200);
    assert_eq!(removed.body["data"]["succeeded"], 1);
    assert_eq!(removed.body["data"]["unchanged"], 1);
    let deleted = sup
        .post(
            "/v1/contacts/bulk",
            json!({ "operation": "delete", "contactIds": [b, unknown] }),
        )
        .await
        .expect(200);
    assert_eq!(deleted.body["data"]["succeeded"], 1);
    assert_eq!(deleted.body["data"]["results"][1]["code"], "not_found");
    let count = sup
        .get(&format!("/v1/contact-lists/{list}"))
        .await
        .expect(200);
    assert_eq!(count.body["data"]["contactCount"], 0);
    let total = sup.get("/v1/contacts").await.expect(200);
    assert_eq!(total.body["pagination"]["total"], 2);
    other
        .get(&format!("/v1/contacts/{foreign}"))
        .await
        .expect(200);

    // Requests that cannot be run at all.
    let too_many: Vec<String> = (0..1001).map(|i| format!("con_{i}")).collect();
    let r = sup
        .post(
            "/v1/contacts/bulk",
            json!({ "operation": "delete", "contactIds": too_many }),
        )
        .await
        .expect(422);
    assert_eq!(r.fields(), vec!["contactIds"]);
    let r = sup
        .post(
            "/v1/contacts/bulk",
            json!({ "operation": "explode", "contactIds": [a] }),
        )
        .await
        .expect(422);
    assert_eq!(r.fields(), vec!["operation"]);
    let r = sup
        .post(
            "/v1/contacts/bulk",
            json!({ "operation": "addToList", "contactIds": [a] }),
        )
        .await
        .expect(422);
    assert_eq!(r.fields(), vec!["listId"]);
    app.agent("ana")
        .post(
            "/v1/contacts/bulk",
            json!({ "operation": "delete", "contactIds": [a] }),
        )
        .await
        .expect(403);
}

/// The error rows of a finished job as `(row, field)`.
fn error_rows(job: &Value) -> Vec<(u64, String)> {
    job["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["row"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn counts(job: &Value) -> [u64; 7] {
    [
        "totalRows",
        "imported",
        "updated",
        "duplicatesInFile",
        "skipped",
        "failed",
        "doNotCall",
    ]
    .map(|k| job[k].as_u64().unwrap_or(u64::MAX))
}

#[tokio::test]
async fn real_world_files_import_with_exact_counts_and_error_rows() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    let list = new_list(&sup, "Fair 2026").await;

    // A spreadsheet's CSV: BOM, CRLF, a bad email, a bad phone, blank lines, a duplicate.
    let job = import(
        &app,
        &sup,
        "Fair Leads.csv",
        "text/csv",
        fixture("spreadsheet_bom_crlf.csv"),
        json!({ "listId": list, "duplicates": "update" }),
    )
    .await;
    assert_eq!(job["status"], "completed", "{job}");
    //                 total imported updated dups skipped failed dnc
    assert_eq!(counts(&job), [7, 4, 0, 1, 0, 2, 0]);
    assert_eq!(job["processed"], 7);
    assert_eq!(
        error_rows(&job),
        vec![(3, "email".to_owned()), (4, "phone".to_owned())]
    );
    assert_eq!(job["fileKind"], "csv");
    assert_eq!(job["percent"], 100.0);
    let report_url = job["errorReportUrl"].as_str().expect("error report");
    let report = app
        .http()
        .get(report_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = report.lines().collect();
    assert_eq!(lines[0], "row,field,message,value");
    assert!(lines[1].starts_with("3,email,"));
    assert!(lines[2].starts_with("4,phone,"));
    assert_eq!(lines.len(), 3);

    let people = contacts_by_phone(&sup).await;
    assert_eq!(people.len(), 4);
    let ana = &people["+14155552671"];
    // The duplicate row (Ana Lopez-Twin) was merged into the first.
    assert_eq!(ana["lastName"], "Lopez-Twin");
    assert_eq!(ana["email"], "ana2@example.com");
    assert_eq!(ana["tags"], json!(["vip", "west"]));
    assert_eq!(people["+14155552673"]["company"], "Ode, Inc.");
    assert_eq!(people["+4930901820"]["firstName"], "Zoë");
    assert_eq!(people["+4930901820"]["company"], "Bäckerei");
    assert_eq!(people["+442079460958"]["tags"], json!(["uk"]));
    let listed = sup
        .get(&format!("/v1/contact-lists/{list}"))
        .await
        .expect(200);
    assert_eq!(listed.body["data"]["contactCount"], 4);

    // Semicolons; one number already belongs to Dan: merged, as asked.
    let job = import(
        &app,
        &sup,
        "export.csv",
        "text/csv",
        fixture("semicolon.csv"),
        json!({ "listId": list, "duplicates": "update" }),
    )
    .await;
    assert_eq!(counts(&job), [5, 3, 1, 0, 0, 1, 0], "{job}");
    assert_eq!(error_rows(&job), vec![(5, "phone".to_owned())]);
    let people = contacts_by_phone(&sup).await;
    assert_eq!(people["+14155552673"]["firstName"], "Ian");
    assert_eq!(people["+14155552601"]["company"], "Smith; Sons");
    assert_eq!(people["+14155552601"]["phoneType"], "mobile");

    // The same file again, `duplicates` left out: skipped (the default), nothing changes.
    let job = import(
        &app,
        &sup,
        "export.csv",
        "text/csv",
        fixture("semicolon.csv"),
        json!({ "listId": list }),
    )
    .await;
    assert_eq!(counts(&job), [5, 0, 0, 0, 4, 1, 0], "{job}");
    let listed = sup
        .get(&format!("/v1/contact-lists/{list}"))
        .await
        .expect(200);
    assert_eq!(listed.body["data"]["contactCount"], 7);

    // Quoted commas, doubled quotes, a newline inside a cell; a "Name" column.
    let job = import(
        &app,
        &sup,
        "notes.csv",
        "text/csv",
        fixture("quoted_newlines.csv"),
        json!({}),
    )
    .await;
    assert_eq!(counts(&job), [4, 4, 0, 0, 0, 0, 0], "{job}");
    let people = contacts_by_phone(&sup).await;
    assert_eq!(people["+14155552701"]["firstName"], "Liam");
    assert_eq!(people["+14155552701"]["lastName"], "Ray");
    assert_eq!(people["+14155552702"]["notes"], "She said \"call me\"");
    assert_eq!(
        people["+14155552703"]["notes"],
        "Line one\nLine two, with a comma"
    );

    // Excel's own CSV on Windows (Windows-1252).
    let job = import(
        &app,
        &sup,
        "excel.csv",
        "application/vnd.ms-excel",
        fixture("windows1252.csv"),
        json!({}),
    )
    .await;
    assert_eq!(counts(&job), [3, 3, 0, 0, 0, 0, 0], "{job}");
    let people = contacts_by_phone(&sup).await;
    assert_eq!(people["+14155552801"]["firstName"], "José");
    assert_eq!(people["+14155552802"]["lastName"], "Müller");

    // An XLSX: a number cell, a text cell, "n/a", a gap, a duplicate.
    let job = import(
        &app,
        &sup,
        "contacts.xlsx",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        fixture("contacts.xlsx"),
        json!({}),
    )
    .await;
    assert_eq!(job["fileKind"], "xlsx");
    assert_eq!(counts(&job), [5, 3, 0, 1, 0, 1, 0], "{job}");
    assert_eq!(error_rows(&job), vec![(4, "phone".to_owned())]);
    let people = contacts_by_phone(&sup).await;
    assert_eq!(people["+14155552901"]["phoneType"], "mobile");
    assert!(people.contains_key("+14155552902"));
    assert!(people.contains_key("+14155552907"));

    // Progress reached the event log (what the realtime channel `contacts` delivers).
    let progress = events_of(&app, &app.tenant)
        .await
        .into_iter()
        .filter(|e| e["type"] == "import_progress")
        .filter(|e| e["data"]["status"] == "completed")
        .count();
    assert_eq!(progress, 6);

    // Files that cannot be imported.
    let r = sup
        .post(
            "/v1/uploads/contacts",
            json!({ "fileName": "old.xls", "contentType": "application/vnd.ms-excel" }),
        )
        .await
        .expect(422);
    assert_eq!(r.fields(), vec!["fileName"]);
    let r = sup
        .post(
            "/v1/uploads/contacts",
            json!({ "fileName": "a.csv", "contentType": "text/csv", "mapping": {"Tel": "telephone"} }),
        )
        .await
        .expect(422);
    assert_eq!(r.fields(), vec!["mapping.Tel"]);
    let r = sup
        .post(
            "/v1/uploads/contacts",
            json!({ "fileName": "a.csv", "contentType": "text/csv" }),
        )
        .await
        .expect(201);
    let job_id = r.body["jobId"].as_str().unwrap();
    let r = sup
        .post(&format!("/v1/uploads/contacts/{job_id}/start"), json!({}))
        .await
        .expect(409);
    assert_eq!(r.code(), "upload_missing");
    let no_phone = import(
        &app,
        &sup,
        "names.csv",
        "text/csv",
        b"Name,City\nAna,Paris\n".to_vec(),
        json!({}),
    )
    .await;
    assert_eq!(no_phone["status"], "failed");
    assert!(
        no_phone["error"]
            .as_str()
            .unwrap()
            .contains("no phone column")
    );
    // An explicit mapping names the phone column.
    let mapped = import(
        &app,
        &sup,
        "odd.csv",
        "text/csv",
        b"Who,Digits,Where\nAna,415 555 3101,Paris\n".to_vec(),
        json!({ "mapping": {"Who": "fullName", "Digits": "phone", "Where": "custom:city"} }),
    )
    .await;
    assert_eq!(counts(&mapped), [1, 1, 0, 0, 0, 0, 0], "{mapped}");
    let people = contacts_by_phone(&sup).await;
    assert_eq!(
        people["+14155553101"]["customFields"],
        json!({"city": "Paris"})
    );
    app.agent("ana")
        .post(
            "/v1/uploads/contacts",
            json!({ "fileName": "a.csv", "contentType": "text/csv" }),
        )
        .await
        .expect(403);
}

#[tokio::test]
async fn an_interrupted_import_resumes_and_a_rerun_imports_nothing_twice() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    let tenant = vocelio_shared::ids::TenantId::parse(&app.tenant).unwrap();
    let mut csv = String::from("First Name,Phone,Email\n");
    for i in 0..300 {
        csv.push_str(&format!(
            "P{i},+1 415 555 {:04},p{i}@example.com\n",
            5000 + i
        ));
        if i % 50 == 7 {
            csv.push_str(&format!("Dup{i},4155555{:03},\n", i)); // a repeat of an earlier row
        }
        if i % 60 == 3 {
            csv.push_str("Bad,not a phone,\n");
        }
    }
    let job = sup
        .post(
            "/v1/uploads/contacts",
            json!({ "fileName": "big.csv", "contentType": "text/csv" }),
        )
        .await
        .expect(201);
    let job_id = job.body["jobId"].as_str().unwrap().to_owned();
    app.http()
        .put(job.body["uploadUrl"].as_str().unwrap())
        .header("Content-Type", "text/csv")
        .body(csv.clone().into_bytes())
        .send()
        .await
        .unwrap();
    // Queue it by hand (no notification), then run the worker in slices too short to finish:
    // each slice checkpoints, hands over and the next resumes where it stopped.
    let svc = &app.contacts;
    let queued = contacts::import::start(svc, &tenant, &job_id).await;
    assert!(queued.is_ok());
    let mut slices = 0;
    let mut taken_over = false;
    loop {
        let outcome = contacts::import::run(svc, &tenant, &job_id, Duration::from_millis(1))
            .await
            .unwrap();
        slices += 1;
        match outcome {
            contacts::import::RunOutcome::Continued => {
                let midway = sup
                    .get(&format!("/v1/uploads/contacts/{job_id}"))
                    .await
                    .expect(200);
                assert_eq!(midway.body["status"], "queued");
                assert!(midway.body["processed"].as_u64().unwrap() > 0);
            }
            contacts::import::RunOutcome::Completed => break,
            other => {
                // The queue object of a hand-over was taken by the stand's notifier first.
                assert_eq!(other, contacts::import::RunOutcome::NotClaimed);
                let done = wait_for_job(&sup, &job_id).await;
                assert_eq!(done["status"], "completed");
                taken_over = true;
                break;
            }
        }
        assert!(slices < 200);
    }
    // When the notifier claimed the job before our first slice, it ran it with its full
    // budget: only our own slices show the hand-over.
    assert!(taken_over || slices > 1, "the import ran in several slices");
    let done = wait_for_job(&sup, &job_id).await;
    let dups = (0..300).filter(|i| i % 50 == 7).count() as u64;
    let bad = (0..300).filter(|i| i % 60 == 3).count() as u64;
    assert_eq!(
        counts(&done),
        [300 + dups + bad, 300, 0, dups, 0, bad, 0],
        "{done}"
    );
    let total = sup.get("/v1/contacts").await.expect(200);
    assert_eq!(total.body["pagination"]["total"], 300);
    // Starting a finished job again changes nothing.
    let again = sup
        .post(&format!("/v1/uploads/contacts/{job_id}/start"), json!({}))
        .await
        .expect(200);
    assert_eq!(again.body["data"]["status"], "completed");
    assert_eq!(again.body["data"]["imported"], 300);
    let outcome = contacts::import::run(svc, &tenant, &job_id, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(outcome, contacts::import::RunOutcome::NotClaimed);
    let total = sup.get("/v1/contacts").await.expect(200);
    assert_eq!(total.body["pagination"]["total"], 300);
    let listed = sup.get("/v1/uploads/contacts").await.expect(200);
    assert_eq!(listed.body["data"][0]["jobId"], job_id.as_str());
}

#[tokio::test]
async fn an_exported_list_imports_back_unchanged() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    let list = new_list(&sup, "Round trip").await;
    let people = [
        json!({ "firstName": "Zoë", "lastName": "O'Brien, Jr.", "phone": "+4930901820", "phoneType": "work",
                "email": "zoe@example.de", "company": "Bäckerei \"Süß\"", "tags": ["vip", "de"],
                "customFields": {"plan": "gold", "seats": 12, "trial": false},
                "notes": "Line one\nLine two, with a comma", "status": "inactive", "listIds": [list] }),
        json!({ "firstName": "Li", "phone": "+8613912345678", "listIds": [list] }),
        json!({ "firstName": "=HYPERLINK(\"x\")", "lastName": "Formula", "phone": "+14155557001", "phoneType": "home",
                "notes": "  ", "listIds": [list] }),
    ];
    for p in &people {
        sup.post("/v1/contacts", p.clone()).await.expect(201);
    }
    let response = sup
        .raw(
            Method::GET,
            &format!("/v1/contact-lists/{list}/export"),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("Round_trip.csv")
    );
    let csv = response.bytes().await.unwrap().to_vec();
    assert!(csv.starts_with(
        b"firstName,lastName,phone,phoneType,email,company,status,tags,customFields,notes\r\n"
    ));
    // A spreadsheet shows the formula as text; the import below takes the guard off again.
    assert!(String::from_utf8_lossy(&csv).contains("\"'=HYPERLINK(\"\"x\"\")\""));

    // The same file through the presigned URL delivery.
    let by_url = sup
        .get(&format!("/v1/contact-lists/{list}/export?delivery=url"))
        .await
        .expect(200);
    let downloaded = app
        .http()
        .get(by_url.body["data"]["url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(downloaded.to_vec(), csv);

    // Into another tenant, through the import.
    let other = app.user_in(&new_tenant(), Role::Admin, "admin-2");
    let job = import(&app, &other, "Round_trip.csv", "text/csv", csv, json!({})).await;
    assert_eq!(counts(&job), [3, 3, 0, 0, 0, 0, 0], "{job}");
    let original = contacts_by_phone(&sup).await;
    let copy = contacts_by_phone(&other).await;
    assert_eq!(copy.len(), 3);
    for (phone, c) in &original {
        let d = &copy[phone];
        for field in [
            "firstName",
            "lastName",
            "phone",
            "phoneType",
            "email",
            "company",
            "status",
            "tags",
            "customFields",
            "notes",
            "doNotCall",
        ] {
            assert_eq!(c[field], d[field], "{phone} {field}");
        }
    }
}

#[tokio::test]
async fn do_not_call_lists_block_numbers_everywhere() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    let maria = new_contact(&sup, "Maria", "+14155558001").await;
    let list = new_list(&sup, "Campaign").await;
    let carl = new_contact(&sup, "Carl", "+14155558002").await;
    sup.post(
        &format!("/v1/contact-lists/{list}/contacts"),
        json!({ "contactIds": [maria, carl] }),
    )
    .await
    .expect(200);

    let dnc = sup
        .post(
            "/v1/dnc-lists",
            json!({ "name": "Opt-outs", "description": "Asked not to be called" }),
        )
        .await
        .expect(201);
    let dnc_id = data_id(&dnc);
    assert!(dnc_id.starts_with("dnc_"));
    let national = data_id(
        &sup.post("/v1/dnc-lists", json!({ "name": "National registry" }))
            .await
            .expect(201),
    );
    let added = sup
        .post(
            &format!("/v1/dnc-lists/{dnc_id}/entries"),
            json!({ "phones": ["(415) 555-8001", "+1 415 555 8001", "415.555.8009", "call me maybe"] }),
        )
        .await
        .expect(200);
    let data = &added.body["data"];
    assert_eq!(data["added"], json!(["+14155558001", "+14155558009"]));
    assert_eq!(data["invalid"][0]["id"], "call me maybe");
    assert_eq!(data["contactsMarked"], 1);
    assert_eq!(data["list"]["entryCount"], 2);
    let again = sup
        .post(
            &format!("/v1/dnc-lists/{dnc_id}/entries"),
            json!({ "phones": ["4155558009"] }),
        )
        .await
        .expect(200);
    assert_eq!(again.body["data"]["alreadyListed"], json!(["+14155558009"]));
    sup.post(
        &format!("/v1/dnc-lists/{national}/entries"),
        json!({ "phones": ["+14155558009"] }),
    )
    .await
    .expect(200);
    let maria_now = sup.get(&format!("/v1/contacts/{maria}")).await.expect(200);
    assert_eq!(maria_now.body["data"]["status"], "doNotCall");
    assert_eq!(maria_now.body["data"]["doNotCall"], true);

    // A new contact (or imported row) on a DNC list starts as doNotCall.
    let later = sup
        .post(
            "/v1/contacts",
            json!({ "firstName": "Later", "phone": "415-555-8009" }),
        )
        .await
        .expect(201);
    assert_eq!(later.body["data"]["status"], "doNotCall");
    let job = import(
        &app,
        &sup,
        "dnc.csv",
        "text/csv",
        b"Name,Phone\nNew Person,+1 415 555 8001\nFresh,+1 415 555 8003\n".to_vec(),
        json!({ "duplicates": "skip" }),
    )
    .await;
    assert_eq!(counts(&job), [2, 1, 0, 0, 1, 0, 0], "{job}");

    // Scrub numbers, and a whole list.
    let scrub = sup
        .post(
            "/v1/dnc/scrub",
            json!({ "phones": ["415 555 8009", "+14155558003", "nope"] }),
        )
        .await
        .expect(200);
    let results = scrub.body["data"]["results"].as_array().unwrap();
    assert_eq!(results[0]["blocked"], true);
    let mut lists: Vec<String> = results[0]["lists"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    lists.sort();
    let mut expected = vec![dnc_id.clone(), national.clone()];
    expected.sort();
    assert_eq!(lists, expected);
    assert_eq!(results[1]["blocked"], false);
    assert_eq!(results[2]["error"]["code"], "invalid_phone");
    assert_eq!(scrub.body["data"]["blocked"], 1);
    let by_list = sup
        .post("/v1/dnc/scrub", json!({ "listId": list }))
        .await
        .expect(200);
    assert_eq!(by_list.body["data"]["checked"], 2);
    assert_eq!(by_list.body["data"]["blocked"], 1);
    assert_eq!(
        by_list.body["data"]["results"][0]["contactId"],
        maria.as_str()
    );
    let r = sup.post("/v1/dnc/scrub", json!({})).await.expect(422);
    assert_eq!(r.fields(), vec!["body"]);
    let check = sup
        .get("/v1/dnc/check?phone=415%20555%208001")
        .await
        .expect(200);
    assert_eq!(check.body["data"]["blocked"], true);

    // Calls to a blocked number are refused before Twilio hears of them.
    let refused = sup
        .post(
            "/api/calls/make",
            json!({ "to": "(415) 555-8001", "message": "Hello" }),
        )
        .await
        .expect(403);
    assert_eq!(refused.code(), "do_not_call");
    assert!(refused.body["error"].as_str().unwrap().contains(&dnc_id));
    // (the simulator is shared by the run: no call to this number, whatever others dial)
    assert!(!app.twilio.calls().iter().any(|c| c.to == "+14155558001"));

    // Entries come off one by one; the registry follows.
    let entries = sup
        .get(&format!("/v1/dnc-lists/{dnc_id}/entries"))
        .await
        .expect(200);
    assert_eq!(entries.body["data"].as_array().unwrap().len(), 2);
    sup.delete(&format!("/v1/dnc-lists/{dnc_id}/entries/%2B14155558001"))
        .await
        .expect(200);
    let r = sup
        .delete(&format!("/v1/dnc-lists/{dnc_id}/entries/4155558001"))
        .await
        .expect(404);
    assert_eq!(r.code(), "not_on_list");
    let check = sup.get("/v1/dnc/check?phone=4155558001").await.expect(200);
    assert_eq!(check.body["data"]["blocked"], false);
    let check = sup.get("/v1/dnc/check?phone=4155558009").await.expect(200);
    assert_eq!(check.body["data"]["lists"].as_array().unwrap().len(), 2);
    let shown = sup
        .get(&format!("/v1/dnc-lists/{dnc_id}"))
        .await
        .expect(200);
    assert_eq!(shown.body["data"]["entryCount"], 1);
    let all = sup.get("/v1/dnc-lists").await.expect(200);
    assert_eq!(all.body["pagination"]["total"], 2);
    app.agent("ana")
        .post(
            &format!("/v1/dnc-lists/{dnc_id}/entries"),
            json!({ "phones": ["4155558100"] }),
        )
        .await
        .expect(403);
}

#[tokio::test]
async fn one_tenant_never_sees_or_changes_another_tenants_contacts() {
    let app = spawn_app().await;
    let owner = app.supervisor();
    let list = new_list(&owner, "Private").await;
    let contact = new_contact(&owner, "Secret", "+14155559001").await;
    owner
        .post(
            &format!("/v1/contact-lists/{list}/contacts"),
            json!({ "contactIds": [contact] }),
        )
        .await
        .expect(200);
    let dnc = data_id(
        &owner
            .post("/v1/dnc-lists", json!({ "name": "Mine" }))
            .await
            .expect(201),
    );
    owner
        .post(
            &format!("/v1/dnc-lists/{dnc}/entries"),
            json!({ "phones": ["+14155559002"] }),
        )
        .await
        .expect(200);
    let job = owner
        .post(
            "/v1/uploads/contacts",
            json!({ "fileName": "a.csv", "contentType": "text/csv" }),
        )
        .await
        .expect(201);
    let job_id = job.body["jobId"].as_str().unwrap().to_owned();

    let intruder = app.user_in(&new_tenant(), Role::Admin, "mallory");
    for path in [
        format!("/v1/contact-lists/{list}"),
        format!("/v1/contacts/{contact}"),
        format!("/v1/contact-lists/{list}/export"),
        format!("/v1/uploads/contacts/{job_id}"),
        format!("/v1/dnc-lists/{dnc}"),
        format!("/v1/dnc-lists/{dnc}/entries"),
        format!("/api/contacts/lists/{list}/contacts"),
        format!("/v1/contacts?listId={list}"),
    ] {
        let r = intruder.get(&path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.body);
    }
    intruder
        .put(
            &format!("/v1/contact-lists/{list}"),
            json!({ "name": "Mine now" }),
        )
        .await
        .expect(404);
    intruder
        .send(
            Method::PATCH,
            &format!("/v1/contacts/{contact}"),
            Some(json!({ "firstName": "X" })),
        )
        .await
        .expect(404);
    intruder
        .delete(&format!("/v1/contacts/{contact}"))
        .await
        .expect(404);
    intruder
        .delete(&format!("/v1/contact-lists/{list}"))
        .await
        .expect(404);
    intruder
        .post(&format!("/v1/uploads/contacts/{job_id}/start"), json!({}))
        .await
        .expect(404);
    intruder
        .delete(&format!("/v1/dnc-lists/{dnc}/entries/%2B14155559002"))
        .await
        .expect(404);
    intruder
        .post(
            &format!("/v1/dnc-lists/{dnc}/entries"),
            json!({ "phones": ["+14155559003"] }),
        )
        .await
        .expect(404);
    let theirs = new_list(&intruder, "Theirs").await;
    let r = intruder
        .post(
            &format!("/v1/contact-lists/{theirs}/contacts"),
            json!({ "contactIds": [contact] }),
        )
        .await
        .expect(200);
    assert_eq!(r.body["data"]["failed"][0]["code"], "not_found");
    let search = intruder
        .get("/v1/contacts?search=4155559001")
        .await
        .expect(200);
    assert_eq!(search.body["pagination"]["total"], 0);
    let search = intruder
        .get("/api/contacts/search?q=secret")
        .await
        .expect(200);
    assert_eq!(search.body["total"], 0);
    let lists = intruder.get("/api/contacts/lists").await.expect(200);
    assert_eq!(lists.body.as_array().unwrap().len(), 1);
    let scrub = intruder
        .post("/v1/dnc/scrub", json!({ "phones": ["+14155559002"] }))
        .await
        .expect(200);
    assert_eq!(scrub.body["data"]["blocked"], 0);
    // The same number may be a contact in both tenants.
    intruder
        .post(
            "/v1/contacts",
            json!({ "firstName": "Also", "phone": "+14155559001" }),
        )
        .await
        .expect(201);
    let mine = owner
        .get(&format!("/v1/contacts/{contact}"))
        .await
        .expect(200);
    assert_eq!(mine.body["data"]["firstName"], "Secret");
    let count = owner
        .get(&format!("/v1/contact-lists/{list}"))
        .await
        .expect(200);
    assert_eq!(count.body["data"]["contactCount"], 1);
}

#[tokio::test]
async fn agents_neither_export_lists_nor_change_a_contacts_do_not_call_status() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    let agent = app.agent("ana");
    let list = new_list(&sup, "Leads").await;
    let contact = new_contact(&sup, "Dee", "+14155557101").await;
    sup.send(
        Method::PATCH,
        &format!("/v1/contacts/{contact}"),
        Some(json!({ "status": "doNotCall" })),
    )
    .await
    .expect(200);
    let refused = agent
        .send(
            Method::PATCH,
            &format!("/v1/contacts/{contact}"),
            Some(json!({ "status": "active" })),
        )
        .await
        .expect(403);
    assert_eq!(refused.body["error"]["code"], "status_change_forbidden");
    // Other fields stay theirs to edit.
    agent
        .send(
            Method::PATCH,
            &format!("/v1/contacts/{contact}"),
            Some(json!({ "notes": "asked to be called back" })),
        )
        .await
        .expect(200);
    let now = sup
        .get(&format!("/v1/contacts/{contact}"))
        .await
        .expect(200);
    assert_eq!(now.body["data"]["status"], "doNotCall");
    agent
        .get(&format!("/v1/contact-lists/{list}/export"))
        .await
        .expect(403);
}
