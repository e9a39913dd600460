//! Refresh rotation done right: the retry window, reuse detection, rotation off, the absolute
//! session lifetime and the per-user session cap. Every test runs on both stores.

use crate::both_stores;
use crate::helpers::*;
use reqwest::StatusCode;
use std::time::Duration;

both_stores!(
    a_retry_inside_the_window_returns_the_same_pair,
    a_replay_after_the_window_ends_the_whole_session,
    an_older_ancestor_is_reuse_even_inside_the_window,
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
    tokio::time::sleep(Duration::from_millis(1300)).await;
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

async fn without_rotation_the_refresh_token_stays_with_its_expiry(kind: StoreKind) {
    let options = Options::lifetimes(60.0, 0.05).with("REFRESH_TOKEN_ROTATION", "false");
    let app = TestApp::spawn_with(&kind, options).await;
    let first = app.login_ok(&EMPLOYEE).await;
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
    tokio::time::sleep(Duration::from_millis(2100)).await;
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
    tokio::time::sleep(Duration::from_millis(2100)).await;
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
