//! The validation cache: a replica answers validations from memory, yet once a logout (refresh,
//! revoke, disable) has answered on any replica, no replica answers 200 for the ended token,
//! even one whose invalidations arrive late.

use crate::support::process::ServerProcess;
use crate::support::proxy::{lagging_proxy, pushless_proxy};
use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Two replicas on one Redis: `fresh` reaches it directly, `lagging` through a proxy that
/// delays every push and reply by 20 ms: longer than a read lease, so `lagging` takes the
/// barrier.
async fn replicas(options: Options) -> (TestApp, TestApp) {
    replicas_lagging_by(options, Duration::from_millis(20)).await
}

/// As [`replicas`], with the proxy delaying by `delay`.
pub async fn replicas_lagging_by(options: Options, delay: Duration) -> (TestApp, TestApp) {
    let redis = Arc::new(TestRedis::start());
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let options = Options {
        prefix: Some(prefix),
        ..options
    }
    .with("login.max.attempts.per.ip.per.minute", 0);
    let fresh = TestApp::spawn_on(Some(redis.clone()), options.clone()).await;
    let proxy = lagging_proxy(redis.port, delay).await;
    let lagging = TestApp::spawn_on(
        None,
        options.with("REDIS_URL", format!("redis://127.0.0.1:{proxy}")),
    )
    .await;
    (fresh, lagging)
}

/// The ways a token ends on the other replica.
#[derive(Clone, Copy, Debug)]
pub enum Ending {
    Logout,
    Refresh,
    Revoke,
}

pub async fn end(app: &TestApp, how: Ending, t: &Tokens) {
    let res = match how {
        Ending::Logout => app.logout(&t.access).await,
        Ending::Refresh => {
            app.post_form_as(
                "/user/oauth/token",
                &basic("gateway", GATEWAY_SECRET),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &t.refresh),
                ],
            )
            .await
        }
        Ending::Revoke => {
            app.post_form_as(
                "/oauth/revoke",
                &basic("gateway", GATEWAY_SECRET),
                &[("token", &t.refresh)],
            )
            .await
        }
    };
    assert_eq!(res.status(), StatusCode::OK, "{how:?}");
}

