//! A private Redis Cluster for tests: 6 redis-server processes (3 masters, 3 replicas) on free
//! ports, joined with `redis-cli --cluster create`, killed on drop. Every node requires a
//! password, so the whole cluster suite also runs with AUTH.

use super::{START_ATTEMPTS, free_ports, redis_pid, redis_server_binary};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestCluster {
    pub ports: Vec<u16>,
    children: Vec<Option<Child>>,
    dirs: Vec<tempfile::TempDir>,
    /// With TLS: the folder holding ca.crt, redis.crt and redis.key.
    tls: Option<std::path::PathBuf>,
}

/// The password every node requires.
pub const PASSWORD: &str = "cluster-test-pw";

impl TestCluster {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A cluster that speaks only TLS, clients, replication and bus alike, with the
    /// certificates in `material` (see `tls_material`).
    pub fn start_tls(material: &std::path::Path) -> Self {
        Self::start_with(Some(material.to_path_buf()))
    }

    pub fn url(&self, port: u16) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://:{PASSWORD}@127.0.0.1:{port}")
    }

    fn client(&self, port: u16) -> redis::RedisResult<redis::Client> {
        match &self.tls {
            Some(dir) => redis::Client::build_with_tls(
                self.url(port).as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(std::fs::read(dir.join("ca.crt")).unwrap()),
                },
            ),
            None => redis::Client::open(self.url(port)),
        }
    }

    /// The process id of the Redis answering on `port`, if one does.
    fn answering_pid(&self, port: u16) -> Option<u32> {
        let mut conn = self
            .client(port)
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(500)))
            .ok()?;
        redis_pid(&mut conn)
    }

    pub fn node(&self, port: u16) -> redis::Connection {
        self.client(port)
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(1))
            .unwrap()
    }

    /// Starts the cluster; when a node cannot bind its ports (another process took one), the
    /// whole attempt is dropped and the next one picks new ports.
    fn start_with(tls: Option<std::path::PathBuf>) -> Self {
        let mut log = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::launch(tls.clone()) {
                Ok(cluster) => return cluster,
                Err(last) => log = last,
            }
        }
        panic!("the Redis Cluster did not start after {START_ATTEMPTS} attempts; last log:\n{log}");
    }

    /// Six nodes on new ports, each answering as itself; the log of a node that exited or did
    /// not answer within 10 s otherwise.
    fn launch(tls: Option<std::path::PathBuf>) -> Result<Self, String> {
        let binary = redis_server_binary();
        let mut cluster = TestCluster {
            ports: vec![],
            children: vec![],
            dirs: vec![],
            tls,
        };
        // A client port and a cluster bus port per node, all distinct.
        let ports = free_ports(12);
        for pair in ports.chunks(2) {
            let (port, bus) = (pair[0], pair[1]);
            let dir = tempfile::tempdir().unwrap();
            let mut command = Command::new(&binary);
            match &cluster.tls {
                Some(material) => {
                    let file = |name: &str| material.join(name).display().to_string();
                    command
                        .args(["--port", "0", "--tls-port", &port.to_string()])
                        .args([
                            "--tls-cluster",
                            "yes",
                            "--tls-replication",
                            "yes",
                            "--tls-auth-clients",
                            "no",
                        ])
                        .args([
                            "--tls-cert-file",
                            &file("redis.crt"),
                            "--tls-key-file",
                            &file("redis.key"),
                        ])
                        .args(["--tls-ca-cert-file", &file("ca.crt")]);
                }
                None => {
                    command.args(["--port", &port.to_string()]);
                }
            }
            let child = command
                .args(["--cluster-port", &bus.to_string()])
                .args([
                    "--bind",
                    "127.0.0.1",
                    "--cluster-enabled",
                    "yes",
                    "--cluster-node-timeout",
                    "1000",
                ])
                .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
                .args(["--requirepass", PASSWORD, "--masterauth", PASSWORD])
                // Replicas sync at once, so a master can fail over right after start-up.
                .args(["--repl-diskless-sync-delay", "0"])
                .arg("--dir")
                .arg(dir.path())
                .args(["--logfile", "redis.log"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            cluster.ports.push(port);
            cluster.children.push(Some(child));
            cluster.dirs.push(dir);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut waiting = None;
            for i in 0..cluster.ports.len() {
                let child = cluster.children[i].as_mut().unwrap();
                let pid = child.id();
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(cluster.node_log(i, &format!("exited with {status}")));
                }
                if cluster.answering_pid(cluster.ports[i]) != Some(pid) {
                    waiting = Some(i);
                }
            }
            match waiting {
                None => break,
                Some(i) if Instant::now() > deadline => {
                    return Err(cluster.node_log(i, "did not answer within 10 s"));
                }
                Some(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        let addresses: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let mut cli = Command::new("redis-cli");
        if let Some(material) = &cluster.tls {
            cli.args(["--tls", "--cacert"]).arg(material.join("ca.crt"));
        }
        let out = cli
            .args(["-a", PASSWORD, "--no-auth-warning", "--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("redis-cli is on PATH (it comes with redis-server: apt-get install -y redis-server)");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_until_ok(Duration::from_secs(20));
        cluster.wait_for_replicas(Duration::from_secs(20));
        Ok(cluster)
    }

    /// What went wrong with node `i`, and its log.
    fn node_log(&self, i: usize, what: &str) -> String {
        let log =
            std::fs::read_to_string(self.dirs[i].path().join("redis.log")).unwrap_or_default();
        format!("node on port {} {what}:\n{log}", self.ports[i])
    }

    /// Waits until every replica has applied everything its master has written so far.
    pub fn wait_for_replication(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        let offset = |info: &str, field: &str| -> Option<i64> {
            info.lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().parse().ok())
        };
        loop {
            let caught_up = self.masters().iter().all(|m| {
                let info: String = redis::cmd("INFO")
                    .arg("replication")
                    .query(&mut self.node(*m))
                    .unwrap_or_default();
                let master_offset = offset(&info, "master_repl_offset:");
                // slave0:ip=...,port=...,state=online,offset=N,lag=0
                let replica_offset = info
                    .lines()
                    .find(|l| l.starts_with("slave0:"))
                    .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("offset=")))
                    .and_then(|v| v.parse::<i64>().ok());
                master_offset.is_some() && master_offset == replica_offset
            });
            if caught_up {
                return;
            }
            assert!(Instant::now() < deadline, "replicas did not catch up");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until every replica has completed its sync with its master.
    fn wait_for_replicas(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let synced = self
                .running()
                .iter()
                .map(|p| {
                    redis::cmd("INFO")
                        .arg("replication")
                        .query::<String>(&mut self.node(*p))
                        .unwrap_or_default()
                })
                .filter(|info| info.contains("role:slave"))
                .filter(|info| {
                    info.contains("master_link_status:up")
                        && info.contains("master_sync_in_progress:0")
                })
                .count();
            if synced == 3 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replicas did not sync ({synced} of 3)"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running node reports `cluster_state:ok`.
    pub fn wait_until_ok(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let ok = self.running().iter().all(|p| {
                let info: String = redis::cmd("CLUSTER")
                    .arg("INFO")
                    .query(&mut self.node(*p))
                    .unwrap_or_default();
                info.contains("cluster_state:ok")
            });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "cluster did not reach state ok");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn running(&self) -> Vec<u16> {
        self.ports
            .iter()
            .zip(&self.children)
            .filter(|(_, c)| c.is_some())
            .map(|(p, _)| *p)
            .collect()
    }

    pub fn nodes_setting(&self) -> String {
        self.ports
            .iter()
            .map(|p| self.url(*p))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The running masters' ports.
    pub fn masters(&self) -> Vec<u16> {
        self.running()
            .into_iter()
            .filter(|p| {
                let role: Vec<redis::Value> = redis::cmd("ROLE")
                    .query(&mut self.node(*p))
                    .unwrap_or_default();
                matches!(role.first(), Some(redis::Value::BulkString(r)) if r == b"master")
            })
            .collect()
    }

    /// Every key under `prefix` on every master.
    pub fn keys(&self, prefix: &str) -> Vec<String> {
        let mut keys = vec![];
        for p in self.masters() {
            let found: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}:*"))
                .query(&mut self.node(p))
                .unwrap();
            keys.extend(found);
        }
        keys
    }

    /// Kills the node on `port` (SIGKILL, as a crash).
    pub fn kill(&mut self, port: u16) {
        let i = self.ports.iter().position(|p| *p == port).unwrap();
        if let Some(mut child) = self.children[i].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for child in self.children.iter_mut().flatten() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
