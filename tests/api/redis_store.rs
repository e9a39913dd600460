//! What the Redis store leaves in Redis, users read from Redis hashes, and how the server
//! behaves while Redis is down.

use crate::support::*;
use redis::Commands;
use reqwest::StatusCode;
use std::time::Duration;

#[tokio::test]
async fn every_key_has_a_ttl_and_no_token_is_stored() {
    let options = Options::lifetimes(5.0, 60.0);
    let app = TestApp::spawn_with(&StoreKind::Redis, options).await;
    let mut issued = vec![];
    for seed in [&EMPLOYEE, &CITIZEN, &EMPLOYEE] {
        let t = app.login_ok(seed).await;
        issued.push(t.access.clone());
        issued.push(t.refresh.clone());
    }
    let kept = app.login_ok(&CITIZEN).await;
    let rotated = app.refresh_ok(&kept.refresh).await;
    issued.extend([
        kept.access,
        kept.refresh,
        rotated.access.clone(),
        rotated.refresh.clone(),
    ]);
    let ended = app.login_ok(&EMPLOYEE).await;
    app.logout(&ended.access).await;
    issued.extend([ended.access, ended.refresh]);

    let mut conn = app.redis().conn();
    let keys = app.keys();
    // 4 live sessions (2 keys each) and one index per user.
    assert_eq!(
        keys.iter().filter(|k| k.contains(":s:")).count(),
        4,
        "{keys:?}"
    );
    assert_eq!(
        keys.iter().filter(|k| k.contains(":a:")).count(),
        4,
        "{keys:?}"
    );
    assert_eq!(
        keys.iter().filter(|k| k.ends_with(":i")).count(),
        2,
        "{keys:?}"
    );
    assert_eq!(
        keys.iter().filter(|k| k.ends_with(":u")).count(),
        2,
        "{keys:?}"
    );
    // Session hashes stay in Redis's compact encoding (no value over 64 bytes).
    for key in keys.iter().filter(|k| k.contains(":s:")) {
        let encoding: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(key)
            .query(&mut conn)
            .unwrap();
        assert_eq!(encoding, "listpack", "{key}");
    }
    for key in &keys {
        let ttl: i64 = conn.pttl(key).unwrap();
        assert!(ttl > 0, "{key} has no TTL ({ttl})");
        let expected = if key.contains(":a:") {
            5 * 60_000
        } else if key.contains(":ip:") {
            60_000
        } else {
            60 * 60_000
        };
        // A refreshed session's key, its user's index and snapshot outlive the session by up
        // to a quarter of the refresh validity, so refreshes seldom need to extend them.
        let slack = if key.ends_with(":i") || key.ends_with(":u") || key.contains(":s:") {
            15 * 60_000
        } else {
            0
        };
        assert!(
            ttl <= expected + slack && ttl > expected - 10_000,
            "{key}: TTL {ttl} ms, expected about {expected}"
        );
    }
    let everything = every_key_and_value(&mut conn);
    assert!(everything.len() >= keys.len() * 2, "{keys:?}");
    for token in &issued {
        for (form, needle) in token_forms(token) {
            assert!(
                !everything
                    .iter()
                    .any(|stored| stored.windows(needle.len()).any(|w| w == needle)),
                "a token's {form} is stored in Redis"
            );
        }
    }
    for seed in SEEDS {
        let password = seed.password.as_bytes();
        assert!(
            !everything
                .iter()
                .any(|stored| stored.windows(password.len()).any(|w| w == password)),
            "a password is stored in Redis"
        );
    }
}

/// Every key of the Redis `conn` talks to and every value, member and field in it, as bytes.
fn every_key_and_value(conn: &mut redis::Connection) -> Vec<Vec<u8>> {
    let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(conn).unwrap();
    let mut all = vec![];
    for key in keys {
        let kind: String = redis::cmd("TYPE").arg(&key).query(conn).unwrap();
        match kind.as_str() {
            "string" => all.push(conn.get::<_, Vec<u8>>(&key).unwrap()),
            "hash" => {
                for (field, value) in conn.hgetall::<_, Vec<(Vec<u8>, Vec<u8>)>>(&key).unwrap() {
                    all.extend([field, value]);
                }
            }
            "zset" => all.extend(conn.zrange::<_, Vec<Vec<u8>>>(&key, 0, -1).unwrap()),
            "set" => all.extend(conn.smembers::<_, Vec<Vec<u8>>>(&key).unwrap()),
            other => panic!(
                "unexpected type {other} at {}",
                String::from_utf8_lossy(&key)
            ),
        }
        all.push(key);
    }
    all
}

