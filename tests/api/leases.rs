//! Read leases with commit wait: a replica whose link to Redis is short answers cached
//! validations at once, from memory, yet once a revoking request has answered on any
//! replica, no replica answers 200 for what it ended. The default lease (15 ms) is in force.

use crate::support::process::ServerProcess;
use crate::support::proxy::pausable_proxy;
use crate::support::*;
use crate::validation_cache::{Ending, disable_rounds, end, gateway_login, replicas_lagging_by};
use reqwest::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// A token warmed on `leased` (read, then answered from memory), ended on `fresh`, then
/// validated on `leased` at once: 401 every time.
async fn lease_rounds(fresh: &TestApp, leased: &TestApp, rounds: usize) {
    for round in 0..rounds {
        let how = [Ending::Logout, Ending::Refresh, Ending::Revoke][round % 3];
        let t = gateway_login(fresh).await;
        for _ in 0..3 {
            assert_eq!(leased.details_status(&t.access).await, StatusCode::OK);
        }
        end(fresh, how, &t).await;
        assert_eq!(
            leased.details_status(&t.access).await,
            StatusCode::UNAUTHORIZED,
            "round {round}: {how:?} answered, yet the leased replica validated the token"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_lease_in_force_no_ended_token_is_served() {
    // 3 ms each way: far under the lease, so hits answer from it; yet an invalidation takes
    // 3 ms to arrive, which only the commit wait covers.
    let (fresh, leased) = replicas_lagging_by(Options::default(), Duration::from_millis(3)).await;
    let beats = metric_at(&leased.address, "token_server_validation_heartbeats_total").await;
    lease_rounds(&fresh, &leased, 150).await;
    assert!(
        metric_at(&leased.address, "token_server_validation_heartbeats_total").await > beats,
        "no heartbeat ran: the lease was never in force"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_lease_in_force_an_admin_disable_ends_cached_tokens_at_once() {
    let (fresh, leased) = replicas_lagging_by(Options::default(), Duration::from_millis(3)).await;
    disable_rounds(&fresh, &leased).await;
}

/// A replica on `redis` (under `options`) whose link can be paused: its own flag for each way.
async fn pausable_replica(
    redis: &TestRedis,
    options: Options,
) -> (TestApp, Arc<AtomicBool>, Arc<AtomicBool>) {
    let (up, down) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let proxy = pausable_proxy(redis.port, up.clone(), down.clone()).await;
    let app = TestApp::spawn_on(
        None,
        options.with("REDIS_URL", format!("redis://127.0.0.1:{proxy}")),
    )
    .await;
    (app, up, down)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_link_never_serves_an_ended_token() {
    let redis = Arc::new(TestRedis::start());
    let options = Options {
        prefix: Some(format!("t{}", uuid::Uuid::new_v4().simple())),
        ..Options::default()
    }
    .with("login.max.attempts.per.ip.per.minute", 0);
    let fresh = TestApp::spawn_on(Some(redis.clone()), options.clone()).await;
    let (stalled, up, down) = pausable_replica(&redis, options).await;
    for round in 0..5 {
        let t = gateway_login(&fresh).await;
        for _ in 0..3 {
            assert_eq!(stalled.details_status(&t.access).await, StatusCode::OK);
        }
        // The link stalls for 3 × the lease; the token ends meanwhile.
        up.store(true, Ordering::Release);
        down.store(true, Ordering::Release);
        let released = Instant::now() + Duration::from_millis(45);
        end(&fresh, Ending::Logout, &t).await;
        while Instant::now() < released {
            let status = stalled.details_status(&t.access).await;
            assert_ne!(status, StatusCode::OK, "round {round}: during the stall");
        }
        up.store(false, Ordering::Release);
        down.store(false, Ordering::Release);
        for _ in 0..3 {
            let status = stalled.details_status(&t.access).await;
            assert_ne!(status, StatusCode::OK, "round {round}: after the stall");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_logout_that_finds_nothing_to_end_still_waits() {
    // A lease long enough to stay in force over a link of 8 ms each way.
    let options = Options::default().with("VALIDATION_LEASE_MS", 40);
    let (fresh, leased) = replicas_lagging_by(options.clone(), Duration::from_millis(8)).await;
    // A third replica whose replies from Redis can be held back: its logout runs in Redis,
    // its answer does not come, and the client retries on another replica.
    let options = Options {
        prefix: Some(fresh.prefix.clone()),
        ..options
    };
    let (lossy, _, replies) = pausable_replica(fresh.redis(), options).await;
    // Its workers' connections to Redis are made before any reply is held back: each new
    // client connection goes to the next worker.
    for _ in 0..4 {
        let warm = gateway_login(&fresh).await;
        let url = lossy.url(&format!("/user/_logout?access_token={}", warm.access));
        let res = reqwest::Client::new().post(url).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
    }
    for round in 0..30 {
        let t = gateway_login(&fresh).await;
        for _ in 0..3 {
            assert_eq!(leased.details_status(&t.access).await, StatusCode::OK);
        }
        replies.store(true, Ordering::Release);
        let url = lossy.url(&format!("/user/_logout?access_token={}", t.access));
        let first = tokio::spawn(async move { reqwest::Client::new().post(url).send().await });
        // The first attempt's logout has run in Redis (a replica reading it directly sees
        // that), but its answer is held back.
        let ran = eventually_every(
            Duration::from_secs(5),
            Duration::from_micros(200),
            || async { !fresh.is_active(&t.access).await },
        )
        .await;
        assert!(ran, "round {round}: the first attempt never reached Redis");
        // The retry finds the session already ended: it answers only after the wait.
        assert_eq!(fresh.logout(&t.access).await.status(), StatusCode::OK);
        assert_eq!(
            leased.details_status(&t.access).await,
            StatusCode::UNAUTHORIZED,
            "round {round}: the retried logout answered before the lease ran out"
        );
        replies.store(false, Ordering::Release);
        let _ = first.await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_another_lease_refuses_to_start() {
    let redis = Arc::new(TestRedis::start());
    let first = TestApp::spawn_on(Some(redis.clone()), Options::default()).await;
    let t = first.login_ok(&EMPLOYEE).await;
    // A validation makes the tracking connection, which stores the lease it runs.
    assert_eq!(first.details_status(&t.access).await, StatusCode::OK);
    let dir = tempfile::tempdir().unwrap();
    let other = Options::default().with("VALIDATION_LEASE_MS", 30);
    let s = settings(
        Some(redis.url()),
        &first.prefix,
        write_seed_file(dir.path()),
        &other,
    );
    let refused = token_server::startup::Application::build(s).await;
    let Err(e) = refused else {
        panic!("a replica with another lease started");
    };
    let text = e.to_string();
    assert!(
        text.contains("VALIDATION_LEASE_MS=30") && text.contains("run 15"),
        "{text}"
    );
    // The same lease starts.
    let s = settings(
        Some(redis.url()),
        &first.prefix,
        write_seed_file(dir.path()),
        &Options::default(),
    );
    assert!(token_server::startup::Application::build(s).await.is_ok());
}

/// The role `ROLE` names for `redis`: `master` or `slave`.
fn role(redis: &TestRedis) -> String {
    let reply: Vec<redis::Value> = redis::cmd("ROLE").query(&mut redis.conn()).unwrap();
    match reply.first() {
        Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        other => panic!("ROLE answered {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tracking_connection_left_on_a_demoted_master_confirms_no_hit() {
    let master = TestRedis::start();
    let replica = TestRedis::start();
    let _: () = redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(master.port)
        .query(&mut replica.conn())
        .unwrap();
    let synced = eventually(Duration::from_secs(10), || async {
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query(&mut replica.conn())
            .unwrap();
        info.contains("master_link_status:up")
    })
    .await;
    assert!(synced, "the replica never synced");
    // A server of its own: its metrics count only its own hits.
    let url = master.url();
    let server = ServerProcess::start(&[
        ("REDIS_URL", url.as_str()),
        ("TOKEN_SECRET", TOKEN_SECRET),
        ("BCRYPT_COST", "4"),
    ]);
    let res = server
        .password_login(EMPLOYEE.name, EMPLOYEE.password, [("tenantId", "pb")])
        .await;
    let t = Tokens::from(res.json::<serde_json::Value>().await.unwrap());
    let hits = r#"token_server_validation_cache_total{result="hit"}"#;
    for _ in 0..20 {
        let status = server.validate(&t.access).await;
        assert_eq!(status, StatusCode::OK);
    }
    assert!(
        metric_at(&server.address, hits).await >= 10.0,
        "no hit before"
    );
    // The master becomes a replica of its replica; Redis keeps the server's connections.
    let _: () = redis::cmd("FAILOVER").query(&mut master.conn()).unwrap();
    let demoted = eventually(Duration::from_secs(10), || async {
        role(&master) == "slave"
    })
    .await;
    assert!(demoted, "the failover never happened");
    // Longer than the lease: whatever was confirmed before has lapsed.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = metric_at(&server.address, hits).await;
    for _ in 0..20 {
        // Read through (a replica answers reads) or 503; never from the cache.
        let status = server.validate(&t.access).await;
        assert_ne!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        metric_at(&server.address, hits).await,
        before,
        "a hit was confirmed on a replica"
    );
}
