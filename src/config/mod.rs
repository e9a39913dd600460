//! Settings from the environment (and `.env`). Each setting is accepted in its dotted form
//! (`access.token.validity.in.minutes`) and its UPPER_SNAKE form
//! (`ACCESS_TOKEN_VALIDITY_IN_MINUTES`); a bad value is reported with the name it was given
//! under. One file per concern: the Redis target, session policy, brute-force guards, the
//! server with its users and clients, and one-time codes.

mod guards;
mod otp;
mod parse;
mod redis;
mod secrets;
mod server;
mod sessions;

pub use guards::{GuardSettings, Lockout};
pub use otp::{CodeSource, HttpUrl, OtpSettings};
pub use parse::ConfigError;
pub use redis::{RedisSettings, RedisTarget, SentinelSettings};
pub use secrets::{RedisUrl, SecretText, TokenSecret};
pub use server::{AccountSettings, ServerSettings};
pub use sessions::{DEFAULT_MAX_SESSIONS_PER_USER, SessionSettings};

use parse::{Given, normalise};

/// Validated configuration of one server process.
#[derive(Clone, Debug)]
pub struct Settings {
    pub server: ServerSettings,
    pub redis: RedisSettings,
    pub sessions: SessionSettings,
    pub guards: GuardSettings,
    pub accounts: AccountSettings,
    pub otp: OtpSettings,
}

/// Every setting this server reads, by normalised name.
fn known() -> Vec<&'static str> {
    [
        server::KEYS,
        redis::KEYS,
        sessions::KEYS,
        guards::KEYS,
        otp::KEYS,
    ]
    .concat()
}

impl Settings {
    /// Reads `.env` (if present, without overriding the environment), then the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_vars(env_vars())
    }

    /// `BCRYPT_COST` alone, from the environment (and `.env`): the admin commands that hash a
    /// password need nothing else.
    pub fn bcrypt_cost_from_env() -> Result<u32, ConfigError> {
        let _ = dotenvy::dotenv();
        let vars = env_vars().filter(|(k, _)| normalise(k) == "bcrypt_cost");
        Ok(Self::from_vars(vars)?.guards.bcrypt_cost)
    }

    /// Builds settings from `(name, value)` pairs in either naming form.
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let given = Given::collect(vars, &known())?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
        let redis = RedisSettings::parse(&given)?;
        Ok(Settings {
            server: ServerSettings::parse(&given, cores)?,
            sessions: SessionSettings::parse(&given, redis.uses_redis())?,
            guards: GuardSettings::parse(&given, cores)?,
            accounts: AccountSettings::parse(&given)?,
            otp: OtpSettings::parse(&given, redis.uses_redis())?,
            redis,
        })
    }
}

/// The process environment, names and values that are text.
fn env_vars() -> impl Iterator<Item = (String, String)> {
    std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
        assert_eq!(dotted.sessions.access_validity, Duration::from_secs(3));
        assert_eq!(upper.sessions.access_validity, Duration::from_secs(3));
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
        assert_eq!(s.sessions.access_validity, Duration::from_secs(3600));
        assert_eq!(s.guards.lockout.max_attempts, 5);
        assert_eq!(s.sessions.max_sessions_per_user, 100);
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let s = Settings::from_vars(vec![]).unwrap();
        assert_eq!((s.server.host.as_str(), s.server.port), ("0.0.0.0", 8080));
        assert_eq!(s.server.body_timeout, Duration::from_secs(10));
        assert_eq!(s.sessions.access_validity, Duration::from_secs(3600));
        assert_eq!(s.sessions.refresh_validity, Duration::from_secs(20160 * 60));
        assert!(!s.redis.uses_redis());
        assert_eq!(s.redis.key_prefix, "ts");
        assert_eq!(
            s.sessions.max_sessions_per_user as u64,
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
            ("REQUEST_BODY_TIMEOUT_MS", "99"),
            ("request.body.timeout.ms", "10s"),
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
        assert!(!format!("{:?}", ok.redis.target).contains("hunter2"));
    }
}
