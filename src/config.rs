//! Settings from the environment (and `.env`). Each setting is accepted in its dotted form
//! (`access.token.validity.in.minutes`) and its UPPER_SNAKE form
//! (`ACCESS_TOKEN_VALIDITY_IN_MINUTES`); a bad value is reported with the name it was given under.

use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Validated configuration of one server process.
#[derive(Clone, Debug)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub access_validity: Duration,
    pub refresh_validity: Duration,
    /// One Redis node; `None` with no cluster nodes selects the embedded store.
    pub redis_url: Option<RedisUrl>,
    /// Seed nodes of a Redis Cluster (`REDIS_CLUSTER_NODES`); exclusive with `redis_url`.
    pub redis_cluster_nodes: Vec<RedisUrl>,
    /// Redis Sentinel: the sentinels and the master's name (and its password, if any).
    pub redis_sentinel: Option<SentinelSettings>,
    /// PEM file of the CA that signed Redis's TLS certificates (`rediss://`), when it is not a
    /// public one.
    pub redis_tls_ca_file: Option<PathBuf>,
    pub redis_key_prefix: String,
    pub redis_timeout: Duration,
    pub users_file: Option<PathBuf>,
    pub bcrypt_max_concurrent: usize,
    /// Logins that may wait for bcrypt; past it a login answers 503 at once.
    pub bcrypt_max_queue: usize,
    pub workers: usize,
    pub refresh_rotation: bool,
    /// How long a just-rotated refresh token may be retried for the same successor pair.
    pub reuse_grace: Duration,
    /// Absolute cap on a session however often it is refreshed.
    pub session_max_lifetime: Option<Duration>,
    /// 0 = unlimited (only when set so).
    pub max_sessions_per_user: usize,
    /// The cost of the hashes the admin commands make, and the least every password check
    /// costs (`BCRYPT_COST`).
    pub bcrypt_cost: u32,
    /// Key of the HMAC that derives a refresh's successor tokens.
    pub token_secret: Option<TokenSecret>,
    pub lockout: Lockout,
    /// 0 = no limit.
    pub login_attempts_per_ip_per_minute: u32,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub clients_file: Option<PathBuf>,
    pub default_client_enabled: bool,
    /// After SIGTERM: how long to keep serving with `/ready` at 503.
    pub shutdown_delay: Duration,
    /// Then: how long in-flight requests may take before the process exits.
    pub shutdown_drain: Duration,
    /// Serve `/metrics` on this port (same host) instead of the API port.
    pub metrics_port: Option<u16>,
}

#[derive(Clone, Debug)]
pub struct SentinelSettings {
    pub sentinels: Vec<RedisUrl>,
    pub master: String,
    pub master_password: Option<SecretText>,
}

/// A secret setting; its `Debug` never shows it.
#[derive(Clone)]
pub struct SecretText(String);

impl SecretText {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Account lockout after repeated wrong passwords (DIGIT's settings and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lockout {
    /// 0 = never lock.
    pub max_attempts: u32,
    pub period: Duration,
    pub cool_down: Duration,
}

/// A server secret; never printed.
#[derive(Clone)]
pub struct TokenSecret(Vec<u8>);

impl TokenSecret {
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// A random secret, for a single instance that was given none.
    pub fn random() -> Self {
        use rand::RngCore;
        let mut key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut key);
        TokenSecret(key)
    }
}

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(***)")
    }
}

/// A Redis URL; its `Debug`/`Display` hide the password.
#[derive(Clone)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// The URL with its password masked: `redis://user:***@host:6379`.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user_info = &url[scheme + 3..at];
            let masked = match user_info.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => "***".to_string(),
            };
            format!("{}://{masked}@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

/// A setting's value as an error may show it: secrets masked, URLs without passwords.
fn shown(key: &str, value: &str) -> String {
    match key {
        "token_secret" | "redis_sentinel_password" => "***".into(),
        "redis_url" | "redis_cluster_nodes" | "redis_sentinels" => value
            .split(',')
            .map(|u| redact_url(u.trim()))
            .collect::<Vec<_>>()
            .join(","),
        _ => value.to_string(),
    }
}

/// A setting with a bad value: names the setting, the value and what is allowed.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub setting: String,
    pub value: String,
    pub allowed: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid setting {}={:?}: {}",
            self.setting, self.value, self.allowed
        )
    }
}

