//! Accounts: sign-up, sign-in with two-factor, rotating refresh tokens, organisations,
//! invitations, roles, API keys and key rotation — as the app and integrators use them.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, spawn_app, spawn_app_with};

const PASSWORD: &str = "correct horse battery staple 42";

/// A registered organisation's first admin.
struct Account {
    email: String,
    access: String,
    refresh: String,
    user: Value,
}

fn unique(prefix: &str) -> String {
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{prefix}{}", &id[id.len() - 12..])
}

async fn register(app: &TestApp) -> Account {
    let email = format!("{}@example.com", unique("owner-"));
    let reply = app
        .anonymous()
        .post(
            "/auth/register",
            json!({"email": email.to_uppercase(), "password": PASSWORD, "first_name": "Ada",
                   "last_name": "Lovelace", "organization_name": "Analytical Engines",
                   "subdomain": unique("ae")}),
        )
        .await
        .expect(201);
    assert_eq!(reply.body["token_type"], "Bearer");
    assert_eq!(reply.body["user"], reply.body["user_info"]);
    Account {
        email,
        access: reply.body["access_token"].as_str().unwrap().to_owned(),
        refresh: reply.body["refresh_token"].as_str().unwrap().to_owned(),
        user: reply.body["user"].clone(),
    }
}

async fn login(app: &TestApp, email: &str, password: &str, code: &str) -> Reply {
    app.anonymous()
        .post(
            "/auth/login-2fa",
            json!({"email": email, "password": password, "two_factor_code": code}),
        )
        .await
}

fn org_of(account: &Account) -> String {
    account.user["organization_id"].as_str().unwrap().to_owned()
}

async fn outbox_link(app: &TestApp, to: &str, marker: &str) -> String {
    let emails = app
        .anonymous()
        .get("/__local/outbox")
        .await
        .expect(200)
        .body;
    let text = emails["emails"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["to"] == to)
        .unwrap_or_else(|| panic!("no email to {to}"))["text"]
        .as_str()
        .unwrap()
        .to_owned();
    let at = text.find(marker).expect("a link") + marker.len();
    text[at..].split_whitespace().next().unwrap().to_owned()
}

#[tokio::test]
async fn a_new_organisation_signs_up_refreshes_and_a_replayed_refresh_token_revokes_the_session() {
    let app = spawn_app_with(&[("REFRESH_REUSE_GRACE_SECONDS", "0")]).await;
    let owner = register(&app).await;
    assert_eq!(owner.user["role"], "admin");
    assert_eq!(
        owner.user["email"], owner.email,
        "emails are kept lower-case"
    );
    assert_eq!(owner.user["tenant_id"], owner.user["organization_id"]);
    assert_eq!(owner.user["first_name"], "Ada");
    assert!(owner.refresh.starts_with("vrt_"));

    let me = app
        .with_token(Some(owner.access.clone()))
        .get("/auth/me")
        .await
        .expect(200);
    assert_eq!(me.body["email"], owner.email);
    assert_eq!(me.body["two_factor_enabled"], false);
    let org = app
        .with_token(Some(owner.access.clone()))
        .get(&format!("/organizations/{}", org_of(&owner)))
        .await
        .expect(200);
    assert_eq!(org.body["name"], "Analytical Engines");
    assert_eq!(org.body["team_size"], 1);
    // The token works on every other function, for its own organisation.
    app.with_token(Some(owner.access.clone()))
        .post(
            "/api/departments",
            json!({"name": "Sales", "phone_number": "+15551230001"}),
        )
        .await
        .expect(201);

    // Refresh: a new pair; the old refresh token is retired.
    let first = app
        .anonymous()
        .post("/auth/refresh", json!({"refresh_token": owner.refresh}))
        .await
        .expect(200);
    let second_refresh = first.body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, owner.refresh);
    app.with_token(Some(
        first.body["access_token"].as_str().unwrap().to_owned(),
    ))
    .get("/auth/me")
    .await
    .expect(200);
    // A copy of the retired token comes back: the whole session is revoked.
    let replay = app
        .anonymous()
        .post("/auth/refresh", json!({"refresh_token": owner.refresh}))
        .await
        .expect(401);
    assert!(replay.body["message"].as_str().unwrap().contains("revoked"));
    app.anonymous()
        .post("/auth/refresh", json!({"refresh_token": second_refresh}))
        .await
        .expect(401);

    // Sign in again, then out: the session's refresh token stops working.
    let again = login(&app, &owner.email, PASSWORD, "").await.expect(200);
    assert_eq!(again.body["user_info"]["email"], owner.email);
    let access = again.body["access_token"].as_str().unwrap().to_owned();
    let refresh = again.body["refresh_token"].as_str().unwrap().to_owned();
    let sessions = app
        .with_token(Some(access.clone()))
        .get("/auth/sessions")
        .await
        .expect(200);
    assert_eq!(
        sessions.body["data"].as_array().unwrap().len(),
        1,
        "the revoked session is gone"
    );
    assert_eq!(sessions.body["data"][0]["current"], true);
    app.with_token(Some(access.clone()))
        .post("/auth/logout", json!({}))
        .await
        .expect(200);
    // The signed-out session's access token no longer manages the account.
    app.with_token(Some(access))
        .get("/auth/me")
        .await
        .expect(401);
    app.anonymous()
        .post("/auth/refresh", json!({"refresh_token": refresh}))
        .await
        .expect(401);
}

