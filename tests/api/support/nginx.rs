//! nginx with one of the repository's configurations (deploy/nginx.conf, the load balancer;
//! deploy/nginx-gateway.conf, forward authentication) made local: it listens on a free port
//! of 127.0.0.1 and keeps its pid file and logs in a folder of its own. It counts as started
//! only once a probe sent to that port shows in the access log in that folder, answered as
//! only that configuration answers it, so another process holding the port cannot pass for
//! it; when its port was taken, it starts again on a new one. Stopped on drop.

use super::{START_ATTEMPTS, free_port};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Which deploy/ configuration, and the upstreams it is pointed at.
#[derive(Clone)]
enum Conf {
    /// deploy/nginx.conf in front of the token-server replicas on these ports.
    Balancer(Vec<u16>),
    /// deploy/nginx-gateway.conf: `auth_request` to token-server, then the backend.
    Gateway { backend: u16, token_server: u16 },
}

/// A request nginx answers by itself under a configuration, never asking an upstream: its
/// path, the status it gets, and the line it leaves in the access log (`$uri`, no query).
struct Probe {
    path: &'static str,
    status: u16,
    logged: &'static str,
}

impl Conf {
    fn file(&self) -> &'static str {
        match self {
            Conf::Balancer(_) => "nginx.conf",
            Conf::Gateway { .. } => "nginx-gateway.conf",
        }
    }

    fn probe(&self) -> Probe {
        match self {
            // Metrics are for the inside network: nginx answers 404 itself.
            Conf::Balancer(_) => Probe {
                path: "/metrics",
                status: 404,
                logged: "\"GET /metrics\" 404",
            },
            // A repeated access_token is refused before the auth subrequest.
            Conf::Gateway { .. } => Probe {
                path: "/nginx-probe?access_token=a&access_token=a",
                status: 400,
                logged: "\"GET /nginx-probe\" 400",
            },
        }
    }

    /// The configuration's text, listening on `listen`, its pid file in `dir`.
    fn text(&self, listen: u16, dir: &Path) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("deploy")
            .join(self.file());
        let template = std::fs::read_to_string(&path).unwrap();
        let upstreams = match self {
            Conf::Balancer(ports) => {
                let start = template.find("        server token-server-1").unwrap();
                let end = template.find("        keepalive").unwrap();
                let servers: String = ports
                    .iter()
                    .map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n"))
                    .collect();
                format!("{}{servers}{}", &template[..start], &template[end..])
            }
            Conf::Gateway {
                backend,
                token_server,
            } => template
                .replace(
                    "server backend:8000;",
                    &format!("server 127.0.0.1:{backend};"),
                )
                .replace(
                    "server token-server:8080;",
                    &format!("server 127.0.0.1:{token_server};"),
                ),
        };
        let (mut listens, mut pids) = (0, 0);
        let text: String = upstreams
            .lines()
            .map(|line| {
                if line.trim() == "listen 8080;" {
                    listens += 1;
                    format!("        listen 127.0.0.1:{listen};\n")
                } else if line.starts_with("pid ") {
                    pids += 1;
                    // Workers as the user that owns `dir` (root in CI), not as `nobody`.
                    format!("pid {}/nginx.pid;\nuser root;\n", dir.display())
                } else {
                    format!("{line}\n")
                }
            })
            .collect();
        assert_eq!(
            (listens, pids),
            (1, 1),
            "deploy/{}: expected one `listen 8080;` and one `pid` line",
            self.file()
        );
        text
    }
}

/// A running nginx; TERM on drop, so the master stops its workers too.
pub struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    conf: Conf,
    pub listen: u16,
}

impl Nginx {
    /// nginx with deploy/nginx.conf in front of the replicas on `upstreams`.
    pub fn balancer(upstreams: &[u16]) -> Nginx {
        Self::start(Conf::Balancer(upstreams.to_vec()))
    }

    /// nginx with deploy/nginx-gateway.conf, its upstreams pointed at `backend` and
    /// `token_server`.
    pub fn gateway(backend: u16, token_server: u16) -> Nginx {
        Self::start(Conf::Gateway {
            backend,
            token_server,
        })
    }

    /// `http://127.0.0.1:<listen>`.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.listen)
    }

    /// Everything nginx has written: its error log and its access log.
    pub fn logs(&self) -> String {
        ["stderr.log", "stdout.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect()
    }

    /// Points the load balancer at `upstreams` instead and has it reload its configuration.
    pub fn point_at(&self, upstreams: &[u16]) {
        assert!(matches!(self.conf, Conf::Balancer(_)), "not the balancer");
        let conf = Conf::Balancer(upstreams.to_vec());
        let path = self.dir.path().join("nginx.conf");
        std::fs::write(&path, conf.text(self.listen, self.dir.path())).unwrap();
        let reloaded = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(reloaded.success());
    }

    /// On a free port: a new one each try while another process holds the one picked.
    fn start(conf: Conf) -> Nginx {
        let binary = nginx_binary();
        let mut log = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::launch(binary, conf.clone(), free_port()) {
                Ok(nginx) => return nginx,
                Err(last) => log = last,
            }
        }
        panic!(
            "nginx (deploy/{}) did not start after {START_ATTEMPTS} attempts; last log:\n{log}",
            conf.file()
        );
    }

    fn launch(binary: &str, conf: Conf, listen: u16) -> Result<Nginx, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf.text(listen, dir.path())).unwrap();
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(log("stdout.log"))
            .stderr(log("stderr.log"))
            .spawn()
            .unwrap();
        let probe = conf.probe();
        let mut nginx = Nginx {
            child,
            dir,
            conf,
            listen,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                return Err(format!(
                    "port {listen}: exited with {status}:\n{}",
                    nginx.logs()
                ));
            }
            // Ours once its own access log shows the probe it answered.
            if answers(listen, &probe) && nginx.logs().contains(probe.logged) {
                return Ok(nginx);
            }
            if Instant::now() > deadline {
                // Dropping it stops it.
                return Err(format!(
                    "port {listen}: the probe {} never showed in its access log within 10 s:\n{}",
                    probe.path,
                    nginx.logs()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        }
        let _ = self.child.wait();
    }
}

/// Sends the probe to `port`; true if the answer has the probe's status.
fn answers(port: u16, probe: &Probe) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let request = format!("GET {} HTTP/1.0\r\nHost: localhost\r\n\r\n", probe.path);
    let mut answer = String::new();
    let _ = stream.write_all(request.as_bytes());
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .is_some_and(|status| status == probe.status.to_string())
}

/// The nginx binary, on PATH or in /usr/sbin; fails the test, saying how to install it, when
/// there is none.
fn nginx_binary() -> &'static str {
    let found = |path: &str| {
        Command::new(path)
            .arg("-v")
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if found("nginx") {
        return "nginx";
    }
    assert!(
        found("/usr/sbin/nginx"),
        "nginx is not installed: apt-get install -y nginx (it has the auth_request module)"
    );
    "/usr/sbin/nginx"
}
