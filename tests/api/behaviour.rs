//! The behaviour suite: every test here runs against the Redis store and the embedded store.

use crate::both_stores;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

both_stores!(
    login_returns_tokens_in_the_digit_shape,
    wrong_password_and_unknown_user_get_the_same_answer,
    inactive_user_is_told_only_after_a_correct_password,
    tenant_and_user_type_pick_the_user,
    details_returns_the_user_of_a_live_access_token,
    logout_accepts_the_token_in_each_documented_place,
    details_accepts_the_token_in_each_documented_place,
    logout_ends_both_tokens,
    logout_is_idempotent_and_needs_a_token,
    refresh_rotates_and_ends_the_previous_pair,
    each_login_is_an_independent_session,
    tokens_of_one_kind_do_not_work_as_the_other,
    client_authentication_is_enforced,
    grant_type_and_scope_are_checked,
    tokens_expire_on_time,
    health_and_readiness_answer,
);

async fn login_returns_tokens_in_the_digit_shape(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let res = app.login(&EMPLOYEE).await;
    assert_eq!(res.status(), StatusCode::OK);
    let header = |n: &str| {
        res.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(header("pragma").as_deref(), Some("no-cache"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], "read");
    assert!(
        (3590..=3600).contains(&body["expires_in"].as_u64().unwrap()),
        "{body}"
    );
    assert!(
        (7190..=7200).contains(&body["refresh_expires_in"].as_u64().unwrap()),
        "{body}"
    );
    assert_eq!(
        body["ResponseInfo"]["status"],
        "Access Token generated successfully"
    );
    for field in ["api_id", "ver", "ts", "res_msg_id", "msg_id"] {
        assert_eq!(body["ResponseInfo"][field], "", "{field}");
    }
    assert_eq!(body["UserRequest"], user_json(&EMPLOYEE, 1));
    assert!(body["UserRequest"].get("password").is_none());
    let access = body["access_token"].as_str().unwrap();
    let refresh = body["refresh_token"].as_str().unwrap();
    assert_ne!(access, refresh);
    // 65 bytes in URL-safe base64: far beyond 128 bits of entropy, and URL-safe as is.
    for t in [access, refresh] {
        assert_eq!(t.len(), 87);
        assert!(
            t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
    }
}

async fn wrong_password_and_unknown_user_get_the_same_answer(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let tenant = [("tenantId", "pb")];
    let wrong = app.password_login(EMPLOYEE.name, "not-it", &tenant).await;
    let wrong = assert_oauth_error(wrong, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let unknown = app.password_login("nobody", "not-it", &tenant).await;
    let unknown = assert_oauth_error(unknown, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(wrong, unknown);
    assert_eq!(wrong["error_description"], "Invalid login credentials");
}

async fn inactive_user_is_told_only_after_a_correct_password(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let body = assert_oauth_error(
        app.login(&INACTIVE).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["error_description"], "Please activate your account");
    let res = app
        .token_request(&[
            ("grant_type", "password"),
            ("username", INACTIVE.name),
            ("password", "wrong"),
            ("tenantId", "pb"),
        ])
        .await;
    let body = assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(body["error_description"], "Invalid login credentials");
}

async fn tenant_and_user_type_pick_the_user(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let login = |fields: Vec<(&'static str, &'static str)>| {
        app.password_login("twin", TWIN_MZ.password, fields)
    };
    // The name is in two tenants: naming neither tenant nor type is ambiguous.
    let res = login(vec![]).await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let res = login(vec![("tenantId", "mz")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["UserRequest"]["tenantId"], "mz");
    // The user type alone also tells them apart, in any letter case.
    let res = login(vec![("userType", "citizen")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    // A type that does not match the record is not that user.
    let res = login(vec![("tenantId", "mz"), ("userType", "EMPLOYEE")]).await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    // A unique name needs no tenant.
    let res = app
        .token_request(&[
            ("grant_type", "password"),
            ("username", CITIZEN.name),
            ("password", CITIZEN.password),
        ])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = assert_oauth_error(
        login(vec![("userType", "ADMIN")]).await,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    )
    .await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("userType")
    );
}

async fn details_returns_the_user_of_a_live_access_token(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let tokens = app.login_ok(&CITIZEN).await;
    let res = app.details(&tokens.access).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap(), user_json(&CITIZEN, 2));
    let res = app
        .client
        .get(app.url(&format!("/user/_details?access_token={}", tokens.access)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);

    let res = app.details("not-a-token").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"ResponseInfo": null, "Errors": [{"code": "InvalidAccessTokenException",
            "message": "Invalid access token", "description": "Invalid Access Token Exception", "params": null}]})
    );
    let res = app
        .client
        .post(app.url("/user/_details"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "no token at all");
}

/// The six ways a client may present an access token.
fn with_token(app: &TestApp, path: &str, place: usize, token: &str) -> reqwest::RequestBuilder {
    let post = app.client.post(app.url(path));
    match place {
        0 => app
            .client
            .post(app.url(&format!("{path}?access_token={token}"))),
        1 => post.form(&[("access_token", token)]),
        2 => post.json(&serde_json::json!({ "access_token": token })),
        3 => post.json(
            &serde_json::json!({ "RequestInfo": { "apiId": "Rainmaker", "authToken": token } }),
        ),
        4 => post.bearer_auth(token),
        _ => post.header("auth-token", token),
    }
}

async fn logout_accepts_the_token_in_each_documented_place(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    for place in 0..6 {
        let tokens = app.login_ok(&EMPLOYEE).await;
        let res = with_token(&app, "/user/_logout", place, &tokens.access)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "place {place}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "Logout successfully");
        assert!(body["ts"].as_u64().unwrap() > 1_700_000_000_000);
        assert_eq!(
            app.details_status(&tokens.access).await,
            StatusCode::UNAUTHORIZED,
            "place {place}"
        );
    }
}

async fn details_accepts_the_token_in_each_documented_place(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let tokens = app.login_ok(&EMPLOYEE).await;
    for place in 0..6 {
        let res = with_token(&app, "/user/_details", place, &tokens.access)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK, "place {place}");
        assert_eq!(
            res.json::<Value>().await.unwrap()["userName"],
            EMPLOYEE.name
        );
    }
    // A body without Content-Length, in chunks, is read too.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let json = serde_json::json!({ "access_token": tokens.access }).to_string();
    let (head, tail) = json.split_at(json.len() / 2);
    let request = format!(
        "POST /user/_details HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{head}\r\n{:x}\r\n{tail}\r\n0\r\n\r\n",
        head.len(),
        tail.len()
    );
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(EMPLOYEE.name), "{reply}");
}

async fn logout_ends_both_tokens(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let tokens = app.login_ok(&EMPLOYEE).await;
    assert_eq!(app.logout(&tokens.access).await.status(), StatusCode::OK);
    assert_eq!(
        app.details_status(&tokens.access).await,
        StatusCode::UNAUTHORIZED
    );
    let body = assert_oauth_error(
        app.refresh(&tokens.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["error_description"], "Invalid refresh token");
}

async fn logout_is_idempotent_and_needs_a_token(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let tokens = app.login_ok(&EMPLOYEE).await;
    for token in [
        tokens.access.as_str(),
        tokens.access.as_str(),
        "unknown-token",
    ] {
        assert_eq!(app.logout(token).await.status(), StatusCode::OK);
    }
    let res = app
        .client
        .post(app.url("/user/_logout"))
        .send()
        .await
        .unwrap();
    let body = assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("access_token")
    );
}

async fn refresh_rotates_and_ends_the_previous_pair(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let first = app.login_ok(&EMPLOYEE).await;
    let second = app.refresh_ok(&first.refresh).await;
    assert_ne!(second.access, first.access);
    assert_ne!(second.refresh, first.refresh);
    assert_eq!(second.body["UserRequest"], user_json(&EMPLOYEE, 1));
    assert_eq!(second.body["scope"], "read");
    assert_eq!(
        app.details_status(&first.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.details_status(&second.access).await, StatusCode::OK);
    let third = app.refresh_ok(&second.refresh).await;
    assert_eq!(app.details_status(&third.access).await, StatusCode::OK);
    assert_eq!(
        app.details_status(&second.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_oauth_error(
        app.refresh("garbage").await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
}

async fn each_login_is_an_independent_session(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let phone = app.login_ok(&EMPLOYEE).await;
    let laptop = app.login_ok(&EMPLOYEE).await;
    assert_ne!(phone.access, laptop.access);
    assert_eq!(app.logout(&phone.access).await.status(), StatusCode::OK);
    assert_eq!(
        app.details_status(&phone.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.details_status(&laptop.access).await, StatusCode::OK);
    app.refresh_ok(&laptop.refresh).await;
}

async fn tokens_of_one_kind_do_not_work_as_the_other(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let tokens = app.login_ok(&EMPLOYEE).await;
    assert_eq!(
        app.details_status(&tokens.refresh).await,
        StatusCode::UNAUTHORIZED
    );
    assert_oauth_error(
        app.refresh(&tokens.access).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    // Neither attempt harmed the session.
    assert_eq!(app.details_status(&tokens.access).await, StatusCode::OK);
    app.refresh_ok(&tokens.refresh).await;
}

async fn client_authentication_is_enforced(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let form = [
        ("grant_type", "password"),
        ("username", EMPLOYEE.name),
        ("password", EMPLOYEE.password),
        ("tenantId", "pb"),
    ];
    let send = |auth: Option<&'static str>, extra: Vec<(&'static str, &'static str)>| {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        fields.extend(extra);
        let mut req = app.client.post(app.url("/user/oauth/token")).form(&fields);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        req.send()
    };
    // Unknown client, wrong secret for the public client, no client at all.
    let other = "Basic b3RoZXItY2xpZW50Og=="; // other-client:
    let wrong_secret = "Basic ZWdvdi11c2VyLWNsaWVudDp4"; // egov-user-client:x
    let cases = [
        (Some(other), vec![]),
        (Some(wrong_secret), vec![]),
        (None, vec![]),
        (Some("Basic !!!"), vec![]),
    ];
    for (auth, extra) in cases {
        let res = send(auth, extra).await.unwrap();
        assert_eq!(
            res.headers()["www-authenticate"],
            "Basic realm=\"oauth2/client\"",
            "{auth:?}"
        );
        assert_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    // The public client may also identify itself by form field.
    let res = send(None, vec![("client_id", "egov-user-client")])
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // Two ways at once is a malformed request.
    let res = send(Some(BASIC_DIGIT), vec![("client_secret", "")])
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "an empty client_secret is no secret at all"
    );
    let res = send(Some(BASIC_DIGIT), vec![("client_secret", "x")])
        .await
        .unwrap();
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
}

async fn grant_type_and_scope_are_checked(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let res = app
        .token_request(&[("grant_type", "client_credentials")])
        .await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "unsupported_grant_type").await;
    let res = app.token_request(&[("username", "x")]).await;
    let body = assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("grant_type"),
        "{body}"
    );
    let res = app
        .token_request(&[("grant_type", "password"), ("password", "x")])
        .await;
    let body = assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("username"),
        "{body}"
    );
    let res = app
        .token_request(&[
            ("grant_type", "password"),
            ("username", EMPLOYEE.name),
            ("password", EMPLOYEE.password),
            ("scope", "read write"),
        ])
        .await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_scope").await;
    let tokens = app.login_ok(&EMPLOYEE).await;
    let res = app
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &tokens.refresh),
            ("scope", "admin"),
        ])
        .await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_scope").await;
    // A refused scope did not spend the refresh token.
    app.refresh_ok(&tokens.refresh).await;
}

async fn tokens_expire_on_time(kind: StoreKind) {
    // Access lives 1.2 s, refresh 3 s. Each token is used at least a second before its end,
    // and each end is waited for, not slept through.
    let options = Options::lifetimes(0.02, 0.05);
    let app = TestApp::spawn_with(&kind, options).await;
    let tokens = app.login_ok(&EMPLOYEE).await;
    assert_eq!(tokens.body["expires_in"], 1);
    assert_eq!(tokens.body["refresh_expires_in"], 3);
    assert_eq!(app.details_status(&tokens.access).await, StatusCode::OK);
    let expired = eventually(Duration::from_secs(5), || async {
        app.details_status(&tokens.access).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(expired, "the access token expires");
    // The refresh token outlives the access token.
    let renewed = app.refresh_ok(&tokens.refresh).await;
    assert_eq!(app.details_status(&renewed.access).await, StatusCode::OK);
    app.wait_until_expired(&renewed.access, &renewed.refresh, Duration::from_secs(10))
        .await;
    assert_oauth_error(
        app.refresh(&renewed.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
}

async fn health_and_readiness_answer(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "UP");
    let res = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "UP");
    let expected = match kind {
        StoreKind::Redis => "redis",
        StoreKind::Embedded => "embedded",
        StoreKind::Cluster(_) => "redis-cluster",
        StoreKind::Sentinel(_) => "redis-sentinel",
    };
    assert_eq!(body["store"], expected);
}
