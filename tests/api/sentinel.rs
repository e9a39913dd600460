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
    /// TLS everywhere, with the certificates in this folder.
    tls: Option<std::path::PathBuf>,
}

fn query(
    url: &str,
    tls: Option<&std::path::Path>,
    args: &[&str],
) -> redis::RedisResult<redis::Value> {
    let mut conn = client_for(url, tls).get_connection_with_timeout(Duration::from_millis(500))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut conn)
}

/// A sentinel watching the master on `master_port`, on a new port each try until one answers
/// as itself.
pub fn start_sentinel(
    binary: &str,
    tls: Option<&std::path::Path>,
    master_port: u16,
) -> (u16, Child, tempfile::TempDir) {
    let mut log = String::new();
    for _ in 0..START_ATTEMPTS {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("sentinel.conf");
        let (listen, scheme) = match tls {
            Some(m) => {
                let file = |name: &str| m.join(name).display().to_string();
                let listen = format!(
                    "port 0\ntls-port {port}\ntls-replication yes\ntls-auth-clients no\n\
                     tls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n",
                    file("redis.crt"),
                    file("redis.key"),
                    file("ca.crt")
                );
                (listen, "rediss")
            }
            None => (format!("port {port}\n"), "redis"),
        };
        std::fs::write(
            &conf,
            format!(
                "{listen}bind 127.0.0.1\ndir {}\nlogfile sentinel.log\n\
                 sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n\
                 sentinel down-after-milliseconds {MASTER} 1000\n\
                 sentinel failover-timeout {MASTER} 5000\n\
                 sentinel auth-pass {MASTER} {PASSWORD}\n",
                dir.path().display(),
            ),
        )
        .unwrap();
        let mut child = Command::new(binary)
            .arg(&conf)
            .arg("--sentinel")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let url = format!("{scheme}://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        let outcome = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break format!("exited with {status}");
            }
            let pid = client_for(&url, tls)
                .get_connection_with_timeout(Duration::from_millis(500))
                .ok()
                .and_then(|mut c| redis_pid(&mut c));
            if pid == Some(child.id()) {
                return (port, child, dir);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                break "did not answer within 10 s".to_string();
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let text = std::fs::read_to_string(dir.path().join("sentinel.log")).unwrap_or_default();
        log = format!("sentinel on port {port} {outcome}:\n{text}");
    }
    panic!("a sentinel did not start after {START_ATTEMPTS} attempts; last log:\n{log}");
}

impl TestSentinel {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// Master, replica and sentinels speaking only TLS (certificates from `tls_material`).
    pub fn start_tls(material: &std::path::Path) -> Self {
        Self::start_with(Some(material))
    }

    fn start_with(tls: Option<&std::path::Path>) -> Self {
        let binary = redis_server_binary();
        let master = TestRedis::start_tls_with(tls, &["--save", "", "--requirepass", PASSWORD]);
        let master_port = master.port.to_string();
        let replica = TestRedis::start_tls_with(
            tls,
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
        let sentinels = (0..3)
            .map(|_| start_sentinel(&binary, tls, master.port))
            .collect();
        let setup = TestSentinel {
            master: Some(master),
            replica,
            sentinels,
            tls: tls.map(std::path::Path::to_path_buf),
        };
        // Ready when the replica has synced and every sentinel knows it and its peers.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let synced = matches!(
                query(&setup.replica.url(), tls, &["INFO", "replication"]),
                Ok(redis::Value::BulkString(ref info)) if String::from_utf8_lossy(info).contains("master_link_status:up")
            );
            let known = setup.sentinels.iter().all(|(p, _, _)| {
                let sentinel = setup.sentinel_url(*p);
                let replicas = query(&sentinel, tls, &["SENTINEL", "REPLICAS", MASTER]);
                let peers = query(&sentinel, tls, &["SENTINEL", "SENTINELS", MASTER]);
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

    fn sentinel_url(&self, port: u16) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{port}")
    }

    pub fn sentinels_setting(&self) -> String {
        self.sentinels
            .iter()
            .map(|(p, _, _)| self.sentinel_url(*p))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until the replica has applied everything the master has written so far.
    fn wait_for_replication(&self, limit: Duration) {
        let master = self.master.as_ref().expect("the master runs");
        let offset = |url: &str| -> Option<i64> {
            match query(url, self.tls.as_deref(), &["INFO", "replication"]) {
                Ok(redis::Value::BulkString(info)) => String::from_utf8_lossy(&info)
                    .lines()
                    .find_map(|l| l.strip_prefix("master_repl_offset:"))
                    .and_then(|v| v.trim().parse().ok()),
                _ => None,
            }
        };
        let deadline = Instant::now() + limit;
        loop {
            let written = offset(&master.url());
            if written.is_some() && written == offset(&self.replica.url()) {
                return;
            }
            assert!(Instant::now() < deadline, "the replica did not catch up");
            std::thread::sleep(Duration::from_millis(50));
        }
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
    // Replication is asynchronous: let the replica catch up, so this session must survive.
    setup.wait_for_replication(Duration::from_secs(10));

    setup.master.take();
    let started = Instant::now();
    // Until the replica is promoted, a gateway validating the session from before, and new
    // logins, validations and refreshes, get a 200 or the documented 503: never a 401 that
    // would log a user out.
    let unavailable = std::cell::Cell::new(0u32);
    let recovered = eventually(Duration::from_secs(30), || async {
        let validated = ok_or_unavailable(app.details(&before.access).await, "details")
            .await
            .is_some();
        let cycled = full_cycle_or_unavailable(&app, &CITIZEN).await;
        let works = validated && cycled;
        if !works {
            unavailable.set(unavailable.get() + 1);
        }
        works
    })
    .await;
    assert!(
        recovered,
        "logins, validation and refresh work on the promoted replica, without a restart"
    );
    eprintln!("followed the new master after {:?}", started.elapsed());
    // Else the failover went unseen and the checks above proved nothing.
    assert!(unavailable.get() > 0, "the failover was answered with 503s");
    let res = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A session from before the failover still works on the new master.
    assert_eq!(app.details_status(&before.access).await, StatusCode::OK);
    app.refresh_ok(&before.refresh).await;
}

#[tokio::test]
async fn sentinel_over_tls_with_a_private_ca_serves_sessions() {
    let material = tempfile::tempdir().unwrap();
    tls_material(material.path());
    let setup = TestSentinel::start_tls(material.path());
    // Master, replica and sentinels speak TLS only: each answers a client with the CA, and a
    // plain client gets nothing, so a server that works through them talks TLS.
    let master = setup.master.as_ref().unwrap();
    let tls = Some(material.path());
    let nodes = [(master.port, master.url(), Some(PASSWORD))]
        .into_iter()
        .chain([(setup.replica.port, setup.replica.url(), Some(PASSWORD))])
        .chain(
            setup
                .sentinels
                .iter()
                .map(|(p, _, _)| (*p, setup.sentinel_url(*p), None)),
        );
    for (port, url, password) in nodes {
        assert!(
            matches!(query(&url, tls, &["PING"]), Ok(redis::Value::SimpleString(ref s)) if s == "PONG"),
            "{url} answers PING over TLS"
        );
        assert!(
            !crate::cluster::answers_plain_ping(port, password),
            "port {port} answers without TLS"
        );
    }
    let (sentinels, ca) = (
        setup.sentinels_setting(),
        material.path().join("ca.crt").display().to_string(),
    );
    let server = crate::process::ServerProcess::start(&[
        ("REDIS_SENTINELS", sentinels.as_str()),
        ("REDIS_SENTINEL_MASTER", MASTER),
        ("REDIS_SENTINEL_PASSWORD", PASSWORD),
        ("REDIS_TLS_CA_FILE", ca.as_str()),
        ("TOKEN_SECRET", TOKEN_SECRET),
    ]);
    let client = reqwest::Client::new();
    let ready = client
        .get(format!("{}/ready", server.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::OK);
    let login = password_grant(&client, &server.address, EMPLOYEE.name, EMPLOYEE.password).await;
    assert_eq!(login.status(), StatusCode::OK);
    let tokens = Tokens::from(login.json::<serde_json::Value>().await.unwrap());
    assert_eq!(
        details_status_at(&client, &server.address, &tokens.access).await,
        StatusCode::OK
    );
    let refreshed = refresh_grant(&client, &server.address, &tokens.refresh).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    // Without the CA the sentinels' certificates are not trusted: unreachable, not bypassed.
    let untrusting = crate::process::ServerProcess::start(&[
        ("REDIS_SENTINELS", sentinels.as_str()),
        ("REDIS_SENTINEL_MASTER", MASTER),
        ("REDIS_SENTINEL_PASSWORD", PASSWORD),
        ("TOKEN_SECRET", TOKEN_SECRET),
    ]);
    let ready = client
        .get(format!("{}/ready", untrusting.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
}
