//! The `token-server` binary as operators run it: configuration errors, start-up messages, and
//! logs that never contain a secret.

use crate::support::process::{BINARY, ServerProcess};
use crate::support::*;
use reqwest::StatusCode;
use std::io::{BufRead, BufReader};
use std::process::Command;
use std::time::{Duration, Instant};

fn run_to_exit(envs: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BINARY)
        .env_clear()
        .envs(envs.iter().copied())
        .current_dir(dir.path())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_bad_setting_stops_start_up_with_exit_code_2_and_names_it() {
    let cases = [
        ("ACCESS_TOKEN_VALIDITY_IN_MINUTES", "ten"),
        ("refresh.token.validity.in.minutes", "-5"),
        ("PORT", "http"),
        ("REDIS_URL", "localhost:6379"),
        ("USERS_FILE", "/nonexistent/users.json"),
    ];
    for (name, value) in cases {
        let (code, stderr) = run_to_exit(&[(name, value)]);
        assert_eq!(code, Some(2), "{name}={value}: {stderr}");
        assert!(stderr.contains(name), "{name}: {stderr}");
        assert!(stderr.contains(value), "{name}: {stderr}");
    }
}

#[tokio::test]
async fn with_nothing_configured_the_demo_user_can_log_in() {
    let server = ServerProcess::start_bare(&[]);
    let res = server
        .password_login("demo", "demo-password", [("tenantId", "pb")])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let log = server.log();
    assert!(log.contains("demo users"), "{log}");
}

#[tokio::test]
async fn without_redis_it_warns_and_serves_from_the_embedded_store() {
    let server = ServerProcess::start(&[]);
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{}/ready", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["store"],
        "embedded"
    );
    let log = server.log();
    assert!(log.contains("WARN") && log.contains("embedded"), "{log}");
}

#[tokio::test]
async fn secrets_never_reach_the_log_even_at_debug_level() {
    let redis = TestRedis::start();
    let url = redis.url();
    let server = ServerProcess::start(&[
        ("REDIS_URL", &url),
        ("RUST_LOG", "debug"),
        ("TOKEN_SECRET", TOKEN_SECRET),
    ]);
    let client = reqwest::Client::new();
    let base = server.address.clone();
    let wrong = server
        .password_login(EMPLOYEE.name, "Wrong-Secret-Guess-9", [("tenantId", "pb")])
        .await;
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let ok = server
        .password_login(EMPLOYEE.name, EMPLOYEE.password, [("tenantId", "pb")])
        .await;
    assert_eq!(ok.status(), StatusCode::OK);
    let tokens = Tokens::from(ok.json::<serde_json::Value>().await.unwrap());
    let details = format!("{base}/user/_details?access_token={}", tokens.access);
    assert_eq!(
        client.get(&details).send().await.unwrap().status(),
        StatusCode::OK
    );
    let refreshed = server.refresh(&tokens.refresh).await;
    let refreshed = Tokens::from(refreshed.json::<serde_json::Value>().await.unwrap());
    let logout = format!(
        "{}/user/_logout?access_token={}",
        server.address, refreshed.access
    );
    assert_eq!(
        client.post(&logout).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        client.get(&details).send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    // And while Redis is down, errors are logged, still without secrets.
    drop(redis);
    let res = client.get(&details).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);

    // Store errors are logged; the last request's access line is written after its answer.
    server
        .log_line("session store unavailable", Duration::from_secs(5))
        .await;
    let log = server
        .log_line("\"GET /user/_details\" 503", Duration::from_secs(5))
        .await;
    assert!(
        log.contains("/user/oauth/token"),
        "requests are logged:\n{log}"
    );
    let mut secrets = vec![
        EMPLOYEE.password.to_string(),
        "Wrong-Secret-Guess-9".to_string(),
        tokens.access.clone(),
        tokens.refresh.clone(),
        refreshed.access.clone(),
        refreshed.refresh.clone(),
        TOKEN_SECRET.to_string(),
    ];
    // The stored bcrypt hash of the password, too.
    let seed: serde_json::Value = serde_json::from_reader(BufReader::new(
        std::fs::File::open(server.dir().join("users.json")).unwrap(),
    ))
    .unwrap();
    secrets.push(seed[0]["password"].as_str().unwrap().to_string());
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a secret is in the log");
        assert!(
            !log.contains(&secret[secret.len() / 2..]),
            "part of a secret is in the log"
        );
    }
    // Each log line is whole text: nothing binary leaked either.
    assert!(BufReader::new(log.as_bytes()).lines().all(|l| l.is_ok()));
}