#[tokio::test]
async fn two_refreshes_of_one_token_at_once_do_not_sign_the_user_out() {
    let app = spawn_app().await;
    let owner = register(&app).await;
    let body = json!({"refresh_token": owner.refresh});
    let anonymous = app.anonymous();
    let (a, b) = tokio::join!(
        anonymous.post("/auth/refresh", body.clone()),
        anonymous.post("/auth/refresh", body.clone())
    );
    let winners: Vec<&Reply> = [&a, &b].into_iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        winners.len(),
        1,
        "one refresh wins: {} {}",
        a.status,
        b.status
    );
    // Within the reuse grace the loser is refused without revoking the session.
    app.anonymous()
        .post(
            "/auth/refresh",
            json!({"refresh_token": winners[0].body["refresh_token"]}),
        )
        .await
        .expect(200);
}

#[tokio::test]
async fn registration_refuses_weak_passwords_taken_names_and_bad_subdomains() {
    let app = spawn_app().await;
    let owner = register(&app).await;
    let base = json!({"email": format!("{}@example.com", unique("x-")), "password": PASSWORD,
        "first_name": "A", "last_name": "B", "organization_name": "Org", "subdomain": unique("s")});
    for (field, value) in [
        ("password", json!("password1")),
        ("password", json!("short")),
        ("subdomain", json!("Bad_Sub")),
        ("subdomain", json!("ab")),
        ("subdomain", json!("api")),
        ("email", json!("not-an-email")),
    ] {
        let mut body = base.clone();
        body[field] = value;
        let reply = app
            .anonymous()
            .post("/auth/register", body)
            .await
            .expect(422);
        assert!(
            reply.fields().contains(&field.to_owned()),
            "{field}: {:?}",
            reply.body
        );
        assert!(reply.body["message"].is_string(), "the app shows `message`");
    }
    let mut taken = base.clone();
    taken["email"] = json!(owner.email.to_uppercase());
    assert_eq!(
        app.anonymous()
            .post("/auth/register", taken)
            .await
            .expect(409)
            .code(),
        "email_taken"
    );
    let mut taken = base.clone();
    taken["subdomain"] = owner.user["subdomain"].clone();
    assert_eq!(
        app.anonymous()
            .post("/auth/register", taken)
            .await
            .expect(409)
            .code(),
        "subdomain_taken"
    );
}

