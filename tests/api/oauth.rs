//! Clients, RFC 7009 revocation and RFC 7662 introspection. Both stores.

use crate::both_stores;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;

both_stores!(
    a_confidential_client_must_present_its_secret,
    refresh_tokens_are_bound_to_their_client,
    a_refresh_may_narrow_the_scope_for_good,
    a_client_may_use_only_its_grant_types,
    revoking_either_token_ends_the_session,
    introspection_describes_live_tokens_to_confidential_clients,
    with_the_default_client_disabled_only_configured_clients_work,
);

fn login_form(seed: &Seed) -> Vec<(&'static str, &str)> {
    vec![
        ("grant_type", "password"),
        ("username", seed.name),
        ("password", seed.password),
        ("tenantId", seed.tenant),
    ]
}

async fn login_as(app: &TestApp, auth: &str, seed: &Seed) -> Tokens {
    let res = app
        .post_form_as("/user/oauth/token", auth, &login_form(seed))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    Tokens::from(res.json::<Value>().await.unwrap())
}

async fn a_confidential_client_must_present_its_secret(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let form = login_form(&EMPLOYEE);
    for auth in [basic("gateway", "wrong-secret"), basic("gateway", "")] {
        let res = app.post_form_as("/user/oauth/token", &auth, &form).await;
        assert_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    // Twice: the second answer comes from the verified-secret cache and must agree.
    for _ in 0..2 {
        let tokens = login_as(&app, &basic("gateway", GATEWAY_SECRET), &EMPLOYEE).await;
        assert_eq!(app.details_status(&tokens.access).await, StatusCode::OK);
    }
    let res = app
        .post_form_as(
            "/user/oauth/token",
            &basic("gateway", "wrong-secret"),
            &form,
        )
        .await;
    assert_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    // Form fields work too, and a wider scope is the client's to grant.
    let mut fields = form.clone();
    fields.extend([
        ("client_id", "gateway"),
        ("client_secret", GATEWAY_SECRET),
        ("scope", "read write"),
    ]);
    let res = app
        .client
        .post(app.url("/user/oauth/token"))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["scope"], "read write");
}

async fn refresh_tokens_are_bound_to_their_client(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let gateway = basic("gateway", GATEWAY_SECRET);
    let tokens = login_as(&app, &gateway, &EMPLOYEE).await;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens.refresh.as_str()),
    ];
    for other in [BASIC_DIGIT.to_string(), basic("mobile", "")] {
        let res = app.post_form_as("/user/oauth/token", &other, &form).await;
        assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    // The attempts neither spent nor ended it.
    let res = app.post_form_as("/user/oauth/token", &gateway, &form).await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn a_refresh_may_narrow_the_scope_for_good(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let gateway = basic("gateway", GATEWAY_SECRET);
    let mut form = login_form(&EMPLOYEE);
    form.push(("scope", "read write"));
    let res = app.post_form_as("/user/oauth/token", &gateway, &form).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "read write");
    let refresh = |token: String, scope: Option<&'static str>| {
        let (app, gateway) = (&app, &gateway);
        async move {
            let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", &*token)];
            if let Some(scope) = scope {
                form.push(("scope", scope));
            }
            app.post_form_as("/user/oauth/token", gateway, &form).await
        }
    };
    let res = refresh(body["refresh_token"].as_str().unwrap().into(), Some("read")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "read");
    // Later refreshes keep the narrower scope and cannot widen it again.
    let res = refresh(body["refresh_token"].as_str().unwrap().into(), None).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "read");
    let next = body["refresh_token"].as_str().unwrap().to_string();
    let res = refresh(next.clone(), Some("write")).await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_scope").await;
    let res = refresh(next, None).await;
    assert_eq!(res.json::<Value>().await.unwrap()["scope"], "read");
}

async fn a_client_may_use_only_its_grant_types(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let auth = basic("password-only", "");
    let tokens = login_as(&app, &auth, &CITIZEN).await;
    let res = app
        .post_form_as(
            "/user/oauth/token",
            &auth,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &tokens.refresh),
            ],
        )
        .await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "unauthorized_client").await;
}

