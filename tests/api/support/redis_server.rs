//! A private `redis-server` per test on a free port, persistence off unless asked, killed on
//! drop; its log when it does not start. Also the Redis client and TLS arguments the other
//! Redis harnesses (cluster, sentinel) share.

use super::{START_ATTEMPTS, free_port};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A private redis-server on a free port, persistence off, killed on drop.
pub struct TestRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Persistence and role arguments: no persistence by default, AOF for restart tests.
    extra: Vec<String>,
    /// TLS only, with the certificates in this folder (see `tls_material`).
    tls: Option<PathBuf>,
}

/// A client for `url`, trusting the test CA in `tls` when given.
pub fn client_for(url: &str, tls: Option<&Path>) -> redis::Client {
    match tls {
        Some(dir) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(dir.join("ca.crt")).unwrap()),
            },
        )
        .unwrap(),
        None => redis::Client::open(url).unwrap(),
    }
}

/// The process id of the Redis (server or sentinel) that answers `conn`: tells a server we
/// started from another that holds the port it was meant to bind.
pub fn redis_pid(conn: &mut redis::Connection) -> Option<u32> {
    let info: String = redis::cmd("INFO").arg("server").query(conn).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// True if a client without TLS gets an answer to PING on `port` (as `password`, if any).
pub fn answers_plain_ping(port: u16, password: Option<&str>) -> bool {
    let url = match password {
        Some(pw) => format!("redis://:{pw}@127.0.0.1:{port}"),
        None => format!("redis://127.0.0.1:{port}"),
    };
    redis::Client::open(url)
        .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
        .is_ok()
}

/// redis-server arguments that serve only TLS on `port`, replication included.
pub fn tls_args(port: u16, material: &Path) -> Vec<String> {
    let file = |name: &str| material.join(name).display().to_string();
    [
        "--port",
        "0",
        "--tls-port",
        &port.to_string(),
        "--tls-replication",
        "yes",
        "--tls-auth-clients",
        "no",
        "--tls-cert-file",
        &file("redis.crt"),
        "--tls-key-file",
        &file("redis.key"),
        "--tls-ca-cert-file",
        &file("ca.crt"),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

/// The redis-server binary; fails the test, saying how to install it, when it is missing.
pub fn redis_server_binary() -> String {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "redis-server is not on PATH: these tests run a real Redis. Install it (Debian/Ubuntu: apt-get install -y redis-server)"
    );
    "redis-server".into()
}

impl TestRedis {
    pub fn start() -> Self {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// A Redis that writes every command to its append-only file before answering.
    pub fn start_with_aof() -> Self {
        Self::start_with(&[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
    }

    /// A Redis that requires AUTH with `password`.
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with(&[
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            password,
        ])
    }

    /// A Redis that accepts `DEBUG` commands, persistence off.
    pub fn start_with_debug() -> Self {
        Self::start_with(&[
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
        ])
    }

    fn start_with(extra: &[&str]) -> Self {
        Self::start_tls_with(None, extra)
    }

    /// With `tls`, a Redis that speaks only TLS, with the certificates in that folder.
    pub fn start_tls_with(tls: Option<&Path>, extra: &[&str]) -> Self {
        let mut log = String::new();
        for _ in 0..START_ATTEMPTS {
            let mut redis = TestRedis {
                port: free_port(),
                dir: tempfile::tempdir().unwrap(),
                child: None,
                extra: extra.iter().map(|a| a.to_string()).collect(),
                tls: tls.map(Path::to_path_buf),
            };
            match redis.launch() {
                Ok(()) => return redis,
                Err(last) => log = last,
            }
        }
        panic!("redis-server did not start after {START_ATTEMPTS} attempts; last log:\n{log}");
    }

    /// Starts redis-server on `self.port`; its log if it exits (its port was taken) or does
    /// not answer as itself within 10 s.
    fn launch(&mut self) -> Result<(), String> {
        let listen = match &self.tls {
            Some(material) => tls_args(self.port, material),
            None => vec!["--port".into(), self.port.to_string()],
        };
        let child = Command::new(redis_server_binary())
            .args(&listen)
            .args(["--bind", "127.0.0.1"])
            .args(&self.extra)
            .args(["--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--logfile", "redis.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                break;
            }
            if self.answering_pid() == Some(pid) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        Err(format!("port {}:\n{log}", self.port))
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        match self.password() {
            Some(pw) => format!("{scheme}://:{pw}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    /// The password it requires, if started with `--requirepass`.
    pub fn password(&self) -> Option<&str> {
        let i = self.extra.iter().position(|a| a == "--requirepass")?;
        self.extra.get(i + 1).map(String::as_str)
    }

    /// The process id of the Redis that answers on this one's port, if any does.
    fn answering_pid(&self) -> Option<u32> {
        let mut conn = client_for(&self.url(), self.tls.as_deref())
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        redis_pid(&mut conn)
    }

    pub fn conn(&self) -> redis::Connection {
        client_for(&self.url(), self.tls.as_deref())
            .get_connection()
            .unwrap()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (empty unless it persists). Clients
    /// know it by its port, so it cannot move: a few tries, then the test fails. The pause
    /// between tries gives whatever holds the port time to let go of it.
    pub fn restart(&mut self) {
        self.stop();
        let mut log = String::new();
        for _ in 0..START_ATTEMPTS {
            match self.launch() {
                Ok(()) => return,
                Err(last) => log = last,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("redis-server did not restart on its port; last log:\n{log}");
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