/// The employee's tokens, issued to the gateway client so that it may revoke and introspect
/// them.
pub async fn gateway_login(app: &TestApp) -> Tokens {
    let res = app
        .post_form_as(
            "/user/oauth/token",
            &basic("gateway", GATEWAY_SECRET),
            &[
                ("grant_type", "password"),
                ("username", EMPLOYEE.name),
                ("password", EMPLOYEE.password),
                ("tenantId", "pb"),
            ],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    Tokens::from(res.json::<Value>().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_whose_invalidations_lag_never_validates_an_ended_token() {
    let (fresh, lagging) = replicas(Options::default()).await;
    end_rounds(&fresh, &lagging, 150).await;
}

/// `rounds` times: a token warmed on `lagging`, ended on `fresh` (logout, refresh or revoke in
/// turn), then validated on `lagging`, which must answer 401.
async fn end_rounds(fresh: &TestApp, lagging: &TestApp, rounds: usize) {
    for round in 0..rounds {
        let how = [Ending::Logout, Ending::Refresh, Ending::Revoke][round % 3];
        let t = gateway_login(fresh).await;
        // Warm: the lagging replica reads the token, then answers it from its cache.
        for _ in 0..2 {
            assert_eq!(lagging.details_status(&t.access).await, StatusCode::OK);
        }
        end(fresh, how, &t).await;
        let status = lagging.details_status(&t.access).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "round {round}: {how:?} answered, yet the lagging replica validated the token"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_sentinel_a_lagging_replica_never_validates_an_ended_token() {
    use crate::support::sentinel::{MASTER, PASSWORD, start_sentinel};
    let master = Arc::new(TestRedis::start_with_password(PASSWORD));
    // The sentinel watches the master through the proxy, so that is the address it names.
    let proxy = lagging_proxy(master.port, Duration::from_millis(20)).await;
    let sentinel = start_sentinel(None, proxy);
    let options = Options {
        prefix: Some(format!("t{}", uuid::Uuid::new_v4().simple())),
        ..Options::default()
    }
    .with("login.max.attempts.per.ip.per.minute", 0);
    let fresh = TestApp::spawn_on(Some(master.clone()), options.clone()).await;
    let lagging = TestApp::spawn_on(
        None,
        options
            .with(
                "REDIS_SENTINELS",
                format!("redis://127.0.0.1:{}", sentinel.port),
            )
            .with("REDIS_SENTINEL_MASTER", MASTER)
            .with("REDIS_SENTINEL_PASSWORD", PASSWORD),
    )
    .await;
    end_rounds(&fresh, &lagging, 60).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_on_a_lagging_replica_never_calls_an_ended_token_active() {
    let (fresh, lagging) = replicas(Options::default()).await;
    for round in 0..60 {
        let how = [Ending::Logout, Ending::Refresh, Ending::Revoke][round % 3];
        let t = gateway_login(&fresh).await;
        // Read through once, then from the cache: the same answer both times.
        let first = lagging.introspect(&t.access).await;
        let cached = lagging.introspect(&t.access).await;
        assert_eq!(first["active"], true, "round {round}: {first}");
        for field in ["client_id", "scope", "username", "token_use", "iat", "sub"] {
            assert_eq!(first[field], cached[field], "round {round}: {field}");
        }
        let exp = |v: &Value| v["exp"].as_i64().unwrap();
        assert!((exp(&first) - exp(&cached)).abs() <= 1, "{first} {cached}");
        end(&fresh, how, &t).await;
        let after = lagging.introspect(&t.access).await;
        assert_eq!(
            after["active"], false,
            "round {round}: {how:?} answered, yet the lagging replica called the token active"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_users_cached_tokens_end_on_the_lagging_replica_too() {
    let (fresh, lagging) = replicas(Options::default()).await;
    disable_rounds(&fresh, &lagging).await;
}

/// Ten rounds: a user's token warmed on `cached`, the user disabled by the admin command on
/// `fresh`'s Redis, then validated on `cached` as soon as the command has exited: 401.
pub async fn disable_rounds(fresh: &TestApp, cached: &TestApp) {
    let env = crate::support::process::env_of(fresh);
    let dir = tempfile::tempdir().unwrap();
    let mut user = user_json(&EMPLOYEE, 42);
    user["userName"] = "clerk".into();
    user["uuid"] = "uuid-clerk".into();
    user["password"] = bcrypt::hash("clerk-Pass-1", 4).unwrap().into();
    let file = dir.path().join("clerk.json");
    std::fs::write(&file, serde_json::to_string(&[user]).unwrap()).unwrap();
    let path = file.display().to_string();
    let cli = |args: Vec<String>| {
        let env = env.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            crate::support::process::run(&env, &args, "")
        })
    };
    for round in 0..10 {
        // Active again (the file says so), for another round.
        let import = ["users", "import", "--replace", &path].map(String::from);
        let out = cli(import.to_vec()).await.unwrap();
        assert_eq!(out.code, 0, "{}", out.stderr);
        let res = fresh
            .password_login("clerk", "clerk-Pass-1", [("tenantId", "pb")])
            .await;
        assert_eq!(res.status(), StatusCode::OK, "round {round}");
        let t = Tokens::from(res.json::<Value>().await.unwrap());
        for _ in 0..3 {
            assert_eq!(cached.details_status(&t.access).await, StatusCode::OK);
        }
        let disable = ["users", "disable", "clerk"].map(String::from);
        let out = cli(disable.to_vec()).await.unwrap();
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert_eq!(
            cached.details_status(&t.access).await,
            StatusCode::UNAUTHORIZED,
            "round {round}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_never_let_an_ended_cached_token_through() {
    let redis = Arc::new(TestRedis::start());
    let prefix = format!("t{}", uuid::Uuid::new_v4().simple());
    let options = Options {
        prefix: Some(prefix),
        ..Options::default()
    };
    let a = TestApp::spawn_on(Some(redis.clone()), options.clone()).await;
    let b = TestApp::spawn_on(Some(redis.clone()), options).await;
    for round in 0..20 {
        // A write on a connection killed a moment ago answers 503 once: clients retry.
        let mut login = a.login(&CITIZEN).await;
        if login.status() == StatusCode::SERVICE_UNAVAILABLE {
            login = a.login(&CITIZEN).await;
        }
        assert_eq!(login.status(), StatusCode::OK, "round {round}");
        let t = Tokens::from(login.json::<Value>().await.unwrap());
        for _ in 0..2 {
            assert_eq!(a.details_status(&t.access).await, StatusCode::OK);
        }
        let _: () = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("normal")
            .arg("SKIPME")
            .arg("yes")
            .query(&mut redis.conn())
            .unwrap_or(());
        // The logout may meet a killed connection first: it is retried until it answers.
        let logged_out = eventually(Duration::from_secs(5), || async {
            b.logout(&t.access).await.status() == StatusCode::OK
        })
        .await;
        assert!(logged_out, "round {round}");
        let status = a.details_status(&t.access).await;
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::SERVICE_UNAVAILABLE].contains(&status),
            "round {round}: {status} for an ended token"
        );
    }
}

#[tokio::test]
async fn a_cached_entry_never_outlives_its_tokens_ttl() {
    let redis = Arc::new(TestRedis::start_with_debug());
    // Redis no longer deletes expired keys by itself: no invalidation comes at expiry, so
    // only the cache's own deadline can end the entry.
    let _: () = redis::cmd("DEBUG")
        .arg("SET-ACTIVE-EXPIRE")
        .arg(0)
        .query(&mut redis.conn())
        .unwrap();
    let app = TestApp::spawn_on(Some(redis), Options::lifetimes(0.04, 10.0)).await;
    let t = app.login_ok(&EMPLOYEE).await;
    assert_eq!(app.details_status(&t.access).await, StatusCode::OK);
    assert_eq!(app.details_status(&t.access).await, StatusCode::OK);
    // 2.4 s of access validity; the entry must end with it.
    let ended = eventually(Duration::from_secs(6), || async {
        app.details_status(&t.access).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(ended, "the cached token kept validating past its TTL");
}

/// The validation cache's counters and entries of a server process.
fn cache_metrics(text: &str) -> (f64, f64, f64) {
    let value = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(-1.0)
    };
    (
        value("token_server_validation_cache_total{result=\"hit\"}"),
        value("token_server_validation_cache_total{result=\"miss\"}"),
        value("token_server_validation_cache_entries"),
    )
}

#[tokio::test]
async fn the_cache_keeps_its_bound_under_twice_as_many_live_tokens() {
    let redis = TestRedis::start();
    let server = ServerProcess::start(&[
        ("REDIS_URL", &redis.url()),
        ("TOKEN_SECRET", TOKEN_SECRET),
        ("WORKERS", "1"),
        ("VALIDATION_CACHE_ENTRIES", "20"),
        ("BCRYPT_COST", "4"),
        ("LOGIN_MAX_ATTEMPTS_PER_IP_PER_MINUTE", "0"),
    ]);
    let mut tokens = vec![];
    for _ in 0..40 {
        let res = server
            .password_login(CITIZEN.name, CITIZEN.password, [("tenantId", "pb")])
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        tokens.push(Tokens::from(res.json::<Value>().await.unwrap()).access);
    }
    for _ in 0..2 {
        for t in &tokens {
            assert_eq!(server.validate(t).await, StatusCode::OK);
        }
    }
    // The latest ones are still there.
    for t in &tokens[30..] {
        assert_eq!(server.validate(t).await, StatusCode::OK);
    }
    let text = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (hits, misses, entries) = cache_metrics(&text);
    assert!((1.0..=20.0).contains(&entries), "{entries} entries");
    assert_eq!(hits + misses, 90.0, "{text}");
    // Twice as many tokens as room, in order: each pass pushes the earlier ones out, while
    // the last ten, read again at once, are answered from memory.
    assert!(hits >= 10.0, "{hits} hits, {misses} misses");
    assert!(misses >= 60.0, "{hits} hits, {misses} misses");
    // Redis itself passes every tracking connection's proof.
    assert!(
        text.contains("token_server_validation_cache_unproven_total 0"),
        "{text}"
    );
}

/// The status of a validation sent on a connection of its own, or `None` if no answer came
/// within 5 s.
async fn raw_details(address: &str, token: &str) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(address).await.ok()?;
    let request = format!(
        "GET /user/_details?access_token={token} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    );
    s.write_all(request.as_bytes()).await.ok()?;
    let mut head = [0u8; 12];
    tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut head))
        .await
        .ok()?
        .ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_hanging_up_while_their_barrier_is_in_flight_stall_no_one() {
    let (fresh, lagging) = replicas(Options::default()).await;
    let t = fresh.login_ok(&EMPLOYEE).await;
    let address = lagging.address.trim_start_matches("http://").to_string();
    for _ in 0..8 {
        assert_eq!(raw_details(&address, &t.access).await, Some(200));
    }
    for round in 0..20 {
        // Each barrier PING takes 20 ms through the proxy: these clients leave before theirs
        // comes back, whichever of them sent it.
        for _ in 0..4 {
            let mut s = tokio::net::TcpStream::connect(&address).await.unwrap();
            let request = format!(
                "GET /user/_details?access_token={} HTTP/1.1\r\nHost: x\r\n\r\n",
                t.access
            );
            s.write_all(request.as_bytes()).await.unwrap();
            tokio::time::sleep(Duration::from_millis(3)).await;
            // A reset, not a close: the server drops the request's work at once. (Deprecated
            // for the blocking drop a non-zero linger makes.)
            #[allow(deprecated)]
            s.set_linger(Some(Duration::ZERO)).unwrap();
        }
        for _ in 0..4 {
            assert_eq!(
                raw_details(&address, &t.access).await,
                Some(200),
                "round {round}: a validation after clients hung up got no answer"
            );
        }
    }
}

/// Keys in Redis's tracking table (`INFO stats`: `tracking_total_keys`).
fn tracked_keys(redis: &TestRedis) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .query(&mut redis.conn())
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("tracking_total_keys:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("tracking_total_keys in INFO stats")
}

/// An access token of the right shape for a session that does not exist.
fn made_up_token() -> String {
    use base64::Engine;
    let mut raw = vec![0x01u8];
    raw.extend(rand::random::<[u8; 32]>());
    raw.extend(rand::random::<[u8; 32]>());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_tokens_leave_nothing_in_redis_tracking_table() {
    let redis = Arc::new(TestRedis::start());
    let options = Options {
        prefix: Some(format!("t{}", uuid::Uuid::new_v4().simple())),
        ..Options::default()
    };
    let app = TestApp::spawn_on(Some(redis.clone()), options).await;
    for _ in 0..300 {
        assert_eq!(
            app.details_status(&made_up_token()).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(tracked_keys(&redis), 0, "made-up tokens' keys are tracked");
    for _ in 0..300 {
        assert!(!app.is_active(&made_up_token()).await);
    }
    assert_eq!(
        tracked_keys(&redis),
        0,
        "introspected made-up tokens' keys are tracked"
    );
    // A live token's keys are, so the counts above could have moved.
    let t = gateway_login(&app).await;
    for _ in 0..2 {
        assert!(app.is_active(&t.access).await);
    }
    assert!(
        tracked_keys(&redis) >= 3,
        "introspection tracks a live token"
    );
    assert_eq!(app.details_status(&t.access).await, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracking_connection_that_gets_no_invalidations_serves_no_hit() {
    let redis = Arc::new(TestRedis::start());
    // The client the invalidations go to instead: alive, and never reading them.
    let mut elsewhere = redis.conn();
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query(&mut elsewhere)
        .unwrap();
    let options = Options {
        prefix: Some(format!("t{}", uuid::Uuid::new_v4().simple())),
        ..Options::default()
    };
    let fresh = TestApp::spawn_on(Some(redis.clone()), options.clone()).await;
    let proxy = pushless_proxy(redis.port, id).await;
    let deaf = TestApp::spawn_on(
        None,
        options.with("REDIS_URL", format!("redis://127.0.0.1:{proxy}")),
    )
    .await;
    let unproven = "token_server_validation_cache_unproven_total ";
    let count = |text: String| {
        text.lines()
            .find_map(|l| l.strip_prefix(unproven))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let metrics = || async {
        reqwest::get(deaf.url("/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let before = count(metrics().await);
    for round in 0..5 {
        let t = fresh.login_ok(&EMPLOYEE).await;
        for _ in 0..3 {
            assert_eq!(deaf.details_status(&t.access).await, StatusCode::OK);
        }
        assert_eq!(fresh.logout(&t.access).await.status(), StatusCode::OK);
        assert_eq!(
            deaf.details_status(&t.access).await,
            StatusCode::UNAUTHORIZED,
            "round {round}: a logged-out token was served from memory"
        );
    }
    assert!(
        count(metrics().await) > before,
        "the failed proof was not counted"
    );
    drop(elsewhere);
}
