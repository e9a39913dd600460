//! Redis Sentinel for tests: a master and a replica (both requiring a password) and three
//! sentinels watching them, each on a free port, killed on drop; or one sentinel watching
//! any master.

use super::{START_ATTEMPTS, TestRedis, client_for, free_port, redis_pid, redis_server_binary};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The name the sentinels know the master by.
pub const MASTER: &str = "tsmaster";
/// The password of the master and the replica.
pub const PASSWORD: &str = "sentinel-test-pw";

/// One redis-server in sentinel mode, killed (and its folder removed) on drop.
pub struct SentinelProcess {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for SentinelProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A master, its replica and three sentinels.
pub struct TestSentinel {
    /// Declared first, so dropped (killed) first.
    sentinels: Vec<SentinelProcess>,
    pub master: Option<TestRedis>,
    pub replica: TestRedis,
    /// TLS everywhere, with the certificates in this folder.
    tls: Option<PathBuf>,
}

/// Sends `args` to the Redis (or sentinel) at `url`.
pub fn query(url: &str, tls: Option<&Path>, args: &[&str]) -> redis::RedisResult<redis::Value> {
    let mut conn = client_for(url, tls).get_connection_with_timeout(Duration::from_millis(500))?;
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(&mut conn)
}

/// A sentinel watching the master [`MASTER`] on `master_port`, on a new port each try until
/// one answers as itself.
pub fn start_sentinel(tls: Option<&Path>, master_port: u16) -> SentinelProcess {
    let binary = redis_server_binary();
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
        let mut child = Command::new(&binary)
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
                return SentinelProcess {
                    port,
                    child,
                    _dir: dir,
                };
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
    pub fn start_tls(material: &Path) -> Self {
        Self::start_with(Some(material))
    }

    fn start_with(tls: Option<&Path>) -> Self {
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
        let sentinels = (0..3).map(|_| start_sentinel(tls, master.port)).collect();
        let setup = TestSentinel {
            sentinels,
            master: Some(master),
            replica,
            tls: tls.map(Path::to_path_buf),
        };
        // Ready when the replica has synced and every sentinel knows it and its peers.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let synced = matches!(
                query(&setup.replica.url(), tls, &["INFO", "replication"]),
                Ok(redis::Value::BulkString(ref info)) if String::from_utf8_lossy(info).contains("master_link_status:up")
            );
            let known = setup.sentinel_ports().into_iter().all(|p| {
                let sentinel = setup.sentinel_url(p);
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

    /// The sentinels' ports.
    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    pub fn sentinel_url(&self, port: u16) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{port}")
    }

    /// `REDIS_SENTINELS` for these sentinels.
    pub fn sentinels_setting(&self) -> String {
        self.sentinel_ports()
            .into_iter()
            .map(|p| self.sentinel_url(p))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Waits until the replica has applied everything the master has written so far.
    pub fn wait_for_replication(&self, limit: Duration) {
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
