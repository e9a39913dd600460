//! The session store on Redis (one node or a cluster). Every operation is one round trip: a Lua
//! script where several keys change together, one `MGET` for validation. All keys a step
//! touches share the user's hash tag, so each step runs on one cluster slot.

use super::conn::RedisConn;
use super::keys::Keys;
use super::{StoreError, ms};
use crate::domain::session::{
    GENERATION_TTL, Generation, Introspection, Issued, NewSession, Refresh, SESSIONS_PER_CALL,
    SessionInfo, SessionPolicy, SessionsOp, SessionsOutcome, Started, TokenPair,
};
use crate::domain::token::{SessionId, SessionRef, UserTag};
use crate::domain::token::{Token, TokenKind};
use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, RedisResult, Script, Value};

#[derive(Clone)]
pub struct RedisStore {
    conn: RedisConn,
    keys: Keys,
    scripts: std::sync::Arc<Scripts>,
}

struct Scripts {
    issue: Script,
    refresh: Lua,
    end: Script,
    own_sessions: Script,
    sessions: Script,
    introspect: Script,
}

/// A script called by `EVALSHA` written straight into one command: the hot paths skip
/// `ScriptInvocation`, which holds each key and argument in a buffer of its own and then copies
/// them into the command.
struct Lua {
    hash: String,
    code: &'static str,
}

impl Lua {
    fn new(code: &'static str) -> Self {
        Lua {
            hash: Script::new(code).get_hash().to_string(),
            code,
        }
    }

    /// `EVALSHA <hash> <keys>`; the caller appends the keys, then the arguments (`args` of
    /// them in all, about `bytes` long: the buffers are sized once).
    fn call(&self, keys: usize, args: usize, bytes: usize) -> Cmd {
        let mut cmd = Cmd::with_capacity(3 + keys + args, 64 + bytes);
        cmd.arg("EVALSHA").arg(&self.hash).arg(keys);
        cmd
    }

    /// Runs `cmd`, loading the script first if this Redis does not know it (a restarted or
    /// new node).
    async fn run<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        conn: &mut impl ConnectionLike,
    ) -> RedisResult<T> {
        match cmd.query_async(conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(self.code)
                    .exec_async(conn)
                    .await?;
                cmd.query_async(conn).await
            }
            result => result,
        }
    }
}

/// One call of `lua/sessions.lua`: its whole answer, or a batch of ended sessions with more
/// left to end.
enum Batch {
    Done(SessionsOutcome),
    More(u32),
}

fn secs(ms: i64) -> u64 {
    (ms.max(0) / 1000) as u64
}

impl RedisStore {
    pub fn new(conn: RedisConn, prefix: &str) -> Self {
        RedisStore {
            conn,
            keys: Keys::new(prefix),
            scripts: std::sync::Arc::new(Scripts {
                issue: Script::new(include_str!("lua/issue.lua")),
                refresh: Lua::new(include_str!("lua/refresh.lua")),
                end: Script::new(include_str!("lua/end.lua")),
                own_sessions: Script::new(concat!(
                    include_str!("lua/caller.lua"),
                    include_str!("lua/sessions.lua")
                )),
                sessions: Script::new(include_str!("lua/sessions.lua")),
                introspect: Script::new(include_str!("lua/introspect.lua")),
            }),
        }
    }

