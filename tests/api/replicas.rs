//! Several app instances sharing one Redis, as replicas behind a load balancer do.

use crate::helpers::*;
use reqwest::StatusCode;
use std::sync::Arc;

async fn two_replicas() -> (TestApp, TestApp) {
    let redis = Arc::new(TestRedis::start());
    let prefix = format!("shared{}", uuid::Uuid::new_v4().simple());
    let options = Options {
        prefix: Some(prefix),
        ..Options::default()
    };
    let a = TestApp::spawn_on(Some(redis.clone()), options.clone()).await;
    let b = TestApp::spawn_on(Some(redis), options).await;
    (a, b)
}

#[tokio::test]
async fn a_session_started_on_one_replica_works_and_ends_on_the_other() {
    let (a, b) = two_replicas().await;
    let tokens = a.login_ok(&EMPLOYEE).await;
    let res = b.details(&tokens.access).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["userName"],
        EMPLOYEE.name
    );

    assert_eq!(b.logout(&tokens.access).await.status(), StatusCode::OK);
    assert_eq!(
        a.details_status(&tokens.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        b.details_status(&tokens.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_oauth_error(
        a.refresh(&tokens.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn a_refresh_on_one_replica_ends_the_old_access_token_on_the_other() {
    let (a, b) = two_replicas().await;
    let first = a.login_ok(&CITIZEN).await;
    let second = b.refresh_ok(&first.refresh).await;
    assert_eq!(
        a.details_status(&first.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(a.details_status(&second.access).await, StatusCode::OK);
    assert_oauth_error(
        a.refresh(&first.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
}

#[tokio::test]
async fn concurrent_refreshes_across_replicas_redeem_the_token_once() {
    let (a, b) = two_replicas().await;
    let tokens = a.login_ok(&EMPLOYEE).await;
    let attempts = (0..20).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.refresh(&tokens.refresh)
    });
    let responses = futures_util::future::join_all(attempts).await;
    let mut successors = vec![];
    for res in responses {
        match res.status() {
            StatusCode::OK => {
                successors.push(Tokens::from(res.json::<serde_json::Value>().await.unwrap()))
            }
            status => {
                assert_eq!(status, StatusCode::BAD_REQUEST);
                let body: serde_json::Value = res.json().await.unwrap();
                assert_eq!(body["error_description"], "Invalid refresh token");
            }
        }
    }
    assert_eq!(successors.len(), 1, "exactly one refresh may succeed");
    let winner = &successors[0];
    assert_eq!(b.details_status(&winner.access).await, StatusCode::OK);
    b.refresh_ok(&winner.refresh).await;
    // One session, not twenty.
    let sessions = a.keys().into_iter().filter(|k| k.contains(":s:")).count();
    assert_eq!(sessions, 1);
}