/// Every form in which a store might keep `token` or its secret, by name. A token is 65 bytes
/// in URL-safe base64: a kind byte, the user tag (16), the session id (16) and 32 random bytes.
/// The tag and the session id locate a session's keys and appear in their names (22
/// characters of URL-safe base64 each), so they alone are not searched for; the whole token
/// and its random part are, in every usual encoding.
fn token_forms(token: &str) -> Vec<(String, Vec<u8>)> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let raw = URL_SAFE_NO_PAD.decode(token).unwrap();
    assert_eq!(raw.len(), 65, "{token}");
    let mut forms = vec![];
    for (part, bytes) in [("whole token", &raw[..]), ("random part", &raw[33..])] {
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        forms.extend([
            (
                format!("{part} in URL-safe base64"),
                URL_SAFE_NO_PAD.encode(bytes).into_bytes(),
            ),
            // Without padding, so a padded copy is found too.
            (
                format!("{part} in standard base64"),
                STANDARD_NO_PAD.encode(bytes).into_bytes(),
            ),
            (format!("{part} in lowercase hex"), hex.clone().into_bytes()),
            (
                format!("{part} in uppercase hex"),
                hex.to_uppercase().into_bytes(),
            ),
            (format!("{part} as raw bytes"), bytes.to_vec()),
        ]);
    }
    assert_eq!(forms[0].1, token.as_bytes());
    forms
}