#[tokio::test]
async fn an_unknown_email_and_a_wrong_password_look_the_same_and_failures_are_throttled() {
    let app = spawn_app().await;
    let owner = register(&app).await;
    let unknown = login(&app, "nobody-here@example.com", PASSWORD, "")
        .await
        .expect(401);
    let wrong = login(&app, &owner.email, "not the password at all", "")
        .await
        .expect(401);
    assert_eq!(unknown.body, wrong.body);
    for _ in 0..5 {
        login(&app, &owner.email, "still not the password", "")
            .await
            .expect(401);
    }
    // Past five free attempts from this address, each waits for the last one's lock: the
    // next one comes too soon, even with the right password.
    let throttled = login(&app, &owner.email, PASSWORD, "").await.expect(429);
    let wait: u64 = throttled.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "the first wait is short: {wait}");
    tokio::time::sleep(std::time::Duration::from_millis(wait * 1000 + 200)).await;
    login(&app, &owner.email, PASSWORD, "").await.expect(200);
    // Success clears the count: one more failure is a plain 401 again.
    login(&app, &owner.email, "wrong once more", "")
        .await
        .expect(401);
}

fn totp_now(secret: &str, offset_steps: i64) -> String {
    let key = accounts::totp::decode_base32(secret).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let step = accounts::totp::step_of(now) as i64 + offset_steps;
    accounts::totp::code_at(&key, step as u64)
}

#[tokio::test]
async fn two_factor_codes_work_once_and_backup_codes_once_each() {
    let app = spawn_app().await;
    let owner = register(&app).await;
    let me = app.with_token(Some(owner.access.clone()));
    let setup = me
        .post("/auth/two-factor/setup", json!({}))
        .await
        .expect(200);
    assert!(
        setup.body["qr_code"]
            .as_str()
            .unwrap()
            .starts_with("data:image/svg+xml;base64,")
    );
    let secret = setup.body["secret"].as_str().unwrap().to_owned();
    let backups: Vec<String> = serde_json::from_value(setup.body["backup_codes"].clone()).unwrap();
    assert_eq!(backups.len(), 10);
    me.post("/auth/two-factor/verify", json!({"code": "000000"}))
        .await
        .expect(422);
    me.post(
        "/auth/two-factor/verify",
        json!({"code": totp_now(&secret, 0)}),
    )
    .await
    .expect(200);
    assert_eq!(
        me.get("/auth/me").await.expect(200).body["two_factor_enabled"],
        true
    );

    // The app's first attempt sends an empty code: 202, "a code is needed".
    login(&app, &owner.email, PASSWORD, "").await.expect(202);
    // The next step's code (±1 step is allowed) signs in once; replayed it is refused.
    let code = totp_now(&secret, 1);
    login(&app, &owner.email, PASSWORD, &code).await.expect(200);
    login(&app, &owner.email, PASSWORD, &code).await.expect(401);
    // A backup code works once.
    login(&app, &owner.email, PASSWORD, &backups[0])
        .await
        .expect(200);
    login(&app, &owner.email, PASSWORD, &backups[0])
        .await
        .expect(401);
    // A wrong password never reaches the 202.
    login(&app, &owner.email, "wrong password here", "")
        .await
        .expect(401);

    // Turning it off needs the password and a code.
    me.post(
        "/auth/two-factor/disable",
        json!({"password": PASSWORD, "code": "123456"}),
    )
    .await
    .expect(422);
    me.post(
        "/auth/two-factor/disable",
        json!({"password": PASSWORD, "code": backups[1]}),
    )
    .await
    .expect(200);
    login(&app, &owner.email, PASSWORD, "").await.expect(200);
}

