//! Refresh rotation done right: the retry window, reuse detection, rotation off, the absolute
//! session lifetime and the per-user session cap. Every test runs on both stores.

use crate::both_stores;
use crate::support::*;
use reqwest::StatusCode;
use std::time::Duration;

both_stores!(
    a_retry_inside_the_window_returns_the_same_pair,
    a_replay_after_the_window_ends_the_whole_session,
    an_older_ancestor_is_reuse_even_inside_the_window,
    the_eight_tokens_before_the_predecessor_are_reuse_and_older_ones_only_invalid,
    with_no_retry_window_an_immediate_retry_is_reuse,
    with_no_retry_window_concurrent_refreshes_never_both_succeed,
    without_rotation_the_refresh_token_stays_with_its_expiry,
    the_session_lifetime_caps_every_expiry,
    past_the_session_cap_a_login_ends_the_session_expiring_first,
);

async fn a_retry_inside_the_window_returns_the_same_pair(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let first = app.login_ok(&EMPLOYEE).await;
    let second = app.refresh_ok(&first.refresh).await;
    let retried = app.refresh_ok(&first.refresh).await;
    assert_eq!(retried.access, second.access);
    assert_eq!(retried.refresh, second.refresh);
    assert!(retried.body["expires_in"].as_u64().unwrap() > 3500);
    // One chain, not two: the successor goes on working and rotates normally.
    assert_eq!(app.details_status(&second.access).await, StatusCode::OK);
    let third = app.refresh_ok(&second.refresh).await;
    assert_eq!(app.details_status(&third.access).await, StatusCode::OK);
}

async fn a_replay_after_the_window_ends_the_whole_session(kind: StoreKind) {
    let app = TestApp::spawn_with(
        &kind,
        Options::default().with("refresh.token.reuse.grace.seconds", 1),
    )
    .await;
    let first = app.login_ok(&EMPLOYEE).await;
    let second = app.refresh_ok(&first.refresh).await;
    let other_session = app.login_ok(&EMPLOYEE).await;
    // A second past the 1 s window: nothing outside shows when it closes.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    let body = assert_oauth_error(
        app.refresh(&first.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["error_description"], "Invalid refresh token");
    // Every token of that lineage is dead; the user's other session is untouched.
    app.assert_session_ended(&second).await;
    assert_eq!(
        app.details_status(&other_session.access).await,
        StatusCode::OK
    );
}