#[tokio::test]
async fn sigterm_turns_ready_to_503_finishes_in_flight_requests_and_exits_0() {
    // A user whose bcrypt cost keeps a login in flight for a while.
    let dir = tempfile::tempdir().unwrap();
    let mut slow = user_json(&EMPLOYEE, 1);
    slow["password"] = bcrypt::hash(EMPLOYEE.password, 13).unwrap().into();
    let users = dir.path().join("slow-users.json");
    std::fs::write(&users, serde_json::to_string(&[slow]).unwrap()).unwrap();
    let users = users.display().to_string();
    let mut server = ServerProcess::start(&[
        ("USERS_FILE", users.as_str()),
        ("SHUTDOWN_DELAY_SECONDS", "2"),
        ("SHUTDOWN_DRAIN_SECONDS", "10"),
    ]);
    let client = reqwest::Client::new();
    let ready = format!("{}/ready", server.address);
    assert_eq!(
        client.get(&ready).send().await.unwrap().status(),
        StatusCode::OK
    );

    let api = ApiClient::clone(&server);
    let in_flight = tokio::spawn(async move {
        api.password_login(EMPLOYEE.name, EMPLOYEE.password, [("tenantId", "pb")])
            .await
    });
    // The login is in flight once its password check is queued or running.
    let metrics = format!("{}/metrics", server.address);
    let in_flight_seen = eventually_every(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async {
            let text = client
                .get(&metrics)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            sample(&text, "token_server_bcrypt_queue_depth", &[]).unwrap_or(0.0) >= 1.0
        },
    )
    .await;
    assert!(in_flight_seen, "the login reached bcrypt");
    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());

    // During the 2 s delay requests are still answered, and /ready says it is draining.
    let draining = eventually(Duration::from_secs(2), || async {
        let Ok(res) = client.get(&ready).send().await else {
            return false;
        };
        res.status() == StatusCode::SERVICE_UNAVAILABLE
            && res.json::<serde_json::Value>().await.unwrap()["status"] == "DRAINING"
    })
    .await;
    assert!(draining, "/ready answers 503 DRAINING after SIGTERM");
    let res = in_flight.await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the in-flight login completes"
    );
    assert!(res.json::<serde_json::Value>().await.unwrap()["access_token"].is_string());

    // It exits once the delay is over and nothing is in flight; the bound only keeps a
    // process that never exits from hanging the test.
    let mut status = None;
    let exited = eventually(Duration::from_secs(60), || {
        status = server.child.try_wait().unwrap();
        std::future::ready(status.is_some())
    })
    .await;
    assert!(exited, "the process exits after the delay and the drain");
    assert_eq!(status.and_then(|s| s.code()), Some(0));
    assert!(server.log().contains("shutting down"));
}

#[tokio::test]
async fn json_logs_are_one_object_a_line_and_carry_the_request_id() {
    let server = ServerProcess::start(&[("LOG_FORMAT", "json")]);
    let client = reqwest::Client::new();
    let res = client
        .get(format!("{}/health", server.address))
        .header("X-Request-Id", "gateway-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "gateway-req-42");
    // Without one (or with an unusable one) the server makes one up.
    for given in [None, Some("spaces are not allowed")] {
        let mut req = client.get(format!("{}/health", server.address));
        if let Some(g) = given {
            req = req.header("X-Request-Id", g);
        }
        let res = req.send().await.unwrap();
        let id = res.headers()["x-request-id"].to_str().unwrap().to_string();
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    }
    // Access lines are written after the answer: wait for the last request's.
    let last = eventually(Duration::from_secs(5), || async {
        server
            .log()
            .lines()
            .filter(|l| l.contains("/health"))
            .count()
            >= 3
    })
    .await;
    let log = server.log();
    assert!(last, "{log}");
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["target"].is_string() && l["message"].is_string())
    );
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .unwrap()
            .contains("request_id=gateway-req-42")),
        "{log}"
    );
}

#[test]
fn an_unknown_log_format_stops_start_up_with_exit_code_2() {
    let (code, stderr) = run_to_exit(&[("LOG_FORMAT", "xml")]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("LOG_FORMAT"), "{stderr}");
}

/// A request whose headers and user name are chosen to write fields into log lines.
async fn forge_log_lines(base: &str) {
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{base}/user/_details"))
        .header("X-Request-Id", "forge-1")
        .header("X-Forwarded-For", "6.6.6.6\" \"GET /forged")
        .header("X-Real-IP", "6.6.6.7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = client
        .post(format!("{base}/user/oauth/token"))
        .header("Authorization", BASIC_DIGIT)
        .form(&[
            ("grant_type", "password"),
            ("username", "x\" from 6.6.6.6; account now locked"),
            ("password", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

/// The log lines about the forging requests, once both are written.
fn forged_lines(server: &ServerProcess) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let log = server.log();
        let lines: Vec<String> = log
            .lines()
            .filter(|l| l.contains("forge-1") || l.contains("wrong credentials"))
            .map(str::to_string)
            .collect();
        if lines.len() >= 2 || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test]
async fn log_lines_cannot_be_forged_by_headers_or_user_names() {
    let server = ServerProcess::start(&[]);
    forge_log_lines(&server.address).await;
    let lines = forged_lines(&server);
    let access = lines.iter().find(|l| l.contains("forge-1")).unwrap();
    // The address is the peer's (no proxy is trusted), the request line one quoted field.
    assert!(
        access.contains("] 127.0.0.1 \"POST /user/_details\" 401 "),
        "{access}"
    );
    assert!(!access.contains("6.6.6."), "{access}");
    let audit = lines
        .iter()
        .find(|l| l.contains("wrong credentials"))
        .unwrap();
    assert!(
        audit.contains(r#"account "x\" from 6.6.6.6; account now locked" from 127.0.0.1"#),
        "{audit}"
    );

    // As JSON, every line stays one valid object.
    let json = ServerProcess::start(&[("LOG_FORMAT", "json")]);
    forge_log_lines(&json.address).await;
    let lines = forged_lines(&json);
    assert_eq!(lines.len(), 2, "{lines:?}");
    for line in lines {
        let object: serde_json::Value = serde_json::from_str(&line).unwrap();
        let message = object["message"].as_str().unwrap();
        assert!(!message.contains("6.6.6.7"), "{message}");
    }
}

#[test]
fn a_seed_file_where_two_users_share_a_uuid_stops_start_up_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = user_json(&EMPLOYEE, 1);
    let mut second = user_json(&CITIZEN, 2);
    for user in [&mut first, &mut second] {
        user["uuid"] = "shared-uuid-1".into();
        user["password"] = bcrypt::hash("x", 4).unwrap().into();
    }
    let path = dir.path().join("users.json");
    std::fs::write(&path, serde_json::to_string(&[first, second]).unwrap()).unwrap();
    let (code, stderr) = run_to_exit(&[("USERS_FILE", path.to_str().unwrap())]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("\"shared-uuid-1\""), "{stderr}");
}
