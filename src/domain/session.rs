//! What a session is made of when it starts, and what issuing or refreshing hands back.

use super::token::{HmacKey, SessionId, SessionRef, Token, TokenKind, UserTag};
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

/// A user's generation: a random value that changes whenever all of the user's sessions end
/// (disable, set-password, logout-all). A login reads it before it reads the user, and its
/// session starts only if the generation is still the same, so a login in flight across such
/// a change cannot leave a live session behind. Empty when none has been set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Generation(pub String);

impl Generation {
    /// A new generation, never equal to an earlier one.
    pub fn fresh() -> Self {
        Generation(uuid::Uuid::new_v4().simple().to_string())
    }
}

/// How long a generation is kept after the change that set it. Logins that take longer than
/// [`MAX_LOGIN`] do not start a session, so none can outlast it.
pub const GENERATION_TTL: Duration = Duration::from_secs(3600);
/// The longest a login may take from reading the generation to starting its session.
pub const MAX_LOGIN: Duration = Duration::from_secs(600);

/// The outcome of starting a session.
#[derive(Debug)]
pub enum Started {
    /// The first token pair, and how many of the user's sessions the per-user cap ended.
    Issued(Issued, u32),
    /// The user's generation changed since the login read it: nothing was written.
    UserChanged,
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
    /// The user's generation as the login read it, before it read the user.
    pub generation: Generation,
}

/// A fresh access/refresh pair of one session.
#[derive(Debug)]
pub struct TokenPair {
    pub access: Token,
    pub refresh: Token,
}

impl TokenPair {
    /// A new random pair of `session`.
    pub fn generate(session: SessionRef) -> Self {
        TokenPair {
            access: Token::generate(TokenKind::Access, session),
            refresh: Token::generate(TokenKind::Refresh, session),
        }
    }

    /// A new random pair that starts a new session of the user with `user_uuid`.
    pub fn for_new_session(user_uuid: &str) -> Self {
        Self::generate(SessionRef {
            tag: UserTag::for_user(user_uuid),
            id: SessionId::generate(),
        })
    }

    /// The successor pair of a rotated refresh token; deterministic, see [`Token::derive`].
    pub fn derive(from: &Token, key: &HmacKey) -> Self {
        TokenPair {
            access: Token::derive(TokenKind::Access, from, key),
            refresh: Token::derive(TokenKind::Refresh, from, key),
        }
    }

    /// The session both tokens belong to.
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
    /// When the session ends unless refreshed, epoch milliseconds.
    pub expires: u64,
    pub client_id: String,
    pub ip: String,
    pub user_agent: String,
    /// The session of the token that asked.
    pub current: bool,
}

/// The most sessions one store call lists or ends: listing shows the latest this many, ending
/// all of them takes as many calls as needed.
pub const SESSIONS_PER_CALL: u32 = 500;

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
