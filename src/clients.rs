//! OAuth clients and client authentication (RFC 6749 §2.3.1): HTTP Basic, or `client_id` /
//! `client_secret` form fields, never both. Clients come from `CLIENTS_FILE`; DIGIT's public
//! client `egov-user-client` (empty secret) exists too unless `default.client.enabled=false`.
//! A confidential client's secret is a bcrypt hash; once a secret has verified, its SHA-256 is
//! remembered so later requests skip bcrypt. A secret that needs bcrypt is budgeted first (RFC
//! 6749 §2.3.1): it counts against its address's attempts (429 past them) and reserves a check
//! of the lockout budget of the client *at that address* (refused while locked). A client
//! secret is a machine secret, never budgeted per client alone: a stranger's wrong secrets
//! lock out only the stranger's address.

use crate::budget;
use crate::config::Lockout;
use crate::domain::account::Account;
use crate::domain::address::throttle_key;
use crate::domain::credentials::{Password, Scope};
use crate::domain::user::PasswordHash;
use crate::error::ApiError;
use crate::password::PasswordVerifier;
use crate::store::Store;
use crate::store::guard::Reservation;
use actix_web::HttpRequest;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// The id of DIGIT's public client, which has an empty secret.
pub const DEFAULT_CLIENT_ID: &str = "egov-user-client";

/// A grant a client may use, as `CLIENTS_FILE` spells it (`password`, `refresh_token`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    Password,
    RefreshToken,
}

/// A registered OAuth client: its id, the scope it may ask for and the grants it may use.
#[derive(Clone, Debug)]
pub struct Client {
    pub id: String,
    /// `None` for a public client.
    secret: Option<PasswordHash>,
    pub scope: Scope,
    pub grant_types: Vec<GrantType>,
}

impl Client {
    /// Whether the client has a secret it must present; a public client has none.
    pub fn is_confidential(&self) -> bool {
        self.secret.is_some()
    }
}

/// One entry of `CLIENTS_FILE`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientEntry {
    client_id: String,
    #[serde(default)]
    client_secret_hash: Option<PasswordHash>,
    #[serde(default = "default_grants")]
    grant_types: Vec<GrantType>,
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
}

fn default_grants() -> Vec<GrantType> {
    vec![GrantType::Password, GrantType::RefreshToken]
}

fn default_scopes() -> Vec<String> {
    vec!["read".into()]
}

/// The registered clients, fixed at start-up; clones share them and the cache of verified secrets.
#[derive(Clone)]
pub struct Clients {
    clients: Arc<HashMap<String, Client>>,
    /// client id -> SHA-256 of a secret that has verified against its bcrypt hash.
    verified: Arc<RwLock<HashMap<String, [u8; 32]>>>,
}

