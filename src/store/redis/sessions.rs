//! A user's sessions on Redis: listing them, ending one or all, in calls of bounded work.

use super::RedisStore;
use crate::domain::session::{GENERATION_TTL, Generation, SESSIONS_PER_CALL, SessionInfo};
use crate::domain::token::{SessionId, SessionRef, Token, UserTag};
use crate::redis_io::Lua;
use crate::store::lua::{OwnSessionsArgs, SessionsArgs};
use crate::store::{StoreError, ms};
use redis::Value;

impl RedisStore {
    /// The live sessions of the user whose live access token is `caller`, the latest first;
    /// `None` if that token is not live.
    pub async fn own_sessions(
        &self,
        caller: &Token,
    ) -> Result<Option<Vec<SessionInfo>>, StoreError> {
        let at = caller.session();
        let reply = self.own(caller, &SessionsOp::List).await?;
        reply.map(|r| listed(r, Some(at.id))).transpose()
    }

    /// Ends the caller's user's session `target`: whether it was live; `None` if the
    /// caller's token is not live.
    pub async fn end_own_session(
        &self,
        caller: &Token,
        target: SessionId,
    ) -> Result<Option<bool>, StoreError> {
        let reply = self.own(caller, &SessionsOp::End(target)).await;
        let ended = self.settled(reply).await?;
        ended
            .map(|r| Ok(redis::from_redis_value::<u32>(r)? == 1))
            .transpose()
    }

    /// Ends every session of the caller's user and changes its generation: how many ended;
    /// `None` if the caller's token is not live.
    pub async fn end_own_sessions(&self, caller: &Token) -> Result<Option<u32>, StoreError> {
        let tag = caller.session().tag;
        let reply = async {
            match self.own(caller, &SessionsOp::EndAll).await? {
                // The caller's own session may be gone after the first batch: the rest need
                // no caller.
                Some(reply) => self.end_the_rest(&tag, reply).await.map(Some),
                None => Ok(None),
            }
        }
        .await;
        self.settled(reply).await
    }

    /// The live sessions of the user with `tag`, for operators: no token needed.
    pub async fn admin_list_sessions(&self, tag: &UserTag) -> Result<Vec<SessionInfo>, StoreError> {
        listed(self.admin(tag, &SessionsOp::List).await?, None)
    }

    /// Ends the session `target` of the user with `tag`, for operators: whether it was live.
    pub async fn admin_end_session(
        &self,
        tag: &UserTag,
        target: SessionId,
    ) -> Result<bool, StoreError> {
        let reply = self.admin(tag, &SessionsOp::End(target)).await;
        let ended = self.settled(reply).await?;
        Ok(redis::from_redis_value::<u32>(ended)? == 1)
    }

    /// Ends every session of the user with `tag`, for operators: how many ended.
    pub async fn admin_end_sessions(&self, tag: &UserTag) -> Result<u32, StoreError> {
        let reply = async {
            let first = self.admin(tag, &SessionsOp::EndAll).await?;
            self.end_the_rest(tag, first).await
        }
        .await;
        self.settled(reply).await
    }

    /// The reply of an ending call, after the commit wait: every answer of a request that
    /// ends sessions waits, "nothing ended" and failures included.
    async fn settled<T>(&self, reply: Result<T, StoreError>) -> Result<T, StoreError> {
        self.commit_wait(std::time::Instant::now()).await;
        reply
    }

    /// One call of `caller.lua` + `sessions.lua`; `None` if the caller's token is not live.
    async fn own(&self, caller: &Token, op: &SessionsOp) -> Result<Option<Value>, StoreError> {
        let script = &self.scripts.own_sessions;
        let cmd = self.sessions_cmd(script, &caller.session().tag, op, Some(caller));
        let reply: Value = script.run(&cmd, &mut self.conn.get().await?).await?;
        Ok((!matches!(reply, Value::Nil)).then_some(reply))
    }

    /// One call of `sessions.lua`.
    async fn admin(&self, tag: &UserTag, op: &SessionsOp) -> Result<Value, StoreError> {
        let script = &self.scripts.sessions;
        let cmd = self.sessions_cmd(script, tag, op, None);
        Ok(script.run(&cmd, &mut self.conn.get().await?).await?)
    }

    /// Calls `end_all` again while it says more sessions are left (each call is bounded):
    /// how many ended in all.
    async fn end_the_rest(&self, tag: &UserTag, mut reply: Value) -> Result<u32, StoreError> {
        let mut ended = 0u32;
        loop {
            let (n, more): (u32, u8) = redis::from_redis_value(reply)?;
            ended += n;
            if more != 1 {
                return Ok(ended);
            }
            reply = self.admin(tag, &SessionsOp::EndAll).await?;
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
        let (index, snapshot, generation) = (
            self.keys.user_sessions(tag),
            self.keys.user_snapshot(tag),
            self.keys.user_generation(tag),
        );
        let (key_base, new_generation) = (self.keys.tag_base(tag), Generation::fresh().0);
        match caller {
            None => SessionsArgs {
                index,
                snapshot,
                generation,
                key_base,
                op: name,
                target,
                limit: SESSIONS_PER_CALL,
                new_generation,
                generation_ttl_ms: ms(GENERATION_TTL),
            }
            .call(script),
            Some(caller) => OwnSessionsArgs {
                index,
                snapshot,
                generation,
                caller_access: self.keys.access(&caller.session()),
                key_base,
                op: name,
                target,
                limit: SESSIONS_PER_CALL,
                new_generation,
                generation_ttl_ms: ms(GENERATION_TTL),
                caller_digest: caller.digest().as_str(),
            }
            .call(script),
        }
    }
}

/// What one call of `sessions.lua` does.
enum SessionsOp {
    List,
    End(SessionId),
    EndAll,
}

/// The sessions a `list` call answered, flat: seven fields each.
fn listed(reply: Value, current: Option<SessionId>) -> Result<Vec<SessionInfo>, StoreError> {
    let flat: Vec<String> = redis::from_redis_value(reply)?;
    Ok(flat
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
        .collect())
}
