//! What every route shares: 404 before 401, CORS for the app's origins, health, 405s, and
//! the tables matching template.yaml.

use serde_json::json;

use crate::helpers::{spawn_app, stand};

#[tokio::test]
async fn unknown_paths_are_404_whatever_the_token() {
    let app = spawn_app().await;
    // The app's dashboard calls paths we do not serve, some without a token: a 401 there
    // would bounce the user through the login page forever.
    for path in [
        "/dashboard/stats",
        "/campaigns/active",
        "/sessions/active",
        "/api/nope",
        "/",
    ] {
        let anonymous = app.anonymous().get(path).await.expect(404);
        assert_eq!(anonymous.code(), "route_not_found");
        app.with_token(Some("garbage".into()))
            .get(path)
            .await
            .expect(404);
        app.admin().get(path).await.expect(404);
    }
    // Known paths without a token are 401, with the JSON error body.
    let reply = app.anonymous().get("/api/agents").await.expect(401);
    assert!(reply.body["error"].as_str().unwrap().contains("Bearer"));
}

#[tokio::test]
async fn wrong_methods_are_a_json_405() {
    let app = spawn_app().await;
    let reply = app
        .admin()
        .send(reqwest::Method::PATCH, "/api/departments", Some(json!({})))
        .await
        .expect(405);
    assert_eq!(reply.code(), "method_not_allowed");
}

#[tokio::test]
async fn browsers_on_the_apps_origins_pass_cors_without_a_token() {
    let app = spawn_app().await;
    let preflight = app
        .http()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/departments", app.base),
        )
        .header("Origin", "http://localhost:5173")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type,x-tenant-id,idempotency-key",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    let headers = preflight.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "http://localhost:5173"
    );
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    for header in [
        "authorization",
        "content-type",
        "x-tenant-id",
        "idempotency-key",
    ] {
        assert!(allowed.contains(header), "{header} not allowed: {allowed}");
    }

    let foreign = app
        .http()
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/api/departments", app.base),
        )
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        foreign
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let reply = app
        .admin()
        .header("Origin", "http://127.0.0.1:4173")
        .get("/api/departments")
        .await
        .expect(200);
    let exposed = reply.headers["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        exposed.contains("provider") && exposed.contains("voice-id"),
        "{exposed}"
    );
    assert!(reply.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn health_needs_no_token_and_shows_the_table() {
    let app = spawn_app().await;
    for path in ["/health", "/health/departments", "/health/agents"] {
        let reply = app.anonymous().get(path).await.expect(200);
        assert_eq!(reply.body["status"], "ok");
        assert_eq!(reply.body["checks"]["table"]["status"], "ACTIVE");
        assert!(reply.body["version"].is_string());
        assert!(reply.body.get("tenant").is_none());
    }
}

#[tokio::test]
async fn health_reports_a_table_that_does_not_answer() {
    let stand = stand();
    let aws = vocelio_local::stack::LocalAws::connect(&stand.dynamodb_url, &stand.s3_url).await;
    let config = vocelio_shared::config::Config::from_source(&|name: &str| match name {
        "TABLE_NAME" => Some("NoSuchTable".to_owned()),
        "JWT_PUBLIC_KEYS" => Some(crate::helpers::dev_jwks()),
        _ => None,
    })
    .unwrap();
    let state = vocelio_local::stack::local_state(config, &aws);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://{}/health/departments",
        listener.local_addr().unwrap()
    );
    tokio::spawn(async move { axum::serve(listener, departments::router(state)).await });
    let reply = reqwest::get(url).await.unwrap();
    assert_eq!(reply.status(), 503);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["status"], "degraded");
}

