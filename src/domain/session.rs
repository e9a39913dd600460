//! What a session is made of when it starts, and what issuing or refreshing hands back.

use super::token::{SessionId, SessionRef, Token, TokenKind, UserTag};
use std::time::Duration;

/// How long tokens live, from the configuration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lifetimes {
    pub access: Duration,
    pub refresh: Duration,
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
    },
    /// Unknown, expired, ended or already redeemed.
    InvalidToken,
    /// The requested scope exceeds the session's.
    ScopeTooWide,
}
