//! The session store: Redis for real deployments, the embedded one for a single instance. Both
//! speak the same domain operations; routes never see which one is in use.

pub mod codes;
pub mod guard;
pub mod lua;
pub mod memory;
pub mod redis;
pub mod session_hash;

use crate::config::{Lockout, TokenSecret};
use crate::domain::account::Account;
use crate::domain::session::{
    Generation, Introspection, NewSession, Refresh, SessionInfo, SessionPolicy, Started, TokenPair,
};
use crate::domain::token::{HmacKey, SessionId, Token, TokenKind, UserTag};
use crate::metrics::StoreOp;
use bytes::Bytes;
use guard::{Reservation, Ticket};
use memory::MemoryStore;
use redis::RedisStore;
use std::time::Duration;

/// Why a store operation failed: a Redis error or an unexpected reply; the embedded store has none.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis command failed")]
    Redis(#[from] ::redis::RedisError),
    #[error("unexpected reply from redis: {0}")]
    Reply(#[from] ::redis::ParsingError),
}

/// Whole milliseconds, at least 1: what Redis expiries and windows are given in.
pub(crate) fn ms(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

/// Runs one store operation, recording its latency and failure under `op`.
async fn timed<T>(
    op: StoreOp,
    operation: impl std::future::Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let start = std::time::Instant::now();
    let result = operation.await;
    crate::metrics::store(op, start.elapsed(), result.is_ok());
    result
}

/// Runs an operation on whichever backend is in use, timed under `op`: the Redis side is
/// awaited, the embedded side is synchronous.
macro_rules! on_backend {
    ($self:ident, $op:expr, |$r:ident| $redis:expr, |$m:ident| $memory:expr $(,)?) => {
        timed($op, async {
            match &$self.backend {
                Backend::Redis($r) => $redis.await,
                Backend::Memory($m) => $memory,
            }
        })
        .await
    };
}

#[derive(Clone)]
enum Backend {
    Redis(RedisStore),
    Memory(MemoryStore),
}

/// The session store in use, with the session policy and the key successors derive from.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    policy: SessionPolicy,
    successor_key: HmacKey,
}

impl Store {
    /// The store on Redis, with the policy and the successor-token secret.
    pub fn redis(redis: RedisStore, policy: SessionPolicy, secret: &TokenSecret) -> Self {
        Self::new(Backend::Redis(redis), policy, secret)
    }

    /// The embedded store (one instance only), with the policy and the successor-token secret.
    pub fn memory(memory: MemoryStore, policy: SessionPolicy, secret: &TokenSecret) -> Self {
        Self::new(Backend::Memory(memory), policy, secret)
    }

    fn new(backend: Backend, policy: SessionPolicy, secret: &TokenSecret) -> Self {
        Store {
            backend,
            policy,
            successor_key: HmacKey::new(secret.expose()),
        }
    }

    /// `redis`, `redis-cluster`, `redis-sentinel` or `embedded`, as `/ready` reports it.
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Redis(r) => r.kind(),
            Backend::Memory(_) => "embedded",
        }
    }

    /// The session policy every operation applies.
    pub fn policy(&self) -> &SessionPolicy {
        &self.policy
    }

    /// The lease other replicas on this Redis run, if it is not `mine`; `None` on the
    /// embedded store, when none is stored, or when Redis cannot be asked now (the tracking
    /// connection asks again).
    pub async fn lease_conflict(&self, mine: std::time::Duration) -> Option<u64> {
        let Backend::Redis(r) = &self.backend else {
            return None;
        };
        let stored = tokio::time::timeout(std::time::Duration::from_secs(2), r.stored_lease());
        match stored.await {
            Ok(Ok(Some(v))) if v != mine.as_millis() as u64 => Some(v),
            Ok(Ok(_)) => None,
            _ => {
                log::warn!("Redis did not answer at start-up: the lease guard runs when it does");
                None
            }
        }
    }

    /// Waits out the read lease after a revoking write outside a request (the admin
    /// commands): see `RedisStore::commit_wait`.
    pub async fn commit_wait(&self) {
        if let Backend::Redis(r) = &self.backend {
            r.commit_wait(std::time::Instant::now()).await;
        }
    }

    /// Succeeds if the store answers; the embedded store always does.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(self, StoreOp::Ping, |r| r.ping(), |_m| Ok(()))
    }

    /// Starts a session with its first token pair, unless the user's generation is no longer
    /// the one the login read; past the per-user cap, ends the user's sessions expiring first.
    pub async fn issue_session(&self, session: &NewSession) -> Result<Started, StoreError> {
        let pair = TokenPair::for_new_session(&session.user_uuid);
        on_backend!(
            self,
            StoreOp::Issue,
            |r| r.issue_session(session, pair, &self.policy),
            |m| m.issue_session(session, pair, &self.policy),
        )
    }

    /// The generation of the user with `tag` now (see [`Generation`]).
    pub async fn user_generation(&self, tag: &UserTag) -> Result<Generation, StoreError> {
        on_backend!(self, StoreOp::Generation, |r| r.user_generation(tag), |m| m
            .user_generation(tag),)
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
            TokenPair::derive(presented, &self.successor_key)
        } else {
            TokenPair {
                access: Token::generate(TokenKind::Access, presented.session()),
                refresh: presented.clone(),
            }
        };
        let policy = &self.policy;
        on_backend!(
            self,
            StoreOp::Refresh,
            |r| r.rotate_refresh(presented, pair, scope, client_id, policy),
            |m| m.rotate_refresh(presented, pair, scope, client_id, policy),
        )
    }

    /// The user JSON of the session whose live access token this is.
    pub async fn validate_access(&self, token: &Token) -> Result<Option<Bytes>, StoreError> {
        on_backend!(self, StoreOp::Validate, |r| r.validate_access(token), |m| m
            .validate_access(token),)
    }

    /// Ends the whole session of a live access or refresh token; with `client`, only if the
    /// token was issued to that client.
    pub async fn end_session(
        &self,
        token: &Token,
        client: Option<&str>,
    ) -> Result<bool, StoreError> {
        on_backend!(self, StoreOp::End, |r| r.end_session(token, client), |m| m
            .end_session(token, client),)
    }

    /// What a live token stands for; `None` if it is not live.
    pub async fn introspect(&self, token: &Token) -> Result<Option<Introspection>, StoreError> {
        on_backend!(self, StoreOp::Introspect, |r| r.introspect(token), |m| m
            .introspect(token),)
    }

    /// The live sessions of the user whose live access token is `caller`, the latest first;
    /// `None` if that token is not live.
    pub async fn own_sessions(
        &self,
        caller: &Token,
    ) -> Result<Option<Vec<SessionInfo>>, StoreError> {
        on_backend!(self, StoreOp::Sessions, |r| r.own_sessions(caller), |m| m
            .own_sessions(caller))
    }

    /// Ends the caller's user's session `target`: whether it was live; `None` if the
    /// caller's token is not live.
    pub async fn end_own_session(
        &self,
        caller: &Token,
        target: SessionId,
    ) -> Result<Option<bool>, StoreError> {
        on_backend!(
            self,
            StoreOp::Sessions,
            |r| r.end_own_session(caller, target),
            |m| m.end_own_session(caller, target),
        )
    }

    /// Ends every session of the caller's user, the caller's included, and changes the
    /// user's generation: how many ended; `None` if the caller's token is not live.
    pub async fn end_own_sessions(&self, caller: &Token) -> Result<Option<u32>, StoreError> {
        on_backend!(
            self,
            StoreOp::Sessions,
            |r| r.end_own_sessions(caller),
            |m| m.end_own_sessions(caller)
        )
    }

    /// Counts a password attempt from `address`; past `limit` this minute, how long until the
    /// window ends.
    pub async fn hit_address(
        &self,
        address: &str,
        limit: u32,
    ) -> Result<Option<Duration>, StoreError> {
        on_backend!(
            self,
            StoreOp::Throttle,
            |r| r.guard().hit_address(address, limit),
            |m| Ok(m.guard().hit_address(address, limit)),
        )
    }

    /// Reserves one password check of `account`'s budget, before the check runs. With
    /// lockout off every attempt is granted.
    pub async fn reserve_attempt(
        &self,
        account: &Account,
        lockout: &Lockout,
    ) -> Result<Reservation, StoreError> {
        if lockout.max_attempts == 0 {
            return Ok(Reservation::Granted(Ticket::new()));
        }
        let max = lockout.max_attempts;
        on_backend!(
            self,
            StoreOp::LockoutReserve,
            |r| r.guard().reserve(account, max),
            |m| Ok(m.guard().reserve(account, max)),
        )
    }

    /// The reserved check failed: a wrong password. True if that locked the account.
    pub async fn attempt_failed(
        &self,
        account: &Account,
        ticket: Ticket,
        lockout: &Lockout,
    ) -> Result<bool, StoreError> {
        if lockout.max_attempts == 0 {
            return Ok(false);
        }
        let (max, period, cool_down) = (lockout.max_attempts, lockout.period, lockout.cool_down);
        on_backend!(
            self,
            StoreOp::LockoutFail,
            |r| r.guard().fail(account, ticket, max, period, cool_down),
            |m| Ok(m.guard().fail(account, ticket, max, period, cool_down)),
        )
    }

    /// The reserved check ended without failing: `correct` (the password matched) starts the
    /// count of failures over; otherwise (the request failed for another reason) the place
    /// is only given back.
    pub async fn attempt_settled(
        &self,
        account: &Account,
        ticket: Ticket,
        correct: bool,
        lockout: &Lockout,
    ) -> Result<(), StoreError> {
        if lockout.max_attempts == 0 {
            return Ok(());
        }
        on_backend!(
            self,
            StoreOp::LockoutSettle,
            |r| r.guard().settle(account, ticket, correct),
            |m| {
                m.guard().settle(account, ticket, correct);
                Ok(())
            },
        )
    }
}
