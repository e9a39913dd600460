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
    /// `None` selects the embedded store.
    pub redis_url: Option<RedisUrl>,
    pub redis_key_prefix: String,
    pub redis_timeout: Duration,
    pub users_file: Option<PathBuf>,
    pub bcrypt_max_concurrent: usize,
    pub workers: usize,
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

fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
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

/// Every setting as text, under its normalised (lower snake) name.
#[derive(Deserialize, Default)]
struct Raw {
    host: Option<String>,
    port: Option<String>,
    access_token_validity_in_minutes: Option<String>,
    refresh_token_validity_in_minutes: Option<String>,
    redis_url: Option<String>,
    redis_key_prefix: Option<String>,
    redis_timeout_ms: Option<String>,
    users_file: Option<String>,
    bcrypt_max_concurrent: Option<String>,
    workers: Option<String>,
}

const KNOWN: &[&str] = &[
    "host",
    "port",
    "access_token_validity_in_minutes",
    "refresh_token_validity_in_minutes",
    "redis_url",
    "redis_key_prefix",
    "redis_timeout_ms",
    "users_file",
    "bcrypt_max_concurrent",
    "workers",
];

fn normalise(name: &str) -> String {
    name.to_ascii_lowercase().replace(['.', '-'], "_")
}

impl Settings {
    /// Reads `.env` (if present, without overriding the environment), then the environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        let _ = dotenvy::dotenv();
        Self::from_vars(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
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
                    setting: name,
                    value,
                    allowed: format!("{other} is also set, to {previous:?}; set only one of them"),
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
        let name = |key: &str| {
            given
                .get(key)
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| key.to_ascii_uppercase())
        };
        let bad = |key: &str, value: &str, allowed: &str| ConfigError {
            setting: name(key),
            value: value.to_string(),
            allowed: allowed.to_string(),
        };

        let minutes = |key: &str,
                       value: Option<String>,
                       default: f64|
         -> Result<Duration, ConfigError> {
            let Some(v) = value else {
                return Ok(Duration::from_secs_f64(default * 60.0));
            };
            match v.trim().parse::<f64>() {
                Ok(m) if m.is_finite() && m > 0.0 && m <= 5_256_000.0 && m * 60_000.0 >= 1.0 => {
                    Ok(Duration::from_secs_f64(m * 60.0))
                }
                _ => Err(bad(
                    key,
                    &v,
                    "a number of minutes from 0.0000167 (1 ms) to 5256000 (10 years); decimals allowed, e.g. 0.05 = 3 seconds",
                )),
            }
        };
        let count = |key: &str,
                     value: Option<String>,
                     default: usize,
                     max: usize|
         -> Result<usize, ConfigError> {
            let Some(v) = value else { return Ok(default) };
            match v.trim().parse::<usize>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(bad(key, &v, &format!("a whole number from 1 to {max}"))),
            }
        };
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());

        let port = match raw.port {
            None => 8080,
            Some(v) => v
                .trim()
                .parse::<u16>()
                .map_err(|_| bad("port", &v, "a TCP port number from 0 to 65535"))?,
        };
        let host = raw.host.unwrap_or_else(|| "0.0.0.0".into());
        if host.trim().is_empty() {
            return Err(bad(
                "host",
                &host,
                "an IP address or host name to listen on",
            ));
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
                    return Err(bad(
                        "redis_url",
                        &redact_url(&v),
                        "a redis:// or rediss:// URL such as redis://user:password@host:6379/0 (unset for the embedded store)",
                    ));
                }
                Some(RedisUrl(v))
            }
        };
        let redis_key_prefix = raw.redis_key_prefix.unwrap_or_else(|| "ts".into());
        if redis_key_prefix.is_empty()
            || redis_key_prefix.len() > 64
            || !redis_key_prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            return Err(bad(
                "redis_key_prefix",
                &redis_key_prefix,
                "1 to 64 characters of letters, digits, '-', '_', '.' or ':'",
            ));
        }
        let redis_timeout = match raw.redis_timeout_ms {
            None => Duration::from_millis(1000),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(ms) if (10..=60_000).contains(&ms) => Duration::from_millis(ms),
                _ => return Err(bad("redis_timeout_ms", &v, "milliseconds from 10 to 60000")),
            },
        };
        let users_file = match raw.users_file {
            None => None,
            Some(v) if v.trim().is_empty() => None,
            Some(v) => Some(PathBuf::from(v)),
        };

        Ok(Settings {
            host,
            port,
            access_validity: minutes(
                "access_token_validity_in_minutes",
                raw.access_token_validity_in_minutes,
                60.0,
            )?,
            refresh_validity: minutes(
                "refresh_token_validity_in_minutes",
                raw.refresh_token_validity_in_minutes,
                20160.0,
            )?,
            redis_url,
            redis_key_prefix,
            redis_timeout,
            users_file,
            bcrypt_max_concurrent: count(
                "bcrypt_max_concurrent",
                raw.bcrypt_max_concurrent,
                cores,
                1024,
            )?,
            workers: count("workers", raw.workers, cores, 1024)?,
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
    fn defaults_apply_when_nothing_is_set() {
        let s = Settings::from_vars(vec![]).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("0.0.0.0", 8080));
        assert_eq!(s.access_validity, Duration::from_secs(3600));
        assert_eq!(s.refresh_validity, Duration::from_secs(20160 * 60));
        assert!(s.redis_url.is_none());
        assert_eq!(s.redis_key_prefix, "ts");
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
    fn redis_passwords_are_not_shown() {
        let err = Settings::from_vars(vars(&[("REDIS_URL", "ftp://u:hunter2@h")])).unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let ok =
            Settings::from_vars(vars(&[("REDIS_URL", "redis://:hunter2@127.0.0.1:6379")])).unwrap();
        assert!(!format!("{:?}", ok.redis_url).contains("hunter2"));
    }
}
