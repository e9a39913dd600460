//! The answer of `lua/refresh.lua`, named: the script replies with a code and, for some codes,
//! the fields that go with it.

use super::secs;
use crate::domain::session::{Issued, Refresh, TokenPair};
use redis::{FromRedisValue, ParsingError, Value};

/// What the refresh script did.
pub enum Reply {
    /// Code 0: unknown, expired or ended token, or another client's.
    Invalid,
    /// Code 1 (rotated) or 3 (a retry inside the window, the same pair as the first answer).
    Rotated {
        retried: bool,
        user_json: String,
        client_id: String,
        scope: String,
        access_ms: i64,
        refresh_ms: i64,
    },
    /// Code 2: the requested scope exceeds the session's.
    ScopeTooWide,
    /// Code 4: reuse; the session has been ended.
    Reuse { user_uuid: String },
}

impl Reply {
    /// The domain's answer, `pair` being the tokens the script was given.
    pub fn into_refresh(self, pair: TokenPair) -> Refresh {
        match self {
            Reply::Invalid => Refresh::InvalidToken,
            Reply::ScopeTooWide => Refresh::ScopeTooWide,
            Reply::Reuse { user_uuid } => Refresh::ReuseDetected { user_uuid },
            Reply::Rotated {
                retried,
                user_json,
                client_id,
                scope,
                access_ms,
                refresh_ms,
            } => Refresh::Rotated {
                issued: Box::new(Issued {
                    pair,
                    access_expires_in: secs(access_ms),
                    refresh_expires_in: secs(refresh_ms),
                }),
                user_json,
                client_id,
                scope,
                retried,
            },
        }
    }
}

impl FromRedisValue for Reply {
    fn from_redis_value(v: Value) -> Result<Self, ParsingError> {
        let fields: Vec<Value> = redis::from_redis_value(v)?;
        let code: i64 = match fields.first() {
            Some(first) => redis::from_redis_value_ref(first)?,
            None => return Err("the refresh script answered an empty list".into()),
        };
        Ok(match code {
            1 | 3 => {
                let (_, user_json, client_id, scope, access_ms, refresh_ms) =
                    redis::from_redis_value::<(i64, String, String, String, i64, i64)>(
                        Value::Array(fields),
                    )?;
                Reply::Rotated {
                    retried: code == 3,
                    user_json,
                    client_id,
                    scope,
                    access_ms,
                    refresh_ms,
                }
            }
            2 => Reply::ScopeTooWide,
            4 => {
                let (_, user_uuid) =
                    redis::from_redis_value::<(i64, String)>(Value::Array(fields))?;
                Reply::Reuse { user_uuid }
            }
            _ => Reply::Invalid,
        })
    }
}