#[tokio::test]
async fn a_session_whose_key_outlives_it_is_over_everywhere() {
    // Refresh tokens live 7.2 s; a refreshed session's key lives a quarter of that (1.8 s)
    // longer, which leaves the checks below room on a loaded machine.
    let options = Options::lifetimes(0.06, 0.12);
    let app = TestApp::spawn_with(&StoreKind::Redis, options).await;
    let first = app.login_ok(&EMPLOYEE).await;
    let rotated = app.refresh_ok(&first.refresh).await;
    let session_key = app.key_names().session(&session_of(&rotated.access));
    assert!(
        app.redis().conn().pttl::<_, i64>(&session_key).unwrap() > 7_200,
        "the refreshed session's key lives past its refresh token"
    );
    app.wait_until_expired(&rotated.access, &rotated.refresh, Duration::from_secs(20))
        .await;
    let mut conn = app.redis().conn();
    assert!(
        conn.exists::<_, bool>(&session_key).unwrap(),
        "the key outlives the session"
    );
    let res = app.refresh(&rotated.refresh).await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let introspected: serde_json::Value = app
        .post_form_as(
            "/oauth/introspect",
            &basic("gateway", GATEWAY_SECRET),
            &[("token", rotated.refresh.as_str())],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(introspected["active"], false);
    // Nor is it one of the user's sessions, to list or to end.
    let fresh = app.login_ok(&EMPLOYEE).await;
    let listed: serde_json::Value = app.sessions_of(&fresh.access).await;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 1, "{listed}");
    let all: serde_json::Value = app
        .post_form_as(
            "/user/_logout_all",
            BASIC_DIGIT,
            &[("access_token", fresh.access.as_str())],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(all["sessionsEnded"], 1, "{all}");
}

#[tokio::test]
async fn the_user_index_forgets_ended_and_expired_sessions() {
    // Access tokens live 3 s, refresh tokens 6 s.
    let options = Options::lifetimes(0.05, 0.1);
    let app = TestApp::spawn_with(&StoreKind::Redis, options).await;
    let old = app.login_ok(&EMPLOYEE).await;
    let ended = app.login_ok(&EMPLOYEE).await;
    app.logout(&ended.access).await;
    let index_key = app.key_names().user_sessions(&session_of(&old.access).tag);
    let mut conn = app.redis().conn();
    assert_eq!(
        conn.zcard::<_, usize>(&index_key).unwrap(),
        1,
        "logout removes its entry"
    );
    // Once the old session's access token has expired, a new session starts: it outlives
    // the old one by about 3 s.
    let access_expired = eventually(Duration::from_secs(10), || async {
        app.details_status(&old.access).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(access_expired, "the old access token expires");
    let newer = app.login_ok(&EMPLOYEE).await;
    assert_eq!(conn.zcard::<_, usize>(&index_key).unwrap(), 2);
    app.wait_until_expired(&old.access, &old.refresh, Duration::from_secs(10))
        .await;
    // The first session has expired; the next login prunes it from the index.
    assert!(app.is_active(&newer.refresh).await);
    app.login_ok(&EMPLOYEE).await;
    assert_eq!(conn.zcard::<_, usize>(&index_key).unwrap(), 2);
    let ttl: i64 = conn.pttl(&index_key).unwrap();
    assert!(
        ttl > 3000 && ttl <= 6000,
        "index TTL follows its latest session: {ttl}"
    );
}

fn store_user(app: &TestApp, seed: &Seed, id: i64, active: bool, name: &str) {
    let hash = bcrypt::hash(seed.password, 4).unwrap();
    let mut record = user_json(seed, id as usize);
    record["password"] = hash.into();
    record["active"] = active.into();
    record["name"] = name.into();
    let user: token_server::domain::user::User = serde_json::from_value(record).unwrap();
    let fields = token_server::users::redis::to_fields(&user);
    let mut conn = app.redis().conn();
    let key = app.key_names().user(seed.tenant, seed.name);
    let _: () = conn.del(&key).unwrap();
    let _: () = conn.hset_multiple(&key, &fields).unwrap();
    let _: () = conn
        .sadd(app.key_names().user_tenants(seed.name), seed.tenant)
        .unwrap();
}

#[tokio::test]
async fn users_in_redis_hashes_can_log_in_and_changes_apply_at_once() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    let newcomer = Seed {
        name: "redis-user",
        tenant: "pb.amritsar",
        password: "Redis-User-Pass-6",
        user_type: "CITIZEN",
        active: true,
    };
    assert_oauth_error(
        app.login(&newcomer).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    store_user(&app, &newcomer, 77, true, "From Redis");
    let tokens = app.login_ok(&newcomer).await;
    assert_eq!(tokens.body["UserRequest"]["id"], 77);
    assert_eq!(tokens.body["UserRequest"]["name"], "From Redis");
    // Without a tenant, the user-tenants set finds it.
    let res = app
        .password_login(newcomer.name, newcomer.password, [])
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    store_user(&app, &newcomer, 77, false, "From Redis");
    let body = assert_oauth_error(
        app.login(&newcomer).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["error_description"], "Please activate your account");

    // A Redis record overrides the seed record of the same tenant and name.
    store_user(&app, &EMPLOYEE, 1, true, "Renamed In Redis");
    let tokens = app.login_ok(&EMPLOYEE).await;
    assert_eq!(tokens.body["UserRequest"]["name"], "Renamed In Redis");

    // A malformed record is skipped, not a server error.
    let mut conn = app.redis().conn();
    let key = app.key_names().user("pb", CITIZEN.name);
    let _: () = conn.hset(&key, "id", "not-a-number").unwrap();
    let res = app.login(&CITIZEN).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the seed record still applies"
    );
}

#[tokio::test]
async fn redis_outage_answers_503_and_service_resumes_when_redis_returns() {
    let mut app = TestApp::spawn(&StoreKind::Redis).await;
    let tokens = app.login_ok(&EMPLOYEE).await;

    std::sync::Arc::get_mut(app.redis.as_mut().unwrap())
        .unwrap()
        .stop();
    let res = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "DOWN"
    );
    let res = app.client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the process itself is alive");

    // Gateways must see 503, not 401: a Redis blip must not log everyone out.
    let res = app.details(&tokens.access).await;
    assert!(res.headers().contains_key("retry-after"));
    assert_oauth_error(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    )
    .await;
    for res in [
        app.login(&EMPLOYEE).await,
        app.refresh(&tokens.refresh).await,
        app.logout(&tokens.access).await,
    ] {
        assert_eq!(res.headers()["retry-after"], "1");
        assert_oauth_error(
            res,
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
        )
        .await;
    }

    std::sync::Arc::get_mut(app.redis.as_mut().unwrap())
        .unwrap()
        .restart();
    let recovered = eventually(Duration::from_secs(10), || async {
        app.login(&EMPLOYEE).await.status() == StatusCode::OK
    })
    .await;
    assert!(
        recovered,
        "logins work again after Redis restarts, without restarting the server"
    );
    let res = app.client.get(app.url("/ready")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        app.full_cycle_works(&EMPLOYEE).await,
        "login, validation and refresh work again"
    );
}

#[tokio::test]
async fn validation_on_every_worker_rides_over_a_redis_restart() {
    // Each worker has its own Redis connection; none may be left holding a dead one.
    let redis = std::sync::Arc::new(TestRedis::start_with_aof());
    let mut app = TestApp::spawn_on(Some(redis), Options::default()).await;
    let tokens = app.login_ok(&EMPLOYEE).await;
    // A new TCP connection per request: the server hands accepted connections to its workers
    // in turn, so consecutive requests reach every worker.
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = app.url("/user/_details");
    let details = || async {
        fresh
            .get(&url)
            .bearer_auth(&tokens.access)
            .send()
            .await
            .unwrap()
            .status()
    };
    for _ in 0..6 {
        assert_eq!(details().await, StatusCode::OK);
    }

    std::sync::Arc::get_mut(app.redis.as_mut().unwrap())
        .unwrap()
        .restart();
    // Each worker's first command finds its connection dead; a validation is a read, sent
    // again on the new connection, so a gateway never sees the restart.
    let mut seen = vec![];
    for _ in 0..12 {
        seen.push(details().await);
    }
    assert!(seen.iter().all(|s| *s == StatusCode::OK), "{seen:?}");
}

#[tokio::test]
async fn sessions_survive_a_redis_restart_with_aof() {
    let redis = std::sync::Arc::new(TestRedis::start_with_aof());
    let mut app = TestApp::spawn_on(Some(redis), Options::default()).await;
    let kept = app.login_ok(&EMPLOYEE).await;
    let ended = app.login_ok(&CITIZEN).await;
    app.logout(&ended.access).await;

    std::sync::Arc::get_mut(app.redis.as_mut().unwrap())
        .unwrap()
        .restart();
    // The first validations after the restart answer 200 or the documented 503, never a 401.
    let back = eventually(Duration::from_secs(10), || async {
        ok_or_unavailable(app.details(&kept.access).await, "details")
            .await
            .is_some()
    })
    .await;
    assert!(
        back,
        "a session issued before the restart still validates after it"
    );
    let renewed = app.refresh_ok(&kept.refresh).await;
    assert_eq!(app.details_status(&renewed.access).await, StatusCode::OK);
    // An ended session stays ended.
    app.assert_session_ended(&ended).await;
}

#[tokio::test]
async fn redis_auth_is_used_and_a_wrong_password_is_a_503_not_a_crash() {
    let redis = std::sync::Arc::new(TestRedis::start_with_password("s3cret-redis-pw"));
    let app = TestApp::spawn_on(Some(redis.clone()), Options::default()).await;
    let tokens = app.login_ok(&EMPLOYEE).await;
    assert_eq!(app.details_status(&tokens.access).await, StatusCode::OK);

    let wrong = redis.url().replace("s3cret-redis-pw", "wrong-pw");
    let options = Options::default().with("REDIS_URL", wrong);
    let misconfigured = TestApp::spawn_on(None, options).await;
    let res = misconfigured
        .client
        .get(misconfigured.url("/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let res = misconfigured.login(&EMPLOYEE).await;
    assert_oauth_error(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
    )
    .await;
}

#[tokio::test]
async fn rediss_with_a_private_ca_works_and_an_unknown_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    tls_material(dir.path());
    let redis = TestRedis::start_tls_with(Some(dir.path()), &["--save", "", "--appendonly", "no"]);
    let url = redis.url();
    let ca = dir.path().join("ca.crt").display().to_string();
    let trusted = TestApp::spawn_on(
        None,
        Options::default()
            .with("REDIS_URL", &url)
            .with("REDIS_TLS_CA_FILE", &ca),
    )
    .await;
    let tokens = trusted.login_ok(&EMPLOYEE).await;
    assert_eq!(trusted.details_status(&tokens.access).await, StatusCode::OK);
    trusted.refresh_ok(&tokens.refresh).await;

    // Without the CA the certificate is not trusted: the store is unreachable, not bypassed.
    let untrusting = TestApp::spawn_on(None, Options::default().with("REDIS_URL", &url)).await;
    let res = untrusting
        .client
        .get(untrusting.url("/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}
