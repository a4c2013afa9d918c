//! Agents, as supervisors register them and agents sign in and out.

use serde_json::json;
use vocelio_shared::Role;

use crate::helpers::{events_of, id_of, new_tenant, spawn_app};

#[tokio::test]
async fn a_supervisor_registers_an_agent_who_then_goes_available() {
    let app = spawn_app().await;
    let sales = app
        .admin()
        .create_department("Sales", "+1555-SALES-01")
        .await;
    let supervisor = app.supervisor();
    let registered = supervisor
        .post(
            "/api/agents/register",
            json!({"agent_id": "ana", "name": "Ana Ruiz", "email": "Ana@Example.com", "department": id_of(&sales),
                   "skills": ["Billing", "refunds"], "languages": ["en", "es"], "performance_rating": 4.5}),
        )
        .await
        .expect(201);
    let agent = &registered.body["agent"];
    assert_eq!(agent["agent_id"], "ana");
    assert_eq!(agent["department"], id_of(&sales));
    assert_eq!(agent["skills"], json!(["billing", "refunds"]));
    assert_eq!(agent["email"], "ana@example.com");
    assert_eq!(agent["status"], "offline");

    // Ana signs in with her own token and goes available, then takes a call.
    let ana = app.agent("ana");
    let available = ana
        .put("/api/agents/ana/status", json!({"status": "available"}))
        .await
        .expect(200);
    assert_eq!(available.body["agent"]["status"], "available");
    assert!(available.body["agent"]["last_activity"].as_str() > agent["last_activity"].as_str());
    let busy = ana
        .put(
            "/api/agents/ana/status",
            json!({"status": "busy", "current_call_id": "call_123"}),
        )
        .await
        .expect(200);
    assert_eq!(busy.body["agent"]["current_call_id"], "call_123");
    let wrap = ana
        .put("/api/agents/ana/status", json!({"status": "wrap_up"}))
        .await
        .expect(200);
    assert_eq!(
        wrap.body["agent"]["current_call_id"],
        serde_json::Value::Null
    );

    // A second agent, registered by department name on the guide's alias path.
    supervisor
        .post("/agents/register", json!({"agent_id": "bo", "name": "Bo", "email": "bo@example.com", "department": "sales"}))
        .await
        .expect(201);
    supervisor
        .put("/agents/bo/status", json!({"status": "available"}))
        .await
        .expect(200);

    let get = supervisor.get("/api/agents/ana").await.expect(200);
    assert_eq!(get.body["agent"]["status"], "wrap_up");
    let ids = |reply: crate::helpers::Reply| -> Vec<String> {
        let mut ids: Vec<String> = reply.body["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["agent_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(
        ids(supervisor.get("/api/agents").await.expect(200)),
        ["ana", "bo"]
    );
    assert_eq!(
        ids(supervisor
            .get("/api/agents?status=available")
            .await
            .expect(200)),
        ["bo"]
    );
    assert_eq!(
        ids(supervisor
            .get("/api/agents?status=wrap_up")
            .await
            .expect(200)),
        ["ana"]
    );
    assert_eq!(
        ids(supervisor
            .get(&format!("/api/agents?department={}", id_of(&sales)))
            .await
            .expect(200)),
        ["ana", "bo"]
    );
    assert_eq!(
        ids(supervisor
            .get("/api/agents?department=Sales&status=available")
            .await
            .expect(200)),
        ["bo"]
    );
    assert!(
        ids(supervisor
            .get("/api/agents?department=Nowhere")
            .await
            .expect(200))
        .is_empty()
    );
    assert_eq!(
        supervisor
            .get("/api/agents?status=sleeping")
            .await
            .expect(422)
            .fields(),
        ["status"]
    );

    // The department counts its agents.
    let dept = supervisor
        .get(&format!("/api/departments/{}", id_of(&sales)))
        .await
        .expect(200);
    assert_eq!(dept.body["department"]["agent_count"], 2);

    let types: Vec<String> = events_of(&app, &app.tenant)
        .await
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types.iter().filter(|t| *t == "agent_registered").count(), 2);
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "agent_status_changed")
            .count(),
        4
    );
}

