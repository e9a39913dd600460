//! Several app instances sharing one Redis, as replicas behind a load balancer do.

use crate::support::*;
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
    a.assert_session_ended(&tokens).await;
    assert_eq!(
        b.details_status(&tokens.access).await,
        StatusCode::UNAUTHORIZED
    );
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
    // A client that lost b's answer retries on a: it gets the very same pair.
    let retried = a.refresh_ok(&first.refresh).await;
    assert_eq!(retried.access, second.access);
    assert_eq!(retried.refresh, second.refresh);
}

#[tokio::test]
async fn concurrent_refreshes_across_replicas_yield_one_successor() {
    let (a, b) = two_replicas().await;
    let tokens = a.login_ok(&EMPLOYEE).await;
    let attempts = (0..50).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        app.refresh(&tokens.refresh)
    });
    let responses = futures_util::future::join_all(attempts).await;
    // One redemption; the racing duplicates fall inside the retry window and get its pair.
    let mut pairs = vec![];
    for res in responses {
        assert_eq!(res.status(), StatusCode::OK);
        let t = Tokens::from(res.json::<serde_json::Value>().await.unwrap());
        pairs.push((t.access, t.refresh));
    }
    pairs.dedup();
    assert_eq!(pairs.len(), 1, "exactly one successor pair");
    let (access, refresh) = &pairs[0];
    assert_eq!(b.details_status(access).await, StatusCode::OK);
    b.refresh_ok(refresh).await;
    // One session, not fifty.
    let sessions = a.keys().into_iter().filter(|k| k.contains(":s:")).count();
    assert_eq!(sessions, 1);
}

#[tokio::test]
async fn a_replay_after_the_window_ends_the_session_on_every_replica() {
    let redis = Arc::new(TestRedis::start());
    let options = Options {
        prefix: Some(format!("shared{}", uuid::Uuid::new_v4().simple())),
        ..Options::default()
    }
    .with("refresh.token.reuse.grace.seconds", 1);
    let a = TestApp::spawn_on(Some(redis.clone()), options.clone()).await;
    let b = TestApp::spawn_on(Some(redis), options).await;
    let first = a.login_ok(&EMPLOYEE).await;
    let second = b.refresh_ok(&first.refresh).await;
    // A second past the 1 s window: nothing outside shows when it closes.
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    assert_oauth_error(
        a.refresh(&first.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        b.details_status(&second.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        a.details_status(&second.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_oauth_error(
        b.refresh(&second.refresh).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert!(
        a.keys().iter().all(|k| !k.contains(":s:")),
        "no session left in Redis"
    );
}

#[tokio::test]
async fn lockout_counts_across_replicas() {
    let redis = Arc::new(TestRedis::start());
    let options = Options {
        prefix: Some(format!("shared{}", uuid::Uuid::new_v4().simple())),
        ..Options::default()
    }
    .with("max.invalid.login.attempts", 3);
    let a = TestApp::spawn_on(Some(redis.clone()), options.clone()).await;
    let b = TestApp::spawn_on(Some(redis), options).await;
    for app in [&a, &b, &a] {
        let res = app
            .password_login(CITIZEN.name, "wrong", [("tenantId", "pb")])
            .await;
        assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    for app in [&a, &b] {
        let body = assert_oauth_error(
            app.login(&CITIZEN).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
        assert_eq!(body["error_description"], "Account locked");
    }
    // The lock is keyed by the user name alone (whatever tenant the logins named); the
    // failure that locked the account started its count over.
    let names = a.key_names();
    let account = |name: &str| Account::User(name.to_string());
    // An account's keys share one hash tag (the text in the first `{…}`).
    let hash_tag = |key: &str| -> Option<String> {
        let (_, rest) = key.split_once('{')?;
        Some(rest.split_once('}')?.0.to_string())
    };
    let lockout_keys = |app: &TestApp, name: &str| -> Vec<String> {
        let tag = hash_tag(&names.account_lock(&account(name)));
        let mut keys: Vec<String> = app
            .keys()
            .into_iter()
            .filter(|k| hash_tag(k) == tag)
            .collect();
        keys.sort();
        keys
    };
    let lock = names.account_lock(&account(CITIZEN.name));
    assert_eq!(lockout_keys(&a, CITIZEN.name), [lock.as_str()]);
    // A wrong password of another user starts that user's count.
    let res = b
        .password_login(EMPLOYEE.name, "wrong", [("tenantId", "pb")])
        .await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let counter = names.login_failures(&account(EMPLOYEE.name));
    assert_eq!(lockout_keys(&a, EMPLOYEE.name), [counter.as_str()]);
    // Both expire by themselves: the lock after the cool-down, the count after the period
    // (by default 60 and 30 minutes).
    let mut conn = a.redis().conn();
    for (key, most) in [(&lock, 60 * 60_000), (&counter, 30 * 60_000)] {
        let ttl: i64 = redis::cmd("PTTL").arg(key).query(&mut conn).unwrap();
        assert!(ttl > 0 && ttl <= most, "{key}: TTL {ttl} ms");
    }
    let counted: u32 = redis::cmd("GET").arg(&counter).query(&mut conn).unwrap();
    assert_eq!(counted, 1);
}
