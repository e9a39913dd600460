//! What the servers find when they start: users files (bcrypt cost 10 and cost 4) and live
//! sessions written straight through the library's store, under a chosen key prefix.

use std::path::{Path, PathBuf};
use std::time::Duration;
use token_server::config::TokenSecret;
use token_server::domain::session::{Generation, NewSession, SessionPolicy, Started};
use token_server::domain::token::UserTag;
use token_server::redis_io::{Keys, RedisConn};
use token_server::store::Store;
use token_server::store::redis::RedisStore;

/// The user record every seeded session carries: a details answer's body (337 bytes), and
/// ceiling (0)'s fixed answer.
pub const USER_JSON: &str = include_str!("user.json");

/// The password of every seeded user.
pub const PASSWORD: &str = "bench-password";

/// The uuid of the cost-4 user `bench4` (its sessions are keyed by it).
pub const BENCH4_UUID: &str = "bench-bench4";

/// A users file of `bench10` (bcrypt cost 10) and `bench4` (cost 4), or of `bench4` alone.
pub fn users_file(dir: &Path, with_cost_10: bool) -> PathBuf {
    let user = |name: &str, cost: u32, id: u32| {
        let mut u: serde_json::Value = serde_json::from_str(USER_JSON).expect("user JSON");
        u["id"] = id.into();
        u["uuid"] = format!("bench-{name}").into();
        u["userName"] = name.into();
        u["password"] = bcrypt::hash(PASSWORD, cost).expect("bcrypt").into();
        u
    };
    let mut users = vec![user("bench4", 4, 2)];
    if with_cost_10 {
        users.push(user("bench10", 10, 1));
    }
    let path = dir.join(if with_cost_10 {
        "users.json"
    } else {
        "users-cost-4.json"
    });
    let users = serde_json::Value::from(users);
    std::fs::write(&path, users.to_string()).expect("users file");
    path
}

/// The library's store on `redis_url` under `prefix`, with no read lease (seeding never
/// waits) and no session cap.
pub fn store(redis_url: &str, prefix: &str) -> Store {
    let policy = SessionPolicy {
        access: Duration::from_secs(3600),
        refresh: Duration::from_secs(20160 * 60),
        rotation: true,
        reuse_grace: Duration::from_secs(5),
        max_lifetime: None,
        max_sessions_per_user: 0,
    };
    let conn = RedisConn::single(redis_url, Duration::from_secs(5), None).expect("redis URL");
    Store::redis(
        RedisStore::new(conn, prefix),
        policy,
        &TokenSecret::random(),
    )
}

/// Starts one session of `user_uuid`; its access and refresh tokens.
pub async fn issue(store: &Store, user_uuid: String) -> Option<(String, String)> {
    let session = NewSession {
        user_uuid,
        user_json: USER_JSON.to_string(),
        client_id: "egov-user-client".into(),
        scope: "read".into(),
        ip: "127.0.0.1".into(),
        user_agent: "token-server-bench".into(),
        generation: Generation::default(),
    };
    match store.issue_session(&session).await {
        Ok(Started::Issued(issued, _)) => {
            Some((issued.pair.access.expose(), issued.pair.refresh.expose()))
        }
        _ => None,
    }
}

/// Starts `count` sessions spread over `users` users (`bench-user-N`, from `offset`), 256
/// at a time.
pub async fn sessions(
    store: &Store,
    count: usize,
    users: usize,
    offset: usize,
) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(count);
    let mut batch = vec![];
    for i in 0..count {
        let store = store.clone();
        let user = format!("bench-user-{}", (offset + i) % users);
        batch.push(tokio::spawn(async move { issue(&store, user).await }));
        if batch.len() == 256 || i + 1 == count {
            for t in batch.drain(..) {
                if let Ok(Some(pair)) = t.await {
                    out.push(pair);
                }
            }
        }
    }
    out
}

/// The access tokens of `count` sessions over `users` users.
pub async fn access_tokens(store: &Store, count: usize, users: usize) -> Vec<String> {
    let pairs = sessions(store, count, users, 0).await;
    pairs.into_iter().map(|(a, _)| a).collect()
}

/// The refresh tokens of `count` sessions, one user each (from `offset`): one chain per
/// connection. A rotated refresh token cannot be used twice, so each round needs its own.
pub async fn refresh_tokens(store: &Store, count: usize, offset: usize) -> Vec<String> {
    let pairs = sessions(store, count, count, offset).await;
    pairs.into_iter().map(|(_, r)| r).collect()
}

/// Starts sessions of the user with `uuid` until it holds `cap`: its next login ends one.
pub async fn fill_to(
    store: &Store,
    conn: &mut redis::Connection,
    prefix: &str,
    uuid: &str,
    cap: usize,
) {
    let have = live_sessions(conn, prefix, uuid);
    for _ in have..cap {
        let _ = issue(store, uuid.to_string()).await;
    }
}

/// Entries in the session index of the user with `uuid` under `prefix`.
pub fn live_sessions(conn: &mut redis::Connection, prefix: &str, uuid: &str) -> usize {
    let key = Keys::new(prefix).user_sessions(&UserTag::for_user(uuid));
    redis::cmd("ZCARD").arg(key).query(conn).unwrap_or(0)
}

/// `INFO memory` `used_memory`.
pub fn used_memory(conn: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(conn)
        .expect("INFO memory");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO")
}