impl std::error::Error for ConfigError {}

/// Declares the raw settings (every one as optional text, under its normalised lower snake
/// name) and the list of names that belong to this server.
macro_rules! raw_settings {
    ($($field:ident),* $(,)?) => {
        #[derive(Deserialize, Default)]
        struct Raw { $($field: Option<String>,)* }
        const KNOWN: &[&str] = &[$(stringify!($field)),*];
    };
}

raw_settings!(
    host,
    port,
    access_token_validity_in_minutes,
    refresh_token_validity_in_minutes,
    redis_url,
    redis_cluster_nodes,
    redis_sentinels,
    redis_sentinel_master,
    redis_sentinel_password,
    redis_tls_ca_file,
    redis_key_prefix,
    redis_timeout_ms,
    users_file,
    bcrypt_max_concurrent,
    bcrypt_max_queue,
    workers,
    refresh_token_rotation,
    refresh_token_reuse_grace_seconds,
    session_max_lifetime_in_minutes,
    max_sessions_per_user,
    bcrypt_cost,
    token_secret,
    max_invalid_login_attempts,
    max_invalid_login_attempts_period_minutes,
    account_unlock_cool_down_period_minutes,
    login_max_attempts_per_ip_per_minute,
    trusted_proxies,
    clients_file,
    default_client_enabled,
    shutdown_delay_seconds,
    shutdown_drain_seconds,
    metrics_port,
);

fn normalise(name: &str) -> String {
    name.to_ascii_lowercase().replace(['.', '-'], "_")
}

/// Turns raw text into typed values; every error names the setting as it was given.
struct Parser {
    given: HashMap<String, (String, String)>,
}

/// Sessions one user may have at once unless `max.sessions.per.user` says otherwise.
pub const DEFAULT_MAX_SESSIONS_PER_USER: u64 = 100;

const MINUTES: &str = "a number of minutes from 0.0000167 (1 ms) to 5256000 (10 years); decimals allowed, e.g. 0.05 = 3 seconds";

impl Parser {
    fn bad(&self, key: &str, value: &str, allowed: &str) -> ConfigError {
        ConfigError {
            setting: self
                .given
                .get(key)
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| key.to_ascii_uppercase()),
            value: value.to_string(),
            allowed: allowed.to_string(),
        }
    }

    fn minutes(&self, key: &str, value: Option<String>) -> Result<Option<Duration>, ConfigError> {
        let Some(v) = value else { return Ok(None) };
        match v.trim().parse::<f64>() {
            Ok(m) if m.is_finite() && m * 60_000.0 >= 1.0 && m <= 5_256_000.0 => {
                Ok(Some(Duration::from_secs_f64(m * 60.0)))
            }
            _ => Err(self.bad(key, &v, MINUTES)),
        }
    }

    fn number(
        &self,
        key: &str,
        value: Option<String>,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        match v.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(self.bad(key, &v, &format!("a whole number from {min} to {max}"))),
        }
    }

    /// A comma-separated list of `redis://` or `rediss://` URLs.
    fn urls(
        &self,
        key: &str,
        value: Option<String>,
        allowed: &str,
    ) -> Result<Vec<RedisUrl>, ConfigError> {
        let mut urls = vec![];
        for url in value
            .iter()
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            let ok = ["redis://", "rediss://"].iter().any(|s| url.starts_with(s))
                && ::redis::Client::open(url).is_ok();
            if !ok {
                return Err(self.bad(key, &redact_url(url), allowed));
            }
            urls.push(RedisUrl(url.to_string()));
        }
        Ok(urls)
    }

    fn flag(&self, key: &str, value: Option<String>, default: bool) -> Result<bool, ConfigError> {
        let Some(v) = value else { return Ok(default) };
        match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(self.bad(key, &v, "true or false")),
        }
    }
}

