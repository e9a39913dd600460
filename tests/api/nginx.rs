//! Three token-server processes behind nginx, sharing one Redis, while one replica is killed
//! and later restarted. What the clients saw is counted: no session lost, no token accepted
//! after its logout, errors only for requests in flight on the killed replica.

use crate::support::nginx::Nginx;
use crate::support::process::ServerProcess;
use crate::support::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

#[tokio::test]
async fn nginx_keeps_tokens_out_of_its_logs() {
    // The upstream refuses connections (a port that was bound and released: nothing listens
    // there), so nginx logs an upstream failure for each request.
    let nginx = Nginx::balancer(&[free_port()]);
    let token = "A".repeat(87);
    let http = reqwest::Client::new();
    for path in ["/user/_details", "/user/_logout"] {
        let res = http
            .post(format!("{}{path}?access_token={token}", nginx.base()))
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
        ServerProcess::try_start(&refs)
    };
    // Port 0: each replica binds a free port and names it in its log.
    let mut replicas: Vec<Option<ServerProcess>> = (0..3)
        .map(|_| Some(start(0).unwrap_or_else(|log| panic!("a replica did not start:\n{log}"))))
        .collect();
    let mut ports: Vec<u16> = replicas.iter().flatten().map(ServerProcess::port).collect();
    let nginx = Nginx::balancer(&ports);
    let base = nginx.base();
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

    let cycles = || seen.cycles.load(Ordering::Relaxed);
    // Each phase lasts until the clients have done this many more cycles.
    const PHASE: u32 = 30;
    let progress = |from: u32| async move {
        eventually(Duration::from_secs(30), || async {
            cycles() >= from + PHASE
        })
        .await
    };
    assert!(progress(0).await, "clients make progress");
    let before_kill = cycles();
    // SIGKILL: a crash, with requests in flight.
    replicas[1].take();
    // nginx finds out when a request to it fails (and marks it down for fail_timeout).
    let dead = format!("127.0.0.1:{}", ports[1]);
    let noticed = eventually(Duration::from_secs(30), || async {
        nginx.logs().lines().any(|l| {
            l.split_once(" upstream=")
                .and_then(|(_, upstream)| upstream.split_once(" upstream_status="))
                .is_some_and(|(addresses, statuses)| {
                    addresses.contains(&dead) && statuses.contains("502")
                })
        })
    })
    .await;
    assert!(noticed, "nginx saw the replica fail:\n{}", nginx.logs());
    assert!(
        progress(cycles()).await,
        "clients make progress while a replica is down"
    );
    let while_down = cycles() - before_kill;
    // It comes back on its port, where nginx expects it; should another process have taken
    // that port meanwhile, it comes back on a new one and nginx is pointed there.
    let back = match start(ports[1]) {
        Ok(replica) => replica,
        Err(_) => {
            let replica =
                start(0).unwrap_or_else(|log| panic!("the replica did not restart:\n{log}"));
            ports[1] = replica.port();
            nginx.point_at(&ports);
            replica
        }
    };
    replicas[1] = Some(back);
    let restarted = replicas[1].as_ref().unwrap();
    // nginx tries it again after fail_timeout (2 s).
    let serving = eventually(Duration::from_secs(30), || async {
        restarted.log().contains("/user/")
    })
    .await;
    assert!(serving, "the restarted replica serves again");
    assert!(
        progress(cycles()).await,
        "clients make progress after the restart"
    );
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
