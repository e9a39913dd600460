//! The processes a run needs: a private redis-server, the release token-server and the
//! ceiling server, each on a free loopback port and killed on drop.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

pub struct Proc {
    pub child: Child,
    pub addr: SocketAddr,
    pub name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_port(p: &mut Proc, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(p.addr).is_ok() {
            return;
        }
        if let Ok(Some(status)) = p.child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            panic!("{} exited ({status}) before listening:\n{text}", p.name);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{} did not listen on {} within 20 s", p.name, p.addr);
}

pub fn redis(dir: &Path) -> Proc {
    let port = free_port();
    let log = dir.join(format!("redis-{port}.log"));
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--logfile")
        .arg(&log)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH (apt-get install -y redis-server)");
    let mut p = Proc {
        child,
        addr: ([127, 0, 0, 1], port).into(),
        name: "redis-server",
    };
    wait_for_port(&mut p, &log);
    p
}

/// The binaries built next to this one (`cargo build --release --workspace`).
pub fn sibling(name: &str) -> PathBuf {
    let me = std::env::current_exe().expect("own path");
    let path = me.with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run bench/run, which builds it",
        path.display()
    );
    path
}

/// The harness's own environment variables a token-server inherits.
const PASSED_ON: [&str; 2] = ["VALIDATION_CACHE_ENTRIES", "VALIDATION_LEASE_MS"];

pub fn token_server(dir: &Path, envs: &[(&str, String)]) -> Proc {
    let port = free_port();
    let log = dir.join(format!("token-server-{port}.log"));
    let child = Command::new(sibling("token-server"))
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn")
        // `VALIDATION_CACHE_ENTRIES=0 bench/run` measures validation reading through to Redis,
        // `VALIDATION_LEASE_MS=5 bench/run` another lease (the servers that set their own keep it).
        .envs(
            PASSED_ON
                .iter()
                .filter_map(|k| Some((*k, std::env::var(k).ok()?))),
        )
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("token-server binary");
    let mut p = Proc {
        child,
        addr: ([127, 0, 0, 1], port).into(),
        name: "token-server",
    };
    wait_for_port(&mut p, &log);
    p
}

pub fn ceiling(dir: &Path, kind: &str, redis_url: &str, workers: usize) -> Proc {
    let port = free_port();
    let log = dir.join(format!("ceiling-{kind}.log"));
    let child = Command::new(sibling("bench-ceiling"))
        .args([kind, redis_url, &port.to_string(), &workers.to_string()])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("bench-ceiling binary");
    let mut p = Proc {
        child,
        addr: ([127, 0, 0, 1], port).into(),
        name: "bench-ceiling",
    };
    wait_for_port(&mut p, &log);
    p
}

/// A blocking connection to the Redis `p`, for the harness's readings.
pub fn redis_conn(p: &Proc) -> redis::Connection {
    redis::Client::open(format!("redis://{}", p.addr))
        .and_then(|c| c.get_connection())
        .expect("a connection to the benchmark's Redis")
}

/// CPU time (user + system) of process `pid` so far; the kernel counts in ticks of 10 ms.
pub fn cpu_of(pid: u32) -> Duration {
    let ticks: u64 = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let after_name = &s[s.rfind(')')? + 2..];
            let fields: Vec<&str> = after_name.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        })
        .unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

/// Resident set size of process `pid` in KiB.
pub fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}
