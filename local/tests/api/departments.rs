//! Departments, as the app's Departments page and an admin with curl use them.

use serde_json::json;
use vocelio_shared::Role;

use crate::helpers::{events_of, id_of, spawn_app};

#[tokio::test]
async fn an_admin_creates_lists_updates_and_deletes_a_department() {
    let app = spawn_app().await;
    let admin = app.admin();

    // The seed's own example, exactly as the app sends it.
    let sales = admin.create_department("Sales", "+1555-SALES-01").await;
    assert_eq!(sales["name"], "Sales");
    assert_eq!(sales["phone_number"], "+15557253701");
    assert_eq!(sales["is_active"], true);
    for field in [
        "id",
        "name",
        "phone_number",
        "description",
        "color",
        "is_active",
        "business_hours",
        "created_at",
        "updated_at",
    ] {
        assert!(sales.get(field).is_some(), "department lacks {field}");
    }
    let id = id_of(&sales);
    assert!(id.starts_with("dept_"));

    // The app's placeholder number and a number typed without a country code.
    let support = admin
        .create_department("Support", "+1 (555) 123-4567")
        .await;
    assert_eq!(support["phone_number"], "+15551234567");
    let billing = admin.create_department("Billing", "555-123-9876").await;
    assert_eq!(billing["phone_number"], "+15551239876");

    let list = admin.get("/api/departments").await.expect(200);
    let names: Vec<&str> = list.body["departments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Sales", "Support", "Billing"]);

    let one = admin
        .get(&format!("/api/departments/{id}"))
        .await
        .expect(200);
    assert_eq!(one.body["department"], sales);

    // The app's edit form sends name + phone; a partial update changes only what is sent.
    let updated = admin
        .put(
            &format!("/api/departments/{id}"),
            json!({"name": "Sales", "phone_number": "+1 555 725 3702"}),
        )
        .await
        .expect(200);
    assert_eq!(updated.body["department"]["phone_number"], "+15557253702");
    let updated = admin
        .put(
            &format!("/api/departments/{id}"),
            json!({"description": "Inbound sales", "color": "#1E88E5",
                   "business_hours": {"timezone": "America/New_York", "schedule": {"monday": [{"open": "09:00", "close": "17:00"}]}}}),
        )
        .await
        .expect(200);
    let dept = &updated.body["department"];
    assert_eq!(dept["description"], "Inbound sales");
    assert_eq!(dept["color"], "#1e88e5");
    assert_eq!(dept["phone_number"], "+15557253702");
    assert_eq!(
        dept["business_hours"]["schedule"]["monday"][0]["close"],
        "17:00"
    );
    assert!(dept["updated_at"].as_str() > sales["updated_at"].as_str());
    let cleared = admin
        .put(
            &format!("/api/departments/{id}"),
            json!({"description": null}),
        )
        .await
        .expect(200);
    assert_eq!(
        cleared.body["department"]["description"],
        serde_json::Value::Null
    );

    // Delete is a soft delete: gone from the list, still readable, name free again.
    let deleted = admin
        .delete(&format!("/api/departments/{id}"))
        .await
        .expect(200);
    assert_eq!(deleted.body["department"]["is_active"], false);
    admin
        .delete(&format!("/api/departments/{id}"))
        .await
        .expect(200);
    let list = admin.get("/api/departments").await.expect(200);
    assert!(
        !list.body["departments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == id.as_str())
    );
    let all = admin
        .get("/api/departments?include_inactive=true")
        .await
        .expect(200);
    assert!(
        all.body["departments"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["id"] == id.as_str() && d["is_active"] == false)
    );
    admin
        .get(&format!("/api/departments/{id}"))
        .await
        .expect(200);
    admin.create_department("sales", "+15557253701").await;

    // Every change wrote one event to the tenant's log.
    let types: Vec<String> = events_of(&app, &app.tenant)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "department_created",
            "department_created",
            "department_created",
            "department_updated",
            "department_updated",
            "department_updated",
            "department_deleted",
            "department_created"
        ]
    );
}

