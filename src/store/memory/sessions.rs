//! A user's sessions on the embedded store: listing them (the latest first, as many as the
//! Redis store lists), ending one or all.

use super::MemoryStore;
use super::State;
use crate::domain::session::{GENERATION_TTL, Generation, SESSIONS_PER_CALL, SessionInfo};
use crate::domain::token::{SessionId, SessionRef, Token};
use crate::store::StoreError;
use std::time::Instant;

impl MemoryStore {
    /// See `RedisStore::own_sessions`.
    pub fn own_sessions(&self, caller: &Token) -> Result<Option<Vec<SessionInfo>>, StoreError> {
        Ok(self.with_own(caller, |state, at, ids, now| {
            ids.iter()
                .take(SESSIONS_PER_CALL as usize)
                .filter_map(|id| {
                    let s = state.sessions.get(id)?;
                    Some(SessionInfo {
                        id: id.uuid(),
                        created: s.created_ms,
                        last_refreshed: s.refreshed_ms,
                        expires: super::epoch_ms()
                            + s.refresh_expires.saturating_duration_since(now).as_millis() as u64,
                        client_id: s.client_id.clone(),
                        ip: s.ip.clone(),
                        user_agent: s.user_agent.clone(),
                        current: *id == at.id,
                    })
                })
                .collect()
        }))
    }

    /// See `RedisStore::end_own_session`.
    pub fn end_own_session(
        &self,
        caller: &Token,
        target: SessionId,
    ) -> Result<Option<bool>, StoreError> {
        Ok(self.with_own(caller, |state, _, ids, _| {
            let found = ids.contains(&target);
            if found {
                state.remove(&target);
            }
            found
        }))
    }

    /// See `RedisStore::end_own_sessions`.
    pub fn end_own_sessions(&self, caller: &Token) -> Result<Option<u32>, StoreError> {
        Ok(self.with_own(caller, |state, at, ids, now| {
            state
                .generations
                .insert(at.tag, (Generation::fresh(), now + GENERATION_TTL));
            for id in &ids {
                state.remove(id);
            }
            ids.len() as u32
        }))
    }

    /// `f` over the live sessions of the user whose live access token is `caller`, the
    /// latest first; `None` if that token is not live.
    fn with_own<T>(
        &self,
        caller: &Token,
        f: impl FnOnce(&mut State, &SessionRef, Vec<SessionId>, Instant) -> T,
    ) -> Option<T> {
        let at = caller.session();
        let now = Instant::now();
        let mut state = self.lock();
        let live = state.live(&at.tag, &at.id, now).is_some_and(|s| {
            s.access
                .as_ref()
                .is_some_and(|(d, exp)| *exp > now && *d == caller.digest())
        });
        if !live {
            return None;
        }
        let ids: Vec<SessionId> = state
            .by_user
            .get(&at.tag)
            .map(|ids| ids.iter().copied().collect())
            .unwrap_or_default();
        let mut ids: Vec<(Instant, SessionId)> = ids
            .into_iter()
            .filter_map(|id| Some((state.live(&at.tag, &id, now)?.refresh_expires, id)))
            .collect();
        // The latest first, as many as the Redis store lists.
        ids.sort_by(|a, b| b.cmp(a));
        let ids = ids.into_iter().map(|(_, id)| id).collect();
        Some(f(&mut state, &at, ids, now))
    }
}
