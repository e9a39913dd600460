//! The HTTP side of one process: where it listens, how many workers, how it shuts down; and
//! where its users and OAuth clients come from.

use super::parse::{ConfigError, Given};
use std::path::PathBuf;
use std::time::Duration;

/// Where the server listens, with how many workers, and how it shuts down.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    /// Serve `/metrics` on this port (same host) instead of the API port.
    pub metrics_port: Option<u16>,
    pub workers: usize,
    /// After SIGTERM: how long to keep serving with `/ready` at 503.
    pub shutdown_delay: Duration,
    /// Then: how long in-flight requests may take before the process exits.
    pub shutdown_drain: Duration,
    /// The base URL clients reach this server under (`PUBLIC_URL`), without a trailing `/`.
    pub public_url: Option<String>,
    /// How long a request body may take to arrive, from when its handler starts reading it.
    pub body_timeout: Duration,
    /// Serve the account page at `/account/` (`ACCOUNT_PAGE_ENABLED`); off, it answers 404.
    pub account_page: bool,
}

/// Where users and OAuth clients come from.
#[derive(Clone, Debug)]
pub struct AccountSettings {
    pub users_file: Option<PathBuf>,
    pub clients_file: Option<PathBuf>,
    pub default_client_enabled: bool,
}

/// The settings this file reads, by normalised name.
pub const KEYS: &[&str] = &[
    "host",
    "port",
    "metrics_port",
    "workers",
    "shutdown_delay_seconds",
    "shutdown_drain_seconds",
    "public_url",
    "request_body_timeout_ms",
    "account_page_enabled",
    "users_file",
    "clients_file",
    "default_client_enabled",
];

impl ServerSettings {
    /// The server settings in `g`, one worker per core unless set; fails on a bad port, an empty
    /// host or a metrics port equal to the API port.
    pub fn parse(g: &Given, cores: u64) -> Result<Self, ConfigError> {
        let port = g.number("port", 8080, 0, 65535)? as u16;
        let metrics_port = match g.non_blank("metrics_port") {
            None => None,
            Some(v) => {
                let m = g.number("metrics_port", 0, 0, 65535)? as u16;
                if m != 0 && m == port {
                    return Err(g.bad("metrics_port", &v, "a port other than PORT"));
                }
                Some(m)
            }
        };
        let host = g.text("host").unwrap_or_else(|| "0.0.0.0".into());
        if host.trim().is_empty() {
            return Err(g.bad("host", &host, "an IP address or host name to listen on"));
        }
        Ok(ServerSettings {
            host,
            port,
            metrics_port,
            workers: g.number("workers", cores, 1, 1024)? as usize,
            shutdown_delay: g.seconds("shutdown_delay_seconds", 0, 0, 600)?,
            shutdown_drain: g.seconds("shutdown_drain_seconds", 10, 1, 3600)?,
            public_url: public_url(g)?,
            body_timeout: Duration::from_millis(g.number(
                "request_body_timeout_ms",
                10_000,
                100,
                600_000,
            )?),
            account_page: g.flag("account_page_enabled", true)?,
        })
    }
}

/// `PUBLIC_URL`: an absolute http(s) URL with a host and no query or fragment (RFC 8414's
/// issuer identifier).
fn public_url(g: &Given) -> Result<Option<String>, ConfigError> {
    let Some(v) = g.non_blank("public_url") else {
        return Ok(None);
    };
    let url = v.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let ok = rest.is_some_and(|r| {
        let host = r.split('/').next().unwrap_or_default();
        !host.is_empty()
            && !r.contains(['?', '#', ' ', '@'])
            && r.bytes().all(|b| b.is_ascii_graphic())
    });
    if !ok {
        return Err(g.bad(
            "public_url",
            &v,
            "an absolute http:// or https:// URL without query or fragment, e.g. https://auth.example.org",
        ));
    }
    Ok(Some(url.to_string()))
}

impl AccountSettings {
    /// The account settings in `g`; files are only named here, read at start-up.
    pub fn parse(g: &Given) -> Result<Self, ConfigError> {
        Ok(AccountSettings {
            users_file: g.path("users_file"),
            clients_file: g.path("clients_file"),
            default_client_enabled: g.flag("default_client_enabled", true)?,
        })
    }
}
