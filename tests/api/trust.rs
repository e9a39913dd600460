//! What a stranger, a cancelled request and a crowd of honest instances can still do to the
//! password and client-secret budgets.

use crate::both_stores;
use crate::support::process::ServerProcess;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

both_stores!(
    a_stranger_cannot_lock_a_client_out_of_another_address,
    simultaneous_right_passwords_of_one_account_all_get_in,
);

/// An introspection by the `gateway` client with `secret`, sent from loopback address `from`.
async fn introspect_from(app: &TestApp, from: &str, secret: &str) -> reqwest::Response {
    let client = reqwest::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    client
        .post(app.url("/oauth/introspect"))
        .header("Authorization", basic("gateway", secret))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap()
}

async fn a_stranger_cannot_lock_a_client_out_of_another_address(kind: StoreKind) {
    let options = Options::default().with("max.invalid.login.attempts", 3);
    let app = TestApp::spawn_with(&kind, options).await;
    let failures =
        r#"token_server_client_auth_failures_total{client="gateway",reason="wrong_secret"}"#;
    let before = metric_at(&app.address, failures).await;
    for _ in 0..3 {
        let res = introspect_from(&app, "127.0.0.2", "wrong-secret").await;
        assert_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    // The stranger's address is locked: even the right secret is refused there.
    let res = introspect_from(&app, "127.0.0.2", GATEWAY_SECRET).await;
    assert_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    // From another address the right secret, never verified on this replica, works.
    let res = introspect_from(&app, "127.0.0.3", GATEWAY_SECRET).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    // The failures stay visible, per client.
    assert!(metric_at(&app.address, failures).await >= before + 3.0);
}

/// A lockout budget of `budget`, with password checks of `cost`, and no address throttle.
fn budget_of(budget: u32, cost: u32) -> Options {
    Options::default()
        .with("max.invalid.login.attempts", budget)
        .with("login.max.attempts.per.ip.per.minute", 0)
        .with("BCRYPT_COST", cost)
}

async fn simultaneous_right_passwords_of_one_account_all_get_in(kind: StoreKind) {
    // Cost 10, so that the logins overlap.
    let app = Arc::new(TestApp::spawn_with(&kind, budget_of(5, 10)).await);
    let logins = (0..8).map(|_| {
        let app = app.clone();
        tokio::spawn(async move {
            let res = app.login(&EMPLOYEE).await;
            (res.status(), res.text().await.unwrap())
        })
    });
    for answer in futures_util::future::join_all(logins).await {
        let (status, body) = answer.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
    }
}

/// Password checks started on `server` since its count of abandoned ones was `abandoned_before`:
/// those running or waiting for bcrypt, and those abandoned since (each hang-up's check ends
/// abandoned). The server's own metrics, so only its checks count.
async fn checks_started(server: &ServerProcess, abandoned_before: f64) -> f64 {
    let text = reqwest::get(server.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let running = sample(&text, "token_server_bcrypt_queue_depth", &[]).unwrap_or(0.0);
    let abandoned = sample(
        &text,
        "token_server_checks_abandoned_total",
        &[("verdict", "wrong")],
    )
    .unwrap_or(0.0);
    running + abandoned - abandoned_before
}

/// Sends a wrong-password login of the employee on a connection of its own and resets the
/// connection while its check runs: once `server` has started the `nth` check since its count
/// of abandoned ones was `abandoned_before`.
async fn hang_up_mid_check(server: &ServerProcess, nth: f64, abandoned_before: f64) {
    let address = server.address.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(address).await.unwrap();
    let body = format!(
        "grant_type=password&username={}&password=wrong&tenantId=pb",
        EMPLOYEE.name
    );
    let request = format!(
        "POST /user/oauth/token HTTP/1.1\r\nHost: x\r\nAuthorization: {BASIC_DIGIT}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes()).await.unwrap();
    let checking = eventually_every(
        Duration::from_secs(10),
        Duration::from_millis(5),
        || async { checks_started(server, abandoned_before).await >= nth },
    )
    .await;
    assert!(checking, "check {nth} did not start within 10 s");
    // A reset, not a close: the server drops the request at once. (Deprecated for the
    // blocking drop a non-zero linger makes.)
    #[allow(deprecated)]
    s.set_linger(Some(Duration::ZERO)).unwrap();
}

/// Each store in a server process of its own, whose metrics count only its checks.
#[tokio::test]
async fn a_login_whose_client_hangs_up_mid_check_is_counted_and_holds_no_place() {
    let redis = TestRedis::start();
    let url = redis.url();
    hung_up_checks_count(&[("REDIS_URL", url.as_str())], "redis").await;
    hung_up_checks_count(&[], "embedded").await;
}

async fn hung_up_checks_count(store: &[(&str, &str)], name: &str) {
    // Cost 12: each check runs long enough for its client to go away in the middle of it.
    let mut env = vec![
        ("TOKEN_SECRET", TOKEN_SECRET),
        ("MAX_INVALID_LOGIN_ATTEMPTS", "5"),
        ("LOGIN_MAX_ATTEMPTS_PER_IP_PER_MINUTE", "0"),
        ("BCRYPT_COST", "12"),
    ];
    env.extend_from_slice(store);
    let server = ServerProcess::start(&env);
    let abandoned = r#"token_server_checks_abandoned_total{verdict="wrong"}"#;
    let before = metric_at(&server.address, abandoned).await;
    for nth in 1..=4 {
        hang_up_mid_check(&server, f64::from(nth), before).await;
    }
    let reported = eventually(Duration::from_secs(10), || async {
        metric_at(&server.address, abandoned).await >= before + 4.0
    })
    .await;
    assert!(reported, "{name}: the abandoned checks never finished");
    // They counted: one more wrong password spends the budget...
    let res = server
        .password_login(EMPLOYEE.name, "wrong", [("tenantId", "pb")])
        .await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error_description"], "Invalid login credentials");
    // ...so the account is locked, not held busy by places nobody gives back.
    let res = server.login(&EMPLOYEE).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error_description"], "Account locked", "{name}");
}
