//! The session store: Redis for real deployments, the embedded one for a single instance. Both
//! speak the same domain operations; routes never see which one is in use.

pub mod keys;
pub mod memory;
pub mod redis;

use crate::domain::session::{Issued, Lifetimes, NewSession, Refresh};
use crate::domain::token::Token;
use memory::MemoryStore;
use redis::RedisStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis command failed")]
    Redis(#[from] ::redis::RedisError),
    #[error("unexpected reply from redis: {0}")]
    Reply(#[from] ::redis::ParsingError),
}

#[derive(Clone)]
pub enum Store {
    Redis(RedisStore),
    Memory(MemoryStore),
}

impl Store {
    /// `redis` or `embedded`, as `/ready` reports it.
    pub fn kind(&self) -> &'static str {
        match self {
            Store::Redis(_) => "redis",
            Store::Memory(_) => "embedded",
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Store::Redis(r) => r.ping().await,
            Store::Memory(_) => Ok(()),
        }
    }

    /// Starts a session and returns its first token pair.
    pub async fn issue_session(
        &self,
        session: &NewSession,
        lifetimes: &Lifetimes,
    ) -> Result<Issued, StoreError> {
        match self {
            Store::Redis(r) => r.issue_session(session, lifetimes).await,
            Store::Memory(m) => m.issue_session(session, lifetimes),
        }
    }

    /// Redeems a refresh token (at most once) for a new pair; the previous pair ends.
    pub async fn rotate_refresh(
        &self,
        presented: &Token,
        scope: Option<&str>,
        lifetimes: &Lifetimes,
    ) -> Result<Refresh, StoreError> {
        match self {
            Store::Redis(r) => r.rotate_refresh(presented, scope, lifetimes).await,
            Store::Memory(m) => m.rotate_refresh(presented, scope, lifetimes),
        }
    }

    /// The user JSON of the session whose live access token this is.
    pub async fn validate_access(&self, token: &Token) -> Result<Option<String>, StoreError> {
        match self {
            Store::Redis(r) => r.validate_access(token).await,
            Store::Memory(m) => m.validate_access(token),
        }
    }

    /// Ends the whole session of a live access or refresh token.
    pub async fn end_session(&self, token: &Token) -> Result<bool, StoreError> {
        match self {
            Store::Redis(r) => r.end_session(token).await,
            Store::Memory(m) => m.end_session(token),
        }
    }
}
