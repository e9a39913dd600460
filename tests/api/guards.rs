//! Brute force and overload: account lockout, the per-address throttle with trusted proxies,
//! and the bound on waiting bcrypt work.

use crate::both_stores;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

both_stores!(
    repeated_wrong_passwords_lock_the_account_until_the_cool_down,
    a_correct_password_resets_the_count,
    unknown_users_lock_like_known_ones,
    with_lockout_off_no_number_of_wrong_passwords_locks,
    wrong_passwords_older_than_the_counting_period_do_not_count,
    the_address_throttle_answers_429_per_client_address,
    forwarded_addresses_count_only_behind_trusted_proxies,
    a_saturated_bcrypt_queue_answers_503_at_once,
);

/// Three wrong passwords lock for 1.8 s.
fn lockout() -> Options {
    Options::default()
        .with("max.invalid.login.attempts", 3)
        .with("account.unlock.cool.down.period.minutes", 0.03)
}

async fn wrong(app: &TestApp, seed: &Seed) -> Value {
    let res = app
        .password_login(seed.name, "wrong-password", [("tenantId", seed.tenant)])
        .await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await
}

async fn repeated_wrong_passwords_lock_the_account_until_the_cool_down(kind: StoreKind) {
    let app = TestApp::spawn_with(&kind, lockout()).await;
    let session = app.login_ok(&EMPLOYEE).await;
    for _ in 0..3 {
        assert_eq!(
            wrong(&app, &EMPLOYEE).await["error_description"],
            "Invalid login credentials"
        );
    }
    // Locked: even the right password is refused, and other users are unaffected.
    let body = assert_oauth_error(
        app.login(&EMPLOYEE).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["error_description"], "Account locked");
    app.login_ok(&CITIZEN).await;
    // Locking does not end existing sessions.
    assert_eq!(app.details_status(&session.access).await, StatusCode::OK);
    app.refresh_ok(&session.refresh).await;
    // Once the cool-down has passed, the right password works again. Polled gently: each
    // refused login spends one of this address's 60 attempts a minute.
    let unlocked = eventually_every(
        Duration::from_secs(10),
        Duration::from_millis(250),
        || async { app.login(&EMPLOYEE).await.status() == StatusCode::OK },
    )
    .await;
    assert!(
        unlocked,
        "the account is still locked long after its cool-down"
    );
}

async fn a_correct_password_resets_the_count(kind: StoreKind) {
    let app = TestApp::spawn_with(&kind, lockout()).await;
    wrong(&app, &EMPLOYEE).await;
    wrong(&app, &EMPLOYEE).await;
    app.login_ok(&EMPLOYEE).await;
    wrong(&app, &EMPLOYEE).await;
    wrong(&app, &EMPLOYEE).await;
    app.login_ok(&EMPLOYEE).await;
}

async fn unknown_users_lock_like_known_ones(kind: StoreKind) {
    let app = TestApp::spawn_with(&kind, lockout()).await;
    let ghost = Seed {
        name: "ghost",
        tenant: "pb",
        password: "whatever",
        user_type: "CITIZEN",
        active: true,
    };
    for _ in 0..3 {
        assert_eq!(
            wrong(&app, &ghost).await["error_description"],
            "Invalid login credentials"
        );
    }
    assert_eq!(
        wrong(&app, &ghost).await["error_description"],
        "Account locked"
    );
}

async fn with_lockout_off_no_number_of_wrong_passwords_locks(kind: StoreKind) {
    let options = Options::default().with("max.invalid.login.attempts", 0);
    let app = TestApp::spawn_with(&kind, options).await;
    for _ in 0..12 {
        assert_eq!(
            wrong(&app, &EMPLOYEE).await["error_description"],
            "Invalid login credentials"
        );
    }
    app.login_ok(&EMPLOYEE).await;
}

async fn wrong_passwords_older_than_the_counting_period_do_not_count(kind: StoreKind) {
    // Three wrong passwords within 1.8 s of the first of them lock.
    let period = Duration::from_millis(1800);
    let options = Options::default()
        .with("max.invalid.login.attempts", 3)
        .with("max.invalid.login.attempts.period.minutes", 0.03);
    let app = TestApp::spawn_with(&kind, options).await;
    let first = Instant::now();
    wrong(&app, &EMPLOYEE).await;
    wrong(&app, &EMPLOYEE).await;
    wait_for_the_period_to_pass(&kind, &app, EMPLOYEE.name, first + period).await;
    // The two old failures no longer count: two more leave the account open ...
    for _ in 0..2 {
        assert_eq!(
            wrong(&app, &EMPLOYEE).await["error_description"],
            "Invalid login credentials"
        );
    }
    // ... and the third within the new period locks it.
    assert_eq!(
        wrong(&app, &EMPLOYEE).await["error_description"],
        "Invalid login credentials"
    );
    let body = assert_oauth_error(
        app.login(&EMPLOYEE).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["error_description"], "Account locked");
}

