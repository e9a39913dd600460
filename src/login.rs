//! The password login as one sequence over domain types: the address throttle, the user lookup,
//! the account lockout, bcrypt (or a one-time code, see `otp`), the active check, the audit
//! lines and the new session. The token endpoint parses the request into an [`Attempt`] and
//! turns the outcome into an answer.

mod hints;

use crate::budget;
use crate::config::Lockout;
use crate::domain::account::Account;
use crate::domain::address::throttle_key;
use crate::domain::credentials::{Password, Scope, TenantId, Username};
use crate::domain::session::{Generation, Issued, MAX_LOGIN, NewSession, Started};
use crate::domain::token::UserTag;
use crate::domain::user::{User, UserType};
use crate::metrics::{LoginOutcome, Verdict};
use crate::otp::{CheckError, Otp};
use crate::password::{PasswordVerifier, VerifyError};
use crate::store::guard::{Reservation, Ticket};
use crate::store::{Store, StoreError};
use crate::users::UserDirectory;
pub use hints::TagHints;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The user a login names.
pub struct Named {
    pub user_name: Username,
    pub tenant: Option<TenantId>,
    pub user_type: Option<UserType>,
}

/// One password login as the client sent it, already parsed.
pub struct Attempt {
    pub named: Named,
    pub password: Password,
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
    /// Checks of this account in flight hold the rest of its budget.
    #[error("too many logins of this account at once")]
    AccountBusy,
    /// All of the user's sessions were ended while the login ran (disable, set-password,
    /// logout-all): it starts none; a new login sees the user as it is now.
    #[error("the user changed while the login ran")]
    UserChanged,
    #[error("session store unavailable")]
    Store(#[from] StoreError),
    /// egov-otp could not say whether the code is right: no verdict, no try counted.
    #[error("the one-time code service is unavailable")]
    CodeServiceDown,
    #[error("{context}")]
    Internal {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl From<VerifyError> for LoginError {
    fn from(e: VerifyError) -> Self {
        match e {
            VerifyError::Busy => LoginError::Busy,
            VerifyError::Stopped => LoginError::Internal {
                context: "password check",
                source: Box::new(e),
            },
        }
    }
}

impl From<CheckError> for LoginError {
    fn from(e: CheckError) -> Self {
        match e {
            CheckError::Store(e) => LoginError::Store(e),
            CheckError::Unavailable => LoginError::CodeServiceDown,
        }
    }
}

impl LoginError {
    /// The `outcome` label of `token_server_logins_total`.
    pub fn outcome(&self) -> LoginOutcome {
        match self {
            LoginError::BadCredentials => LoginOutcome::BadCredentials,
            LoginError::Inactive => LoginOutcome::Inactive,
            LoginError::Locked => LoginOutcome::Locked,
            LoginError::Throttled { .. } => LoginOutcome::Throttled,
            LoginError::Busy | LoginError::AccountBusy => LoginOutcome::Busy,
            LoginError::UserChanged => LoginOutcome::UserChanged,
            LoginError::Store(_) | LoginError::CodeServiceDown => LoginOutcome::StoreError,
            LoginError::Internal { .. } => LoginOutcome::Error,
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
    /// One-time codes, when some user type logs in with one.
    pub codes: Option<std::sync::Arc<Otp>>,
    /// Whose generation a name's login read last time.
    pub hints: TagHints,
}

impl Login {
    /// Checks the attempt and starts a session.
    pub async fn run(&self, a: Attempt) -> Result<LoggedIn, LoginError> {
        self.throttle(a.ip).await?;
        let (user, generation, read_at) = self.budgeted(a.named, a.password, a.ip).await?;
        if !user.public.active {
            return Err(LoginError::Inactive);
        }
        if read_at.elapsed() > MAX_LOGIN {
            return Err(LoginError::UserChanged);
        }
        let user_json = serde_json::to_string(&user.public).map_err(|e| LoginError::Internal {
            context: "cannot serialise the user",
            source: Box::new(e),
        })?;
        let session = NewSession {
            user_uuid: user.public.uuid.clone(),
            user_json,
            client_id: a.client_id,
            scope: a.scope.to_param(),
            ip: a.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            user_agent: a.user_agent,
            generation,
        };
        let (issued, ended) = match self.store.issue_session(&session).await? {
            Started::Issued(issued, ended) => (issued, ended),
            Started::UserChanged => {
                log::info!(
                    target: "audit",
                    "login of user {:?} refused: its sessions were ended while it ran",
                    user.public.uuid
                );
                return Err(LoginError::UserChanged);
            }
        };
        if ended > 0 {
            log::info!(
                target: "audit",
                "login of user {:?} ended {ended} older session(s): max.sessions.per.user reached",
                user.public.uuid
            );
        }
        Ok(LoggedIn {
            issued,
            scope: session.scope,
            user_json: session.user_json,
        })
    }

    /// The user whose password this is, with the generation read before the user was (see
    /// [`current_user`](Self::current_user)). Reserves a place in the account's budget first
    /// (waiting briefly for one), and settles it after; all of it to its end even if the
    /// request goes away (see [`budget`]).
    async fn budgeted(
        &self,
        named: Named,
        password: Password,
        ip: Option<IpAddr>,
    ) -> Result<(User, Generation, Instant), LoginError> {
        // Every spelling of one account counts together, whether or not such a user exists.
        let account = Account::User(named.user_name.as_str().to_string());
        let login = self.clone();
        budget::to_the_end(move |watch| async move {
            let checked = login.reserved(&named, password, &account, ip, &watch).await;
            if watch.went_away() {
                let verdict = match &checked {
                    Ok(_) => Verdict::Right,
                    Err(LoginError::BadCredentials) => Verdict::Wrong,
                    Err(_) => Verdict::None,
                };
                budget::abandoned(&account, verdict);
            }
            checked
        })
        .await
        .ok_or(LoginError::Internal {
            context: "password check",
            source: "the check's task panicked".into(),
        })?
    }

    /// [`check`](Self::check) within a place reserved in the account's budget.
    async fn reserved(
        &self,
        named: &Named,
        password: Password,
        account: &Account,
        ip: Option<IpAddr>,
        watch: &budget::Watch,
    ) -> Result<(User, Generation, Instant), LoginError> {
        let ticket = match budget::reserve(&self.store, account, &self.lockout, watch).await? {
            Reservation::Granted(ticket) => ticket,
            Reservation::Locked => {
                log::info!(target: "audit", "login refused: {account} is locked");
                return Err(LoginError::Locked);
            }
            Reservation::Busy => return Err(LoginError::AccountBusy),
        };
        let checked = self.check(named, password, account, ticket, ip).await;
        if let Err(e) = &checked
            && !matches!(e, LoginError::BadCredentials)
        {
            // No verdict: the place goes back (or frees itself after the hold).
            let _ = self
                .store
                .attempt_settled(account, ticket, false, &self.lockout)
                .await;
        }
        checked
    }

    /// Checks the password and settles the reserved place with the verdict.
    async fn check(
        &self,
        named: &Named,
        password: Password,
        account: &Account,
        ticket: Ticket,
        ip: Option<IpAddr>,
    ) -> Result<(User, Generation, Instant), LoginError> {
        let (user, generation, read_at) = self.current_user(named).await?;
        let matched = match self.codes.as_deref() {
            Some(codes) if codes.checks_as_code(user.as_ref(), named.user_type, &password) => {
                codes.verify(&password, user.as_ref()).await?
            }
            _ => {
                self.verifier
                    .verify(password, user.as_ref().map(|u| &u.password))
                    .await?
            }
        };
        match user {
            Some(user) if matched => {
                self.store
                    .attempt_settled(account, ticket, true, &self.lockout)
                    .await?;
                Ok((user, generation, read_at))
            }
            _ => {
                let locked = self
                    .store
                    .attempt_failed(account, ticket, &self.lockout)
                    .await?;
                log::info!(
                    target: "audit",
                    "login failed: wrong credentials for {account} from {}{}",
                    ip.map_or_else(|| "unknown address".to_string(), |ip| ip.to_string()),
                    if locked { "; account now locked" } else { "" }
                );
                Err(LoginError::BadCredentials)
            }
        }
    }

    /// Counts the attempt against its address's budget.
    async fn throttle(&self, ip: Option<IpAddr>) -> Result<(), LoginError> {
        if self.attempts_per_ip_per_minute == 0 {
            return Ok(());
        }
        let Some(ip) = ip else { return Ok(()) };
        let address = throttle_key(ip);
        match self
            .store
            .hit_address(&address, self.attempts_per_ip_per_minute)
            .await?
        {
            Some(wait) => {
                log::info!(target: "audit", "login throttled: too many attempts from {ip}");
                Err(LoginError::Throttled { retry_after: wait })
            }
            None => Ok(()),
        }
    }

    /// The user the attempt names, as of after the user's generation was read, with that
    /// generation and when it was read. The user is read after the generation, so that a
    /// change made before the generation moved is seen; whose generation to read comes from
    /// the hint this replica kept for the name, or else from a first read of the user. A name
    /// that finds nobody does the same reads, so it takes as long.
    async fn current_user(
        &self,
        named: &Named,
    ) -> Result<(Option<User>, Generation, Instant), LoginError> {
        let find = || {
            self.users
                .find(&named.user_name, named.tenant.as_ref(), named.user_type)
        };
        if let Some(tag) = self.hints.get(named) {
            let read_at = Instant::now();
            let generation = self.store.user_generation(&tag).await?;
            let user = find().await?;
            if tag_of(named, &user) == tag {
                return Ok((user, generation, read_at));
            }
        }
        let first = find().await?;
        let tag = tag_of(named, &first);
        let read_at = Instant::now();
        let generation = self.store.user_generation(&tag).await?;
        let user = find().await?;
        if tag_of(named, &user) != tag {
            return Err(LoginError::UserChanged);
        }
        self.hints.remember(named, tag);
        Ok((user, generation, read_at))
    }
}

/// Whose generation guards a login by `named`: the user's, or a name's that finds nobody.
fn tag_of(named: &Named, user: &Option<User>) -> UserTag {
    match user {
        Some(user) => UserTag::for_user(&user.public.uuid),
        None => UserTag::for_user(&format!("nobody:{}", named.user_name.as_str())),
    }
}
