//! `/metrics` as Prometheus scrapes it from the `token-server` binary (one process per test:
//! the recorder is process-wide).

use crate::support::process::ServerProcess;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;

/// Every metric name in an exposition, histogram series folded into their base name.
pub fn names(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(|n| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| n.strip_suffix(s))
                .unwrap_or(n)
                .to_string()
        })
        .collect()
}

async fn scrape(url: &str) -> String {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let kind = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/plain"), "{kind}");
    res.text().await.unwrap()
}

/// Logins, refreshes (rotated, retried, reused, invalid), validation and logout against
/// `server`; returns the tokens used, which must never show up in the metrics.
pub async fn traffic(server: &ApiClient) -> Vec<String> {
    let (client, base) = (&server.client, server.address.as_str());
    let login = server
        .password_login(EMPLOYEE.name, EMPLOYEE.password, [("tenantId", "pb")])
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    let first: Value = login.json().await.unwrap();
    let refused = server
        .password_login(EMPLOYEE.name, "not-the-password", [("tenantId", "pb")])
        .await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);

    let r0 = first["refresh_token"].as_str().unwrap().to_string();
    let second: Value = server.refresh(&r0).await.json().await.unwrap();
    // The same token again inside the retry window: the same pair, a "retried" refresh.
    let retried = server.refresh(&r0).await;
    assert_eq!(retried.status(), StatusCode::OK);
    let r1 = second["refresh_token"].as_str().unwrap().to_string();
    let third: Value = server.refresh(&r1).await.json().await.unwrap();
    let access = third["access_token"].as_str().unwrap().to_string();
    assert_eq!(server.validate(&access).await, StatusCode::OK);
    // Two rotations back: reuse, which ends the session.
    let reused = server.refresh(&r0).await;
    assert_eq!(reused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        server.refresh("garbage").await.status(),
        StatusCode::BAD_REQUEST
    );

    let other: Value = server
        .password_login(CITIZEN.name, CITIZEN.password, [("tenantId", "pb")])
        .await
        .json()
        .await
        .unwrap();
    let other_access = other["access_token"].as_str().unwrap().to_string();
    let logout = client
        .post(format!("{base}/user/_logout"))
        .form(&[("access_token", other_access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert_eq!(
        client
            .get(format!("{base}/no/such/{}", other_access))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    vec![r0, r1, access, other_access]
}

#[tokio::test]
async fn metrics_count_what_happened_with_bounded_labels() {
    let redis = TestRedis::start();
    let server = ServerProcess::start(&[
        ("REDIS_URL", redis.url().as_str()),
        ("TOKEN_SECRET", TOKEN_SECRET),
    ]);
    let base = server.address.clone();
    let tokens = traffic(&server).await;
    let text = scrape(&format!("{base}/metrics")).await;

    let count = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels).unwrap_or(0.0);
    let logins = "token_server_logins_total";
    assert_eq!(count(logins, &[("outcome", "ok")]), 2.0, "{text}");
    assert_eq!(count(logins, &[("outcome", "bad_credentials")]), 1.0);
    let refreshes = "token_server_refreshes_total";
    assert_eq!(count(refreshes, &[("outcome", "rotated")]), 2.0, "{text}");
    assert_eq!(count(refreshes, &[("outcome", "retried")]), 1.0);
    assert_eq!(count(refreshes, &[("outcome", "reuse_detected")]), 1.0);
    assert_eq!(count(refreshes, &[("outcome", "invalid")]), 1.0);
    assert_eq!(
        count("token_server_logouts_total", &[("kind", "logout")]),
        1.0
    );
    let requests = "token_server_http_requests_total";
    assert_eq!(
        count(
            requests,
            &[("route", "/user/oauth/token"), ("status", "200")]
        ),
        5.0
    );
    assert_eq!(
        count(
            requests,
            &[
                ("route", "/user/_details"),
                ("method", "GET"),
                ("status", "200")
            ]
        ),
        1.0
    );
    assert_eq!(
        count(requests, &[("route", "unmatched"), ("status", "404")]),
        1.0
    );
    let latency = "token_server_http_request_duration_seconds_count";
    assert_eq!(count(latency, &[("route", "/user/_details")]), 1.0);
    assert!(
        text.contains(
            "token_server_http_request_duration_seconds_bucket{method=\"GET\",route=\"/user/_details\",status=\"200\",le=\"0.005\"}"
        ),
        "latency is a histogram with buckets: {text}"
    );
    let store = "token_server_store_operation_duration_seconds_count";
    assert_eq!(count(store, &[("op", "validate")]), 1.0);
    assert_eq!(count(store, &[("op", "issue")]), 2.0);
    assert_eq!(count(store, &[("op", "refresh")]), 4.0);
    assert!(sample(&text, "token_server_bcrypt_queue_depth", &[]).is_some());
    // Counters exist at zero before anything happens, so rate() sees the first error.
    assert_eq!(
        sample(
            &text,
            "token_server_store_errors_total",
            &[("op", "validate")]
        ),
        Some(0.0)
    );
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("token_server_store_errors_total") && !l.ends_with(" 0")),
        "{text}"
    );

    // No user name or token in any series (values left out: 0.0009999999999 is a number).
    let series: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series))
        .collect();
    for secret in tokens
        .iter()
        .map(String::as_str)
        .chain([EMPLOYEE.name, CITIZEN.name])
    {
        assert!(
            series.iter().all(|s| !s.contains(secret)),
            "{secret} leaked into /metrics"
        );
    }

    // A store outage shows up as store errors, not as failed logins of users.
    drop(redis);
    let res = server
        .password_login(EMPLOYEE.name, EMPLOYEE.password, [("tenantId", "pb")])
        .await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let text = scrape(&format!("{base}/metrics")).await;
    assert!(
        sample(
            &text,
            "token_server_store_errors_total",
            &[("op", "throttle")]
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{text}"
    );
    assert_eq!(
        sample(&text, logins, &[("outcome", "store_error")]),
        Some(1.0)
    );
}

#[tokio::test]
async fn metrics_can_be_served_on_their_own_port_only() {
    // Port 0: the server binds a free port itself and names it in its log.
    let server = ServerProcess::start(&[("METRICS_PORT", "0")]);
    let log = server
        .log_line("metrics on 127.0.0.1:", std::time::Duration::from_secs(10))
        .await;
    let port: u16 = log
        .split("metrics on 127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no metrics port in the log:\n{log}"));
    assert_ne!(port, server.port());
    let api = reqwest::get(format!("{}/metrics", server.address))
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    let text = scrape(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert!(text.contains("token_server_"), "{text}");
}

#[tokio::test]
async fn the_grafana_dashboard_uses_only_metrics_the_server_exports() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/grafana/token-server.json"
    );
    let text = std::fs::read_to_string(path).expect("deploy/grafana/token-server.json");
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut exprs = vec![];
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");

    let redis = TestRedis::start();
    let server = ServerProcess::start(&[
        ("REDIS_URL", redis.url().as_str()),
        ("TOKEN_SECRET", TOKEN_SECRET),
    ]);
    traffic(&server).await;
    let exported = names(&scrape(&format!("{}/metrics", server.address)).await);
    for expr in &exprs {
        let used: Vec<&str> = expr
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("token_server_"))
            .collect();
        assert!(
            !used.is_empty(),
            "panel query uses no token-server metric: {expr}"
        );
        for name in used {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(exported.contains(base), "{name} is not exported: {expr}");
        }
    }
}

fn collect_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_exprs(i, out)),
        _ => {}
    }
}
