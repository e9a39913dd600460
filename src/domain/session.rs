//! What a session is made of when it starts, and what issuing or refreshing hands back.

use super::token::{SessionId, SessionRef, Token, TokenKind, UserTag};
use serde::Serialize;
use std::time::Duration;

/// How sessions behave, from the configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SessionPolicy {
    pub access: Duration,
    pub refresh: Duration,
    /// Each refresh replaces the refresh token (else it stays, its expiry fixed at login).
    pub rotation: bool,
    /// How long the immediate predecessor of a rotated refresh token may be retried.
    pub reuse_grace: Duration,
    /// Absolute cap on a session's life.
    pub max_lifetime: Option<Duration>,
    /// 0 = unlimited; a login beyond it ends the user's session that expires first.
    pub max_sessions_per_user: usize,
}

/// Everything recorded about a session at login.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub user_uuid: String,
    /// The public user object as JSON, returned verbatim by `/user/_details`.
    pub user_json: String,
    pub client_id: String,
    pub scope: String,
    pub ip: String,
    pub user_agent: String,
}

/// A fresh access/refresh pair of one session.
#[derive(Debug)]
pub struct TokenPair {
    pub access: Token,
    pub refresh: Token,
}

impl TokenPair {
    pub fn generate(session: SessionRef) -> Self {
        TokenPair {
            access: Token::generate(TokenKind::Access, session),
            refresh: Token::generate(TokenKind::Refresh, session),
        }
    }

    pub fn for_new_session(user_uuid: &str) -> Self {
        Self::generate(SessionRef {
            tag: UserTag::for_user(user_uuid),
            id: SessionId::generate(),
        })
    }

    /// The successor pair of a rotated refresh token; deterministic, see [`Token::derive`].
    pub fn derive(from: &Token, key: &[u8]) -> Option<Self> {
        Some(TokenPair {
            access: Token::derive(TokenKind::Access, from, key)?,
            refresh: Token::derive(TokenKind::Refresh, from, key)?,
        })
    }

    pub fn session(&self) -> SessionRef {
        self.access.session()
    }
}

/// Tokens just issued, with the whole seconds each has left.
#[derive(Debug)]
pub struct Issued {
    pub pair: TokenPair,
    pub access_expires_in: u64,
    pub refresh_expires_in: u64,
}

/// The outcome of redeeming a refresh token.
#[derive(Debug)]
pub enum Refresh {
    Rotated {
        issued: Box<Issued>,
        user_json: String,
        client_id: String,
        scope: String,
        /// A retry inside the window: the same pair as the first answer.
        retried: bool,
    },
    /// Unknown, expired, ended, or presented by another client.
    InvalidToken,
    /// An already-rotated refresh token came back after the retry window (or an older one):
    /// the session has been ended.
    ReuseDetected { user_uuid: String },
    /// The requested scope exceeds the session's.
    ScopeTooWide,
}

/// One of a user's live sessions, as `GET /user/sessions` shows it.
#[derive(Clone, Debug, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    #[schema(value_type = String, example = "3fa85f64-5717-4562-b3fc-2c963f66afa6")]
    pub id: uuid::Uuid,
    /// Epoch milliseconds.
    pub created: u64,
    pub last_refreshed: u64,
    pub client_id: String,
    pub ip: String,
    pub user_agent: String,
    /// The session of the token that asked.
    pub current: bool,
}

/// What a caller does with its user's sessions.
#[derive(Clone, Copy, Debug)]
pub enum SessionsOp {
    List,
    End(SessionId),
    EndAll,
}

#[derive(Debug)]
pub enum SessionsOutcome {
    Listed(Vec<SessionInfo>),
    Ended(u32),
}

/// What a live token stands for, for introspection (RFC 7662).
#[derive(Clone, Debug)]
pub struct Introspection {
    pub user_json: String,
    pub client_id: String,
    pub scope: String,
    /// Epoch milliseconds.
    pub created_ms: u64,
    pub refreshed_ms: u64,
    pub expires_ms: u64,
}
