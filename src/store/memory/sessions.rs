//! A user's sessions on the embedded store: listing them (the latest first, as many as the
//! Redis store lists), ending one or all.

use super::MemoryStore;
use crate::domain::session::{
    GENERATION_TTL, Generation, SESSIONS_PER_CALL, SessionInfo, SessionsOp, SessionsOutcome,
};
use crate::domain::token::{SessionId, Token};
use crate::store::StoreError;
use std::time::Instant;

impl MemoryStore {
    /// Lists or ends sessions of the user whose live access token is `caller`; `None` if that
    /// token is not live.
    pub fn user_sessions(
        &self,
        caller: &Token,
        op: SessionsOp,
    ) -> Result<Option<SessionsOutcome>, StoreError> {
        let at = caller.session();
        let now = Instant::now();
        let mut state = self.lock();
        let live = state.live(&at.tag, &at.id, now).is_some_and(|s| {
            s.access
                .as_ref()
                .is_some_and(|(d, exp)| *exp > now && *d == caller.digest())
        });
        if !live {
            return Ok(None);
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
        let ids: Vec<SessionId> = ids.into_iter().map(|(_, id)| id).collect();
        Ok(Some(match op {
            SessionsOp::List => SessionsOutcome::Listed(
                ids.iter()
                    .take(SESSIONS_PER_CALL as usize)
                    .filter_map(|id| {
                        let s = state.sessions.get(id)?;
                        Some(SessionInfo {
                            id: id.uuid(),
                            created: s.created_ms,
                            last_refreshed: s.refreshed_ms,
                            expires: super::epoch_ms()
                                + s.refresh_expires.saturating_duration_since(now).as_millis()
                                    as u64,
                            client_id: s.client_id.clone(),
                            ip: s.ip.clone(),
                            user_agent: s.user_agent.clone(),
                            current: *id == at.id,
                        })
                    })
                    .collect(),
            ),
            SessionsOp::End(target) => {
                let found = ids.contains(&target);
                if found {
                    state.remove(&target);
                }
                SessionsOutcome::Ended(u32::from(found))
            }
            SessionsOp::EndAll => {
                state
                    .generations
                    .insert(at.tag, (Generation::fresh(), now + GENERATION_TTL));
                for id in &ids {
                    state.remove(id);
                }
                SessionsOutcome::Ended(ids.len() as u32)
            }
        }))
    }
}
