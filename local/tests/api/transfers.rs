//! Transfers, as the AI voice agent, supervisors and agents live them.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};
use vocelio_shared::Role;

use crate::helpers::{events_of, id_of, new_tenant, spawn_app, spawn_app_with};

fn event_types(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_caller_reaches_the_longest_idle_qualified_agent_who_accepts_and_completes() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    let sales = app
        .admin()
        .create_department("Sales", "+1555-SALES-01")
        .await;
    // Bo became available first (idle longest) but speaks no Spanish; Cy lacks the skill.
    sup.available_agent("bo", "Sales", &["billing"], &["en"])
        .await;
    sup.available_agent("ana", "Sales", &["billing"], &["en", "es"])
        .await;
    sup.available_agent("cy", "Sales", &[], &["es"]).await;

    let call_id = sup.start_call("+1 (555) 010-2030").await;
    let active = sup.get("/api/calls/active").await.expect(200);
    let row = &active.body["active_calls"][0];
    assert_eq!(row["call_id"], call_id.as_str());
    assert_eq!(row["can_transfer"], true);
    assert_eq!(row["caller_number"], "+15550102030");

    // The Live Call Monitor's request, exactly as the app sends it.
    let raised = sup
        .post(
            "/api/calls/transfer",
            json!({"call_id": call_id, "target_department": id_of(&sales), "transfer_type": "warm",
                   "transfer_reason": "billing dispute", "urgency_level": "high", "context_summary": "Caller disputes March invoice",
                   "required_skills": ["billing"], "language": "es"}),
        )
        .await
        .expect(201);
    let transfer_id = raised.body["transfer_id"].as_str().unwrap().to_owned();
    assert!(transfer_id.starts_with("transfer_"));
    assert_eq!(raised.body["status"], "assigned");
    assert_eq!(raised.body["transfer"]["agent_id"], "ana");

    let ana_now = sup.get("/api/agents/ana").await.expect(200);
    assert_eq!(ana_now.body["agent"]["status"], "busy");
    assert_eq!(ana_now.body["agent"]["current_call_id"], call_id.as_str());
    let row = &sup.get("/api/calls/active").await.body["active_calls"][0];
    assert_eq!(row["status"], "transferring");
    assert_eq!(row["can_transfer"], false);

    // A second transfer for the same call is refused while this one is open.
    let again = sup
        .post(
            "/api/calls/transfer",
            json!({"call_id": call_id, "target_department": "Sales"}),
        )
        .await
        .expect(409);
    assert_eq!(again.code(), "transfer_open");
    assert_eq!(again.body["current"]["transfer_id"], transfer_id.as_str());

    // Only Ana may accept; then the caller is with her.
    app.agent("bo")
        .post(&format!("/transfer/{transfer_id}/accept"), json!({}))
        .await
        .expect(403);
    let accepted = app
        .agent("ana")
        .post(&format!("/transfer/{transfer_id}/accept"), json!({}))
        .await
        .expect(200);
    assert_eq!(accepted.body["transfer"]["status"], "connected");
    let row = &sup.get("/api/calls/active").await.body["active_calls"][0];
    assert_eq!(row["status"], "connected");
    assert_eq!(row["assigned_agent"], "ana");
    assert_eq!(row["current_department"], "Sales");

    let done = app
        .agent("ana")
        .post(
            &format!("/api/transfers/{transfer_id}/complete"),
            json!({"outcome": "resolved", "notes": "refund issued"}),
        )
        .await
        .expect(200);
    assert_eq!(done.body["transfer"]["status"], "completed");
    assert_eq!(
        sup.get("/api/agents/ana").await.body["agent"]["status"],
        "available"
    );
    assert_eq!(
        sup.get("/api/calls/active").await.body["active_calls"][0]["can_transfer"],
        true
    );

    let history = sup
        .get(&format!("/api/call/{call_id}/transfer-history"))
        .await
        .expect(200);
    assert_eq!(
        history.body["transfer_history"].as_array().unwrap().len(),
        1
    );
    assert_eq!(history.body["transfer_history"][0]["outcome"], "resolved");
    sup.get(&format!("/call/{call_id}/transfer-history"))
        .await
        .expect(200);

    // The call ends: minutes and costs are computed, it leaves the monitor.
    let ended = sup
        .send(
            reqwest::Method::PATCH,
            &format!("/api/calls/{call_id}"),
            Some(json!({"status": "completed"})),
        )
        .await
        .expect(200);
    let call = &ended.body["call"];
    assert!(call["end_time"].is_string());
    assert!(call["duration"].is_u64());
    assert_eq!(
        sup.get("/api/calls/active").await.body["active_calls"],
        json!([])
    );

    let types = event_types(&events_of(&app, &app.tenant).await);
    for expected in [
        "transfer_initiated",
        "transfer_assigned",
        "transfer_accepted",
        "transfer_completed",
        "call_status_update",
        "call_ended",
        "agent_status_changed",
    ] {
        assert!(
            types.iter().any(|t| t == expected),
            "no {expected} event in {types:?}"
        );
    }
    assert_eq!(
        types.iter().filter(|t| *t == "transfer_initiated").count(),
        1,
        "the refused second request wrote no event"
    );
}

