//! The tracking connection's reads: a fill announced to the cache and tracked by Redis, or a
//! plain read the cache does not keep.

use super::{Bypass, Tracker};
use crate::store::redis::cache::{Read, SessionFields};
use crate::store::session_hash::{CLIENT, CREATED, ENDS, REFRESH_DIGEST, REFRESHED, SCOPE};
use bytes::Bytes;
use redis::Value;
use redis::aio::MultiplexedConnection;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

impl Tracker {
    /// Reads the keys on the tracking connection, so that Redis tracks them, and caches
    /// what it finds unless a key changed while the read was in flight. With `session_key`,
    /// the session hash's fields too; a session without them reads as not live.
    pub(super) async fn fill(
        &self,
        mut conn: MultiplexedConnection,
        generation: u64,
        access_key: &str,
        user_key: &str,
        session_key: Option<&str>,
    ) -> Result<Option<Read>, Bypass> {
        let fill = self.cache.begin_fill(access_key, user_key, session_key);
        let sent = Instant::now();
        let pipe = fill_pipe(access_key, user_key, session_key);
        let reply = tokio::time::timeout(self.config.timeout, async {
            fill_reply(pipe.query_async(&mut conn).await?)
        })
        .await;
        let (((digest, user), access_ttl, user_ttl), session) = match reply {
            Ok(Ok(reply)) => reply,
            _ => {
                self.cache.abandon_fill(fill);
                self.lost(generation);
                return Err(Bypass);
            }
        };
        let (Some(digest), Some(user_json)) = (digest, user) else {
            self.cache.abandon_fill(fill);
            return Ok(None);
        };
        let session_ttl = session.as_ref().map_or(1, |(_, ttl)| *ttl);
        let session = match session {
            None => None,
            Some((fields, _)) => match session_fields(&fields) {
                Some(fields) => Some((fields, sent + ms(session_ttl))),
                None => {
                    self.cache.abandon_fill(fill);
                    return Ok(None);
                }
            },
        };
        let read = Read {
            digest,
            access_deadline: sent + ms(access_ttl),
            user_json: Bytes::from(user_json),
            user_deadline: sent + ms(user_ttl),
            session,
        };
        // A key without a TTL (-1) or gone (-2) is not cached.
        if access_ttl > 0 && user_ttl > 0 && session_ttl > 0 {
            self.cache.finish_fill(fill, read.clone(), generation);
        } else {
            self.cache.abandon_fill(fill);
        }
        Ok(Some(read))
    }

    /// Both keys as a plain read on the tracking connection, cached nowhere: the access key's
    /// digest and the user JSON, if both exist.
    pub(super) async fn read_untracked(
        &self,
        mut conn: MultiplexedConnection,
        generation: u64,
        access_key: &str,
        user_key: &str,
    ) -> Result<Option<(String, Bytes)>, Bypass> {
        let read = tokio::time::timeout(
            self.config.timeout,
            redis::cmd("MGET")
                .arg(access_key)
                .arg(user_key)
                .query_async::<(Option<String>, Option<String>)>(&mut conn),
        )
        .await;
        let Ok(Ok((digest, user))) = read else {
            self.lost(generation);
            return Err(Bypass);
        };
        Ok(digest
            .zip(user)
            .map(|(digest, user)| (digest, Bytes::from(user))))
    }
}

/// The fill's reads, each announced with `CLIENT CACHING YES` so that Redis tracks it: the
/// access key and the user snapshot with their TTLs, and the session hash's fields with its.
fn fill_pipe(access_key: &str, user_key: &str, session_key: Option<&str>) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.cmd("CLIENT")
        .arg("CACHING")
        .arg("YES")
        .ignore()
        .cmd("MGET")
        .arg(access_key)
        .arg(user_key)
        .cmd("PTTL")
        .arg(access_key)
        .cmd("PTTL")
        .arg(user_key);
    if let Some(key) = session_key {
        pipe.cmd("CLIENT")
            .arg("CACHING")
            .arg("YES")
            .ignore()
            .cmd("HMGET")
            .arg(key)
            .arg(&READ)
            .cmd("PTTL")
            .arg(key);
    }
    pipe
}

type FillReply = ((Option<String>, Option<String>), i64, i64);
type SessionReply = (Vec<Option<String>>, i64);

/// The fill's replies: the digest and the user JSON with their TTLs, and the session's fields
/// with its TTL if it was read.
fn fill_reply(mut replies: Vec<Value>) -> redis::RedisResult<(FillReply, Option<SessionReply>)> {
    let session = match replies.len() {
        5 => Some(redis::from_redis_value(Value::Array(replies.split_off(3)))?),
        _ => None,
    };
    Ok((redis::from_redis_value(Value::Array(replies))?, session))
}

pub(super) fn ms(ttl: i64) -> Duration {
    Duration::from_millis(ttl.max(0) as u64)
}

/// Epoch milliseconds of `t`.
pub(super) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The session fields an introspection reads, in the order of its `HMGET`.
const READ: [&str; 6] = [REFRESH_DIGEST, CLIENT, SCOPE, CREATED, REFRESHED, ENDS];

/// A session hash's [`READ`] fields, if it has a current refresh digest and its times are
/// numbers.
fn session_fields(f: &[Option<String>]) -> Option<SessionFields> {
    let get = |name: &str| f.get(READ.iter().position(|n| *n == name)?)?.as_deref();
    let number = |name: &str| get(name)?.parse::<u64>().ok();
    get(REFRESH_DIGEST)?;
    Some(SessionFields {
        client_id: get(CLIENT)?.to_string(),
        scope: get(SCOPE).unwrap_or_default().to_string(),
        created_ms: number(CREATED)?,
        refreshed_ms: number(REFRESHED)?,
        ends_ms: number(ENDS)?,
    })
}
