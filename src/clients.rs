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
use crate::metrics::{ClientFailure, Verdict};
use crate::password::PasswordVerifier;
use crate::store::Store;
use crate::store::guard::Reservation;
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

    /// The client a request authenticates as: by `basic` (its Authorization header) or by
    /// the form's `client_id` and `client_secret`, never both.
    pub async fn authenticate(
        &self,
        basic: Option<ClientCredentials>,
        form_id: Option<&str>,
        form_secret: Option<&str>,
        check: &SecretCheck<'_>,
    ) -> Result<&Client, ClientAuthError> {
        let presented = match (basic, form_id) {
            (Some(_), _) if form_secret.is_some() => return Err(ClientAuthError::TwoWays),
            (Some(basic), Some(id)) if id != basic.id => return Err(ClientAuthError::Mismatch),
            (Some(basic), _) => basic,
            (None, Some(id)) => ClientCredentials {
                id: id.to_string(),
                secret: form_secret.unwrap_or_default().to_string(),
            },
            (None, None) => return Err(ClientAuthError::Invalid),
        };
        let client = self
            .clients
            .get(&presented.id)
            .ok_or(ClientAuthError::Invalid)?;
        match &client.secret {
            // Public clients have an empty secret; presenting another one is an error.
            None if presented.secret.is_empty() => Ok(client),
            None => Err(ClientAuthError::Invalid),
            Some(_) if presented.secret.is_empty() => Err(ClientAuthError::Invalid),
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
                    Password::parse(&presented.secret).map_err(|_| ClientAuthError::Invalid)?;
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
    ) -> Result<(), ClientAuthError> {
        if self.per_address > 0
            && let Some(ip) = self.address
            && let Some(wait) = self
                .store
                .hit_address(&throttle_key(ip), self.per_address)
                .await?
        {
            log::info!(target: "audit", "client authentication of {client_id:?} throttled: too many attempts from {ip}");
            crate::metrics::client_auth_failure(client_id, ClientFailure::Throttled);
            return Err(ClientAuthError::Throttled { retry_after: wait });
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
                    Ok(()) => Verdict::Right,
                    Err(ClientAuthError::Invalid) => Verdict::Wrong,
                    Err(_) => Verdict::None,
                };
                budget::abandoned(&account, label);
            }
            verdict
        })
        .await
        .ok_or(ClientAuthError::Bug("client secret check panicked"))?
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
) -> Result<(), ClientAuthError> {
    let Account::Client { id, .. } = account else {
        return Err(ClientAuthError::Bug("a client check of a user account"));
    };
    let ticket = match budget::reserve(store, account, lockout, watch).await? {
        Reservation::Granted(ticket) => ticket,
        Reservation::Locked => {
            log::info!(target: "audit", "client authentication refused: {account} is locked");
            crate::metrics::client_auth_failure(id, ClientFailure::Locked);
            return Err(ClientAuthError::Invalid);
        }
        Reservation::Busy => return Err(ClientAuthError::Busy),
    };
    let matched = match verifier.verify(secret, Some(hash)).await {
        Ok(matched) => matched,
        Err(e) => {
            let _ = store.attempt_settled(account, ticket, false, lockout).await;
            return Err(ClientAuthError::Check(e));
        }
    };
    if matched {
        store
            .attempt_settled(account, ticket, true, lockout)
            .await?;
        return Ok(());
    }
    let locked = store.attempt_failed(account, ticket, lockout).await?;
    crate::metrics::client_auth_failure(id, ClientFailure::WrongSecret);
    log::info!(
        target: "audit",
        "client authentication failed: wrong secret for {account}{}",
        if locked { "; locked at this address" } else { "" }
    );
    Err(ClientAuthError::Invalid)
}

/// Credentials a request presented, before they are checked.
pub struct ClientCredentials {
    pub id: String,
    pub secret: String,
}

/// Why a client did not authenticate (turned into an answer in `error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// Unknown client, wrong or missing secret, or a locked (client, address).
    #[error("client authentication failed")]
    Invalid,
    #[error("client credentials sent both in the Authorization header and the form")]
    TwoWays,
    #[error("client_id does not match the Authorization header")]
    Mismatch,
    #[error("too many client authentications from this address")]
    Throttled { retry_after: std::time::Duration },
    #[error("too many authentications of this client at once")]
    Busy,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("the secret could not be checked")]
    Check(#[source] crate::password::VerifyError),
    #[error("{0}")]
    Bug(&'static str),
}