async fn revoking_either_token_ends_the_session(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let revoke = |auth: String, form: Vec<(&'static str, String)>| {
        let req = app
            .client
            .post(app.url("/oauth/revoke"))
            .header("Authorization", auth)
            .form(&form);
        async move { req.send().await.unwrap() }
    };
    for hint in ["access_token", "refresh_token"] {
        let tokens = app.login_ok(&EMPLOYEE).await;
        let token = if hint == "access_token" {
            &tokens.access
        } else {
            &tokens.refresh
        };
        let res = revoke(
            BASIC_DIGIT.into(),
            vec![("token", token.clone()), ("token_type_hint", hint.into())],
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{hint}");
        assert_eq!(
            app.details_status(&tokens.access).await,
            StatusCode::UNAUTHORIZED,
            "{hint}"
        );
        assert_oauth_error(
            app.refresh(&tokens.refresh).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
        // Idempotent, and quiet about what it knows.
        let res = revoke(BASIC_DIGIT.into(), vec![("token", token.clone())]).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = revoke(BASIC_DIGIT.into(), vec![("token", "no-such-token".into())]).await;
    assert_eq!(res.status(), StatusCode::OK);
    // Another client cannot revoke a token it was not issued.
    let tokens = app.login_ok(&EMPLOYEE).await;
    let res = revoke(basic("mobile", ""), vec![("token", tokens.access.clone())]).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.details_status(&tokens.access).await, StatusCode::OK);
    // Client authentication and the token parameter are required.
    let res = app
        .client
        .post(app.url("/oauth/revoke"))
        .form(&[("token", tokens.access.as_str())])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    let res = revoke(BASIC_DIGIT.into(), vec![]).await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    let res = revoke(
        BASIC_DIGIT.into(),
        vec![
            ("token", tokens.access.clone()),
            ("token_type_hint", "id_token".into()),
        ],
    )
    .await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
}

async fn introspection_describes_live_tokens_to_confidential_clients(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let gateway = basic("gateway", GATEWAY_SECRET);
    let tokens = app.login_ok(&EMPLOYEE).await;
    let introspect = |auth: String, token: String| {
        let req = app
            .client
            .post(app.url("/oauth/introspect"))
            .header("Authorization", auth)
            .form(&[("token", token)]);
        async move { req.send().await.unwrap() }
    };
    let res = introspect(BASIC_DIGIT.into(), tokens.access.clone()).await;
    assert_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let res = introspect(gateway.clone(), tokens.access.clone()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["active"], true, "{body}");
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["token_use"], "access_token");
    assert_eq!(body["scope"], "read");
    assert_eq!(body["client_id"], "egov-user-client");
    assert_eq!(body["username"], EMPLOYEE.name);
    assert_eq!(body["sub"], "uuid-pb-EMP-0001");
    assert_eq!(body["tenantId"], "pb");
    assert_eq!(body["roles"][0]["code"], "EMPLOYEE");
    let (exp, iat) = (body["exp"].as_u64().unwrap(), body["iat"].as_u64().unwrap());
    assert!(iat.abs_diff(now) <= 5, "iat {iat} now {now}");
    assert!(exp.abs_diff(now + 3600) <= 5, "exp {exp} now {now}");

    let body: Value = introspect(gateway.clone(), tokens.refresh.clone())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["active"], true);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["token_use"], "refresh_token");
    assert!(body["exp"].as_u64().unwrap().abs_diff(now + 7200) <= 5);

    app.logout(&tokens.access).await;
    for token in [tokens.access, tokens.refresh, "garbage".to_string()] {
        let body: Value = introspect(gateway.clone(), token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(body, serde_json::json!({"active": false}));
    }
}

async fn with_the_default_client_disabled_only_configured_clients_work(kind: StoreKind) {
    let options = Options::default().with("default.client.enabled", false);
    let app = TestApp::spawn_with(&kind, options).await;
    let gateway = basic("gateway", GATEWAY_SECRET);
    let tokens = login_as(&app, &gateway, &EMPLOYEE).await;
    // DIGIT's public client is unknown, by header or by form field, for either grant.
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens.refresh.as_str()),
    ];
    for form in [login_form(&EMPLOYEE), refresh.to_vec()] {
        let res = app
            .post_form_as("/user/oauth/token", BASIC_DIGIT, &form)
            .await;
        let challenge = res.headers().get("www-authenticate").cloned();
        assert_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
        assert_eq!(
            challenge.as_ref().and_then(|v| v.to_str().ok()),
            Some("Basic realm=\"oauth2/client\"")
        );
        let mut fields = form.clone();
        fields.push(("client_id", "egov-user-client"));
        let res = app
            .client
            .post(app.url("/user/oauth/token"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    // The clients of CLIENTS_FILE work as before.
    assert_eq!(app.details_status(&tokens.access).await, StatusCode::OK);
    let res = app
        .post_form_as("/user/oauth/token", &gateway, &refresh)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let mobile = login_as(&app, &basic("mobile", ""), &CITIZEN).await;
    assert_eq!(app.details_status(&mobile.access).await, StatusCode::OK);
}