#[tokio::test]
async fn an_invited_user_accepts_once_and_role_changes_apply_from_the_next_token() {
    let app = spawn_app().await;
    let owner = register(&app).await;
    let admin = app.with_token(Some(owner.access.clone()));
    let org = org_of(&owner);
    let email = format!("{}@example.com", unique("mgr-"));
    let invited = admin
        .post(
            &format!("/organizations/{org}/users"),
            json!({"email": email, "role": "manager"}),
        )
        .await
        .expect(201);
    assert_eq!(invited.body["role"], "supervisor");
    assert_eq!(invited.body["status"], "invited");
    let user_id = invited.body["id"].as_str().unwrap().to_owned();
    // Invited users cannot sign in yet.
    login(&app, &email, PASSWORD, "").await.expect(401);
    let link = outbox_link(&app, &email, "token=").await;
    app.anonymous()
        .post(
            "/auth/invitations/accept",
            json!({"token": link, "password": "password"}),
        )
        .await
        .expect(422);
    let accepted = app
        .anonymous()
        .post(
            "/auth/invitations/accept",
            json!({"token": link, "password": PASSWORD, "first_name": "Grace", "last_name": "Hopper"}),
        )
        .await
        .expect(200);
    assert_eq!(accepted.body["user"]["role"], "supervisor");
    assert_eq!(accepted.body["user"]["organization_id"], org);
    app.anonymous()
        .post(
            "/auth/invitations/accept",
            json!({"token": link, "password": PASSWORD}),
        )
        .await
        .expect(400);
    let users = admin
        .get(&format!("/organizations/{org}/users"))
        .await
        .expect(200);
    assert_eq!(users.body["data"].as_array().unwrap().len(), 2);

    // Demoted to viewer: the next token (from refresh) reads but cannot write.
    admin
        .send(
            Method::PATCH,
            &format!("/organizations/{org}/users/{user_id}"),
            Some(json!({"role": "viewer"})),
        )
        .await
        .expect(200);
    let next = app
        .anonymous()
        .post(
            "/auth/refresh",
            json!({"refresh_token": accepted.body["refresh_token"]}),
        )
        .await
        .expect(200);
    // Its older token still says supervisor, but accounts routes read the stored role.
    app.with_token(Some(
        accepted.body["access_token"].as_str().unwrap().to_owned(),
    ))
    .get(&format!("/organizations/{org}/users"))
    .await
    .expect(403);
    let viewer = app.with_token(Some(next.body["access_token"].as_str().unwrap().to_owned()));
    viewer.get("/api/departments").await.expect(200);
    viewer
        .post(
            "/api/departments",
            json!({"name": "Nope", "phone_number": "+15551230002"}),
        )
        .await
        .expect(403);
    // The last admin cannot be demoted; removing the user ends their sessions.
    let owner_id = owner.user["id"].as_str().unwrap();
    admin
        .send(
            Method::PATCH,
            &format!("/organizations/{org}/users/{owner_id}"),
            Some(json!({"role": "agent"})),
        )
        .await
        .expect(409);
    admin
        .delete(&format!("/organizations/{org}/users/{user_id}"))
        .await
        .expect(200);
    app.anonymous()
        .post(
            "/auth/refresh",
            json!({"refresh_token": next.body["refresh_token"]}),
        )
        .await
        .expect(401);
}