#[tokio::test]
async fn the_guides_unprefixed_paths_are_the_same_api() {
    let app = spawn_app().await;
    let admin = app.admin();
    let created = admin
        .post(
            "/departments",
            json!({"name": "Claims", "phone_number": "+44 20 7946 0958"}),
        )
        .await
        .expect(201);
    let id = id_of(&created.body["department"]);
    assert_eq!(created.body["department"]["phone_number"], "+442079460958");
    let via_api = admin
        .get(&format!("/api/departments/{id}"))
        .await
        .expect(200);
    let via_alias = admin.get(&format!("/departments/{id}")).await.expect(200);
    assert_eq!(via_api.body, via_alias.body);
}

#[tokio::test]
async fn bad_department_input_is_a_clear_4xx_naming_the_field() {
    let app = spawn_app().await;
    let admin = app.admin();
    let cases = [
        (json!({"name": "", "phone_number": "555-123-4567"}), "name"),
        (
            json!({"name": "x".repeat(256), "phone_number": "555-123-4567"}),
            "name",
        ),
        (
            json!({"name": "Ops", "phone_number": "+1234567890"}),
            "phone_number",
        ),
        (
            json!({"name": "Ops", "phone_number": "call me"}),
            "phone_number",
        ),
        (
            json!({"name": "Ops", "phone_number": "555#1234"}),
            "phone_number",
        ),
        (json!({"name": "Ops"}), "phone_number"),
        (json!({"phone_number": "555-123-4567"}), "name"),
        (
            json!({"name": "Ops", "phone_number": "555-123-4567", "color": "blue"}),
            "color",
        ),
        (
            json!({"name": "Ops", "phone_number": "555-123-4567", "colour": "#fff"}),
            "colour",
        ),
        (json!({"name": 7, "phone_number": "555-123-4567"}), "name"),
        (
            json!({"name": "Ops", "phone_number": "555-123-4567", "business_hours": {"timezone": "UTC", "schedule": {"funday": []}}}),
            "business_hours.schedule",
        ),
        (
            json!({"name": "Ops", "phone_number": "555-123-4567", "business_hours": {"timezone": "UTC", "schedule": {"monday": [{"open": "25:00", "close": "26:00"}]}}}),
            "business_hours.schedule.monday[0]",
        ),
        (
            json!({"name": "Ops", "phone_number": "555-123-4567", "description": "d".repeat(1001)}),
            "description",
        ),
        (json!(["Ops"]), "body"),
    ];
    for (body, field) in cases {
        let reply = admin
            .post("/api/departments", body.clone())
            .await
            .expect(422);
        assert_eq!(reply.code(), "validation_failed");
        assert!(
            reply.fields().iter().any(|f| f == field),
            "{body} should name {field}, named {:?}",
            reply.fields()
        );
    }

    // Not JSON, and not declared as JSON.
    let raw = app
        .http()
        .post(format!("{}/api/departments", app.base))
        .bearer_auth(
            vocelio_local::stack::mint_token(
                crate::helpers::dev_keys(),
                &app.tenant,
                "a",
                Role::Admin,
                1,
            )
            .unwrap(),
        );
    let not_json = raw
        .try_clone()
        .unwrap()
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let body: serde_json::Value = not_json.json().await.unwrap();
    assert_eq!(body["code"], "invalid_json");
    let form = raw
        .header("content-type", "text/plain")
        .body("name=Ops")
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 415);

    // A partial update that changes nothing, or breaks a rule.
    let ops = admin.create_department("Ops", "555-123-4567").await;
    let path = format!("/api/departments/{}", id_of(&ops));
    assert_eq!(
        admin.put(&path, json!({})).await.expect(422).fields(),
        ["body"]
    );
    assert_eq!(
        admin
            .put(&path, json!({"phone_number": "12"}))
            .await
            .expect(422)
            .fields(),
        ["phone_number"]
    );
    assert_eq!(
        admin
            .put(&path, json!({"id": "dept_x"}))
            .await
            .expect(422)
            .fields(),
        ["id"]
    );
    // Nothing was half-written by the refused requests.
    let after = admin.get(&path).await.expect(200);
    assert_eq!(after.body["department"], ops);
    assert_eq!(
        admin.get("/api/departments").await.body["departments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Paging parameters out of range.
    assert_eq!(
        admin
            .get("/api/departments?limit=0")
            .await
            .expect(422)
            .fields(),
        ["limit"]
    );
    assert_eq!(
        admin
            .get("/api/departments?limit=abc")
            .await
            .expect(422)
            .status,
        422
    );
    assert_eq!(
        admin
            .get("/api/departments?cursor=garbage")
            .await
            .expect(400)
            .code(),
        "invalid_cursor"
    );
}

#[tokio::test]
async fn department_names_are_unique_per_tenant_ignoring_case() {
    let app = spawn_app().await;
    let admin = app.admin();
    admin.create_department("Sales", "555-123-4567").await;
    let dup = admin
        .post(
            "/api/departments",
            json!({"name": " SALES ", "phone_number": "555-123-4568"}),
        )
        .await
        .expect(409);
    assert_eq!(dup.code(), "department_name_taken");

    // Renaming onto a taken name is refused; renaming frees the old name.
    let support = admin.create_department("Support", "555-123-4569").await;
    let path = format!("/api/departments/{}", id_of(&support));
    assert_eq!(
        admin
            .put(&path, json!({"name": "sales"}))
            .await
            .expect(409)
            .code(),
        "department_name_taken"
    );
    admin
        .put(&path, json!({"name": "Customer Care"}))
        .await
        .expect(200);
    admin.create_department("support", "555-123-4570").await;
    // Changing only the case keeps the reservation.
    admin
        .put(&path, json!({"name": "CUSTOMER CARE"}))
        .await
        .expect(200);
    assert_eq!(
        admin
            .post(
                "/api/departments",
                json!({"name": "customer care", "phone_number": "555-123-4571"})
            )
            .await
            .expect(409)
            .code(),
        "department_name_taken"
    );

    // Another tenant may use the same names.
    let other = app.user_in(&crate::helpers::new_tenant(), Role::Admin, "admin-b");
    other.create_department("Sales", "555-123-4567").await;
}

#[tokio::test]
async fn concurrent_creates_of_one_name_make_exactly_one_department() {
    let app = spawn_app().await;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let client = app.http().clone();
        let url = format!("{}/api/departments", app.base);
        let token = vocelio_local::stack::mint_token(
            crate::helpers::dev_keys(),
            &app.tenant,
            "admin",
            Role::Admin,
            1,
        )
        .unwrap();
        tasks.spawn(async move {
            client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"name": "Escalations", "phone_number": format!("555-123-{:04}", 1000 + i)}))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        });
    }
    let statuses: Vec<u16> = tasks.join_all().await;
    assert_eq!(
        statuses.iter().filter(|&&s| s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|&s| s == 201 || s == 409),
        "{statuses:?}"
    );
    let list = app.admin().get("/api/departments").await.expect(200);
    assert_eq!(list.body["departments"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_retried_create_with_an_idempotency_key_returns_the_first_result() {
    let app = spawn_app().await;
    let admin = app.admin().header("Idempotency-Key", "create-sales-1");
    let body = json!({"name": "Sales", "phone_number": "555-123-4567"});
    let first = admin
        .post("/api/departments", body.clone())
        .await
        .expect(201);
    let again = admin
        .post("/api/departments", body.clone())
        .await
        .expect(201);
    assert_eq!(first.body, again.body);
    assert_eq!(
        again
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let other_body = admin
        .post(
            "/api/departments",
            json!({"name": "Other", "phone_number": "555-123-4567"}),
        )
        .await
        .expect(422);
    assert_eq!(other_body.fields(), ["Idempotency-Key"]);
    assert_eq!(
        app.admin().get("/api/departments").await.body["departments"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Concurrent retries of one key still create one department and all see it.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let client = app.http().clone();
        let url = format!("{}/api/departments", app.base);
        let token = vocelio_local::stack::mint_token(
            crate::helpers::dev_keys(),
            &app.tenant,
            "admin",
            Role::Admin,
            1,
        )
        .unwrap();
        tasks.spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "burst-1")
                .json(&json!({"name": "Billing", "phone_number": "555-123-4000"}))
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        });
    }
    let replies = tasks.join_all().await;
    let ids: std::collections::HashSet<String> = replies
        .iter()
        .filter(|(s, _)| *s == 201)
        .map(|(_, b)| b["department"]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{replies:?}");
    assert_eq!(
        app.admin().get("/api/departments").await.body["departments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert!(
        replies.iter().all(|(s, _)| *s == 201 || *s == 409),
        "{replies:?}"
    );
}

#[tokio::test]
async fn only_admins_change_departments_and_tokens_are_checked() {
    let app = spawn_app().await;
    let sales = app.admin().create_department("Sales", "555-123-4567").await;
    let path = format!("/api/departments/{}", id_of(&sales));
    for session in [app.supervisor(), app.agent("ana")] {
        // Refused before the body is even read.
        assert_eq!(
            session
                .post(
                    "/api/departments",
                    json!({"name": "X", "phone_number": "1"})
                )
                .await
                .expect(403)
                .code(),
            "forbidden"
        );
        session.put(&path, json!({"name": "Y"})).await.expect(403);
        session.delete(&path).await.expect(403);
        session.get("/api/departments").await.expect(200);
        session.get(&path).await.expect(200);
    }

    let anonymous = app.anonymous();
    assert_eq!(
        anonymous.get("/api/departments").await.expect(401).code(),
        "unauthorized"
    );
    anonymous
        .post("/api/departments", json!({}))
        .await
        .expect(401);

    let expired = vocelio_local::stack::mint_token(
        crate::helpers::dev_keys(),
        &app.tenant,
        "a",
        Role::Admin,
        -2,
    )
    .unwrap();
    app.with_token(Some(expired))
        .get("/api/departments")
        .await
        .expect(401);
    let foreign = vocelio_local::stack::mint_token(
        &crate::helpers::foreign_keys(),
        &app.tenant,
        "a",
        Role::Admin,
        1,
    )
    .unwrap();
    app.with_token(Some(foreign))
        .get("/api/departments")
        .await
        .expect(401);
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(json!({"sub": "a", "tenant_id": app.tenant, "role": "admin", "exp": 4_000_000_000i64}))
    );
    app.with_token(Some(unsigned))
        .get("/api/departments")
        .await
        .expect(401);
    app.with_token(Some("not-a-jwt".into()))
        .get("/api/departments")
        .await
        .expect(401);

    // X-Tenant-ID, when sent, must be the token's tenant.
    app.admin()
        .header("X-Tenant-ID", &app.tenant)
        .get("/api/departments")
        .await
        .expect(200);
    app.admin()
        .header("X-Tenant-ID", "someone-else")
        .get("/api/departments")
        .await
        .expect(403);
}

#[tokio::test]
async fn one_tenant_never_sees_or_changes_anothers_departments() {
    let app = spawn_app().await;
    let sales = app.admin().create_department("Sales", "555-123-4567").await;
    let path = format!("/api/departments/{}", id_of(&sales));
    let intruder = app.user_in(&crate::helpers::new_tenant(), Role::Admin, "admin-b");
    assert_eq!(intruder.get(&path).await.expect(404).code(), "not_found");
    intruder
        .put(&path, json!({"name": "Hacked"}))
        .await
        .expect(404);
    intruder.delete(&path).await.expect(404);
    assert_eq!(
        intruder
            .get("/api/departments?include_inactive=true")
            .await
            .expect(200)
            .body["departments"],
        json!([])
    );
    // A cursor from one tenant's list is refused in another's.
    let admin = app.admin();
    admin.create_department("Support", "555-123-4568").await;
    let page = admin.get("/api/departments?limit=1").await.expect(200);
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    intruder
        .get(&format!("/api/departments?cursor={cursor}"))
        .await
        .expect(400);
    // Untouched.
    assert_eq!(admin.get(&path).await.expect(200).body["department"], sales);
}

#[tokio::test]
async fn departments_page_through_with_a_cursor() {
    let app = spawn_app().await;
    let admin = app.admin();
    for i in 0..5 {
        admin
            .create_department(&format!("Team {i}"), &format!("555-123-{:04}", 2000 + i))
            .await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/departments?limit=2&cursor={c}"),
            None => "/api/departments?limit=2".to_owned(),
        };
        let page = admin.get(&path).await.expect(200);
        seen.extend(
            page.body["departments"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["name"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, ["Team 0", "Team 1", "Team 2", "Team 3", "Team 4"]);
}

#[tokio::test]
async fn unknown_department_ids_are_404() {
    let app = spawn_app().await;
    let admin = app.admin();
    admin.get("/api/departments/not-an-id").await.expect(404);
    let missing = vocelio_shared::ids::new_id("dept");
    admin
        .get(&format!("/api/departments/{missing}"))
        .await
        .expect(404);
    admin
        .put(&format!("/api/departments/{missing}"), json!({"name": "X"}))
        .await
        .expect(404);
    admin
        .delete(&format!("/api/departments/{missing}"))
        .await
        .expect(404);
}
