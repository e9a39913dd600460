//! The session store: Redis for real deployments, the embedded one for a single instance. Both
//! speak the same domain operations; routes never see which one is in use.

pub mod conn;
pub mod guard;
pub mod keys;
pub mod memory;
pub mod redis;

use crate::config::{Lockout, TokenSecret};
use crate::domain::session::{
    Introspection, Issued, NewSession, Refresh, SessionPolicy, SessionsOp, SessionsOutcome,
    TokenPair,
};
use crate::domain::token::{Token, TokenKind};
use guard::Account;
use memory::MemoryStore;
use redis::RedisStore;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis command failed")]
    Redis(#[from] ::redis::RedisError),
    #[error("unexpected reply from redis: {0}")]
    Reply(#[from] ::redis::ParsingError),
    #[error("the token secret cannot key an HMAC")]
    Secret,
}

/// Runs one store operation, recording its latency and failure under `op`.
async fn timed<T>(
    op: &'static str,
    operation: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let start = std::time::Instant::now();
    let result = operation.await;
    crate::metrics::store(op, start.elapsed(), result.is_ok());
    result
}

#[derive(Clone)]
enum Backend {
    Redis(RedisStore),
    Memory(MemoryStore),
}

/// The session store in use, with the session policy and the secret successors derive from.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    policy: SessionPolicy,
    secret: TokenSecret,
}

impl Store {
    pub fn redis(redis: RedisStore, policy: SessionPolicy, secret: TokenSecret) -> Self {
        Store {
            backend: Backend::Redis(redis),
            policy,
            secret,
        }
    }

    pub fn memory(memory: MemoryStore, policy: SessionPolicy, secret: TokenSecret) -> Self {
        Store {
            backend: Backend::Memory(memory),
            policy,
            secret,
        }
    }

    /// `redis`, `redis-cluster` or `embedded`, as `/ready` reports it.
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Redis(r) => r.kind(),
            Backend::Memory(_) => "embedded",
        }
    }

    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        timed("ping", async {
            match &self.backend {
                Backend::Redis(r) => r.ping().await,
                Backend::Memory(_) => Ok(()),
            }
        })
        .await
    }

    /// Starts a session and returns its first token pair, and how many of the user's sessions
    /// the per-user cap ended to make room.
    pub async fn issue_session(&self, session: &NewSession) -> Result<(Issued, u32), StoreError> {
        let pair = TokenPair::for_new_session(&session.user_uuid);
        timed("issue", async {
            match &self.backend {
                Backend::Redis(r) => r.issue_session(session, pair, &self.policy).await,
                Backend::Memory(m) => m.issue_session(session, pair, &self.policy),
            }
        })
        .await
    }

    /// Redeems a refresh token of `client_id` (at most once) for the next pair; the previous
    /// access token ends. `scope` may narrow the session's scope.
    pub async fn rotate_refresh(
        &self,
        presented: &Token,
        scope: Option<&str>,
        client_id: &str,
    ) -> Result<Refresh, StoreError> {
        let pair = if self.policy.rotation {
            TokenPair::derive(presented, self.secret.expose()).ok_or(StoreError::Secret)?
        } else {
            TokenPair {
                access: Token::generate(TokenKind::Access, presented.session()),
                refresh: presented.clone(),
            }
        };
        timed("refresh", async {
            match &self.backend {
                Backend::Redis(r) => {
                    r.rotate_refresh(presented, pair, scope, client_id, &self.policy)
                        .await
                }
                Backend::Memory(m) => {
                    m.rotate_refresh(presented, pair, scope, client_id, &self.policy)
                }
            }
        })
        .await
    }

    /// The user JSON of the session whose live access token this is.
    pub async fn validate_access(&self, token: &Token) -> Result<Option<String>, StoreError> {
        timed("validate", async {
            match &self.backend {
                Backend::Redis(r) => r.validate_access(token).await,
                Backend::Memory(m) => m.validate_access(token),
            }
        })
        .await
    }

    /// Ends the whole session of a live access or refresh token; with `client`, only if the
    /// token was issued to that client.
    pub async fn end_session(
        &self,
        token: &Token,
        client: Option<&str>,
    ) -> Result<bool, StoreError> {
        timed("end", async {
            match &self.backend {
                Backend::Redis(r) => r.end_session(token, client).await,
                Backend::Memory(m) => m.end_session(token, client),
            }
        })
        .await
    }

    /// What a live token stands for; `None` if it is not live.
    pub async fn introspect(&self, token: &Token) -> Result<Option<Introspection>, StoreError> {
        timed("introspect", async {
            match &self.backend {
                Backend::Redis(r) => r.introspect(token).await,
                Backend::Memory(m) => m.introspect(token),
            }
        })
        .await
    }

    /// Lists or ends sessions of the user whose live access token is `caller`; `None` if
    /// that token is not live.
    pub async fn user_sessions(
        &self,
        caller: &Token,
        op: SessionsOp,
    ) -> Result<Option<SessionsOutcome>, StoreError> {
        timed("sessions", async {
            match &self.backend {
                Backend::Redis(r) => r.user_sessions(caller, op).await,
                Backend::Memory(m) => m.user_sessions(caller, op),
            }
        })
        .await
    }

    /// Counts a password attempt from `address`; past `limit` this minute, how long until the
    /// window ends.
    pub async fn hit_address(
        &self,
        address: &str,
        limit: u32,
    ) -> Result<Option<Duration>, StoreError> {
        timed("throttle", async {
            match &self.backend {
                Backend::Redis(r) => r.guard().hit_address(address, limit).await,
                Backend::Memory(m) => Ok(m.guard().hit_address(address, limit)),
            }
        })
        .await
    }

    /// How long `account` stays locked, if it is.
    pub async fn locked_for(&self, account: &Account) -> Result<Option<Duration>, StoreError> {
        timed("lockout_check", async {
            match &self.backend {
                Backend::Redis(r) => r.guard().locked_for(account).await,
                Backend::Memory(m) => Ok(m.guard().locked_for(account)),
            }
        })
        .await
    }

    /// Counts a wrong password; true if that locked the account.
    pub async fn login_failed(
        &self,
        account: &Account,
        lockout: &Lockout,
    ) -> Result<bool, StoreError> {
        if lockout.max_attempts == 0 {
            return Ok(false);
        }
        let (max, period, cool_down) = (lockout.max_attempts, lockout.period, lockout.cool_down);
        timed("lockout_fail", async {
            match &self.backend {
                Backend::Redis(r) => r.guard().fail(account, max, period, cool_down).await,
                Backend::Memory(m) => Ok(m.guard().fail(account, max, period, cool_down)),
            }
        })
        .await
    }

    /// A correct password resets the count of wrong ones.
    pub async fn login_succeeded(&self, account: &Account) -> Result<(), StoreError> {
        timed("lockout_reset", async {
            match &self.backend {
                Backend::Redis(r) => r.guard().succeed(account).await,
                Backend::Memory(m) => {
                    m.guard().succeed(account);
                    Ok(())
                }
            }
        })
        .await
    }
}