#[tokio::test]
async fn a_forgotten_password_is_reset_once_by_the_emailed_link() {
    let app = spawn_app().await;
    let owner = register(&app).await;
    let unknown = app
        .anonymous()
        .post(
            "/auth/forgot-password",
            json!({"email": "nobody-at-all@example.com"}),
        )
        .await
        .expect(202);
    let known = app
        .anonymous()
        .post("/auth/forgot-password", json!({"email": owner.email}))
        .await
        .expect(202);
    assert_eq!(
        unknown.body, known.body,
        "the answer does not tell who has an account"
    );
    let token = outbox_link(&app, &owner.email, "token=").await;
    let new_password = "a brand new passphrase 77";
    app.anonymous()
        .post(
            "/auth/reset-password",
            json!({"token": token, "new_password": new_password}),
        )
        .await
        .expect(200);
    app.anonymous()
        .post(
            "/auth/reset-password",
            json!({"token": token, "new_password": PASSWORD}),
        )
        .await
        .expect(400);
    login(&app, &owner.email, PASSWORD, "").await.expect(401);
    login(&app, &owner.email, new_password, "")
        .await
        .expect(200);
    // Every session of before the reset is over.
    app.anonymous()
        .post("/auth/refresh", json!({"refresh_token": owner.refresh}))
        .await
        .expect(401);

    // A password change (the app's /auth/password-reset) needs the current password, and
    // ends the other sessions but not this one.
    let other = login(&app, &owner.email, new_password, "")
        .await
        .expect(200);
    let fresh = login(&app, &owner.email, new_password, "")
        .await
        .expect(200);
    let me = app.with_token(Some(
        fresh.body["access_token"].as_str().unwrap().to_owned(),
    ));
    me.post(
        "/auth/password-reset",
        json!({"current_password": "wrong", "new_password": PASSWORD}),
    )
    .await
    .expect(422);
    me.post(
        "/auth/password-reset",
        json!({"current_password": new_password, "new_password": PASSWORD}),
    )
    .await
    .expect(200);
    app.anonymous()
        .post(
            "/auth/refresh",
            json!({"refresh_token": other.body["refresh_token"]}),
        )
        .await
        .expect(401);
    me.get("/auth/me").await.expect(200);
    app.anonymous()
        .post(
            "/auth/refresh",
            json!({"refresh_token": fresh.body["refresh_token"]}),
        )
        .await
        .expect(200);
    let profile = me
        .put("/auth/profile", json!({"first_name": "Augusta", "timezone": "Europe/London", "email": owner.email, "profile_picture": "blob:http://localhost:3000/x"}))
        .await
        .expect(200);
    assert_eq!(profile.body["first_name"], "Augusta");
    assert_eq!(profile.body["profile_picture"], Value::Null);
    // Moving the account to another email takes the password (a stolen token cannot).
    let moved = format!("{}@example.com", unique("moved-"));
    me.put("/auth/profile", json!({"email": moved}))
        .await
        .expect(422);
    me.put(
        "/auth/profile",
        json!({"email": moved, "current_password": PASSWORD}),
    )
    .await
    .expect(200);
    login(&app, &moved, PASSWORD, "").await.expect(200);
}