/// Waits until the lockout period of `user`, due to end at `ends`, is over. In Redis the
/// failure counter is a key that lives for the period, so its expiry is watched for; the
/// embedded store shows nothing, so there the wait runs a second past the period's end.
async fn wait_for_the_period_to_pass(kind: &StoreKind, app: &TestApp, user: &str, ends: Instant) {
    let counter = app
        .key_names()
        .login_failures(&Account::User(user.to_string()));
    let exists = |key: &str| -> Option<bool> {
        match kind {
            StoreKind::Embedded => None,
            StoreKind::Redis => redis::cmd("EXISTS")
                .arg(key)
                .query(&mut app.redis().conn())
                .ok(),
            StoreKind::Sentinel(setup) => redis::cmd("EXISTS")
                .arg(key)
                .query(&mut setup.master.as_ref()?.conn())
                .ok(),
            StoreKind::Cluster(cluster) => Some(cluster.keys(&app.prefix).iter().any(|k| k == key)),
        }
    };
    match exists(&counter) {
        None => tokio::time::sleep_until((ends + Duration::from_secs(1)).into()).await,
        Some(present) => {
            assert!(present, "{counter} counts the wrong passwords");
            let gone = eventually(Duration::from_secs(10), || async {
                exists(&counter) == Some(false)
            })
            .await;
            assert!(gone, "{counter} outlived its period");
        }
    }
}

async fn the_address_throttle_answers_429_per_client_address(kind: StoreKind) {
    let app = TestApp::spawn_with(
        &kind,
        Options::default().with("login.max.attempts.per.ip.per.minute", 3),
    )
    .await;
    let mut sessions = vec![];
    for _ in 0..3 {
        let res = app.login_from("127.0.0.1", &EMPLOYEE, &[]).await;
        assert_eq!(res.status(), StatusCode::OK);
        sessions.push(Tokens::from(res.json::<Value>().await.unwrap()));
    }
    let res = app.login_from("127.0.0.1", &EMPLOYEE, &[]).await;
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let body = assert_oauth_error(res, StatusCode::TOO_MANY_REQUESTS, "too_many_requests").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("retry")
    );
    // Token validation from the throttled address is never throttled, however often.
    let throttled = reqwest::Client::builder()
        .local_address("127.0.0.1".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let throttled = ApiClient::new(&app.address, throttled);
    for t in sessions.iter().chain(&sessions) {
        assert_eq!(throttled.validate(&t.access).await, StatusCode::OK);
    }
    // Another address has its own budget.
    assert_eq!(
        app.login_from("127.0.0.2", &EMPLOYEE, &[]).await.status(),
        StatusCode::OK
    );
}

async fn forwarded_addresses_count_only_behind_trusted_proxies(kind: StoreKind) {
    let options = Options::default()
        .with("login.max.attempts.per.ip.per.minute", 2)
        .with("TRUSTED_PROXIES", "127.0.0.1/32");
    let app = TestApp::spawn_with(&kind, options).await;
    let app = &app;
    let via_proxy = |client: &'static str| async move {
        app.login_from("127.0.0.1", &EMPLOYEE, &[("x-forwarded-for", client)])
            .await
            .status()
    };
    assert_eq!(via_proxy("198.51.100.1").await, StatusCode::OK);
    assert_eq!(via_proxy("198.51.100.1").await, StatusCode::OK);
    assert_eq!(
        via_proxy("198.51.100.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        via_proxy("198.51.100.2").await,
        StatusCode::OK,
        "each client behind the proxy counts alone"
    );
    // The address recorded for the session is the client's.
    let tokens = Tokens::from(
        app.login_from("127.0.0.1", &EMPLOYEE, &[("x-real-ip", "203.0.113.7")])
            .await
            .json::<Value>()
            .await
            .unwrap(),
    );
    let sessions: Value = app.sessions_of(&tokens.access).await;
    let current = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()
        .clone();
    assert_eq!(current["ip"], "203.0.113.7");
    // An untrusted peer cannot pick its address by header.
    for spoof in ["203.0.113.1", "203.0.113.2", "203.0.113.3"] {
        let status = app
            .login_from("127.0.0.2", &EMPLOYEE, &[("x-forwarded-for", spoof)])
            .await
            .status();
        let expected = if spoof == "203.0.113.3" {
            StatusCode::TOO_MANY_REQUESTS
        } else {
            StatusCode::OK
        };
        assert_eq!(status, expected, "{spoof}");
    }
}

async fn a_saturated_bcrypt_queue_answers_503_at_once(kind: StoreKind) {
    // A user whose hash takes a while: cost 12.
    let dir = tempfile::tempdir().unwrap();
    let mut slow = user_json(&EMPLOYEE, 9);
    slow["userName"] = "slow".into();
    slow["uuid"] = "uuid-slow".into();
    slow["password"] = bcrypt::hash("slow-password", 12).unwrap().into();
    let users = dir.path().join("users.json");
    std::fs::write(&users, serde_json::to_string(&[slow]).unwrap()).unwrap();
    // Lockout off, so every 503 here comes from the bound on bcrypt, not the account's budget.
    let options = Options::default()
        .with("USERS_FILE", users.display())
        .with("bcrypt.max.concurrent", 1)
        .with("bcrypt.max.queue", 1)
        .with("max.invalid.login.attempts", 0);
    let app = Arc::new(TestApp::spawn_with(&kind, options).await);
    let attempts = (0..6).map(|_| {
        let app = app.clone();
        tokio::spawn(async move {
            let res = app
                .password_login("slow", "wrong", [("tenantId", "pb")])
                .await;
            let status = res.status();
            let retry = res.headers().get("retry-after").cloned();
            let body: Value = res.json().await.unwrap();
            (status, retry, body)
        })
    });
    let results = futures_util::future::join_all(attempts).await;
    let mut busy = 0;
    for r in results {
        let (status, retry, body) = r.unwrap();
        match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert_eq!(body["error"], "temporarily_unavailable");
                assert_eq!(retry.as_ref().and_then(|v| v.to_str().ok()), Some("1"));
            }
            other => assert_eq!(other, StatusCode::BAD_REQUEST, "{body}"),
        }
    }
    assert!(
        busy >= 3,
        "one runs, one waits, the rest are turned away: {busy} busy"
    );
}
