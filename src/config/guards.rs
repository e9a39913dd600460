//! What stands between a password and an attacker: the account lockout, the per-address
//! throttle and which proxies may name the client's address, and the bcrypt pool's bounds.

use super::parse::{ConfigError, Given};
use std::time::Duration;

/// Account lockout after repeated wrong passwords (DIGIT's settings and defaults).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lockout {
    /// 0 = never lock.
    pub max_attempts: u32,
    pub period: Duration,
    pub cool_down: Duration,
}

/// The brute-force guards: lockout, per-address throttle, trusted proxies, bcrypt pool bounds.
#[derive(Clone, Debug)]
pub struct GuardSettings {
    pub lockout: Lockout,
    /// Password attempts per client address per minute; 0 = no limit.
    pub attempts_per_ip_per_minute: u32,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub bcrypt_max_concurrent: usize,
    /// Logins that may wait for bcrypt; past it a login answers 503 at once.
    pub bcrypt_max_queue: usize,
    /// The cost of the hashes the admin commands make, and the least every password check
    /// costs (`BCRYPT_COST`).
    pub bcrypt_cost: u32,
}

/// The settings this file reads, by normalised name.
pub const KEYS: &[&str] = &[
    "max_invalid_login_attempts",
    "max_invalid_login_attempts_period_minutes",
    "account_unlock_cool_down_period_minutes",
    "login_max_attempts_per_ip_per_minute",
    "trusted_proxies",
    "bcrypt_max_concurrent",
    "bcrypt_max_queue",
    "bcrypt_cost",
];

impl GuardSettings {
    /// The guard settings in `g`, with DIGIT's defaults and a bcrypt pool `cores` wide unless set;
    /// fails on a value out of range or a bad proxy list.
    pub fn parse(g: &Given, cores: u64) -> Result<Self, ConfigError> {
        let bcrypt_max_concurrent = g.number("bcrypt_max_concurrent", cores, 1, 1024)?;
        Ok(GuardSettings {
            lockout: Lockout {
                max_attempts: g.number("max_invalid_login_attempts", 5, 0, 1_000_000)? as u32,
                period: g
                    .minutes("max_invalid_login_attempts_period_minutes")?
                    .unwrap_or(Duration::from_secs(30 * 60)),
                cool_down: g
                    .minutes("account_unlock_cool_down_period_minutes")?
                    .unwrap_or(Duration::from_secs(60 * 60)),
            },
            attempts_per_ip_per_minute: g.number(
                "login_max_attempts_per_ip_per_minute",
                60,
                0,
                1_000_000,
            )? as u32,
            trusted_proxies: trusted_proxies(g)?,
            bcrypt_max_concurrent: bcrypt_max_concurrent as usize,
            bcrypt_max_queue: g.number("bcrypt_max_queue", 8 * bcrypt_max_concurrent, 0, 100_000)?
                as usize,
            bcrypt_cost: g.number("bcrypt_cost", 10, 4, 31)? as u32,
        })
    }
}

fn trusted_proxies(g: &Given) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    let Some(v) = g.text("trusted_proxies") else {
        return Ok(vec![]);
    };
    v.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<ipnet::IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    g.bad(
                        "trusted_proxies",
                        &v,
                        "comma-separated IP addresses or CIDRs, e.g. 10.0.0.0/8,127.0.0.1",
                    )
                })
        })
        .collect()
}