#[tokio::test]
async fn api_keys_reach_only_their_scopes_are_rate_limited_and_stop_when_revoked() {
    let app = spawn_app().await;
    let owner = register(&app).await;
    let admin = app.with_token(Some(owner.access.clone()));
    let made = admin
        .post(
            "/settings/api-keys",
            json!({"name": "voice agent", "scopes": ["contacts:read", "transfers:write"],
                   "rate_limit": {"requests_per_minute": 8}}),
        )
        .await
        .expect(201);
    let key = made.body["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("voc_live_") && key.len() >= 9 + 43);
    let listed = admin.get("/api-keys").await.expect(200);
    let shown = &listed.body["data"][0];
    assert!(
        !shown["key"].as_str().unwrap().contains(&key[20..]),
        "listed keys are masked"
    );

    let with_key = app.with_token(Some(key.clone()));
    with_key.get("/v1/contacts").await.expect(200);
    assert_eq!(
        with_key
            .post("/v1/contacts", json!({"phone": "+14155550100"}))
            .await
            .expect(403)
            .code(),
        "insufficient_scope"
    );
    with_key.get("/api/queue/status").await.expect(200);
    assert_eq!(
        with_key.get("/api/call-logs").await.expect(403).code(),
        "insufficient_scope"
    );
    with_key.get("/settings/api-keys").await.expect(403);
    with_key.get("/auth/me").await.expect(403);
    // The X-API-Key header works as well.
    app.anonymous()
        .header("x-api-key", &key)
        .get("/v1/contacts")
        .await
        .expect(200);
    // Past its limit in this minute: 429 with Retry-After (8 per minute; 6 used).
    let mut limited = None;
    for _ in 0..4 {
        let reply = with_key.get("/v1/contacts").await;
        if reply.status == 429 {
            limited = Some(reply);
            break;
        }
    }
    let limited = limited.expect("the key's rate limit applies");
    assert_eq!(limited.code(), "api_key_rate_limited");
    assert!(limited.headers.contains_key("retry-after"));

    let id = made.body["id"].as_str().unwrap();
    admin
        .delete(&format!("/settings/api-keys/{id}"))
        .await
        .expect(200);
    let fresh = admin
        .post(
            "/api-keys",
            json!({"name": "second", "permissions": ["contacts:read"]}),
        )
        .await
        .expect(201);
    let second = app.with_token(Some(fresh.body["key"].as_str().unwrap().to_owned()));
    second.get("/v1/contacts").await.expect(200);
    admin
        .delete(&format!("/api-keys/{}", fresh.body["id"].as_str().unwrap()))
        .await
        .expect(200);
    // Revoked keys fail within seconds (each instance trusts a lookup for 5 s).
    let started = std::time::Instant::now();
    loop {
        if second.get("/v1/contacts").await.status == 401 {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 10,
            "a revoked key kept working"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    app.with_token(Some("voc_live_nothing-like-a-real-key".into()))
        .get("/v1/contacts")
        .await
        .expect(401);
}

#[tokio::test]
async fn organisations_users_and_keys_stay_in_their_tenant() {
    let app = spawn_app().await;
    let a = register(&app).await;
    let b = register(&app).await;
    let as_a = app.with_token(Some(a.access.clone()));
    let b_org = org_of(&b);
    let b_user = b.user["id"].as_str().unwrap();
    as_a.get(&format!("/organizations/{b_org}"))
        .await
        .expect(404);
    as_a.get(&format!("/organizations/{b_org}/users"))
        .await
        .expect(404);
    as_a.send(
        Method::PATCH,
        &format!("/organizations/{b_org}/users/{b_user}"),
        Some(json!({"role": "viewer"})),
    )
    .await
    .expect(404);
    as_a.send(
        Method::PATCH,
        &format!("/organizations/{}/users/{b_user}", org_of(&a)),
        Some(json!({"role": "viewer"})),
    )
    .await
    .expect(404);
    let b_key = app
        .with_token(Some(b.access.clone()))
        .post(
            "/settings/api-keys",
            json!({"name": "b", "scopes": ["calls:read"]}),
        )
        .await
        .expect(201);
    as_a.delete(&format!(
        "/settings/api-keys/{}",
        b_key.body["id"].as_str().unwrap()
    ))
    .await
    .expect(404);
    assert_eq!(
        as_a.get("/settings/api-keys").await.expect(200).body["data"],
        json!([])
    );
    // A token naming another tenant in X-Tenant-ID is refused; an empty one is ignored.
    app.with_token(Some(a.access.clone()))
        .header("x-tenant-id", &b_org)
        .get("/auth/me")
        .await
        .expect(403);
    app.with_token(Some(a.access.clone()))
        .header("x-tenant-id", "")
        .get("/api/departments")
        .await
        .expect(200);
}

#[tokio::test]
async fn a_viewer_cannot_write_through_any_route() {
    let app = spawn_app().await;
    // A real viewer account (accounts routes read the stored user), invited by an admin.
    let owner = register(&app).await;
    let org = org_of(&owner);
    let email = format!("{}@example.com", unique("viewer-"));
    app.with_token(Some(owner.access.clone()))
        .post(
            &format!("/organizations/{org}/users"),
            json!({"email": email, "role": "viewer"}),
        )
        .await
        .expect(201);
    let link = outbox_link(&app, &email, "token=").await;
    let accepted = app
        .anonymous()
        .post(
            "/auth/invitations/accept",
            json!({"token": link, "password": PASSWORD}),
        )
        .await
        .expect(200);
    assert_eq!(accepted.body["user"]["role"], "viewer");
    let viewer = app.with_token(Some(
        accepted.body["access_token"].as_str().unwrap().to_owned(),
    ));
    let template: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(vocelio_local::standins::project_root().join("template.yaml"))
            .unwrap(),
    )
    .unwrap();
    let mut paths = std::collections::BTreeSet::new();
    for (_, resource) in template["Resources"].as_mapping().unwrap() {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            if event["Type"] == "HttpApi"
                && let Some(path) = event["Properties"]["Path"].as_str()
            {
                paths.insert(path.to_owned());
            }
        }
    }
    let mut refused = 0;
    for path in &paths {
        if !path.starts_with('/') || path.starts_with("/auth/") || path.starts_with("/health") {
            continue;
        }
        // Greedy paths stand for the routes under them.
        let tails: &[&str] = if path.contains("{proxy+}") {
            &[
                "x1",
                "register",
                "request",
                "x1/status",
                "x1/accept",
                "x1/decline",
                "x1/complete",
                "x1/cancel",
            ]
        } else {
            &[""]
        };
        for tail in tails {
            let concrete = path
                .replace("{proxy+}", tail)
                .split('/')
                .map(|part| if part.starts_with('{') { "x1" } else { part })
                .collect::<Vec<_>>()
                .join("/");
            for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
                let reply = viewer
                    .send(method.clone(), &concrete, Some(json!({})))
                    .await;
                let no_such = matches!(reply.code(), "route_not_found" | "method_not_allowed");
                assert!(
                    reply.status == 403 || no_such,
                    "{method} {concrete}: a viewer got {} {}",
                    reply.status,
                    reply.body
                );
                refused += usize::from(reply.status == 403);
            }
        }
    }
    assert!(refused >= 30, "only {refused} write routes were tried");
}

