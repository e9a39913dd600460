//! The behaviour suite and failover on a real Redis Cluster (3 masters, 3 replicas).

use crate::support::cluster::TestCluster;
use crate::support::*;
use reqwest::StatusCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_behaviour_suite_passes_on_a_redis_cluster() {
    let kind = StoreKind::Cluster(Arc::new(TestCluster::start()));
    run_behaviour_suite(kind).await;
}

/// The session id of a token as keys name it.
fn session_key_part(token: &str) -> String {
    session_of(token).id.key_part()
}

/// The keys that hold the session of `access`, found by what they hold rather than by how they
/// are named: the hash and the string named after the session id, the sorted set that lists
/// the session, and the snapshot of its user (a string holding the user's JSON).
fn keys_of_session(cluster: &TestCluster, prefix: &str, access: &str, uuid: &str) -> Vec<String> {
    let sid = session_key_part(access);
    let mut found = vec![];
    for p in cluster.masters() {
        let mut c = cluster.node(p);
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query(&mut c)
            .unwrap();
        for key in keys {
            let kind: String = redis::cmd("TYPE").arg(&key).query(&mut c).unwrap();
            let holds_session = match kind.as_str() {
                "hash" => key.contains(&sid),
                "zset" => redis::cmd("ZRANGE")
                    .arg(&key)
                    .arg(0)
                    .arg(-1)
                    .query::<Vec<String>>(&mut c)
                    .unwrap()
                    .contains(&sid),
                "string" => {
                    let value: String = redis::cmd("GET").arg(&key).query(&mut c).unwrap();
                    key.contains(&sid)
                        || serde_json::from_str::<serde_json::Value>(&value)
                            .is_ok_and(|v| v["uuid"] == uuid)
                }
                _ => false,
            };
            if holds_session {
                found.push((kind, key));
            }
        }
    }
    found.sort();
    let kinds: Vec<&str> = found.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        ["hash", "string", "string", "zset"],
        "session hash, access key, user snapshot and user index: {found:?}"
    );
    found.into_iter().map(|(_, key)| key).collect()
}

fn key_slot(cluster: &TestCluster, key: &str) -> i64 {
    redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query(&mut cluster.node(cluster.ports[0]))
        .unwrap()
}

/// The port of the running master that holds `key` (the others answer MOVED).
fn master_holding(cluster: &TestCluster, key: &str) -> u16 {
    cluster
        .masters()
        .into_iter()
        .find(|p| {
            redis::cmd("EXISTS")
                .arg(key)
                .query::<bool>(&mut cluster.node(*p))
                .unwrap_or(false)
        })
        .unwrap_or_else(|| panic!("no master holds {key}"))
}

#[tokio::test]
async fn a_users_session_keys_share_one_slot_users_spread_over_slots_and_every_key_expires() {
    let cluster = Arc::new(TestCluster::start());
    let app = TestApp::spawn(&StoreKind::Cluster(cluster.clone())).await;
    let mut slots = vec![];
    for (i, seed) in [&EMPLOYEE, &CITIZEN, &TWIN_PB, &TWIN_MZ].iter().enumerate() {
        let tokens = app.login_ok(seed).await;
        // A refresh rewrites the session's keys: they must stay together.
        let tokens = if i == 0 {
            app.refresh_ok(&tokens.refresh).await
        } else {
            tokens
        };
        let uuid = format!("uuid-{}-{}", seed.tenant, seed.name);
        let keys = keys_of_session(&cluster, &app.prefix, &tokens.access, &uuid);
        // Every key one script touches sits in one slot, else the cluster refuses the script.
        let slot = key_slot(&cluster, &keys[0]);
        for key in &keys {
            assert_eq!(
                key_slot(&cluster, key),
                slot,
                "{key} of {}: {keys:?}",
                seed.name
            );
        }
        slots.push(slot);
    }
    // Users are spread over the cluster, not all piled on one slot (and one master).
    slots.dedup();
    assert!(slots.len() > 1, "every user's keys are in slot {slots:?}");
    for p in cluster.masters() {
        let mut c = cluster.node(p);
        let found: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", app.prefix))
            .query(&mut c)
            .unwrap();
        for key in found {
            let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut c).unwrap();
            assert!(ttl > 0, "{key} has no TTL");
        }
    }
}

