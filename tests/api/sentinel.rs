//! Redis Sentinel: a master, a replica and three sentinels, started by the test; master and
//! replica require a password. The behaviour suite runs on it, and token-server follows the new
//! master after a failover.

use crate::support::process::ServerProcess;
use crate::support::sentinel::{MASTER, PASSWORD, TestSentinel, query};
use crate::support::*;
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        let cycled = app.full_cycle_or_unavailable(&CITIZEN).await;
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
                .sentinel_ports()
                .into_iter()
                .map(|p| (p, setup.sentinel_url(p), None)),
        );
    for (port, url, password) in nodes {
        assert!(
            matches!(query(&url, tls, &["PING"]), Ok(redis::Value::SimpleString(ref s)) if s == "PONG"),
            "{url} answers PING over TLS"
        );
        assert!(
            !answers_plain_ping(port, password),
            "port {port} answers without TLS"
        );
    }
    let (sentinels, ca) = (
        setup.sentinels_setting(),
        material.path().join("ca.crt").display().to_string(),
    );
    let server = ServerProcess::start(&[
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
    let login = server
        .password_login(EMPLOYEE.name, EMPLOYEE.password, [("tenantId", "pb")])
        .await;
    assert_eq!(login.status(), StatusCode::OK);
    let tokens = Tokens::from(login.json::<serde_json::Value>().await.unwrap());
    assert_eq!(server.validate(&tokens.access).await, StatusCode::OK);
    let refreshed = server.refresh(&tokens.refresh).await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    // Without the CA the sentinels' certificates are not trusted: unreachable, not bypassed.
    let untrusting = ServerProcess::start(&[
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