#[tokio::test]
async fn bad_agent_registrations_are_clear_4xx_and_write_nothing() {
    let app = spawn_app().await;
    let sales = app.admin().create_department("Sales", "555-123-4567").await;
    let supervisor = app.supervisor();
    let valid = json!({"agent_id": "ana", "name": "Ana", "email": "ana@example.com", "department": id_of(&sales)});
    let with = |key: &str, value: serde_json::Value| {
        let mut body = valid.clone();
        body[key] = value;
        body
    };
    let cases = [
        (with("agent_id", json!("ana#1")), "agent_id"),
        (with("agent_id", json!("")), "agent_id"),
        (with("name", json!("")), "name"),
        (with("name", json!("n".repeat(256))), "name"),
        (with("email", json!("not-an-email")), "email"),
        (with("performance_rating", json!(5.5)), "performance_rating"),
        (with("performance_rating", json!(-1)), "performance_rating"),
        (with("skills", json!(["Has Space"])), "skills[0]"),
        (with("languages", json!(["en", "!!"])), "languages[1]"),
        (with("skills", json!("billing")), "skills"),
        (with("status", json!("busy")), "status"),
        (with("status", json!("sleeping")), "status"),
        (with("nickname", json!("A")), "nickname"),
        (with("department", json!("Nowhere")), "department"),
        (
            with("department", json!(vocelio_shared::ids::new_id("dept"))),
            "department",
        ),
    ];
    for (body, field) in cases {
        let reply = supervisor
            .post("/api/agents/register", body.clone())
            .await
            .expect(422);
        assert!(
            reply.fields().iter().any(|f| f == field),
            "{body} should name {field}, named {:?}",
            reply.fields()
        );
    }
    let mut missing = valid.clone();
    missing.as_object_mut().unwrap().remove("email");
    assert_eq!(
        supervisor
            .post("/api/agents/register", missing)
            .await
            .expect(422)
            .fields(),
        ["email"]
    );
    assert_eq!(
        supervisor.get("/api/agents").await.body["agents"],
        json!([])
    );
    let dept = supervisor
        .get(&format!("/api/departments/{}", id_of(&sales)))
        .await
        .expect(200);
    assert_eq!(
        dept.body["department"]["agent_count"], 0,
        "refused registrations must not count"
    );

    // Duplicates are 409 and leave the first registration as it was.
    let first = supervisor
        .post("/api/agents/register", valid.clone())
        .await
        .expect(201);
    let dup = supervisor
        .post("/api/agents/register", with("name", json!("Impostor")))
        .await
        .expect(409);
    assert_eq!(dup.code(), "agent_exists");
    assert_eq!(
        supervisor.get("/api/agents/ana").await.expect(200).body["agent"],
        first.body["agent"]
    );
    let dept = supervisor
        .get(&format!("/api/departments/{}", id_of(&sales)))
        .await
        .expect(200);
    assert_eq!(dept.body["department"]["agent_count"], 1);

    // A deleted (inactive) department takes no new agents.
    let old = app.admin().create_department("Old", "555-123-4568").await;
    app.admin()
        .delete(&format!("/api/departments/{}", id_of(&old)))
        .await
        .expect(200);
    let reply = supervisor
        .post(
            "/api/agents/register",
            with("agent_id", json!("cy"))
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("department".into(), json!(id_of(&old)));
                    serde_json::Value::Object(o)
                })
                .unwrap(),
        )
        .await
        .expect(422);
    assert_eq!(reply.fields(), ["department"]);
}

