//! The behaviour suite and failover on a real Redis Cluster (3 masters, 3 replicas).

use crate::cluster_harness::TestCluster;
use crate::helpers::*;
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_behaviour_suite_passes_on_a_redis_cluster() {
    let kind = StoreKind::Cluster(Arc::new(TestCluster::start()));
    run_behaviour_suite(kind).await;
}

#[tokio::test]
async fn session_keys_stay_in_one_slot_and_every_key_expires() {
    let cluster = Arc::new(TestCluster::start());
    let app = TestApp::spawn(&StoreKind::Cluster(cluster.clone())).await;
    let tokens = app.login_ok(&EMPLOYEE).await;
    app.refresh_ok(&tokens.refresh).await;
    app.login_ok(&CITIZEN).await;
    let keys = cluster.keys(&app.prefix);
    assert!(keys.len() >= 8, "{keys:?}");
    let mut conn = cluster.node(cluster.ports[0]);
    for key in keys.iter().filter(|k| k.contains(":{")) {
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut conn)
            .unwrap();
        let tag = &key[key.find('{').unwrap()..=key.find('}').unwrap()];
        let tag_slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(tag)
            .query(&mut conn)
            .unwrap();
        assert_eq!(slot, tag_slot, "{key}");
    }
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
    let before = app.login_ok(&EMPLOYEE).await;
    // Replication is asynchronous: let the replicas catch up, so this session must survive.
    cluster.wait_for_replication(Duration::from_secs(10));

    // A stream of logins, refreshes and validations while a master dies.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let app = Arc::new(app);
    let stream = {
        let (app, stop) = (app.clone(), stop.clone());
        tokio::spawn(async move {
            let (mut ok, mut failed, mut unexpected) = (0u32, 0u32, Vec::<StatusCode>::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let res = app.login(&CITIZEN).await;
                let good = res.status() == StatusCode::OK;
                if good {
                    let t = Tokens::from(res.json::<serde_json::Value>().await.unwrap());
                    let good = app.details_status(&t.access).await == StatusCode::OK
                        && app.refresh(&t.refresh).await.status() == StatusCode::OK;
                    if good { ok += 1 } else { failed += 1 }
                } else {
                    if res.status() != StatusCode::SERVICE_UNAVAILABLE {
                        unexpected.push(res.status());
                    }
                    failed += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (ok, failed, unexpected)
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let victim = cluster.masters()[0];
    let killed_at = Instant::now();
    cluster.kill(victim);

    let recovered = eventually(Duration::from_secs(30), || app.full_cycle_works(&CITIZEN)).await;
    assert!(
        recovered,
        "service resumes after the replica takes over, without a restart"
    );
    eprintln!("recovered {:?} after the master died", killed_at.elapsed());
    cluster.wait_until_ok(Duration::from_secs(20));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed, unexpected) = stream.await.unwrap();
    assert!(
        ok > 0,
        "the stream made progress ({ok} ok, {failed} failed)"
    );
    assert!(
        unexpected.is_empty(),
        "logins failed only with 503 while failing over: {unexpected:?}"
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
    let ca = material.path().join("ca.crt").display().to_string();
    let options = Options::default().with("REDIS_TLS_CA_FILE", &ca);
    let app = TestApp::spawn_with(&StoreKind::Cluster(cluster.clone()), options).await;
    assert!(cluster.nodes_setting().starts_with("rediss://"));
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