    pub fn guard(&self) -> super::guard::RedisGuard<'_> {
        super::guard::RedisGuard {
            conn: self.conn.clone(),
            keys: &self.keys,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self.conn {
            RedisConn::Single(_) => "redis",
            RedisConn::Cluster { .. } => "redis-cluster",
            RedisConn::Sentinel(_) => "redis-sentinel",
        }
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.get().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Starts a session with `pair` unless the user's generation has changed (see
    /// `lua/issue.lua`).
    pub async fn issue_session(
        &self,
        s: &NewSession,
        pair: TokenPair,
        policy: &SessionPolicy,
    ) -> Result<Started, StoreError> {
        let session = pair.session();
        let mut conn = self.conn.get().await?;
        let reply: Option<(i64, i64, u32)> = self
            .scripts
            .issue
            .key(self.keys.session(&session))
            .key(self.keys.access(&session))
            .key(self.keys.user_sessions(&session.tag))
            .key(self.keys.user_snapshot(&session.tag))
            .key(self.keys.user_generation(&session.tag))
            .arg(pair.access.digest().as_str())
            .arg(ms(policy.access))
            .arg(pair.refresh.digest().as_str())
            .arg(ms(policy.refresh))
            .arg(session.id.key_part())
            .arg(&s.user_uuid)
            .arg(&s.user_json)
            .arg(&s.client_id)
            .arg(&s.scope)
            .arg(&s.ip)
            .arg(&s.user_agent)
            .arg(policy.max_lifetime.map_or(0, ms))
            .arg(policy.max_sessions_per_user)
            .arg(self.keys.tag_base(&session.tag))
            .arg(&s.generation.0)
            .invoke_async(&mut conn)
            .await?;
        let Some((attl, rttl, ended)) = reply else {
            return Ok(Started::UserChanged);
        };
        let issued = Issued {
            pair,
            access_expires_in: secs(attl),
            refresh_expires_in: secs(rttl),
        };
        Ok(Started::Issued(issued, ended))
    }

    /// The user's generation now.
    pub async fn user_generation(&self, tag: &UserTag) -> Result<Generation, StoreError> {
        let mut conn = self.conn.get().await?;
        let current: Option<String> = redis::cmd("GET")
            .arg(self.keys.user_generation(tag))
            .query_async(&mut conn)
            .await?;
        Ok(Generation(current.unwrap_or_default()))
    }

    /// Redeems `presented` for `pair` (see `lua/refresh.lua`).
    pub async fn rotate_refresh(
        &self,
        presented: &Token,
        pair: TokenPair,
        scope: Option<&str>,
        client_id: &str,
        policy: &SessionPolicy,
    ) -> Result<Refresh, StoreError> {
        let session = presented.session();
        let mut conn = self.conn.get().await?;
        let mut cmd = self.scripts.refresh.call(4, 10, 4 * 64 + 3 * 64 + 128);
        cmd.arg(self.keys.session(&session))
            .arg(self.keys.access(&session))
            .arg(self.keys.user_sessions(&session.tag))
            .arg(self.keys.user_snapshot(&session.tag))
            .arg(presented.digest().as_str())
            .arg(pair.access.digest().as_str())
            .arg(ms(policy.access))
            .arg(pair.refresh.digest().as_str())
            .arg(ms(policy.refresh))
            .arg(session.id.key_part())
            .arg(scope.unwrap_or(""))
            .arg(client_id)
            .arg(if policy.rotation { "1" } else { "0" })
            .arg(policy.reuse_grace.as_millis() as u64);
        let reply: Vec<Value> = self.scripts.refresh.run(&cmd, &mut conn).await?;
        let status: i64 = reply
            .first()
            .map(redis::from_redis_value_ref)
            .transpose()?
            .unwrap_or(0);
        match status {
            1 | 3 => {
                let (_, user_json, client_id, scope, attl, rttl): (
                    i64,
                    String,
                    String,
                    String,
                    i64,
                    i64,
                ) = redis::from_redis_value(Value::Array(reply))?;
                Ok(Refresh::Rotated {
                    issued: Box::new(Issued {
                        pair,
                        access_expires_in: secs(attl),
                        refresh_expires_in: secs(rttl),
                    }),
                    user_json,
                    client_id,
                    scope,
                    retried: status == 3,
                })
            }
            2 => Ok(Refresh::ScopeTooWide),
            4 => {
                let (_, user_uuid): (i64, String) = redis::from_redis_value(Value::Array(reply))?;
                Ok(Refresh::ReuseDetected { user_uuid })
            }
            _ => Ok(Refresh::InvalidToken),
        }
    }

    /// The session's user JSON if `token` is its live access token.
    pub async fn validate_access(&self, token: &Token) -> Result<Option<String>, StoreError> {
        let session = token.session();
        // One command: both keys share the user's hash slot.
        let mut mget = redis::cmd("MGET");
        mget.arg(self.keys.access(&session))
            .arg(self.keys.user_snapshot(&session.tag));
        let mut conn = self.conn.get().await?;
        let reply = match mget.query_async(&mut conn).await {
            // A connection that died while idle (Redis restarted) fails its next command and
            // reconnects; a read can safely be sent again, so gateways see no 503 for it.
            Err(e) if e.is_connection_dropped() || e.is_io_error() => {
                let mut conn = self.conn.get().await?;
                mget.query_async(&mut conn).await
            }
            reply => reply,
        };
        let (digest, user): (Option<String>, Option<String>) = reply?;
        Ok(match (digest, user) {
            (Some(d), Some(u)) if d == token.digest().as_str() => Some(u),
            _ => None,
        })
    }

    /// Ends the session `token` belongs to if the token is live (and, with `client`, was
    /// issued to that client); false otherwise.
    pub async fn end_session(
        &self,
        token: &Token,
        client: Option<&str>,
    ) -> Result<bool, StoreError> {
        let session = token.session();
        let kind = match token.kind() {
            TokenKind::Access => "a",
            TokenKind::Refresh => "r",
        };
        let mut conn = self.conn.get().await?;
        let ended: i64 = self
            .scripts
            .end
            .key(self.keys.session(&session))
            .key(self.keys.access(&session))
            .key(self.keys.user_sessions(&session.tag))
            .key(self.keys.user_snapshot(&session.tag))
            .arg(kind)
            .arg(token.digest().as_str())
            .arg(session.id.key_part())
            .arg(client.unwrap_or(""))
            .invoke_async(&mut conn)
            .await?;
        Ok(ended == 1)
    }

    /// Lists or ends the sessions of the user whose live access token is `caller`; `None` if
    /// the token is not live.
    pub async fn user_sessions(
        &self,
        caller: &Token,
        op: SessionsOp,
    ) -> Result<Option<SessionsOutcome>, StoreError> {
        let at = caller.session();
        let mut invocation = self.scripts.own_sessions.prepare_invoke();
        self.sessions_invocation(&mut invocation, &at.tag, &op);
        invocation
            .key(self.keys.access(&at))
            .arg(caller.digest().as_str());
        let mut conn = self.conn.get().await?;
        let reply: Value = invocation.invoke_async(&mut conn).await?;
        if reply == Value::Nil {
            return Ok(None);
        }
        let outcome = self.sessions_outcome(reply, &op, Some(at.id))?;
        // The caller's own session may be gone after the first batch: the rest need no caller.
        self.end_the_rest(&at.tag, &op, outcome).await.map(Some)
    }

    /// Lists or ends sessions of the user with `tag`, for operators: no token needed.
    pub async fn admin_sessions(
        &self,
        tag: &UserTag,
        op: SessionsOp,
    ) -> Result<SessionsOutcome, StoreError> {
        let outcome = self.admin_sessions_once(tag, &op).await?;
        self.end_the_rest(tag, &op, outcome).await
    }

    async fn admin_sessions_once(
        &self,
        tag: &UserTag,
        op: &SessionsOp,
    ) -> Result<Batch, StoreError> {
        let mut invocation = self.scripts.sessions.prepare_invoke();
        self.sessions_invocation(&mut invocation, tag, op);
        let mut conn = self.conn.get().await?;
        let reply: Value = invocation.invoke_async(&mut conn).await?;
        self.sessions_outcome(reply, op, None)
    }

    /// Calls `end_all` again while it says more sessions are left; each call is bounded.
    async fn end_the_rest(
        &self,
        tag: &UserTag,
        op: &SessionsOp,
        mut batch: Batch,
    ) -> Result<SessionsOutcome, StoreError> {
        let mut ended = 0u32;
        loop {
            match batch {
                Batch::Done(outcome) => {
                    return Ok(match outcome {
                        SessionsOutcome::Ended(n) => SessionsOutcome::Ended(ended + n),
                        listed => listed,
                    });
                }
                Batch::More(n) => {
                    ended += n;
                    batch = self.admin_sessions_once(tag, op).await?;
                }
            }
        }
    }

    /// Where the session `id` lives, found by scanning every key (admin use only).
    pub async fn find_session(&self, id: SessionId) -> Result<Option<SessionRef>, StoreError> {
        let pattern = format!(
            "{}:{{*}}:s:{}",
            glob_escape(self.keys.prefix()),
            id.key_part()
        );
        let found = self.conn.scan(&pattern).await?;
        Ok(found.iter().find_map(|key| {
            let tag = key.split_once('{')?.1.split_once('}')?.0;
            Some(SessionRef {
                tag: UserTag::from_key_part(tag)?,
                id,
            })
        }))
    }

    fn sessions_invocation(
        &self,
        invocation: &mut redis::ScriptInvocation<'_>,
        tag: &UserTag,
        op: &SessionsOp,
    ) {
        let (name, target) = match op {
            SessionsOp::List => ("list", String::new()),
            SessionsOp::End(id) => ("end", id.key_part()),
            SessionsOp::EndAll => ("end_all", String::new()),
        };
        invocation
            .key(self.keys.user_sessions(tag))
            .key(self.keys.user_snapshot(tag))
            .key(self.keys.user_generation(tag))
            .arg(self.keys.tag_base(tag))
            .arg(name)
            .arg(target)
            .arg(SESSIONS_PER_CALL)
            .arg(Generation::fresh().0)
            .arg(ms(GENERATION_TTL));
    }

    fn sessions_outcome(
        &self,
        reply: Value,
        op: &SessionsOp,
        current: Option<SessionId>,
    ) -> Result<Batch, StoreError> {
        match op {
            SessionsOp::End(_) => Ok(Batch::Done(SessionsOutcome::Ended(
                redis::from_redis_value(reply)?,
            ))),
            SessionsOp::EndAll => {
                let (ended, more): (u32, u8) = redis::from_redis_value(reply)?;
                Ok(if more == 1 {
                    Batch::More(ended)
                } else {
                    Batch::Done(SessionsOutcome::Ended(ended))
                })
            }
            SessionsOp::List => {
                let flat: Vec<String> = redis::from_redis_value(reply)?;
                let sessions = flat
                    .chunks_exact(6)
                    .filter_map(|f| {
                        let id = SessionId::from_key_part(&f[0])?;
                        Some(SessionInfo {
                            id: id.uuid(),
                            created: f[1].parse().unwrap_or(0),
                            last_refreshed: f[2].parse().unwrap_or(0),
                            client_id: f[3].clone(),
                            ip: f[4].clone(),
                            user_agent: f[5].clone(),
                            current: current == Some(id),
                        })
                    })
                    .collect();
                Ok(Batch::Done(SessionsOutcome::Listed(sessions)))
            }
        }
    }

    pub async fn introspect(&self, token: &Token) -> Result<Option<Introspection>, StoreError> {
        let at = token.session();
        let kind = match token.kind() {
            TokenKind::Access => "a",
            TokenKind::Refresh => "r",
        };
        let mut conn = self.conn.get().await?;
        let reply: Option<(String, String, String, u64, u64, u64)> = self
            .scripts
            .introspect
            .key(self.keys.session(&at))
            .key(self.keys.access(&at))
            .key(self.keys.user_snapshot(&at.tag))
            .arg(kind)
            .arg(token.digest().as_str())
            .invoke_async(&mut conn)
            .await?;
        Ok(reply.map(
            |(user_json, client_id, scope, created_ms, refreshed_ms, expires_ms)| Introspection {
                user_json,
                client_id,
                scope,
                created_ms,
                refreshed_ms,
                expires_ms,
            },
        ))
    }
}

/// `text` with Redis glob's special characters escaped.
pub fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}