#[tokio::test]
async fn agents_change_only_their_own_status() {
    let app = spawn_app().await;
    let sales = app.admin().create_department("Sales", "555-123-4567").await;
    let supervisor = app.supervisor();
    supervisor.register_agent("ana", &id_of(&sales)).await;
    supervisor.register_agent("bo", &id_of(&sales)).await;

    let bo = app.agent("bo");
    assert_eq!(
        bo.put("/api/agents/ana/status", json!({"status": "offline"}))
            .await
            .expect(403)
            .code(),
        "forbidden"
    );
    bo.put("/api/agents/bo/status", json!({"status": "on_break"}))
        .await
        .expect(200);
    supervisor
        .put("/api/agents/ana/status", json!({"status": "available"}))
        .await
        .expect(200);
    app.admin()
        .put("/api/agents/ana/status", json!({"status": "offline"}))
        .await
        .expect(200);
    // Only supervisors and admins register agents.
    bo.post(
        "/api/agents/register",
        json!({"agent_id": "x", "name": "X", "email": "x@example.com", "department": "Sales"}),
    )
    .await
    .expect(403);

    assert_eq!(
        bo.put("/api/agents/bo/status", json!({"status": "sleeping"}))
            .await
            .expect(422)
            .fields(),
        ["status"]
    );
    assert_eq!(
        bo.put("/api/agents/bo/status", json!({}))
            .await
            .expect(422)
            .fields(),
        ["status"]
    );
    assert_eq!(
        bo.put(
            "/api/agents/bo/status",
            json!({"status": "available", "current_call_id": "call_1"})
        )
        .await
        .expect(422)
        .fields(),
        ["current_call_id"]
    );
    supervisor
        .put("/api/agents/nobody/status", json!({"status": "available"}))
        .await
        .expect(404);
    supervisor.get("/api/agents/nobody").await.expect(404);
    supervisor.get("/api/agents/bad%23id").await.expect(404);
    app.anonymous()
        .put("/api/agents/bo/status", json!({"status": "available"}))
        .await
        .expect(401);
    assert_eq!(
        supervisor.get("/api/agents/bo").await.body["agent"]["status"],
        "on_break"
    );
}

#[tokio::test]
async fn one_tenant_never_sees_or_changes_anothers_agents() {
    let app = spawn_app().await;
    let sales = app.admin().create_department("Sales", "555-123-4567").await;
    app.supervisor().register_agent("ana", &id_of(&sales)).await;

    let other = new_tenant();
    let intruder = app.user_in(&other, Role::Admin, "admin-b");
    intruder.get("/api/agents/ana").await.expect(404);
    intruder
        .put("/api/agents/ana/status", json!({"status": "offline"}))
        .await
        .expect(404);
    intruder.delete("/api/agents/ana").await.expect(404);
    assert_eq!(
        intruder.get("/api/agents").await.expect(200).body["agents"],
        json!([])
    );
    assert_eq!(
        intruder
            .get("/api/agents?status=offline")
            .await
            .expect(200)
            .body["agents"],
        json!([])
    );
    assert_eq!(
        intruder
            .get(&format!("/api/agents?department={}", id_of(&sales)))
            .await
            .expect(200)
            .body["agents"],
        json!([])
    );
    // Naming another tenant's department id is the same as naming none.
    let reply = intruder
        .post("/api/agents/register", json!({"agent_id": "mole", "name": "M", "email": "m@example.com", "department": id_of(&sales)}))
        .await
        .expect(422);
    assert_eq!(reply.fields(), ["department"]);
    // An agent token of the other tenant with the same agent_id changes nothing here.
    app.user_in(&other, Role::Agent, "ana")
        .put("/api/agents/ana/status", json!({"status": "available"}))
        .await
        .expect(404);
    // The same agent_id may exist in both tenants independently.
    let theirs = intruder.create_department("Sales", "555-123-4567").await;
    intruder.register_agent("ana", &id_of(&theirs)).await;
    assert_eq!(
        app.supervisor().get("/api/agents/ana").await.body["agent"]["status"],
        "offline"
    );
    assert_eq!(
        app.supervisor().get("/api/agents/ana").await.body["agent"]["department"],
        id_of(&sales)
    );
}

