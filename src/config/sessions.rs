//! How sessions behave: token lifetimes, refresh rotation and its retry window, caps, and the
//! secret successor tokens are derived with.

use super::parse::{ConfigError, Given};
use super::secrets::TokenSecret;
use std::time::Duration;

/// Sessions one user may have at once unless `max.sessions.per.user` says otherwise.
pub const DEFAULT_MAX_SESSIONS_PER_USER: u64 = 100;

/// How sessions behave: lifetimes, refresh rotation and its retry window, caps, token secret.
#[derive(Clone, Debug)]
pub struct SessionSettings {
    pub access_validity: Duration,
    pub refresh_validity: Duration,
    pub rotation: bool,
    /// How long a just-rotated refresh token may be retried for the same successor pair.
    pub reuse_grace: Duration,
    /// Absolute cap on a session however often it is refreshed.
    pub max_lifetime: Option<Duration>,
    /// 0 = unlimited (only when set so).
    pub max_sessions_per_user: usize,
    /// Key of the HMAC that derives a refresh's successor tokens.
    pub token_secret: Option<TokenSecret>,
}

/// The settings this file reads, by normalised name.
pub const KEYS: &[&str] = &[
    "access_token_validity_in_minutes",
    "refresh_token_validity_in_minutes",
    "refresh_token_rotation",
    "refresh_token_reuse_grace_seconds",
    "session_max_lifetime_in_minutes",
    "max_sessions_per_user",
    "token_secret",
];

impl SessionSettings {
    /// `uses_redis`: replicas share sessions, so they need one secret.
    pub fn parse(g: &Given, uses_redis: bool) -> Result<Self, ConfigError> {
        let rotation = g.flag("refresh_token_rotation", true)?;
        let token_secret = match g.non_blank("token_secret") {
            None => None,
            Some(v) if v.len() < 32 => {
                return Err(g.bad(
                    "token_secret",
                    &v,
                    "at least 32 characters of random text, e.g. from `openssl rand -base64 48`",
                ));
            }
            Some(v) => Some(TokenSecret(v.into_bytes())),
        };
        if rotation && uses_redis && token_secret.is_none() {
            return Err(g.bad(
                "token_secret",
                "",
                "required with REDIS_URL while refresh.token.rotation is on: every replica derives a retried refresh's tokens from it; at least 32 characters, e.g. from `openssl rand -base64 48`",
            ));
        }
        Ok(SessionSettings {
            access_validity: g
                .minutes("access_token_validity_in_minutes")?
                .unwrap_or(Duration::from_secs(60 * 60)),
            refresh_validity: g
                .minutes("refresh_token_validity_in_minutes")?
                .unwrap_or(Duration::from_secs(20160 * 60)),
            rotation,
            reuse_grace: g.seconds("refresh_token_reuse_grace_seconds", 5, 0, 3600)?,
            max_lifetime: g.minutes("session_max_lifetime_in_minutes")?,
            max_sessions_per_user: g.number(
                "max_sessions_per_user",
                DEFAULT_MAX_SESSIONS_PER_USER,
                0,
                100_000,
            )? as usize,
            token_secret,
        })
    }
}