#[tokio::test]
async fn the_local_tables_are_exactly_what_the_template_declares() {
    let stand = stand();
    let aws = vocelio_local::stack::LocalAws::connect(&stand.dynamodb_url, &stand.s3_url).await;
    assert!(!stand.tables.is_empty());
    for declared in &stand.tables {
        let live = vocelio_local::tables::describe(&aws.dynamodb, &declared.logical_id)
            .await
            .unwrap();
        let mut declared_attributes = declared.attributes.clone();
        declared_attributes.sort();
        assert_eq!(live.attributes, declared_attributes);
        assert_eq!(live.key_schema, declared.key_schema);
        let mut live_indexes = live.indexes.clone();
        live_indexes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut declared_indexes = declared.indexes.clone();
        declared_indexes.sort_by(|a, b| a.name.cmp(&b.name));
        assert_eq!(live_indexes, declared_indexes);
        assert_eq!(live.stream_view_type, declared.stream_view_type);
        assert_eq!(live.ttl_attribute, declared.ttl_attribute);
    }
    // The code's key names are the template's.
    use vocelio_shared::keys;
    let core = &stand.tables[0];
    assert_eq!(
        core.key_schema,
        [
            (keys::PK.to_owned(), "HASH".to_owned()),
            (keys::SK.to_owned(), "RANGE".to_owned())
        ]
    );
    let index = |name: &str| {
        core.indexes
            .iter()
            .find(|i| i.name == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(index(keys::GSI1).key_schema[0].0, keys::GSI1PK);
    assert_eq!(index(keys::GSI1).key_schema[1].0, keys::GSI1SK);
    assert_eq!(index(keys::GSI2).key_schema[0].0, keys::GSI2PK);
    assert_eq!(index(keys::GSI2).key_schema[1].0, keys::GSI2SK);
    assert_eq!(core.ttl_attribute.as_deref(), Some(keys::EXPIRES_AT));
}

#[tokio::test]
async fn the_s3_stand_in_serves_presigned_urls() {
    let stand = stand();
    let aws = vocelio_local::stack::LocalAws::connect(&stand.dynamodb_url, &stand.s3_url).await;
    let key = format!("checks/{}.txt", uuid::Uuid::now_v7());
    let presign =
        aws_sdk_s3::presigning::PresigningConfig::expires_in(std::time::Duration::from_secs(60))
            .unwrap();
    let put = aws
        .s3
        .put_object()
        .bucket(vocelio_local::stack::LOCAL_BUCKET)
        .key(&key)
        .presigned(presign.clone())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let stored = client.put(put.uri()).body("hello").send().await.unwrap();
    assert!(stored.status().is_success(), "{}", stored.status());
    let get = aws
        .s3
        .get_object()
        .bucket(vocelio_local::stack::LOCAL_BUCKET)
        .key(&key)
        .presigned(presign)
        .await
        .unwrap();
    assert_eq!(
        client
            .get(get.uri())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "hello"
    );
}

#[tokio::test]
async fn every_answer_reports_the_dynamodb_capacity_it_consumed() {
    let app = spawn_app().await;
    let admin = app.admin();
    let created = admin
        .post(
            "/api/departments",
            json!({"name": "Sales", "phone_number": "555-123-4567"}),
        )
        .await
        .expect(201);
    let units = |reply: &crate::helpers::Reply| -> f64 {
        reply
            .headers
            .get("x-dynamodb-capacity-units")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    // A create is one transaction (department, name reservation, event); DynamoDB Local
    // reports fewer units for transactions than DynamoDB bills, so only its presence is
    // asserted here.
    assert!(units(&created) > 0.0, "create reported {}", units(&created));
    let read = admin
        .get(&format!(
            "/api/departments/{}",
            created.body["department"]["id"].as_str().unwrap()
        ))
        .await
        .expect(200);
    assert_eq!(units(&read), 1.0, "one consistent read of a small item");
    // Nothing is metered where nothing was read.
    assert_eq!(units(&app.anonymous().get("/nowhere").await), 0.0);
}

/// Every HTTP API route `template.yaml` sends to a function is one the local stack serves
/// (neither its unmatched-route 404 nor a 405): the deployed API and the local one agree.
#[tokio::test]
async fn every_route_of_the_template_is_served_locally() {
    let template =
        std::fs::read_to_string(vocelio_local::standins::project_root().join("template.yaml"))
            .unwrap();
    let template: serde_yaml::Value = serde_yaml::from_str(&template).unwrap();
    let mut routes = Vec::new();
    for (_, resource) in template["Resources"].as_mapping().unwrap() {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let path = event["Properties"]["Path"].as_str().unwrap().to_owned();
            let method = event["Properties"]["Method"].as_str().unwrap().to_owned();
            if path != "$default" {
                routes.push((method, path));
            }
        }
    }
    assert!(routes.len() >= 60, "only {} routes found", routes.len());
    let app = spawn_app().await;
    let admin = app.admin();
    for (method, path) in &routes {
        // Path parameters get placeholder values: a 404 of the resource is fine, a 404 of
        // the route is not.
        let concrete: String = path
            .split('/')
            .map(|part| {
                if part.starts_with('{') {
                    "placeholder"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = match method.as_str() {
            "ANY" => reqwest::Method::GET,
            m => reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
        };
        let body = (method != reqwest::Method::GET).then(|| json!({}));
        let reply = admin.send(method.clone(), &concrete, body).await;
        assert_ne!(
            reply.code(),
            "route_not_found",
            "{method} {path} is in the template but not served locally"
        );
        assert_ne!(reply.status, 405, "{method} {path}: {:?}", reply.body);
    }
}