#[tokio::test]
async fn tokens_verify_only_with_the_published_keys_and_keys_rotate() {
    use vocelio_shared::jwt::SigningKeys;
    let app = spawn_app().await;
    // The local stack publishes its public key.
    let jwks = app
        .anonymous()
        .get("/.well-known/jwks.json")
        .await
        .expect(200);
    assert_eq!(jwks.body["keys"][0]["kty"], "OKP");
    assert!(jwks.body["keys"][0].get("d").is_none(), "no private part");
    // A token signed with the old shared HS256 secret is refused.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let hs256 = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "admin-1", "tenant_id": app.tenant, "role": "admin", "exp": now + 600, "iat": now,
                "iss": "vocelio", "aud": "vocelio-api", "jti": "j"}),
        &jsonwebtoken::EncodingKey::from_secret(b"vocelio-local-dev-secret-change-me-0123456789"),
    )
    .unwrap();
    app.with_token(Some(hs256))
        .get("/api/departments")
        .await
        .expect(401);

    // A deployment whose functions know only the JWKS URL of its accounts function.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stand = crate::helpers::stand();
    let aws = vocelio_local::stack::LocalAws::connect(&stand.dynamodb_url, &stand.s3_url).await;
    let jwks_url = format!("{base}/.well-known/jwks.json");
    let config = vocelio_shared::config::Config::from_source(&|name: &str| match name {
        "TABLE_NAME" => Some(vocelio_local::stack::CORE_TABLE.to_owned()),
        "JWKS_URL" => Some(jwks_url.clone()),
        "JWKS_CACHE_SECONDS" => Some("1".to_owned()),
        _ => None,
    })
    .unwrap();
    let state = vocelio_local::stack::local_state(config, &aws);
    let accounts =
        vocelio_local::stack::local_accounts(&|_| None, SigningKeys::generate("rot-1").unwrap())
            .unwrap();
    let keys = accounts.keys.clone();
    let router = vocelio_shared::http::finish(
        accounts::routes(accounts).merge(departments::routes()),
        state,
    );
    tokio::spawn(async move { axum::serve(listener, router).await });
    let http = reqwest::Client::new();
    let email = format!("{}@example.com", unique("rot-"));
    let registered: Value = http
        .post(format!("{base}/auth/register"))
        .json(
            &json!({"email": email, "password": PASSWORD, "first_name": "R", "last_name": "K",
                      "organization_name": "Rotation", "subdomain": unique("rot")}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old_token = registered["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{registered}"))
        .to_owned();
    let departments = |token: String| {
        let http = http.clone();
        let url = format!("{base}/api/departments");
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(departments(old_token.clone()).await, 200);

    keys.write().unwrap().rotate("rot-2").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let signed_in: Value = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_token = signed_in["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        departments(new_token.clone()).await,
        200,
        "the new key is fetched"
    );
    assert_eq!(
        departments(old_token.clone()).await,
        200,
        "the old key still verifies"
    );

    keys.write().unwrap().retire("rot-1").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        departments(old_token).await,
        401,
        "a retired key stops verifying"
    );
    assert_eq!(departments(new_token).await, 200);
}