impl Clients {
    /// The clients of `file` (if any), plus the default public client when enabled.
    pub fn load(file: Option<&Path>, default_enabled: bool) -> Result<Self, String> {
        let mut clients = HashMap::new();
        if default_enabled {
            clients.insert(
                DEFAULT_CLIENT_ID.to_string(),
                Client {
                    id: DEFAULT_CLIENT_ID.into(),
                    secret: None,
                    scope: Scope::from_list(&["read"]),
                    grant_types: default_grants(),
                },
            );
        }
        if let Some(path) = file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read CLIENTS_FILE {}: {e}", path.display()))?;
            let entries: Vec<ClientEntry> = serde_json::from_str(&text).map_err(|e| {
                format!(
                    "CLIENTS_FILE {}: not a JSON array of clients {{client_id, client_secret_hash, grant_types, scopes}}: {e}",
                    path.display()
                )
            })?;
            for e in entries {
                let scopes: Vec<&str> = e.scopes.iter().map(String::as_str).collect();
                let scope = Scope::parse(&scopes.join(" "))
                    .map_err(|r| format!("CLIENTS_FILE: client {:?}: {}", e.client_id, r.0))?;
                if e.client_id.is_empty() || e.client_id.contains(':') {
                    return Err(format!(
                        "CLIENTS_FILE: client id {:?} must be non-empty and without ':'",
                        e.client_id
                    ));
                }
                clients.insert(
                    e.client_id.clone(),
                    Client {
                        id: e.client_id,
                        secret: e.client_secret_hash,
                        scope,
                        grant_types: e.grant_types,
                    },
                );
            }
        }
        if clients.is_empty() {
            return Err(
                "no OAuth clients: default.client.enabled is false and CLIENTS_FILE defines none"
                    .into(),
            );
        }
        Ok(Clients {
            clients: Arc::new(clients),
            verified: Arc::default(),
        })
    }

    /// The ids of the clients that have a secret.
    pub fn confidential(&self) -> impl Iterator<Item = &str> {
        self.clients
            .values()
            .filter(|c| c.is_confidential())
            .map(|c| c.id.as_str())
    }

    /// Every scope some client may be granted, sorted.
    pub fn scopes(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .clients
            .values()
            .flat_map(|c| {
                c.scope
                    .to_param()
                    .split(' ')
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// The client a request authenticates as.
    pub async fn authenticate(
        &self,
        req: &HttpRequest,
        form_id: Option<&str>,
        form_secret: Option<&str>,
        check: &SecretCheck<'_>,
    ) -> Result<&Client, ApiError> {
        let presented = match (from_basic(req)?, form_id) {
            (Some(_), _) if form_secret.is_some() => {
                return Err(ApiError::InvalidRequest(
                    "client credentials must be sent in one way only: Authorization header or client_secret".into(),
                ));
            }
            (Some(basic), Some(id)) if id != basic.id => {
                return Err(ApiError::InvalidRequest(
                    "client_id does not match the Authorization header".into(),
                ));
            }
            (Some(basic), _) => basic,
            (None, Some(id)) => Presented {
                id: id.to_string(),
                secret: form_secret.unwrap_or_default().to_string(),
            },
            (None, None) => return Err(ApiError::InvalidClient),
        };
        let client = self
            .clients
            .get(&presented.id)
            .ok_or(ApiError::InvalidClient)?;
        match &client.secret {
            // Public clients have an empty secret; presenting another one is an error.
            None if presented.secret.is_empty() => Ok(client),
            None => Err(ApiError::InvalidClient),
            Some(_) if presented.secret.is_empty() => Err(ApiError::InvalidClient),
            Some(hash) => {
                let digest: [u8; 32] = Sha256::digest(presented.secret.as_bytes()).into();
                let known = self
                    .verified
                    .read()
                    .map(|v| v.get(&client.id) == Some(&digest))
                    .unwrap_or(false);
                if known {
                    return Ok(client);
                }
                let secret =
                    Password::parse(&presented.secret).map_err(|_| ApiError::InvalidClient)?;
                check.verify(&client.id, secret, hash).await?;
                if let Ok(mut v) = self.verified.write() {
                    v.insert(client.id.clone(), digest);
                }
                Ok(client)
            }
        }
    }
}

/// What checking a client secret with bcrypt needs: the client pool, and the budgets it
/// spends first.
pub struct SecretCheck<'a> {
    pub verifier: &'a PasswordVerifier,
    pub store: &'a Store,
    pub lockout: Lockout,
    /// The resolved client address and its attempts per minute (0 = no limit).
    pub address: Option<IpAddr>,
    pub per_address: u32,
}

impl SecretCheck<'_> {
    /// Checks `secret` against `hash` after spending the address's budget and a place in the
    /// (client, address) budget, to its end even if the request goes away (see [`budget`]).
    async fn verify(
        &self,
        client_id: &str,
        secret: Password,
        hash: &PasswordHash,
    ) -> Result<(), ApiError> {
        if self.per_address > 0
            && let Some(ip) = self.address
            && let Some(wait) = self
                .store
                .hit_address(&throttle_key(ip), self.per_address)
                .await?
        {
            log::info!(target: "audit", "client authentication of {client_id:?} throttled: too many attempts from {ip}");
            crate::metrics::client_auth_failure(client_id, "throttled");
            return Err(ApiError::TooManyAttempts {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        let account = Account::Client {
            id: client_id.to_string(),
            address: self.address.map_or_else(|| "unknown".into(), throttle_key),
        };
        let (store, verifier, lockout) = (self.store.clone(), self.verifier.clone(), self.lockout);
        let hash = hash.clone();
        budget::to_the_end(move |watch| async move {
            let verdict = check(&store, &verifier, &lockout, &account, secret, &hash, &watch).await;
            if watch.went_away() {
                let label = match &verdict {
                    Ok(()) => "right",
                    Err(ApiError::InvalidClient) => "wrong",
                    Err(_) => "none",
                };
                budget::abandoned(&account, label);
            }
            verdict
        })
        .await
        .ok_or_else(|| ApiError::bug("client secret check panicked"))?
    }
}

/// Reserves a place, runs bcrypt and settles the place: the whole of one client secret check.
async fn check(
    store: &Store,
    verifier: &PasswordVerifier,
    lockout: &Lockout,
    account: &Account,
    secret: Password,
    hash: &PasswordHash,
    watch: &budget::Watch,
) -> Result<(), ApiError> {
    let Account::Client { id, .. } = account else {
        return Err(ApiError::bug("a client check of a user account"));
    };
    let ticket = match budget::reserve(store, account, lockout, watch).await? {
        Reservation::Granted(ticket) => ticket,
        Reservation::Locked => {
            log::info!(target: "audit", "client authentication refused: {account} is locked");
            crate::metrics::client_auth_failure(id, "locked");
            return Err(ApiError::InvalidClient);
        }
        Reservation::Busy => {
            return Err(ApiError::Retry(
                "too many authentications of this client at once; retry shortly",
            ));
        }
    };
    let matched = match verifier.verify(secret, Some(hash)).await {
        Ok(matched) => matched,
        Err(e) => {
            let _ = store.attempt_settled(account, ticket, false, lockout).await;
            return Err(e.into());
        }
    };
    if matched {
        store
            .attempt_settled(account, ticket, true, lockout)
            .await?;
        return Ok(());
    }
    let locked = store.attempt_failed(account, ticket, lockout).await?;
    crate::metrics::client_auth_failure(id, "wrong_secret");
    log::info!(
        target: "audit",
        "client authentication failed: wrong secret for {account}{}",
        if locked { "; locked at this address" } else { "" }
    );
    Err(ApiError::InvalidClient)
}

/// Credentials a request presented, before they are checked.
struct Presented {
    id: String,
    secret: String,
}

fn from_basic(req: &HttpRequest) -> Result<Option<Presented>, ApiError> {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::InvalidClient)?;
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Err(ApiError::InvalidClient);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or(ApiError::InvalidClient)?;
    let (id, secret) = decoded.split_once(':').ok_or(ApiError::InvalidClient)?;
    let decode = |s: &str| {
        percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| ApiError::InvalidClient)
    };
    Ok(Some(Presented {
        id: decode(id)?,
        secret: decode(secret)?,
    }))
}
