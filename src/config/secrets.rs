//! Secret settings: types whose `Debug` and `Display` never show the secret, and the one
//! function that masks a setting's value before an error shows it.

use std::fmt;

/// A secret setting; its `Debug` never shows it.
#[derive(Clone)]
pub struct SecretText(pub(super) String);

impl SecretText {
    /// The secret itself; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// A server secret; never printed.
#[derive(Clone)]
pub struct TokenSecret(pub(super) Vec<u8>);

impl TokenSecret {
    /// The secret's bytes; never log them.
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
pub struct RedisUrl(pub(super) String);

impl RedisUrl {
    /// The URL with its password, for connecting only; never log it.
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
pub fn redact_url(url: &str) -> String {
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
pub fn shown(key: &str, value: &str) -> String {
    match key {
        "token_secret" | "redis_sentinel_password" | "citizen_login_password_otp_fixed_value" => {
            "***".into()
        }
        "redis_url"
        | "redis_cluster_nodes"
        | "redis_sentinels"
        | "otp_webhook_url"
        | "otp_validate_url" => value
            .split(',')
            .map(|u| redact_url(u.trim()))
            .collect::<Vec<_>>()
            .join(","),
        _ => value.to_string(),
    }
}