impl Settings {
    /// True unless the embedded store serves.
    pub fn uses_redis(&self) -> bool {
        self.redis_url.is_some()
            || !self.redis_cluster_nodes.is_empty()
            || self.redis_sentinel.is_some()
    }

    /// Reads `.env` (if present, without overriding the environment), then the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// `BCRYPT_COST` alone, from the environment (and `.env`): the admin commands that hash a
    /// password need nothing else.
    pub fn bcrypt_cost_from_env() -> Result<u32, ConfigError> {
        let _ = dotenvy::dotenv();
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| normalise(k) == "bcrypt_cost");
        Ok(Self::from_vars(vars)?.bcrypt_cost)
    }

    /// Builds settings from `(name, value)` pairs in either naming form.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        // normalised name -> (name as given, value)
        let mut given: HashMap<String, (String, String)> = HashMap::new();
        for (name, value) in vars {
            let key = normalise(&name);
            if !KNOWN.contains(&key.as_str()) {
                continue;
            }
            if let Some((other, previous)) = given.get(&key)
                && previous != &value
            {
                return Err(ConfigError {
                    value: shown(&key, &value),
                    setting: name,
                    allowed: format!(
                        "{other} is also set, to {:?}; set only one of them",
                        shown(&key, previous)
                    ),
                });
            }
            given.insert(key, (name, value));
        }
        let raw: Raw = envy::from_iter(given.iter().map(|(k, (_, v))| (k.clone(), v.clone())))
            .map_err(|e| ConfigError {
                setting: "environment".into(),
                value: String::new(),
                allowed: e.to_string(),
            })?;
        let p = Parser { given };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;

        let port = p.number("port", raw.port, 8080, 0, 65535)? as u16;
        let metrics_port = match raw.metrics_port {
            None => None,
            Some(v) if v.trim().is_empty() => None,
            Some(v) => {
                let m = p.number("metrics_port", Some(v.clone()), 0, 0, 65535)? as u16;
                if m != 0 && m == port {
                    return Err(p.bad("metrics_port", &v, "a port other than PORT"));
                }
                Some(m)
            }
        };
        let host = raw.host.unwrap_or_else(|| "0.0.0.0".into());
        if host.trim().is_empty() {
            return Err(p.bad("host", &host, "an IP address or host name to listen on"));
        }
        let redis_url = match raw.redis_url {
            None => None,
            Some(v) if v.trim().is_empty() => None,
            Some(v) => {
                let ok = ["redis://", "rediss://", "redis+unix://", "unix://"]
                    .iter()
                    .any(|s| v.starts_with(s))
                    && ::redis::Client::open(v.as_str()).is_ok();
                if !ok {
                    return Err(p.bad(
                        "redis_url",
                        &redact_url(&v),
                        "a redis:// or rediss:// URL such as redis://user:password@host:6379/0 (unset for the embedded store)",
                    ));
                }
                Some(RedisUrl(v))
            }
        };
        let redis_cluster_nodes = p.urls(
            "redis_cluster_nodes",
            raw.redis_cluster_nodes,
            "comma-separated redis:// or rediss:// URLs of cluster nodes",
        )?;
        let sentinels = p.urls(
            "redis_sentinels",
            raw.redis_sentinels,
            "comma-separated redis:// or rediss:// URLs of sentinels, e.g. redis://sentinel-1:26379",
        )?;
        let redis_sentinel = match (sentinels.is_empty(), raw.redis_sentinel_master) {
            (true, None) => None,
            (false, Some(master)) if !master.trim().is_empty() => Some(SentinelSettings {
                sentinels,
                master: master.trim().to_string(),
                master_password: raw
                    .redis_sentinel_password
                    .filter(|p| !p.is_empty())
                    .map(SecretText),
            }),
            (false, _) => {
                return Err(p.bad(
                    "redis_sentinel_master",
                    "",
                    "the name of the master the sentinels watch (REDIS_SENTINELS is set)",
                ));
            }
            (true, Some(master)) => {
                return Err(p.bad(
                    "redis_sentinel_master",
                    &master,
                    "set REDIS_SENTINELS too: comma-separated sentinel URLs",
                ));
            }
        };
        let targets = usize::from(redis_url.is_some())
            + usize::from(!redis_cluster_nodes.is_empty())
            + usize::from(redis_sentinel.is_some());
        if targets > 1 {
            return Err(p.bad(
                "redis_url",
                "…",
                "set one of REDIS_URL (one node), REDIS_CLUSTER_NODES (a cluster) or REDIS_SENTINELS (Sentinel)",
            ));
        }
        let redis_key_prefix = raw.redis_key_prefix.unwrap_or_else(|| "ts".into());
        if redis_key_prefix.is_empty()
            || redis_key_prefix.len() > 64
            || !redis_key_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            return Err(p.bad(
                "redis_key_prefix",
                &redis_key_prefix,
                "1 to 64 characters of letters, digits, '-', '_', '.' or ':'",
            ));
        }
        let optional_path =
            |v: Option<String>| v.filter(|v| !v.trim().is_empty()).map(PathBuf::from);
        let access_validity = p
            .minutes(
                "access_token_validity_in_minutes",
                raw.access_token_validity_in_minutes,
            )?
            .unwrap_or(Duration::from_secs(60 * 60));
        let refresh_validity = p
            .minutes(
                "refresh_token_validity_in_minutes",
                raw.refresh_token_validity_in_minutes,
            )?
            .unwrap_or(Duration::from_secs(20160 * 60));
        let refresh_rotation =
            p.flag("refresh_token_rotation", raw.refresh_token_rotation, true)?;
        let token_secret = match raw.token_secret {
            None => None,
            Some(v) if v.trim().is_empty() => None,
            Some(v) if v.len() < 32 => {
                return Err(p.bad(
                    "token_secret",
                    "***",
                    "at least 32 characters of random text, e.g. from `openssl rand -base64 48`",
                ));
            }
            Some(v) => Some(TokenSecret(v.into_bytes())),
        };
        let uses_redis = targets > 0;
        if refresh_rotation && uses_redis && token_secret.is_none() {
            return Err(p.bad(
                "token_secret",
                "",
                "required with REDIS_URL while refresh.token.rotation is on: every replica derives a retried refresh's tokens from it; at least 32 characters, e.g. from `openssl rand -base64 48`",
            ));
        }
        let trusted_proxies = match raw.trusted_proxies {
            None => vec![],
            Some(v) => v
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| {
                    c.parse::<ipnet::IpNet>()
                        .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                        .map_err(|_| {
                            p.bad(
                                "trusted_proxies",
                                &v,
                                "comma-separated IP addresses or CIDRs, e.g. 10.0.0.0/8,127.0.0.1",
                            )
                        })
                })
                .collect::<Result<_, _>>()?,
        };
        let bcrypt_max_concurrent = p.number(
            "bcrypt_max_concurrent",
            raw.bcrypt_max_concurrent,
            cores,
            1,
            1024,
        )? as usize;

        Ok(Settings {
            host,
            port,
            access_validity,
            refresh_validity,
            redis_url,
            redis_cluster_nodes,
            redis_sentinel,
            redis_tls_ca_file: optional_path(raw.redis_tls_ca_file),
            redis_key_prefix,
            redis_timeout: Duration::from_millis(p.number(
                "redis_timeout_ms",
                raw.redis_timeout_ms,
                1000,
                10,
                60_000,
            )?),
            users_file: optional_path(raw.users_file),
            bcrypt_max_concurrent,
            bcrypt_max_queue: p.number(
                "bcrypt_max_queue",
                raw.bcrypt_max_queue,
                8 * bcrypt_max_concurrent as u64,
                0,
                100_000,
            )? as usize,
            workers: p.number("workers", raw.workers, cores, 1, 1024)? as usize,
            refresh_rotation,
            reuse_grace: Duration::from_secs(p.number(
                "refresh_token_reuse_grace_seconds",
                raw.refresh_token_reuse_grace_seconds,
                5,
                0,
                3600,
            )?),
            session_max_lifetime: p.minutes(
                "session_max_lifetime_in_minutes",
                raw.session_max_lifetime_in_minutes,
            )?,
            max_sessions_per_user: p.number(
                "max_sessions_per_user",
                raw.max_sessions_per_user,
                DEFAULT_MAX_SESSIONS_PER_USER,
                0,
                100_000,
            )? as usize,
            bcrypt_cost: p.number("bcrypt_cost", raw.bcrypt_cost, 10, 4, 31)? as u32,
            token_secret,
            lockout: Lockout {
                max_attempts: p.number(
                    "max_invalid_login_attempts",
                    raw.max_invalid_login_attempts,
                    5,
                    0,
                    1_000_000,
                )? as u32,
                period: p
                    .minutes(
                        "max_invalid_login_attempts_period_minutes",
                        raw.max_invalid_login_attempts_period_minutes,
                    )?
                    .unwrap_or(Duration::from_secs(30 * 60)),
                cool_down: p
                    .minutes(
                        "account_unlock_cool_down_period_minutes",
                        raw.account_unlock_cool_down_period_minutes,
                    )?
                    .unwrap_or(Duration::from_secs(60 * 60)),
            },
            login_attempts_per_ip_per_minute: p.number(
                "login_max_attempts_per_ip_per_minute",
                raw.login_max_attempts_per_ip_per_minute,
                60,
                0,
                1_000_000,
            )? as u32,
            trusted_proxies,
            clients_file: optional_path(raw.clients_file),
            default_client_enabled: p.flag(
                "default_client_enabled",
                raw.default_client_enabled,
                true,
            )?,
            shutdown_delay: Duration::from_secs(p.number(
                "shutdown_delay_seconds",
                raw.shutdown_delay_seconds,
                0,
                0,
                600,
            )?),
            metrics_port,
            shutdown_drain: Duration::from_secs(p.number(
                "shutdown_drain_seconds",
                raw.shutdown_drain_seconds,
                10,
                1,
                3600,
            )?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dotted_and_upper_snake_names_mean_the_same_setting() {
        let dotted =
            Settings::from_vars(vars(&[("access.token.validity.in.minutes", "0.05")])).unwrap();
        let upper =
            Settings::from_vars(vars(&[("ACCESS_TOKEN_VALIDITY_IN_MINUTES", "0.05")])).unwrap();
        assert_eq!(dotted.access_validity, Duration::from_secs(3));
        assert_eq!(upper.access_validity, Duration::from_secs(3));
    }

    #[test]
    fn the_documented_example_file_is_a_valid_configuration() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example");
        let pairs: Vec<(String, String)> = dotenvy::from_path_iter(path)
            .unwrap()
            .map(|item| item.unwrap())
            .collect();
        assert!(pairs.len() >= 10, "{pairs:?}");
        let s = Settings::from_vars(pairs).unwrap();
        assert_eq!(s.access_validity, Duration::from_secs(3600));
        assert_eq!(s.lockout.max_attempts, 5);
        assert_eq!(s.max_sessions_per_user, 100);
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = Settings::from_vars(vec![]).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("0.0.0.0", 8080));
        assert_eq!(s.access_validity, Duration::from_secs(3600));
        assert_eq!(s.refresh_validity, Duration::from_secs(20160 * 60));
        assert!(s.redis_url.is_none());
        assert_eq!(s.redis_key_prefix, "ts");
        assert_eq!(
            s.max_sessions_per_user as u64,
            DEFAULT_MAX_SESSIONS_PER_USER
        );
        assert!((1..=100).contains(&DEFAULT_MAX_SESSIONS_PER_USER));
    }

    #[test]
    fn bad_values_name_the_setting_as_it_was_given() {
        let cases = [
            ("refresh.token.validity.in.minutes", "abc"),
            ("ACCESS_TOKEN_VALIDITY_IN_MINUTES", "-1"),
            ("ACCESS_TOKEN_VALIDITY_IN_MINUTES", "NaN"),
            ("PORT", "70000"),
            ("REDIS_URL", "http://localhost"),
            ("REDIS_KEY_PREFIX", "a{b}"),
            ("BCRYPT_MAX_CONCURRENT", "0"),
        ];
        for (name, value) in cases {
            let err = Settings::from_vars(vars(&[(name, value)])).unwrap_err();
            assert_eq!(err.setting, name, "{name}={value}");
            assert_eq!(err.value, value, "{name}={value}");
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn conflicting_forms_of_one_setting_are_refused() {
        let err = Settings::from_vars(vars(&[("PORT", "1"), ("port", "2")])).unwrap_err();
        assert!(err.allowed.contains("set only one"), "{err}");
        assert!(Settings::from_vars(vars(&[("PORT", "1"), ("port", "1")])).is_ok());
    }

    #[test]
    fn rotation_on_redis_needs_a_token_secret_which_is_never_shown() {
        let redis = ("REDIS_URL", "redis://127.0.0.1:6379");
        let err = Settings::from_vars(vars(&[redis])).unwrap_err();
        assert_eq!(err.setting, "TOKEN_SECRET");
        assert!(Settings::from_vars(vars(&[redis, ("refresh.token.rotation", "false")])).is_ok());
        let short = "short-secret-that-is-known";
        let err = Settings::from_vars(vars(&[redis, ("TOKEN_SECRET", short)])).unwrap_err();
        assert!(!err.to_string().contains(short), "{err}");
        let long = "0123456789abcdef0123456789abcdef";
        let s = Settings::from_vars(vars(&[redis, ("TOKEN_SECRET", long)])).unwrap();
        assert!(!format!("{s:?}").contains(long));
    }

    #[test]
    fn no_error_shows_a_secret() {
        let url = "redis://:hunter2@127.0.0.1:6379";
        let other = "redis://:swordfish@127.0.0.1:6380";
        let conflicts = [
            ("REDIS_URL", "redis.url", url, other),
            ("REDIS_CLUSTER_NODES", "redis.cluster.nodes", url, other),
            ("REDIS_SENTINELS", "redis.sentinels", url, other),
            (
                "REDIS_SENTINEL_PASSWORD",
                "redis.sentinel.password",
                "hunter2",
                "swordfish",
            ),
            (
                "TOKEN_SECRET",
                "token.secret",
                "hunter2-0123456789abcdef0123456789",
                "swordfish-0123456789abcdef01234567",
            ),
        ];
        for (a, b, first, second) in conflicts {
            let err = Settings::from_vars(vars(&[(a, first), (b, second)])).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("set only one"), "{text}");
            for secret in ["hunter2", "swordfish"] {
                assert!(!text.contains(secret), "{a}/{b}: {text}");
            }
        }
        let err = Settings::from_vars(vars(&[(
            "REDIS_CLUSTER_NODES",
            "redis://:hunter2@h:1,http://:swordfish@h:2",
        )]))
        .unwrap_err();
        assert!(!err.to_string().contains("swordfish"), "{err}");
        assert!(
            err.to_string().contains("http://:***@h:2"),
            "the URL is shown with its password masked: {err}"
        );
    }

    #[test]
    fn redis_passwords_are_not_shown() {
        let err = Settings::from_vars(vars(&[("REDIS_URL", "ftp://u:hunter2@h")])).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let ok = Settings::from_vars(vars(&[
            ("REDIS_URL", "redis://:hunter2@127.0.0.1:6379"),
            ("refresh.token.rotation", "false"),
        ]))
        .unwrap();
        assert!(!format!("{:?}", ok.redis_url).contains("hunter2"));
    }
}