async fn an_older_ancestor_is_reuse_even_inside_the_window(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let first = app.login_ok(&CITIZEN).await;
    let second = app.refresh_ok(&first.refresh).await;
    let third = app.refresh_ok(&second.refresh).await;
    // `first` is two generations old: only the immediate predecessor may be retried.
    assert_oauth_error(
        app.refresh(&first.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    app.assert_session_ended(&third).await;
}

/// A login of `seed` and `refreshes` rotations of its session: every pair, oldest first.
async fn lineage(app: &TestApp, seed: &Seed, refreshes: usize) -> Vec<Tokens> {
    let mut pairs = vec![app.login_ok(seed).await];
    for _ in 0..refreshes {
        let next = app.refresh_ok(&pairs.last().unwrap().refresh).await;
        pairs.push(next);
    }
    pairs
}

async fn the_eight_tokens_before_the_predecessor_are_reuse_and_older_ones_only_invalid(
    kind: StoreKind,
) {
    let app = TestApp::spawn(&kind).await;
    // pairs[10] is current and pairs[9] its predecessor (a retry inside the window); the
    // session remembers the 8 before that, pairs[1] to pairs[8].
    let pairs = lineage(&app, &EMPLOYEE, 10).await;
    // pairs[0] is past that memory: refused, and the session goes on.
    let body = assert_oauth_error(
        app.refresh(&pairs[0].refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["error_description"], "Invalid refresh token");
    assert_eq!(app.details_status(&pairs[10].access).await, StatusCode::OK);
    // Each of the remembered ones is reuse and ends its session.
    for back in 1..=8 {
        let pairs = if back == 1 {
            pairs.clone()
        } else {
            lineage(&app, &EMPLOYEE, 10).await
        };
        let body = assert_oauth_error(
            app.refresh(&pairs[back].refresh).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
        assert_eq!(body["error_description"], "Invalid refresh token");
        app.assert_session_ended(&pairs[10]).await;
    }
}

async fn with_no_retry_window_an_immediate_retry_is_reuse(kind: StoreKind) {
    let options = Options::default().with("refresh.token.reuse.grace.seconds", 0);
    let app = TestApp::spawn_with(&kind, options).await;
    let first = app.login_ok(&EMPLOYEE).await;
    let second = app.refresh_ok(&first.refresh).await;
    let body = assert_oauth_error(
        app.refresh(&first.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["error_description"], "Invalid refresh token");
    app.assert_session_ended(&second).await;
}

/// Two refreshes of one token sent at once, often within one millisecond: with no window the
/// second is reuse, never a retry.
async fn with_no_retry_window_concurrent_refreshes_never_both_succeed(kind: StoreKind) {
    let options = Options::default()
        .with("refresh.token.reuse.grace.seconds", 0)
        .with("login.max.attempts.per.ip.per.minute", 0);
    let app = TestApp::spawn_with(&kind, options).await;
    for _ in 0..40 {
        let t = app.login_ok(&EMPLOYEE).await;
        let (a, b) = tokio::join!(app.refresh(&t.refresh), app.refresh(&t.refresh));
        assert!(
            !(a.status() == StatusCode::OK && b.status() == StatusCode::OK),
            "both refreshes of one token succeeded"
        );
    }
}

#[tokio::test]
async fn refresh_token_reuse_is_logged_as_an_audit_event() {
    let server = crate::support::process::ServerProcess::start(&[
        ("LOG_FORMAT", "json"),
        ("BCRYPT_COST", "4"),
    ]);
    let res = server
        .password_login(EMPLOYEE.name, EMPLOYEE.password, [("tenantId", "pb")])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let first = Tokens::from(res.json::<serde_json::Value>().await.unwrap());
    let rotate = |token: String| {
        let server = &server;
        async move {
            let res = server.refresh(&token).await;
            (res.status(), res.json::<serde_json::Value>().await.unwrap())
        }
    };
    let (status, second) = rotate(first.refresh.clone()).await;
    assert_eq!(status, StatusCode::OK);
    // A retry inside the window and a rotation are not reuse.
    assert_eq!(rotate(first.refresh.clone()).await.0, StatusCode::OK);
    let second = Tokens::from(second);
    assert_eq!(rotate(second.refresh.clone()).await.0, StatusCode::OK);
    let reuse_lines = || -> Vec<serde_json::Value> {
        server
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|l| {
                l["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("refresh token reuse"))
            })
            .collect()
    };
    assert_eq!(reuse_lines(), Vec::<serde_json::Value>::new());

    // `first` is now two generations old.
    let (status, body) = rotate(first.refresh.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let logged = eventually(Duration::from_secs(5), || async {
        !reuse_lines().is_empty()
    })
    .await;
    assert!(logged, "no reuse event in the log:\n{}", server.log());
    let lines = reuse_lines();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["target"], "audit", "{lines:?}");
    let message = lines[0]["message"].as_str().unwrap();
    assert!(
        message.contains("uuid-pb-EMP-0001"),
        "names the user: {message}"
    );
    assert!(!message.contains(&first.refresh), "{message}");
}

async fn without_rotation_the_refresh_token_stays_with_its_expiry(kind: StoreKind) {
    let options = Options::lifetimes(60.0, 0.05).with("REFRESH_TOKEN_ROTATION", "false");
    let app = TestApp::spawn_with(&kind, options).await;
    let first = app.login_ok(&EMPLOYEE).await;
    let expiry = app.introspect(&first.refresh).await["exp"].clone();
    assert!(expiry.is_u64(), "{expiry}");
    // Over a second later, what is left of the 3 s shows less than at login.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = app.refresh_ok(&first.refresh).await;
    assert_eq!(
        second.refresh, first.refresh,
        "DIGIT behaviour: the same refresh token"
    );
    assert!(
        second.body["refresh_expires_in"].as_u64().unwrap() <= 2,
        "{}",
        second.body
    );
    assert!(
        second.body["expires_in"].as_u64().unwrap() <= 2,
        "access never outlives the refresh token"
    );
    // Each refresh still ends the previous access token.
    assert_eq!(
        app.details_status(&first.access).await,
        StatusCode::UNAUTHORIZED
    );
    let third = app.refresh_ok(&first.refresh).await;
    assert_eq!(
        app.details_status(&second.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.details_status(&third.access).await, StatusCode::OK);
    // Refreshes did not move the refresh token's end, and at that end it stops working.
    assert_eq!(app.introspect(&first.refresh).await["exp"], expiry);
    app.wait_until_expired(&third.access, &first.refresh, Duration::from_secs(10))
        .await;
    assert_oauth_error(
        app.refresh(&first.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
}

async fn the_session_lifetime_caps_every_expiry(kind: StoreKind) {
    // Sessions end 3 s after login however often they are refreshed.
    let options = Options::lifetimes(60.0, 60.0).with("session.max.lifetime.in.minutes", 0.05);
    let app = TestApp::spawn_with(&kind, options).await;
    let first = app.login_ok(&EMPLOYEE).await;
    assert_eq!(first.body["expires_in"], 3);
    assert_eq!(first.body["refresh_expires_in"], 3);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = app.refresh_ok(&first.refresh).await;
    assert!(
        second.body["refresh_expires_in"].as_u64().unwrap() <= 2,
        "{}",
        second.body
    );
    assert!(
        second.body["expires_in"].as_u64().unwrap() <= 2,
        "{}",
        second.body
    );
    app.wait_until_expired(&second.access, &second.refresh, Duration::from_secs(10))
        .await;
    app.assert_session_ended(&second).await;
}

async fn past_the_session_cap_a_login_ends_the_session_expiring_first(kind: StoreKind) {
    let app = TestApp::spawn_with(&kind, Options::default().with("MAX_SESSIONS_PER_USER", 2)).await;
    let oldest = app.login_ok(&EMPLOYEE).await;
    let middle = app.login_ok(&EMPLOYEE).await;
    let other_user = app.login_ok(&CITIZEN).await;
    // Refreshing the oldest makes the middle one the next to expire.
    let oldest = app.refresh_ok(&oldest.refresh).await;
    let newest = app.login_ok(&EMPLOYEE).await;
    app.assert_session_ended(&middle).await;
    for live in [&oldest, &newest, &other_user] {
        assert_eq!(app.details_status(&live.access).await, StatusCode::OK);
    }
}
