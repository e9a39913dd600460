//! Three token-server processes behind nginx, sharing one Redis, while one replica is killed
//! and later restarted. What the clients saw is counted: no session lost, no token accepted
//! after its logout, errors only for requests in flight on the killed replica.

use crate::helpers::*;
use crate::process::ServerProcess;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Everything nginx has written: its error log and its access log.
    fn logs(&self) -> String {
        ["stderr.log", "stdout.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM, not KILL: the master then stops its workers too.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// nginx with the repository's deploy/nginx.conf, pointed at `upstreams`.
fn nginx(listen: u16, upstreams: &[u16]) -> Nginx {
    let found = Command::new("nginx")
        .arg("-v")
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "nginx is not on PATH: install it (Debian/Ubuntu: apt-get install -y nginx)"
    );
    let dir = tempfile::tempdir().unwrap();
    let template =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/nginx.conf")).unwrap();
    let servers: String = upstreams
        .iter()
        .map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;\n"))
        .collect();
    let start = template.find("        server token-server-1").unwrap();
    let end = template.find("        keepalive").unwrap();
    let conf = format!("{}{}{}", &template[..start], servers, &template[end..])
        .replace("listen 8080;", &format!("listen 127.0.0.1:{listen};"))
        .replace(
            "pid /tmp/nginx-token-server.pid;",
            &format!("pid {}/nginx.pid;", dir.path().display()),
        )
        .replace("worker_processes 1;", "worker_processes 1;\nuser root;");
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let log = |name: &str| std::fs::File::create(dir.path().join(name)).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .args(["-g", "daemon off;"])
        .stdout(log("stdout.log"))
        .stderr(log("stderr.log"))
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", listen)).is_err() {
        assert!(Instant::now() < deadline, "nginx did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx { child, dir }
}

#[tokio::test]
async fn nginx_keeps_tokens_out_of_its_logs() {
    // Every upstream refuses connections: nginx logs an upstream failure for each request.
    let listen = free_port();
    let nginx = nginx(listen, &[free_port()]);
    let token = "A".repeat(87);
    let http = reqwest::Client::new();
    for path in ["/user/_details", "/user/_logout"] {
        let res = http
            .post(format!(
                "http://127.0.0.1:{listen}{path}?access_token={token}"
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::BAD_GATEWAY);
    }
    // nginx writes its logs as it goes; give the writes a moment to land.
    let logged = eventually(Duration::from_secs(5), || async {
        nginx.logs().contains("/user/_logout")
    })
    .await;
    let logs = nginx.logs();
    assert!(logged, "the access log shows the requests: {logs}");
    assert!(
        logs.contains("upstream_status=502"),
        "upstream failures are visible: {logs}"
    );
    assert!(
        !logs.contains(&token),
        "a token reached nginx's logs: {logs}"
    );
}

#[derive(Default)]
struct Seen {
    cycles: AtomicU32,
    /// A live token answered 401, or a live refresh token was refused: a lost session.
    lost: AtomicU32,
    /// A token answered 200 after its logout.
    accepted_after_logout: AtomicU32,
    /// 5xx or transport errors.
    errors: AtomicU32,
}

#[tokio::test]
async fn replicas_behind_nginx_lose_no_session_when_one_dies_and_returns() {
    let redis = TestRedis::start();
    let url = redis.url();
    let ports = [free_port(), free_port(), free_port()];
    let env = |port: &str| -> Vec<(&'static str, String)> {
        vec![
            ("REDIS_URL", url.clone()),
            ("TOKEN_SECRET", TOKEN_SECRET.into()),
            ("PORT", port.to_string()),
            ("LOGIN_MAX_ATTEMPTS_PER_IP_PER_MINUTE", "0".into()),
            // Six clients log in as one user at once: more checks in flight than the
            // default lockout budget lets one account have.
            ("MAX_INVALID_LOGIN_ATTEMPTS", "20".into()),
            ("BCRYPT_COST", "4".into()),
            ("WORKERS", "1".into()),
        ]
    };
    let start = |port: u16| {
        let e = env(&port.to_string());
        let refs: Vec<(&str, &str)> = e.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ServerProcess::start(&refs)
    };
    let mut replicas: Vec<Option<ServerProcess>> = ports.iter().map(|p| Some(start(*p))).collect();
    let listen = free_port();
    let _nginx = nginx(listen, &ports);
    let base = format!("http://127.0.0.1:{listen}");
    // Metrics stay inside: the replicas serve them, nginx does not pass them on.
    let metrics = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(metrics.status(), reqwest::StatusCode::NOT_FOUND);
    let direct = reqwest::get(format!("http://127.0.0.1:{}/metrics", ports[0]))
        .await
        .unwrap();
    assert_eq!(direct.status(), reqwest::StatusCode::OK);

    let seen = Arc::new(Seen::default());
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..6)
        .map(|_| {
            let (seen, stop, base) = (seen.clone(), stop.clone(), base.clone());
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let token_url = format!("{base}/user/oauth/token");
                let details = |t: &str| {
                    http.get(format!("{base}/user/_details?access_token={t}"))
                        .send()
                };
                let error = |seen: &Seen| {
                    seen.errors.fetch_add(1, Ordering::Relaxed);
                };
                while !stop.load(Ordering::Relaxed) {
                    let login = http
                        .post(&token_url)
                        .header("Authorization", BASIC_DIGIT)
                        .form(&[
                            ("grant_type", "password"),
                            ("username", CITIZEN.name),
                            ("password", CITIZEN.password),
                            ("tenantId", "pb"),
                        ])
                        .send()
                        .await;
                    let Ok(res) = login else {
                        error(&seen);
                        continue;
                    };
                    if res.status() != 200 {
                        error(&seen);
                        continue;
                    }
                    let t = Tokens::from(res.json::<serde_json::Value>().await.unwrap());
                    match details(&t.access).await.map(|r| r.status().as_u16()) {
                        Ok(200) => {}
                        Ok(401) => {
                            seen.lost.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => error(&seen),
                    }
                    let refreshed = http
                        .post(&token_url)
                        .header("Authorization", BASIC_DIGIT)
                        .form(&[
                            ("grant_type", "refresh_token"),
                            ("refresh_token", t.refresh.as_str()),
                        ])
                        .send()
                        .await;
                    let access = match refreshed {
                        Ok(r) if r.status() == 200 => {
                            Tokens::from(r.json::<serde_json::Value>().await.unwrap()).access
                        }
                        Ok(r) if r.status() == 400 => {
                            seen.lost.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        _ => {
                            error(&seen);
                            continue;
                        }
                    };
                    let logout = http
                        .post(format!("{base}/user/_logout?access_token={access}"))
                        .send()
                        .await;
                    if !matches!(logout.map(|r| r.status().as_u16()), Ok(200)) {
                        error(&seen);
                        continue;
                    }
                    match details(&access).await.map(|r| r.status().as_u16()) {
                        Ok(401) => {}
                        Ok(200) => {
                            seen.accepted_after_logout.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => error(&seen),
                    }
                    seen.cycles.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    let before_kill = seen.cycles.load(Ordering::Relaxed);
    // SIGKILL: a crash, with requests in flight.
    replicas[1].take();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let while_down = seen.cycles.load(Ordering::Relaxed) - before_kill;
    replicas[1] = Some(start(ports[1]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.await.unwrap();
    }

    let (cycles, lost, after_logout, errors) = (
        seen.cycles.load(Ordering::Relaxed),
        seen.lost.load(Ordering::Relaxed),
        seen.accepted_after_logout.load(Ordering::Relaxed),
        seen.errors.load(Ordering::Relaxed),
    );
    eprintln!(
        "cycles {cycles} ({while_down} while a replica was down), lost {lost}, accepted after logout {after_logout}, errors {errors}"
    );
    assert!(
        before_kill > 0 && while_down > 0,
        "clients made progress before and during the outage"
    );
    assert_eq!(lost, 0, "no session lost");
    assert_eq!(after_logout, 0, "no token accepted after its logout");
    // At most one request per client was in flight on the killed replica.
    assert!(errors <= 6, "{errors} errors for 6 clients");
    let restarted = replicas[1].as_ref().unwrap();
    assert!(
        restarted.log().contains("/user/"),
        "the restarted replica serves again"
    );
}

#[test]
fn compose_replicas_trust_only_nginxs_fixed_address() {
    let compose =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docker-compose.yml"))
            .unwrap();
    let value = |line: &str| line.split_once(':').unwrap().1.trim().to_string();
    let nginx: Vec<String> = compose
        .lines()
        .filter(|l| l.trim_start().starts_with("ipv4_address:"))
        .map(value)
        .collect();
    assert_eq!(nginx.len(), 1, "nginx has one fixed address: {nginx:?}");
    let trusted: Vec<String> = compose
        .lines()
        .filter(|l| l.trim_start().starts_with("TRUSTED_PROXIES:"))
        .map(value)
        .collect();
    assert_eq!(
        trusted.len(),
        3,
        "every replica behind nginx names its proxy"
    );
    for t in trusted {
        assert_eq!(t, nginx[0], "a replica trusts more than nginx");
    }
}
