//! Turning the given text of settings into typed values. Every error names the setting as it
//! was given (dotted or UPPER_SNAKE), the value (secrets masked) and what is allowed.

use super::secrets::{RedisUrl, redact_url, shown};
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

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

/// `access.token.validity.in.minutes` and `ACCESS_TOKEN_VALIDITY_IN_MINUTES` alike become
/// `access_token_validity_in_minutes`.
pub fn normalise(name: &str) -> String {
    name.to_ascii_lowercase().replace(['.', '-'], "_")
}

const MINUTES: &str = "a number of minutes from 0.0000167 (1 ms) to 5256000 (10 years); decimals allowed, e.g. 0.05 = 3 seconds";

/// One value, deserialised by envy from its text as the setting's type.
#[derive(serde::Deserialize)]
struct One<T> {
    value: T,
}

/// The settings that were given, by normalised name: each with the name it was given under
/// and its text.
pub struct Given {
    given: HashMap<String, (String, String)>,
}

impl Given {
    /// Collects `(name, value)` pairs of the `known` settings; a setting given twice under
    /// different names with different values is an error.
    pub fn collect(
        vars: impl IntoIterator<Item = (String, String)>,
        known: &[&str],
    ) -> Result<Self, ConfigError> {
        let mut given: HashMap<String, (String, String)> = HashMap::new();
        for (name, value) in vars {
            let key = normalise(&name);
            if !known.contains(&key.as_str()) {
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
        Ok(Given { given })
    }

    /// The text of a setting, if given.
    pub fn text(&self, key: &str) -> Option<String> {
        self.given.get(key).map(|(_, v)| v.clone())
    }

    /// The text of a setting, if given and not blank.
    pub fn non_blank(&self, key: &str) -> Option<String> {
        self.text(key).filter(|v| !v.trim().is_empty())
    }

    /// The error for `key`'s `value`, under the name the setting was given.
    pub fn bad(&self, key: &str, value: &str, allowed: &str) -> ConfigError {
        ConfigError {
            setting: self
                .given
                .get(key)
                .map(|(n, _)| n.clone())
                .unwrap_or_else(|| key.to_ascii_uppercase()),
            value: shown(key, value),
            allowed: allowed.to_string(),
        }
    }

    /// The setting as a `T`, by envy; `None` if not given.
    fn typed<T: DeserializeOwned>(
        &self,
        key: &str,
        allowed: &str,
    ) -> Result<Option<T>, ConfigError> {
        let Some(v) = self.text(key) else {
            return Ok(None);
        };
        envy::from_iter::<_, One<T>>([("value".to_string(), v.trim().to_string())])
            .map(|one| Some(one.value))
            .map_err(|_| self.bad(key, &v, allowed))
    }

    /// Minutes, decimals allowed; `None` if not given, an error outside 1 ms to 10 years.
    pub fn minutes(&self, key: &str) -> Result<Option<Duration>, ConfigError> {
        match self.typed::<f64>(key, MINUTES)? {
            None => Ok(None),
            Some(m) if m.is_finite() && m * 60_000.0 >= 1.0 && m <= 5_256_000.0 => {
                Ok(Some(Duration::from_secs_f64(m * 60.0)))
            }
            Some(_) => Err(self.bad(key, &self.text(key).unwrap_or_default(), MINUTES)),
        }
    }

    /// A whole-number setting; `default` if not given, an error outside `min..=max`.
    pub fn number(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, ConfigError> {
        let allowed = format!("a whole number from {min} to {max}");
        match self.typed::<u64>(key, &allowed)? {
            None => Ok(default),
            Some(n) if (min..=max).contains(&n) => Ok(n),
            Some(_) => Err(self.bad(key, &self.text(key).unwrap_or_default(), &allowed)),
        }
    }

    /// A setting in whole seconds; `default` if not given, an error outside `min..=max`.
    pub fn seconds(
        &self,
        key: &str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        Ok(Duration::from_secs(self.number(key, default, min, max)?))
    }

    /// A true/false setting (also 1/0, yes/no, on/off); `default` if not given.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        let Some(v) = self.text(key) else {
            return Ok(default);
        };
        match v.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(self.bad(key, &v, "true or false")),
        }
    }

    /// A comma-separated list of `redis://` or `rediss://` URLs.
    pub fn urls(&self, key: &str, allowed: &str) -> Result<Vec<RedisUrl>, ConfigError> {
        let mut urls = vec![];
        let text = self.text(key).unwrap_or_default();
        for url in text.split(',').map(str::trim).filter(|u| !u.is_empty()) {
            let ok = ["redis://", "rediss://"].iter().any(|s| url.starts_with(s))
                && ::redis::Client::open(url).is_ok();
            if !ok {
                return Err(ConfigError {
                    value: redact_url(url),
                    ..self.bad(key, "", allowed)
                });
            }
            urls.push(RedisUrl(url.to_string()));
        }
        Ok(urls)
    }

    /// A path, if given and not blank.
    pub fn path(&self, key: &str) -> Option<std::path::PathBuf> {
        self.non_blank(key).map(std::path::PathBuf::from)
    }
}
