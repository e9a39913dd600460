//! A user's sessions on Redis: listing them, ending one or all, in calls of bounded work.

use super::RedisStore;
use crate::domain::session::{
    GENERATION_TTL, Generation, SESSIONS_PER_CALL, SessionInfo, SessionsOp, SessionsOutcome,
};
use crate::domain::token::{SessionId, SessionRef, Token, UserTag};
use crate::redis_io::Lua;
use crate::store::{StoreError, ms};
use redis::Value;

/// One call of `lua/sessions.lua`: its whole answer, or a batch of ended sessions with more
/// left to end.
enum Batch {
    Done(SessionsOutcome),
    More(u32),
}

impl RedisStore {
    /// Lists or ends the sessions of the user whose live access token is `caller`; `None` if
    /// the token is not live.
    pub async fn user_sessions(
        &self,
        caller: &Token,
        op: SessionsOp,
    ) -> Result<Option<SessionsOutcome>, StoreError> {
        let at = caller.session();
        let script = &self.scripts.own_sessions;
        let cmd = self.sessions_cmd(script, &at.tag, &op, Some(caller));
        let reply: Value = script.run(&cmd, &mut self.conn.get().await?).await?;
        let outcome = match reply {
            // Not live: still an answer of an ending request, so it waits too.
            Value::Nil => None,
            reply => {
                let outcome = self.sessions_outcome(reply, &op, Some(at.id))?;
                // The caller's own session may be gone after the first batch: the rest need
                // no caller.
                Some(self.end_the_rest(&at.tag, &op, outcome).await?)
            }
        };
        if !matches!(op, SessionsOp::List) {
            self.commit_wait(std::time::Instant::now()).await;
        }
        Ok(outcome)
    }

    /// Lists or ends sessions of the user with `tag`, for operators: no token needed.
    pub async fn admin_sessions(
        &self,
        tag: &UserTag,
        op: SessionsOp,
    ) -> Result<SessionsOutcome, StoreError> {
        let outcome = self.admin_sessions_once(tag, &op).await?;
        let outcome = self.end_the_rest(tag, &op, outcome).await?;
        if !matches!(op, SessionsOp::List) {
            self.commit_wait(std::time::Instant::now()).await;
        }
        Ok(outcome)
    }

    async fn admin_sessions_once(
        &self,
        tag: &UserTag,
        op: &SessionsOp,
    ) -> Result<Batch, StoreError> {
        let script = &self.scripts.sessions;
        let cmd = self.sessions_cmd(script, tag, op, None);
        let reply: Value = script.run(&cmd, &mut self.conn.get().await?).await?;
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
        let found = self.conn.scan(&self.keys.session_pattern(&id)).await?;
        Ok(found.iter().find_map(|key| {
            let tag = key.split_once('{')?.1.split_once('}')?.0;
            Some(SessionRef {
                tag: UserTag::from_key_part(tag)?,
                id,
            })
        }))
    }

    /// A call of `lua/sessions.lua`, after `lua/caller.lua` when a `caller` asks.
    fn sessions_cmd(
        &self,
        script: &Lua,
        tag: &UserTag,
        op: &SessionsOp,
        caller: Option<&Token>,
    ) -> redis::Cmd {
        let (name, target) = match op {
            SessionsOp::List => ("list", String::new()),
            SessionsOp::End(id) => ("end", id.key_part()),
            SessionsOp::EndAll => ("end_all", String::new()),
        };
        let mut cmd = script.cmd(if caller.is_some() { 4 } else { 3 });
        cmd.arg(self.keys.user_sessions(tag))
            .arg(self.keys.user_snapshot(tag))
            .arg(self.keys.user_generation(tag));
        if let Some(caller) = caller {
            cmd.arg(self.keys.access(&caller.session()));
        }
        cmd.arg(self.keys.tag_base(tag))
            .arg(name)
            .arg(target)
            .arg(SESSIONS_PER_CALL)
            .arg(Generation::fresh().0)
            .arg(ms(GENERATION_TTL));
        if let Some(caller) = caller {
            cmd.arg(caller.digest().as_str());
        }
        cmd
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
                    .chunks_exact(7)
                    .filter_map(|f| {
                        let id = SessionId::from_key_part(&f[0])?;
                        Some(SessionInfo {
                            id: id.uuid(),
                            created: f[1].parse().unwrap_or(0),
                            last_refreshed: f[2].parse().unwrap_or(0),
                            client_id: f[3].clone(),
                            ip: f[4].clone(),
                            user_agent: f[5].clone(),
                            expires: f[6].parse().unwrap_or(0),
                            current: current == Some(id),
                        })
                    })
                    .collect();
                Ok(Batch::Done(SessionsOutcome::Listed(sessions)))
            }
        }
    }
}