#[tokio::test]
async fn a_department_with_agents_is_kept_until_they_leave() {
    let app = spawn_app().await;
    let admin = app.admin();
    let sales = admin.create_department("Sales", "555-123-4567").await;
    let path = format!("/api/departments/{}", id_of(&sales));
    app.supervisor().register_agent("ana", &id_of(&sales)).await;

    let refused = admin.delete(&path).await.expect(409);
    assert_eq!(refused.code(), "department_in_use");
    assert_eq!(refused.body["current"]["agent_count"], 1);
    assert_eq!(
        admin
            .put(&path, json!({"is_active": false}))
            .await
            .expect(409)
            .code(),
        "department_in_use"
    );

    // A busy agent cannot be removed mid-call.
    app.agent("ana")
        .put(
            "/api/agents/ana/status",
            json!({"status": "busy", "current_call_id": "call_9"}),
        )
        .await
        .expect(200);
    assert_eq!(
        app.supervisor()
            .delete("/api/agents/ana")
            .await
            .expect(409)
            .code(),
        "agent_busy"
    );
    app.agent("ana")
        .put("/api/agents/ana/status", json!({"status": "offline"}))
        .await
        .expect(200);
    app.agent("ana").delete("/api/agents/ana").await.expect(403);
    let removed = app.supervisor().delete("/api/agents/ana").await.expect(200);
    assert_eq!(removed.body["deleted"], true);
    app.supervisor().get("/api/agents/ana").await.expect(404);
    app.supervisor().delete("/api/agents/ana").await.expect(404);

    let deleted = admin.delete(&path).await.expect(200);
    assert_eq!(deleted.body["department"]["is_active"], false);
    assert_eq!(deleted.body["department"]["agent_count"], 0);
}

#[tokio::test]
async fn registrations_racing_a_delete_never_leave_a_dangling_reference() {
    let app = spawn_app().await;
    let sales = app.admin().create_department("Sales", "555-123-4567").await;
    let dept_id = id_of(&sales);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..12 {
        let client = app.http().clone();
        let base = app.base.clone();
        let dept_id = dept_id.clone();
        let token = vocelio_local::stack::mint_token(
            crate::helpers::dev_keys(),
            &app.tenant,
            "admin",
            Role::Admin,
            1,
        )
        .unwrap();
        tasks.spawn(async move {
            let request = if i == 6 {
                client.delete(format!("{base}/api/departments/{dept_id}"))
            } else {
                client.post(format!("{base}/api/agents/register")).json(&json!({
                    "agent_id": format!("agent-{i}"), "name": "A", "email": "a@example.com", "department": dept_id
                }))
            };
            (i, request.bearer_auth(token).send().await.map(|r| r.status().as_u16()).unwrap_or(0))
        });
    }
    let results = tasks.join_all().await;
    let registered = results.iter().filter(|(i, s)| *i != 6 && *s == 201).count();
    let delete_status = results
        .iter()
        .find(|(i, _)| *i == 6)
        .map(|(_, s)| *s)
        .unwrap();
    let dept = app
        .admin()
        .get(&format!("/api/departments/{dept_id}"))
        .await
        .expect(200);
    let agents = app
        .admin()
        .get(&format!("/api/agents?department={dept_id}"))
        .await
        .expect(200);
    let listed = agents.body["agents"].as_array().unwrap().len();
    assert_eq!(dept.body["department"]["agent_count"], registered as u64);
    assert_eq!(listed, registered);
    if delete_status == 200 {
        assert_eq!(
            registered, 0,
            "a deleted department must have no agents: {results:?}"
        );
    } else {
        assert_eq!(delete_status, 409, "{results:?}");
        assert!(registered > 0);
        assert_eq!(dept.body["department"]["is_active"], true);
    }
}

#[tokio::test]
async fn a_retried_registration_with_an_idempotency_key_is_not_a_conflict() {
    let app = spawn_app().await;
    app.admin().create_department("Sales", "555-123-4567").await;
    let supervisor = app.supervisor().header("Idempotency-Key", "register-ana");
    let body = json!({"agent_id": "ana", "name": "Ana", "email": "ana@example.com", "department": "Sales"});
    let first = supervisor
        .post("/api/agents/register", body.clone())
        .await
        .expect(201);
    let retry = supervisor
        .post("/api/agents/register", body)
        .await
        .expect(201);
    assert_eq!(first.body, retry.body);
    // Without the key, the same request is a duplicate.
    let plain = app.supervisor().post("/api/agents/register", json!({"agent_id": "ana", "name": "Ana", "email": "ana@example.com", "department": "Sales"})).await;
    assert_eq!(plain.expect(409).code(), "agent_exists");
    let dept = app.admin().get("/api/departments").await.expect(200);
    assert_eq!(dept.body["departments"][0]["agent_count"], 1);
}
