//! The password login as one sequence over domain types: the address throttle, the user lookup,
//! the account lockout, bcrypt, the active check, the audit lines and the new session. The
//! token endpoint parses the request into an [`Attempt`] and turns the outcome into an answer.

use crate::config::Lockout;
use crate::domain::credentials::{Password, Scope, TenantId, Username};
use crate::domain::session::{Issued, NewSession};
use crate::domain::user::UserType;
use crate::password::{PasswordVerifier, VerifyError};
use crate::store::guard::Account;
use crate::store::{Store, StoreError};
use crate::users::UserDirectory;
use std::net::IpAddr;
use std::time::Duration;

/// One password login as the client sent it, already parsed.
pub struct Attempt {
    pub user_name: Username,
    pub password: Password,
    pub tenant: Option<TenantId>,
    pub user_type: Option<UserType>,
    pub client_id: String,
    pub scope: Scope,
    /// The resolved client address (see `routes::client_ip`).
    pub ip: Option<IpAddr>,
    pub user_agent: String,
}

/// A new session: its tokens, its scope and the user as the response shows it.
pub struct LoggedIn {
    pub issued: Issued,
    pub scope: String,
    pub user_json: String,
}

/// Why a login did not start a session.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("wrong user name or password")]
    BadCredentials,
    #[error("the account is inactive")]
    Inactive,
    #[error("the account is locked")]
    Locked,
    #[error("too many attempts from this address")]
    Throttled { retry_after: Duration },
    #[error("password verification is saturated")]
    Busy,
    #[error("session store unavailable")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Internal(String),
}

impl From<VerifyError> for LoginError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Busy => LoginError::Busy,
            VerifyError::Stopped => LoginError::Internal(e.to_string()),
        }
    }
}

impl LoginError {
    /// The `outcome` label of `token_server_logins_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            LoginError::BadCredentials => "bad_credentials",
            LoginError::Inactive => "inactive",
            LoginError::Locked => "locked",
            LoginError::Throttled { .. } => "throttled",
            LoginError::Busy => "busy",
            LoginError::Store(_) => "store_error",
            LoginError::Internal(_) => "error",
        }
    }
}

/// What a login needs: the stores, the bcrypt pool and the brute-force settings.
#[derive(Clone)]
pub struct Login {
    pub store: Store,
    pub users: UserDirectory,
    pub verifier: PasswordVerifier,
    pub lockout: Lockout,
    /// Password attempts per client address per minute; 0 = no limit.
    pub attempts_per_ip_per_minute: u32,
}

impl Login {
    /// Checks the attempt and starts a session.
    pub async fn run(&self, a: Attempt) -> Result<LoggedIn, LoginError> {
        if self.attempts_per_ip_per_minute > 0
            && let Some(ip) = a.ip
            && let Some(wait) = self
                .store
                .hit_address(
                    &crate::domain::address::throttle_key(ip),
                    self.attempts_per_ip_per_minute,
                )
                .await?
        {
            log::info!(target: "audit", "login throttled: too many attempts from {ip}");
            return Err(LoginError::Throttled { retry_after: wait });
        }

        let user = self
            .users
            .find(&a.user_name, a.tenant.as_ref(), a.user_type)
            .await?;
        let account = Account {
            tenant: user.as_ref().map_or_else(
                || a.tenant.as_ref().map_or("*", |t| t.as_str()).to_string(),
                |u| u.public.tenant_id.clone(),
            ),
            user_name: a.user_name.as_str().to_string(),
        };
        if self.lockout.max_attempts > 0 && self.store.locked_for(&account).await?.is_some() {
            log::info!(
                target: "audit",
                "login refused: account {}/{} is locked",
                account.tenant, account.user_name
            );
            return Err(LoginError::Locked);
        }
        let matched = self
            .verifier
            .verify(a.password, user.as_ref().map(|u| &u.password))
            .await?;
        let user = match user {
            Some(user) if matched => user,
            _ => {
                let locked = self.store.login_failed(&account, &self.lockout).await?;
                log::info!(
                    target: "audit",
                    "login failed: wrong credentials for {}/{} from {}{}",
                    account.tenant,
                    account.user_name,
                    a.ip.map_or_else(|| "unknown address".to_string(), |ip| ip.to_string()),
                    if locked { "; account now locked" } else { "" }
                );
                return Err(LoginError::BadCredentials);
            }
        };
        if self.lockout.max_attempts > 0 {
            self.store.login_succeeded(&account).await?;
        }
        if !user.public.active {
            return Err(LoginError::Inactive);
        }
        let user_json = serde_json::to_string(&user.public)
            .map_err(|e| LoginError::Internal(format!("cannot serialise user: {e}")))?;
        let session = NewSession {
            user_uuid: user.public.uuid.clone(),
            user_json,
            client_id: a.client_id,
            scope: a.scope.to_param(),
            ip: a.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            user_agent: a.user_agent,
        };
        let (issued, ended) = self.store.issue_session(&session).await?;
        if ended > 0 {
            log::info!(
                target: "audit",
                "login of user {} ended {ended} older session(s): max.sessions.per.user reached",
                user.public.uuid
            );
        }
        Ok(LoggedIn {
            issued,
            scope: session.scope,
            user_json: session.user_json,
        })
    }
}
