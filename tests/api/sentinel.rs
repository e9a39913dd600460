//! Redis Sentinel: a master, a replica and three sentinels, started by the test; master and
//! replica require a password. The behaviour suite runs on it, and token-server follows the new
//! master after a failover.

use crate::helpers::*;
use reqwest::StatusCode;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const MASTER: &str = "tsmaster";
/// The password of the master and the replica.
pub const PASSWORD: &str = "sentinel-test-pw";

pub struct TestSentinel {
    pub master: Option<TestRedis>,
    pub replica: TestRedis,
    sentinels: Vec<(u16, Child, tempfile::TempDir)>,
}

fn query(url: &str, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut conn =
        redis::Client::open(url)?.get_connection_with_timeout(Duration::from_millis(500))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut conn)
}

impl TestSentinel {
    pub fn start() -> Self {
        let binary = redis_server_binary();
        let master = TestRedis::start_with_password(PASSWORD);
        let master_port = master.port.to_string();
        let replica = TestRedis::start_tls_with(
            None,
            &[
                "--save",
                "",
                "--replicaof",
                "127.0.0.1",
                &master_port,
                "--masterauth",
                PASSWORD,
                "--requirepass",
                PASSWORD,
            ],
        );
        let mut sentinels = vec![];
        for _ in 0..3 {
            let port = free_port();
            let dir = tempfile::tempdir().unwrap();
            let conf = dir.path().join("sentinel.conf");
            std::fs::write(
                &conf,
                format!(
                    "port {port}\nbind 127.0.0.1\ndir {}\nlogfile sentinel.log\n\
                     sentinel monitor {MASTER} 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds {MASTER} 1000\n\
                     sentinel failover-timeout {MASTER} 5000\n\
                     sentinel auth-pass {MASTER} {PASSWORD}\n",
                    dir.path().display(),
                    master.port
                ),
            )
            .unwrap();
            let child = Command::new(&binary)
                .arg(&conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            sentinels.push((port, child, dir));
        }
        let setup = TestSentinel {
            master: Some(master),
            replica,
            sentinels,
        };
        // Ready when the replica has synced and every sentinel knows it and its peers.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let synced = matches!(
                query(&setup.replica.url(), &["INFO", "replication"]),
                Ok(redis::Value::BulkString(ref info)) if String::from_utf8_lossy(info).contains("master_link_status:up")
            );
            let known = setup.sentinels.iter().all(|(p, _, _)| {
                let sentinel = format!("redis://127.0.0.1:{p}");
                let replicas = query(&sentinel, &["SENTINEL", "REPLICAS", MASTER]);
                let peers = query(&sentinel, &["SENTINEL", "SENTINELS", MASTER]);
                matches!(replicas, Ok(redis::Value::Array(ref r)) if r.len() == 1)
                    && matches!(peers, Ok(redis::Value::Array(ref s)) if s.len() == 2)
            });
            if synced && known {
                return setup;
            }
            assert!(
                Instant::now() < deadline,
                "the sentinel setup did not settle"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn sentinels_setting(&self) -> String {
        self.sentinels
            .iter()
            .map(|(p, _, _)| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for TestSentinel {
    fn drop(&mut self) {
        for (_, child, _) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn the_behaviour_suite_passes_through_sentinel() {
    let kind = StoreKind::Sentinel(Arc::new(TestSentinel::start()));
    run_behaviour_suite(kind).await;
}

#[tokio::test]
async fn token_server_follows_the_new_master_after_a_failover() {
    let mut setup = TestSentinel::start();
    let options = Options::default()
        .with("REDIS_SENTINELS", setup.sentinels_setting())
        .with("REDIS_SENTINEL_MASTER", MASTER)
        .with("REDIS_SENTINEL_PASSWORD", PASSWORD);
    let app = TestApp::spawn_on(None, options).await;
    let before = app.login_ok(&EMPLOYEE).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    setup.master.take();
    let started = Instant::now();
    let recovered = eventually(Duration::from_secs(30), || app.full_cycle_works(&CITIZEN)).await;
    assert!(
        recovered,
        "logins, validation and refresh work on the promoted replica, without a restart"
    );
    eprintln!("followed the new master after {:?}", started.elapsed());
    let res = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A session from before the failover still works on the new master.
    assert_eq!(app.details_status(&before.access).await, StatusCode::OK);
    app.refresh_ok(&before.refresh).await;
}