#[tokio::test]
async fn sign_ups_from_one_address_are_limited_per_hour() {
    let app = spawn_app_with(&[("ANONYMOUS_ACTIONS_PER_HOUR", "2")]).await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for _ in 0..3 {
        let reply = app
            .anonymous()
            .post(
                "/auth/register",
                json!({"email": format!("{}@example.com", unique("many-")), "password": PASSWORD,
                       "first_name": "M", "last_name": "N", "organization_name": "Many",
                       "subdomain": unique("m")}),
            )
            .await;
        statuses.push(reply.status);
        if reply.status == 429 {
            limited = Some(reply);
        }
    }
    assert!(
        statuses.iter().filter(|s| **s == 201).count() <= 2,
        "{statuses:?}"
    );
    let limited = limited.expect("the third sign-up within the hour is refused");
    assert_eq!(limited.code(), "too_many_attempts");
    assert!(limited.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn the_apps_dev_server_signs_in_across_origins_with_its_extra_headers() {
    let app = spawn_app().await;
    let owner = register(&app).await;
    let preflight = app
        .http()
        .request(Method::OPTIONS, format!("{}/auth/login-2fa", app.base))
        .header("Origin", "http://localhost:3000")
        .header("Access-Control-Request-Method", "POST")
        .header(
            "Access-Control-Request-Headers",
            "content-type,x-client-version,x-service,x-request-id,x-team-id,x-user-id,x-twilio-account-sid,x-twilio-auth-token,x-api-key",
        )
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success());
    assert_eq!(
        preflight.headers()["access-control-allow-origin"],
        "http://localhost:3000"
    );
    let signed_in = app
        .http()
        .post(format!("{}/auth/login-2fa", app.base))
        .header("Origin", "http://127.0.0.1:3000")
        .header("X-Client-Version", "1.0.0")
        .header("X-User-ID", "someone-else")
        .json(&json!({"email": owner.email, "password": PASSWORD, "two_factor_code": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    assert_eq!(
        signed_in.headers()["access-control-allow-origin"],
        "http://127.0.0.1:3000"
    );
    let body: Value = signed_in.json().await.unwrap();
    assert_eq!(
        body["user_info"]["id"], owner.user["id"],
        "X-User-ID is never read"
    );
}

#[tokio::test]
async fn unknown_fields_are_refused_and_the_apps_extra_ones_allowed() {
    let app = spawn_app().await;
    let reply = app
        .anonymous()
        .post(
            "/auth/login-2fa",
            json!({"email": "a@example.com", "password": "x", "two_factor_code": "", "remember": true}),
        )
        .await
        .expect(422);
    assert_eq!(reply.fields(), vec!["remember".to_owned()]);
    // The older register form adds `phone`, `subscription_tier` and `voice_tier`.
    app.anonymous()
        .post(
            "/auth/register",
            json!({"email": format!("{}@example.com", unique("old-")), "password": PASSWORD,
                   "first_name": "O", "last_name": "F", "organization_name": "Old form",
                   "subdomain": unique("of"), "phone": "+14155550100",
                   "subscription_tier": "starter", "voice_tier": "basic"}),
        )
        .await
        .expect(201);
}
