//! What every scenario family shares: a private redis-server, the token-servers on it in
//! their configurations, the ceiling servers, and the sessions seeded for them. Each
//! differently configured server has its own key prefix, since replicas on one Redis and
//! prefix must run one `VALIDATION_LEASE_MS` (the server refuses to start otherwise).

use crate::args::{Args, Timing};
use crate::procs::{self, Proc};
use crate::seed;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use token_server::store::Store;

/// The key prefix of the servers with the default lease (and of the 100k pair).
pub const PREFIX: &str = "ts";
/// The key prefix of the servers with `VALIDATION_LEASE_MS=0`.
pub const BARRIER_PREFIX: &str = "tb";

/// How a token-server is configured beyond what every one of them gets.
#[derive(Clone, Copy, Default)]
pub struct Config<'a> {
    /// `REDIS_KEY_PREFIX`; [`PREFIX`] when `None`.
    pub prefix: Option<&'static str>,
    /// `VALIDATION_CACHE_ENTRIES`.
    pub cache_entries: Option<&'a str>,
    /// `VALIDATION_LEASE_MS`.
    pub lease_ms: Option<&'a str>,
    /// Users all of bcrypt cost 4, with `BCRYPT_COST=4`.
    pub cost_4: bool,
}

impl Config<'_> {
    /// The default lease, every validation reading through to Redis.
    pub const THROUGH: Config<'static> = Config {
        prefix: None,
        cache_entries: Some("0"),
        lease_ms: None,
        cost_4: false,
    };
    /// `VALIDATION_LEASE_MS=0`: the barrier on every cached hit, no commit wait.
    pub const BARRIER: Config<'static> = Config {
        prefix: Some(BARRIER_PREFIX),
        cache_entries: None,
        lease_ms: Some("0"),
        cost_4: false,
    };
}

/// The shared processes and sessions of a run; everything is killed and removed on drop.
pub struct Bench {
    pub timing: Timing,
    /// What the one-hop proxy holds each way.
    pub hop_delay: Duration,
    pub dir: PathBuf,
    pub workers: usize,
    users: PathBuf,
    users_cost_4: PathBuf,
    /// The default settings: the read lease.
    pub server: Proc,
    /// The default lease, reading every validation through to Redis.
    pub through: Proc,
    /// `VALIDATION_LEASE_MS=0`, under [`BARRIER_PREFIX`].
    pub barrier: Proc,
    /// Users all of cost 4, `BCRYPT_COST=4`: every password check costs at least
    /// `BCRYPT_COST` and what the costliest hash in use does, so cost-4 logins need a server
    /// that knows no costlier hash.
    pub light: Proc,
    /// Ceilings (a), (0) and (c): a multiplexed connection per worker.
    pub per_worker: Proc,
    /// Ceiling (a) over one multiplexed connection shared by the workers.
    pub shared: Proc,
    /// Ceiling (a) over a deadpool-redis pool.
    pub pooled: Proc,
    /// This run's Redis; declared after the processes that use it, so it is killed last.
    pub redis: Proc,
    /// The library's store under [`PREFIX`] and under [`BARRIER_PREFIX`].
    pub store: Store,
    pub barrier_store: Store,
    /// 1k live sessions over 200 users under each prefix: their access tokens.
    pub tokens: Arc<Vec<String>>,
    pub barrier_tokens: Arc<Vec<String>>,
    /// The cost-4 server's RSS in KiB before any load.
    pub light_rss_idle: u64,
}

impl Bench {
    /// Starts Redis, the servers and the ceilings, and seeds users and sessions.
    pub async fn start(args: &Args) -> Bench {
        let dir = std::env::temp_dir().join(format!("token-server-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("work dir");
        let redis = procs::redis(&dir);
        let redis_url = format!("redis://{}", redis.addr);
        let users = seed::users_file(&dir, true);
        let users_cost_4 = seed::users_file(&dir, false);
        let start = |config| token_server(&dir, &redis_url, &users, &users_cost_4, config);
        let server = start(Config::default());
        let through = start(Config::THROUGH);
        let barrier = start(Config::BARRIER);
        let light = start(Config {
            cost_4: true,
            ..Config::default()
        });
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        let ceiling = |kind| procs::ceiling(&dir, kind, &redis_url, workers);
        let (per_worker, shared, pooled) = (
            ceiling("per-worker"),
            ceiling("shared"),
            ceiling("deadpool"),
        );
        let store = seed::store(&redis_url, PREFIX);
        let barrier_store = seed::store(&redis_url, BARRIER_PREFIX);
        let tokens = Arc::new(seed::access_tokens(&store, 1_000, 200).await);
        let barrier_tokens = Arc::new(seed::access_tokens(&barrier_store, 1_000, 200).await);
        seed_ceiling_keys(&redis);
        Bench {
            timing: args.timing(),
            hop_delay: Duration::from_micros(args.hop_delay_us),
            light_rss_idle: procs::rss_of(light.child.id()),
            workers,
            dir,
            redis,
            users,
            users_cost_4,
            server,
            through,
            barrier,
            light,
            per_worker,
            shared,
            pooled,
            store,
            barrier_store,
            tokens,
            barrier_tokens,
        }
    }

    /// Another token-server on the Redis at `redis_url` (that of this run, of the 100k pair,
    /// or a proxy's).
    pub fn token_server(&self, redis_url: &str, config: Config) -> Proc {
        token_server(
            &self.dir,
            redis_url,
            &self.users,
            &self.users_cost_4,
            config,
        )
    }

    /// The `(warm-up, duration)` of a scenario measured on its own.
    pub fn single(&self) -> (Duration, Duration) {
        (self.timing.warmup, self.timing.single)
    }

    /// The `(warm-up, round)` of an alternating comparison.
    pub fn round(&self) -> (Duration, Duration) {
        (self.timing.warmup, self.timing.round)
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A release token-server: login throttle and lockout off, `TOKEN_SECRET` set.
fn token_server(
    dir: &Path,
    redis_url: &str,
    users: &Path,
    users_cost_4: &Path,
    config: Config,
) -> Proc {
    let secret = "bench-secret-0123456789-0123456789-abcdef";
    let users = if config.cost_4 { users_cost_4 } else { users };
    let mut envs = vec![
        ("REDIS_URL", redis_url.to_string()),
        ("REDIS_KEY_PREFIX", config.prefix.unwrap_or(PREFIX).into()),
        ("TOKEN_SECRET", secret.into()),
        ("USERS_FILE", users.display().to_string()),
        ("LOGIN_MAX_ATTEMPTS_PER_IP_PER_MINUTE", "0".into()),
        ("MAX_INVALID_LOGIN_ATTEMPTS", "0".into()),
        ("BCRYPT_MAX_QUEUE", "100000".into()),
    ];
    envs.extend(
        config
            .cache_entries
            .map(|c| ("VALIDATION_CACHE_ENTRIES", c.into())),
    );
    envs.extend(config.lease_ms.map(|l| ("VALIDATION_LEASE_MS", l.into())));
    if config.cost_4 {
        envs.push(("BCRYPT_COST", "4".into()));
    }
    procs::token_server(dir, &envs)
}

/// The keys ceiling (a) reads and ceiling (c)'s script reads as the user: the demo user.
fn seed_ceiling_keys(redis: &Proc) {
    let mut conn = procs::redis_conn(redis);
    for i in 0..1_000 {
        let _: () = redis::cmd("SET")
            .arg(format!("bench:ceiling:{i}"))
            .arg(seed::USER_JSON)
            .query(&mut conn)
            .expect("SET");
    }
}