#[tokio::test]
async fn service_resumes_after_a_master_fails_over() {
    let mut cluster = TestCluster::start();
    let nodes = cluster.nodes_setting();
    let options = Options::default()
        .with("REDIS_CLUSTER_NODES", nodes)
        .with("login.max.attempts.per.ip.per.minute", 0);
    let app = TestApp::spawn_on(None, options).await;
    let before = app.login_ok(&CITIZEN).await;
    let keys = keys_of_session(&cluster, &app.prefix, &before.access, "uuid-pb-9999999999");
    // The master that fails is the one holding the citizen's sessions.
    let victim = master_holding(&cluster, &keys[0]);
    // Replication is asynchronous: let the replicas catch up, so this session must survive.
    cluster.wait_for_replication(Duration::from_secs(10));

    // A gateway validating the session from before, and a stream of logins, validations and
    // refreshes, while the master dies: every answer is a 200 or the documented 503, never a
    // 401 that would log a user out.
    let stop = Arc::new(AtomicBool::new(false));
    // Cycles of the stream that got 200s throughout.
    let ok = Arc::new(AtomicU32::new(0));
    let app = Arc::new(app);
    let stream = {
        let (app, stop, ok) = (app.clone(), stop.clone(), ok.clone());
        let kept = before.access.clone();
        tokio::spawn(async move {
            let mut unavailable = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let validated = ok_or_unavailable(app.details(&kept).await, "details")
                    .await
                    .is_some();
                let cycled = app.full_cycle_or_unavailable(&CITIZEN).await;
                if validated && cycled {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    unavailable += 1
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            unavailable
        })
    };
    // The stream runs before the master dies, and again after the cluster has settled.
    let ok_cycle_after = |done: u32| {
        let ok = ok.clone();
        eventually(Duration::from_secs(30), move || {
            std::future::ready(ok.load(Ordering::Relaxed) > done)
        })
    };
    assert!(
        ok_cycle_after(0).await,
        "the stream works before the failover"
    );
    let killed_at = Instant::now();
    cluster.kill(victim);

    let recovered = eventually(Duration::from_secs(30), || {
        app.full_cycle_or_unavailable(&CITIZEN)
    })
    .await;
    assert!(
        recovered,
        "service resumes after the replica takes over, without a restart"
    );
    eprintln!("recovered {:?} after the master died", killed_at.elapsed());
    cluster.wait_until_ok(Duration::from_secs(20));
    let settled = ok_cycle_after(ok.load(Ordering::Relaxed)).await;
    stop.store(true, Ordering::Relaxed);
    let unavailable = stream
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let ok = ok.load(Ordering::Relaxed);
    assert!(settled, "the stream works after the failover");
    eprintln!("the stream: {ok} cycles ok, {unavailable} met a 503");
    assert!(
        ok > 0,
        "the stream made progress ({ok} ok, {unavailable} with a 503)"
    );
    // Else the stream never met the failover and its checks above proved nothing.
    assert!(
        unavailable > 0,
        "the stream saw the failover as 503s ({ok} ok)"
    );
    // A session from before the failover still works.
    assert_eq!(app.details_status(&before.access).await, StatusCode::OK);
    app.refresh_ok(&before.refresh).await;
}

#[tokio::test]
async fn a_tls_cluster_with_a_private_ca_serves_sessions() {
    let material = tempfile::tempdir().unwrap();
    tls_material(material.path());
    let cluster = Arc::new(TestCluster::start_tls(material.path()));
    // Every node speaks TLS only: it answers a client with the CA, and a plain client gets
    // nothing, so a server that works through these ports talks TLS.
    for port in &cluster.ports {
        let pong: String = redis::cmd("PING").query(&mut cluster.node(*port)).unwrap();
        assert_eq!(pong, "PONG");
        assert!(
            !answers_plain_ping(*port, Some(crate::support::cluster::PASSWORD)),
            "node {port} answers without TLS"
        );
    }
    let ca = material.path().join("ca.crt").display().to_string();
    let options = Options::default().with("REDIS_TLS_CA_FILE", &ca);
    let app = TestApp::spawn_with(&StoreKind::Cluster(cluster.clone()), options).await;
    let tokens = app.login_ok(&EMPLOYEE).await;
    assert_eq!(app.details_status(&tokens.access).await, StatusCode::OK);
    let renewed = app.refresh_ok(&tokens.refresh).await;
    assert_eq!(app.logout(&renewed.access).await.status(), StatusCode::OK);
    assert_eq!(
        app.details_status(&renewed.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        !cluster.keys(&app.prefix).is_empty(),
        "sessions live in the cluster"
    );
}
