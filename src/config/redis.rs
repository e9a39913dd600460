//! Where sessions live: the embedded store, one Redis node, a Redis Cluster or a master found
//! through Sentinel, and how to reach it.

use super::parse::{ConfigError, Given};
use super::secrets::{RedisUrl, SecretText};
use std::path::PathBuf;
use std::time::Duration;

/// The store the settings name; exactly one.
#[derive(Clone, Debug)]
pub enum RedisTarget {
    /// No Redis: the embedded in-process store.
    Embedded,
    /// `REDIS_URL`.
    Single(RedisUrl),
    /// `REDIS_CLUSTER_NODES`: some nodes of the cluster; the rest are discovered.
    Cluster(Vec<RedisUrl>),
    /// `REDIS_SENTINELS` and `REDIS_SENTINEL_MASTER`.
    Sentinel(SentinelSettings),
}

/// Sentinel discovery: the sentinels to ask, the master they watch and the master's password.
#[derive(Clone, Debug)]
pub struct SentinelSettings {
    pub sentinels: Vec<RedisUrl>,
    pub master: String,
    pub master_password: Option<SecretText>,
}

/// Where sessions live and how Redis is reached: target, TLS CA, key prefix, timeout.
#[derive(Clone, Debug)]
pub struct RedisSettings {
    pub target: RedisTarget,
    /// PEM file of the CA that signed Redis's TLS certificates (`rediss://`), when it is not a
    /// public one.
    pub tls_ca_file: Option<PathBuf>,
    pub key_prefix: String,
    pub timeout: Duration,
    /// Access keys the validation cache of one replica holds at most; 0 turns it off.
    pub validation_cache_entries: usize,
    /// How long a confirmed heartbeat lets cached validations answer with no Redis round
    /// trip, and so how long every revoking write waits before it answers; 0 = a barrier on
    /// every hit and no wait.
    pub validation_lease: Duration,
}

/// The lease unless `VALIDATION_LEASE_MS` says otherwise.
pub const DEFAULT_VALIDATION_LEASE_MS: u64 = 15;

/// The validation cache's bound unless `VALIDATION_CACHE_ENTRIES` says otherwise.
pub const DEFAULT_VALIDATION_CACHE_ENTRIES: u64 = 100_000;

/// The settings this file reads, by normalised name.
pub const KEYS: &[&str] = &[
    "redis_url",
    "redis_cluster_nodes",
    "redis_sentinels",
    "redis_sentinel_master",
    "redis_sentinel_password",
    "redis_tls_ca_file",
    "redis_key_prefix",
    "redis_timeout_ms",
    "validation_cache_entries",
    "validation_lease_ms",
];

impl RedisSettings {
    /// True unless the embedded store serves.
    pub fn uses_redis(&self) -> bool {
        !matches!(self.target, RedisTarget::Embedded)
    }

    /// The Redis settings in `g`; fails on a bad URL or key prefix, or not exactly one target.
    pub fn parse(g: &Given) -> Result<Self, ConfigError> {
        let mut targets = vec![];
        if let Some(v) = g.non_blank("redis_url") {
            let ok = ["redis://", "rediss://", "redis+unix://", "unix://"]
                .iter()
                .any(|s| v.starts_with(s))
                && ::redis::Client::open(v.as_str()).is_ok();
            if !ok {
                return Err(g.bad(
                    "redis_url",
                    &v,
                    "a redis:// or rediss:// URL such as redis://user:password@host:6379/0 (unset for the embedded store)",
                ));
            }
            targets.push(RedisTarget::Single(RedisUrl(v)));
        }
        let nodes = g.urls(
            "redis_cluster_nodes",
            "comma-separated redis:// or rediss:// URLs of cluster nodes",
        )?;
        if !nodes.is_empty() {
            targets.push(RedisTarget::Cluster(nodes));
        }
        if let Some(sentinel) = sentinel(g)? {
            targets.push(RedisTarget::Sentinel(sentinel));
        }
        if targets.len() > 1 {
            return Err(g.bad(
                "redis_url",
                "…",
                "set one of REDIS_URL (one node), REDIS_CLUSTER_NODES (a cluster) or REDIS_SENTINELS (Sentinel)",
            ));
        }
        let key_prefix = key_prefix(g)?;
        Ok(RedisSettings {
            target: targets.pop().unwrap_or(RedisTarget::Embedded),
            tls_ca_file: g.path("redis_tls_ca_file"),
            key_prefix,
            timeout: Duration::from_millis(g.number("redis_timeout_ms", 1000, 10, 60_000)?),
            validation_cache_entries: g.number(
                "validation_cache_entries",
                DEFAULT_VALIDATION_CACHE_ENTRIES,
                0,
                100_000_000,
            )? as usize,
            validation_lease: Duration::from_millis(g.number(
                "validation_lease_ms",
                DEFAULT_VALIDATION_LEASE_MS,
                0,
                1000,
            )?),
        })
    }
}

fn key_prefix(g: &Given) -> Result<String, ConfigError> {
    let key_prefix = g.text("redis_key_prefix").unwrap_or_else(|| "ts".into());
    let prefix_ok = (1..=64).contains(&key_prefix.len())
        && key_prefix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c));
    if !prefix_ok {
        return Err(g.bad(
            "redis_key_prefix",
            &key_prefix,
            "1 to 64 characters of letters, digits, '-', '_', '.' or ':'",
        ));
    }
    Ok(key_prefix)
}

fn sentinel(g: &Given) -> Result<Option<SentinelSettings>, ConfigError> {
    let sentinels = g.urls(
        "redis_sentinels",
        "comma-separated redis:// or rediss:// URLs of sentinels, e.g. redis://sentinel-1:26379",
    )?;
    match (sentinels.is_empty(), g.text("redis_sentinel_master")) {
        (true, None) => Ok(None),
        (false, Some(master)) if !master.trim().is_empty() => Ok(Some(SentinelSettings {
            sentinels,
            master: master.trim().to_string(),
            master_password: g
                .text("redis_sentinel_password")
                .filter(|p| !p.is_empty())
                .map(SecretText),
        })),
        (false, _) => Err(g.bad(
            "redis_sentinel_master",
            "",
            "the name of the master the sentinels watch (REDIS_SENTINELS is set)",
        )),
        (true, Some(master)) => Err(g.bad(
            "redis_sentinel_master",
            &master,
            "set REDIS_SENTINELS too: comma-separated sentinel URLs",
        )),
    }
}