#[tokio::test]
async fn queued_callers_are_served_by_urgency_then_age_as_agents_free_up() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    let support = app
        .admin()
        .create_department("Support", "555-123-4567")
        .await;
    let dept = id_of(&support);
    sup.register_agent("solo", &dept).await; // offline: nobody can take calls yet

    let mut transfers = Vec::new();
    for (caller, urgency) in [
        ("555-000-0001", "low"),
        ("555-000-0002", "medium"),
        ("555-000-0003", "urgent"),
        ("555-000-0004", "medium"),
    ] {
        let call_id = sup.start_call(caller).await;
        let reply = sup
            .post("/api/calls/transfer", json!({"call_id": call_id, "target_department": dept, "urgency_level": urgency, "context_summary": caller}))
            .await
            .expect(201);
        assert_eq!(reply.body["status"], "queued");
        assert!(reply.body["estimated_wait_seconds"].as_u64().is_some());
        transfers.push((
            caller,
            reply.body["transfer_id"].as_str().unwrap().to_owned(),
        ));
    }
    let queue = sup
        .get(&format!("/api/departments/{dept}/queue"))
        .await
        .expect(200);
    let order: Vec<&str> = queue.body["queue_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["context_summary"].as_str().unwrap())
        .collect();
    assert_eq!(
        order,
        [
            "555-000-0003",
            "555-000-0002",
            "555-000-0004",
            "555-000-0001"
        ]
    );
    let positions: Vec<u64> = queue.body["queue_details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2, 3, 4]);
    assert_eq!(queue.body["queue_length"], 4);
    let low = &transfers[0].1;
    assert_eq!(
        sup.get(&format!("/transfer/{low}")).await.body["transfer"]["queue_position"],
        4
    );

    // A department with waiting callers cannot be deleted.
    assert_eq!(
        app.admin()
            .delete(&format!("/api/departments/{dept}"))
            .await
            .expect(409)
            .code(),
        "department_in_use"
    );

    // The agent comes in: the urgent caller is offered at once, in the same request.
    let came_in = app
        .agent("solo")
        .put("/api/agents/solo/status", json!({"status": "available"}))
        .await
        .expect(200);
    assert_eq!(
        came_in.body["offered_transfer"]["context_summary"],
        "555-000-0003"
    );
    assert_eq!(came_in.body["agent"]["status"], "busy");
    assert_eq!(
        sup.get(&format!("/transfer/{low}")).await.body["transfer"]["queue_position"],
        3
    );

    // Each completion hands the agent the next caller, in order.
    let mut served = vec!["555-000-0003".to_owned()];
    for _ in 0..3 {
        let current = sup.get("/api/agents/solo").await.body["agent"]["current_transfer_id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.agent("solo")
            .post(&format!("/transfer/{current}/accept"), json!({}))
            .await
            .expect(200);
        app.agent("solo")
            .post(&format!("/transfer/{current}/complete"), json!({}))
            .await
            .expect(200);
        let next = sup.get("/api/agents/solo").await.body["agent"]["current_transfer_id"]
            .as_str()
            .unwrap()
            .to_owned();
        served.push(
            sup.get(&format!("/transfer/{next}")).await.body["transfer"]["context_summary"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        served,
        [
            "555-000-0003",
            "555-000-0002",
            "555-000-0004",
            "555-000-0001"
        ]
    );
    assert_eq!(
        sup.get(&format!("/departments/{dept}/queue")).await.body["queue_length"],
        0
    );

    let status = sup.get("/queue/status").await.expect(200);
    assert_eq!(status.body["totals"]["queued"], 0);
    assert_eq!(status.body["totals"]["agents_busy"], 1);
}

#[tokio::test]
async fn a_declined_offer_goes_to_the_next_agent_and_never_back() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    app.admin().create_department("Sales", "555-123-4567").await;
    sup.available_agent("ana", "Sales", &[], &["en"]).await;
    sup.available_agent("bo", "Sales", &[], &["en"]).await;
    let call_id = sup.start_call("555-222-3333").await;
    let raised = sup.post("/transfer/request", json!({"call_id": call_id, "department": "Sales", "reason": "upsell", "context": "wants premium"})).await.expect(201);
    let id = raised.body["transfer_id"].as_str().unwrap().to_owned();
    assert_eq!(raised.body["transfer"]["agent_id"], "ana");

    let declined = app
        .agent("ana")
        .post(&format!("/transfer/{id}/decline"), json!({}))
        .await
        .expect(200);
    assert_eq!(declined.body["transfer"]["agent_id"], "bo");
    assert_eq!(declined.body["transfer"]["declined_by"], json!(["ana"]));
    assert_eq!(
        sup.get("/api/agents/ana").await.body["agent"]["status"],
        "available"
    );

    // Bo declines too: nobody else qualifies, so the caller waits rather than going back to Ana.
    let declined = app
        .agent("bo")
        .post(&format!("/transfer/{id}/decline"), json!({}))
        .await
        .expect(200);
    assert_eq!(declined.body["transfer"]["status"], "queued");
    assert_eq!(declined.body["transfer"]["queue_position"], 1);
    app.agent("bo")
        .post(&format!("/transfer/{id}/accept"), json!({}))
        .await
        .expect(403);
    assert_eq!(
        sup.post(&format!("/transfer/{id}/accept"), json!({}))
            .await
            .expect(409)
            .code(),
        "invalid_transfer_state"
    );

    // The offered agent may decline, never cancel (which would tell the caller nobody can
    // take the call).
    assert_eq!(
        app.agent("bo")
            .post(&format!("/transfer/{id}/cancel"), json!({}))
            .await
            .expect(403)
            .code(),
        "forbidden"
    );
    // The caller hangs up: the transfer is cancelled and the call can be transferred again.
    let cancelled = sup
        .post(
            &format!("/transfer/{id}/cancel"),
            json!({"reason": "caller hung up"}),
        )
        .await
        .expect(200);
    assert_eq!(cancelled.body["transfer"]["status"], "cancelled");
    sup.post(&format!("/transfer/{id}/cancel"), json!({}))
        .await
        .expect(200);
    assert_eq!(
        sup.get(&format!("/api/calls/{call_id}")).await.body["call"]["status"],
        "active"
    );
    let types = event_types(&events_of(&app, &app.tenant).await);
    assert_eq!(
        types.iter().filter(|t| *t == "transfer_declined").count(),
        2
    );
    assert_eq!(
        types.iter().filter(|t| *t == "transfer_cancelled").count(),
        1,
        "a repeated cancel changes nothing and logs nothing"
    );
}

#[tokio::test]
async fn an_offer_not_accepted_in_time_is_rerouted_by_the_sweeper() {
    let app = spawn_app_with(&[("OFFER_TIMEOUT_SECONDS", "5")]).await;
    let sup = app.supervisor();
    app.admin().create_department("Sales", "555-123-4567").await;
    sup.available_agent("ana", "Sales", &[], &[]).await;
    sup.available_agent("bo", "Sales", &[], &[]).await;
    let call_id = sup.start_call("555-222-3333").await;
    let raised = sup
        .post(
            "/api/calls/transfer",
            json!({"call_id": call_id, "target_department": "Sales"}),
        )
        .await
        .expect(201);
    let id = raised.body["transfer_id"].as_str().unwrap().to_owned();
    assert_eq!(raised.body["transfer"]["agent_id"], "ana");
    let swept = transfers::sweeper::sweep(&app.state).await.unwrap();
    assert_eq!(swept.offers_expired, 0, "nothing is due yet");
    tokio::time::sleep(std::time::Duration::from_millis(5600)).await;
    transfers::sweeper::sweep(&app.state).await.unwrap();
    let now = sup.get(&format!("/transfer/{id}")).await.expect(200);
    assert_eq!(now.body["transfer"]["agent_id"], "bo");
    assert_eq!(now.body["transfer"]["declined_by"], json!(["ana"]));
    // Ana let it lapse: she is treated as away from her desk.
    assert_eq!(
        sup.get("/api/agents/ana").await.body["agent"]["status"],
        "offline"
    );
}

#[tokio::test]
async fn bad_transfer_requests_are_clear_and_change_nothing() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    let sales = app.admin().create_department("Sales", "555-123-4567").await;
    let call_id = sup.start_call("555-222-3333").await;
    let cases = [
        (json!({"call_id": call_id}), "target_department"),
        (json!({"target_department": "Sales"}), "call_id"),
        (
            json!({"call_id": call_id, "target_department": "Sales", "urgency_level": "asap"}),
            "urgency_level",
        ),
        (
            json!({"call_id": call_id, "target_department": "Sales", "transfer_type": "hot"}),
            "transfer_type",
        ),
        (
            json!({"call_id": call_id, "target_department": "Sales", "required_skills": ["No Spaces"]}),
            "required_skills[0]",
        ),
        (
            json!({"call_id": call_id, "target_department": "Sales", "language": "english!"}),
            "language",
        ),
        (
            json!({"call_id": call_id, "target_department": "Sales", "priority": "high"}),
            "priority",
        ),
        (
            json!({"call_id": call_id, "target_department": "Nowhere"}),
            "target_department",
        ),
        (
            json!({"call_id": call_id, "target_department": "x".repeat(300)}),
            "target_department",
        ),
    ];
    for (body, field) in cases {
        let reply = sup
            .post("/api/calls/transfer", body.clone())
            .await
            .expect(422);
        assert!(
            reply.fields().iter().any(|f| f == field),
            "{body} should name {field}: {:?}",
            reply.fields()
        );
    }
    sup.post(
        "/api/calls/transfer",
        json!({"call_id": "call_unknown", "target_department": "Sales"}),
    )
    .await
    .expect(404);
    app.anonymous()
        .post(
            "/api/calls/transfer",
            json!({"call_id": call_id, "target_department": "Sales"}),
        )
        .await
        .expect(401);
    // The guide's shape with an unknown department.
    assert_eq!(
        sup.post(
            "/transfer/request",
            json!({"call_id": call_id, "department": "Nowhere"})
        )
        .await
        .expect(422)
        .fields(),
        ["target_department"]
    );

    // An ended call cannot be transferred.
    sup.send(
        reqwest::Method::PATCH,
        &format!("/api/calls/{call_id}"),
        Some(json!({"status": "abandoned"})),
    )
    .await
    .expect(200);
    assert_eq!(
        sup.post(
            "/api/calls/transfer",
            json!({"call_id": call_id, "target_department": id_of(&sales)})
        )
        .await
        .expect(409)
        .code(),
        "call_ended"
    );
    assert!(
        !event_types(&events_of(&app, &app.tenant).await)
            .iter()
            .any(|t| t.starts_with("transfer_")),
        "no refused request wrote an event"
    );
    sup.get("/transfer/transfer_00000000000070008000000000000000")
        .await
        .expect(404);
    sup.get("/transfer/nonsense").await.expect(404);
}

#[tokio::test]
async fn a_retried_transfer_request_routes_nothing_twice() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    app.admin().create_department("Sales", "555-123-4567").await;
    sup.available_agent("ana", "Sales", &[], &[]).await;
    sup.available_agent("bo", "Sales", &[], &[]).await;
    let call_id = sup.start_call("555-222-3333").await;
    let keyed = sup.clone().header("Idempotency-Key", "raise-1");
    let first = keyed
        .post(
            "/api/calls/transfer",
            json!({"call_id": call_id, "target_department": "Sales"}),
        )
        .await
        .expect(201);
    let retry = keyed
        .post(
            "/api/calls/transfer",
            json!({"call_id": call_id, "target_department": "Sales"}),
        )
        .await
        .expect(201);
    assert_eq!(first.body["transfer_id"], retry.body["transfer_id"]);
    assert_eq!(
        retry
            .headers
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let busy = sup.get("/api/agents?status=busy").await.body["agents"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(busy, 1, "the retry offered the caller to no second agent");
    let call = sup.get(&format!("/api/calls/{call_id}")).await.body["call"].clone();
    assert_eq!(call["transfer_count"], 1);
}

#[tokio::test]
async fn a_calls_status_only_moves_forward() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    let created = sup.post("/api/calls", json!({"call_id": "call-abc-1", "caller_number": "555-222-3333", "status": "ringing", "direction": "inbound"})).await.expect(201);
    assert_eq!(created.body["call"]["status"], "ringing");
    // Registering the same call again returns it (idempotent on call_id).
    let again = sup
        .post(
            "/api/calls",
            json!({"call_id": "call-abc-1", "caller_number": "555-222-3333"}),
        )
        .await
        .expect(201);
    assert_eq!(
        again.body["call"]["start_time"],
        created.body["call"]["start_time"]
    );
    assert_eq!(
        sup.post(
            "/api/calls",
            json!({"call_id": "call-abc-1", "caller_number": "555-999-0000"})
        )
        .await
        .expect(409)
        .code(),
        "call_exists"
    );
    assert_eq!(
        sup.post("/api/calls", json!({"caller_number": "12"}))
            .await
            .expect(422)
            .fields(),
        ["caller_number"]
    );
    assert_eq!(
        sup.post(
            "/api/calls",
            json!({"caller_number": "555-222-3333", "status": "completed"})
        )
        .await
        .expect(422)
        .fields(),
        ["status"]
    );

    let patch = |body: Value| sup.send(reqwest::Method::PATCH, "/api/calls/call-abc-1", Some(body));
    patch(json!({"status": "active"})).await.expect(200);
    patch(json!({"status": "on_hold", "current_flow": "billing"}))
        .await
        .expect(200);
    patch(json!({"status": "active"})).await.expect(200);
    assert_eq!(
        patch(json!({"status": "ringing"})).await.expect(409).code(),
        "invalid_call_transition"
    );
    assert_eq!(
        patch(json!({"status": "sideways"}))
            .await
            .expect(422)
            .fields(),
        ["status"]
    );
    assert_eq!(patch(json!({})).await.expect(422).fields(), ["body"]);
    let ended = patch(json!({"status": "completed", "duration": 150}))
        .await
        .expect(200);
    let call = &ended.body["call"];
    assert_eq!(call["duration"], 150);
    assert_eq!(call["ai_minutes"], 2.5);
    assert_eq!(call["transfer_minutes"], 0.0);
    assert_eq!(call["cost_ai"], 0.13); // 2.5 min x 0.05, to the cent
    assert_eq!(
        patch(json!({"status": "active"})).await.expect(409).code(),
        "call_ended"
    );
    assert_eq!(
        patch(json!({"status": "completed"}))
            .await
            .expect(409)
            .code(),
        "call_ended"
    );
    sup.get("/api/calls/call-missing").await.expect(404);
    app.agent("ana")
        .send(
            reqwest::Method::PATCH,
            "/api/calls/call-abc-1",
            Some(json!({"status": "failed"})),
        )
        .await
        .expect(403);
}

#[tokio::test]
async fn call_logs_pages_and_totals_agree_with_the_calls_made() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    app.admin().create_department("Sales", "555-123-4567").await;
    sup.available_agent("ana", "Sales", &[], &[]).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(sup.start_call(&format!("555-300-00{i:02}")).await);
    }
    // One call is transferred and completed, two are missed, the rest still live.
    let t = sup
        .post(
            "/api/calls/transfer",
            json!({"call_id": ids[2], "target_department": "Sales"}),
        )
        .await
        .expect(201);
    let tid = t.body["transfer_id"].as_str().unwrap().to_owned();
    app.agent("ana")
        .post(&format!("/transfer/{tid}/accept"), json!({}))
        .await
        .expect(200);
    app.agent("ana")
        .post(&format!("/transfer/{tid}/complete"), json!({}))
        .await
        .expect(200);
    for id in [&ids[2]] {
        sup.send(
            reqwest::Method::PATCH,
            &format!("/api/calls/{id}"),
            Some(json!({"status": "completed"})),
        )
        .await
        .expect(200);
    }
    for id in [&ids[0], &ids[5]] {
        sup.send(
            reqwest::Method::PATCH,
            &format!("/api/calls/{id}"),
            Some(json!({"status": "missed"})),
        )
        .await
        .expect(200);
    }

    let mut seen = Vec::new();
    for page in 1..=3 {
        let reply = sup
            .get(&format!(
                "/api/calls/logs?page={page}&limit=3&date_range=1day"
            ))
            .await
            .expect(200);
        assert_eq!(reply.body["total"], 7);
        seen.extend(
            reply.body["call_logs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["call_id"].as_str().unwrap().to_owned()),
        );
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let transferred = sup
        .get("/api/calls/logs?status=transferred")
        .await
        .expect(200);
    assert_eq!(transferred.body["total"], 1);
    let row = &transferred.body["call_logs"][0];
    assert_eq!(row["transfers"][0]["target_department"], "Sales");
    assert_eq!(row["transfers"][0]["agent_id"], "ana");
    assert_eq!(row["transfers"][0]["status"], "completed");
    assert!(row["total_duration"].is_u64());
    assert_eq!(
        sup.get("/api/calls/logs?has_transfer=true").await.body["total"],
        1
    );
    assert_eq!(
        sup.get("/api/calls/logs?has_transfer=false").await.body["total"],
        6
    );
    assert_eq!(
        sup.get("/api/calls/logs?status=missed").await.body["total"],
        2
    );
    assert_eq!(
        sup.get("/api/calls/logs?search=300-0004").await.body["total"],
        1
    );
    assert_eq!(
        sup.get(&format!("/api/calls/logs?search={}", ids[6]))
            .await
            .body["total"],
        1
    );
    // The guide's path, with its cursor.
    let first = sup.get("/call-logs?limit=4").await.expect(200);
    let cursor = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = sup
        .get(&format!("/call-logs?limit=4&cursor={cursor}"))
        .await
        .expect(200);
    assert_eq!(second.body["call_logs"].as_array().unwrap().len(), 3);
    assert_eq!(second.body["next_cursor"], Value::Null);
    assert_eq!(
        sup.get("/api/calls/logs?date_range=2days")
            .await
            .expect(422)
            .fields(),
        ["date_range"]
    );
    assert_eq!(
        sup.get("/api/calls/logs?status=weird")
            .await
            .expect(422)
            .fields(),
        ["status"]
    );

    let analytics = sup.get("/analytics/transfers").await.expect(200);
    assert_eq!(analytics.body["totals"]["requested"], 1);
    assert_eq!(analytics.body["totals"]["completed"], 1);
    assert_eq!(analytics.body["totals"]["calls_ended"], 3);
    assert_eq!(analytics.body["totals"]["completion_rate"], 1.0);
    assert_eq!(analytics.body["by_department"][0]["name"], "Sales");
    assert_eq!(analytics.body["totals"]["wait_seconds"]["count"], 1);
}

#[tokio::test]
async fn one_tenant_never_sees_anothers_calls_transfers_or_queues() {
    let app = spawn_app().await;
    let sup = app.supervisor();
    let sales = app.admin().create_department("Sales", "555-123-4567").await;
    let call_id = sup.start_call("555-222-3333").await;
    let t = sup
        .post(
            "/api/calls/transfer",
            json!({"call_id": call_id, "target_department": "Sales"}),
        )
        .await
        .expect(201);
    let tid = t.body["transfer_id"].as_str().unwrap().to_owned();

    let other = app.user_in(&new_tenant(), Role::Admin, "admin-b");
    other
        .get(&format!("/api/calls/{call_id}"))
        .await
        .expect(404);
    other.get(&format!("/transfer/{tid}")).await.expect(404);
    other
        .post(&format!("/transfer/{tid}/cancel"), json!({}))
        .await
        .expect(404);
    other
        .get(&format!("/api/call/{call_id}/transfer-history"))
        .await
        .expect(404);
    other
        .get(&format!("/departments/{}/queue", id_of(&sales)))
        .await
        .expect(404);
    other
        .post(
            "/api/calls/transfer",
            json!({"call_id": call_id, "target_department": id_of(&sales)}),
        )
        .await
        .expect(422);
    assert_eq!(
        other.get("/api/calls/active").await.body["active_calls"],
        json!([])
    );
    assert_eq!(other.get("/api/calls/logs").await.body["total"], 0);
    assert_eq!(other.get("/queue/status").await.body["totals"]["queued"], 0);
    assert_eq!(
        other.get("/analytics/transfers").await.body["totals"]["requested"],
        0
    );
    assert_eq!(
        sup.get(&format!("/transfer/{tid}")).await.body["transfer"]["status"],
        "queued"
    );
}

/// Many more concurrent requests than agents, over several departments and skills: no agent
/// ever holds two transfers, no transfer is assigned twice, nothing is lost, queues are
/// consecutive, and no eligible agent is left idle beside a waiting caller.
#[tokio::test]
async fn two_hundred_concurrent_transfers_for_twenty_agents() {
    let app = spawn_app().await;
    let admin = app.admin();
    let departments = ["Sales", "Support"];
    for (i, name) in departments.iter().enumerate() {
        admin
            .create_department(name, &format!("555-400-000{i}"))
            .await;
        for a in 0..10 {
            let skills: &[&str] = if a % 2 == 0 { &["billing"] } else { &[] };
            admin
                .available_agent(
                    &format!("{}-{a}", name.to_lowercase()),
                    name,
                    skills,
                    &["en"],
                )
                .await;
        }
    }
    let mut calls = Vec::new();
    for i in 0..200 {
        calls.push(
            admin
                .start_call(&format!("555-5{:02}-{:04}", i / 100, i))
                .await,
        );
    }
    let mut tasks = tokio::task::JoinSet::new();
    let semaphore = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    for (i, call_id) in calls.iter().enumerate() {
        let client = app.http().clone();
        let url = format!(
            "{}{}",
            app.base,
            if i % 2 == 0 {
                "/api/calls/transfer"
            } else {
                "/transfer/request"
            }
        );
        let token = vocelio_local::stack::mint_token(
            crate::helpers::dev_keys(),
            &app.tenant,
            "ai",
            Role::Supervisor,
            1,
        )
        .unwrap();
        let department = departments[i % 2];
        let skills: Vec<&str> = if i % 3 == 0 { vec!["billing"] } else { vec![] };
        let urgency = ["low", "medium", "high", "urgent"][i % 4];
        let body = if i % 2 == 0 {
            json!({"call_id": call_id, "target_department": department, "required_skills": skills, "urgency_level": urgency})
        } else {
            json!({"call_id": call_id, "department": department, "required_skills": skills})
        };
        let permit = semaphore.clone();
        tasks.spawn(async move {
            let _permit = permit.acquire_owned().await.unwrap();
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        });
    }
    let replies = tasks.join_all().await;
    let failures: Vec<&(u16, Value)> = replies.iter().filter(|(s, _)| *s != 201).collect();
    assert!(
        failures.is_empty(),
        "{} requests failed: {:?}",
        failures.len(),
        failures.iter().take(3).collect::<Vec<_>>()
    );

    let ids: Vec<String> = replies
        .iter()
        .map(|(_, b)| b["transfer_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        ids.iter().collect::<HashSet<_>>().len(),
        200,
        "every request made its own transfer"
    );

    // Read the outcome back from the store, not from the replies.
    let mut by_agent: HashMap<String, Vec<String>> = HashMap::new();
    let mut queued = 0;
    for id in &ids {
        let t = admin.get(&format!("/transfer/{id}")).await.expect(200).body["transfer"].clone();
        match t["status"].as_str().unwrap() {
            "assigned" => by_agent
                .entry(t["agent_id"].as_str().unwrap().to_owned())
                .or_default()
                .push(id.clone()),
            "queued" => queued += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        by_agent.values().all(|held| held.len() == 1),
        "an agent holds two transfers: {by_agent:?}"
    );
    let assigned = by_agent.len();
    assert_eq!(assigned + queued, 200);
    let agents = admin.get("/api/agents?limit=200").await.body["agents"]
        .as_array()
        .unwrap()
        .clone();
    for agent in &agents {
        let id = agent["agent_id"].as_str().unwrap();
        match agent["status"].as_str().unwrap() {
            "busy" => assert_eq!(
                by_agent.get(id).map(|h| h[0].as_str()),
                agent["current_transfer_id"].as_str()
            ),
            "available" => assert!(!by_agent.contains_key(id)),
            other => panic!("agent {id} is {other}"),
        }
    }
    for name in departments {
        let dept = admin.get("/api/departments").await.body["departments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["name"] == name)
            .map(|d| d["id"].as_str().unwrap().to_owned())
            .unwrap();
        let queue = admin
            .get(&format!("/api/departments/{dept}/queue"))
            .await
            .expect(200);
        let details = queue.body["queue_details"].as_array().unwrap();
        let positions: Vec<u64> = details
            .iter()
            .map(|d| d["position"].as_u64().unwrap())
            .collect();
        assert_eq!(positions, (1..=details.len() as u64).collect::<Vec<_>>());
        // No available agent of this department could take any waiting caller.
        let idle: Vec<&Value> = agents
            .iter()
            .filter(|a| a["status"] == "available" && a["department"] == dept.as_str())
            .collect();
        for waiting in details {
            let needs_billing = waiting["required_skills"]
                .as_array()
                .is_some_and(|s| !s.is_empty());
            for agent in &idle {
                let has_billing = agent["skills"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x == "billing"));
                assert!(
                    needs_billing && !has_billing,
                    "{} idles beside a caller it could take",
                    agent["agent_id"]
                );
            }
        }
    }
    assert!(assigned >= 10, "only {assigned} agents were given callers");
    let events = events_of(&app, &app.tenant).await;
    let types = event_types(&events);
    assert_eq!(
        types.iter().filter(|t| *t == "transfer_initiated").count(),
        200
    );
    assert_eq!(
        types.iter().filter(|t| *t == "transfer_assigned").count(),
        assigned
    );
}

#[tokio::test]
async fn after_wrap_up_the_agent_takes_the_next_waiting_caller() {
    let app = spawn_app_with(&[("WRAP_UP_SECONDS", "1")]).await;
    let sup = app.supervisor();
    app.admin().create_department("Sales", "555-123-4567").await;
    sup.available_agent("ana", "Sales", &[], &[]).await;
    let first = sup.start_call("555-600-0001").await;
    let second = sup.start_call("555-600-0002").await;
    let t1 = sup
        .post(
            "/api/calls/transfer",
            json!({"call_id": first, "target_department": "Sales"}),
        )
        .await
        .expect(201);
    let t2 = sup
        .post(
            "/api/calls/transfer",
            json!({"call_id": second, "target_department": "Sales"}),
        )
        .await
        .expect(201);
    assert_eq!(t2.body["status"], "queued");
    let t1 = t1.body["transfer_id"].as_str().unwrap().to_owned();
    app.agent("ana")
        .post(&format!("/transfer/{t1}/accept"), json!({}))
        .await
        .expect(200);
    app.agent("ana")
        .post(
            &format!("/transfer/{t1}/complete"),
            json!({"outcome": "sold"}),
        )
        .await
        .expect(200);
    let ana = sup.get("/api/agents/ana").await.body["agent"].clone();
    assert_eq!(ana["status"], "wrap_up");
    assert!(ana["wrap_up_until"].is_string());
    tokio::time::sleep(std::time::Duration::from_millis(1300)).await;
    let swept = transfers::sweeper::sweep(&app.state).await.unwrap();
    assert!(swept.wrap_ups_ended >= 1);
    let ana = sup.get("/api/agents/ana").await.body["agent"].clone();
    assert_eq!(ana["status"], "busy");
    assert_eq!(ana["current_transfer_id"], t2.body["transfer_id"]);
}
