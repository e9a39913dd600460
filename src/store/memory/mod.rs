//! The embedded in-process store, for a single instance without Redis. Same semantics as the
//! Redis store: TTL expiry, single-use refresh tokens, atomic logout. Each operation holds one
//! mutex for its whole step, which is what makes it atomic; expired entries are dropped when
//! touched and by a periodic sweep, so memory stays bounded.

pub mod codes;
mod refresh;
mod sessions;

use super::StoreError;
use super::guard::MemoryGuard;
use crate::domain::session::{
    Generation, Introspection, Issued, NewSession, SessionPolicy, Started, TokenPair,
};
use crate::domain::token::{SessionId, SessionRef, Token, TokenDigest, TokenKind, UserTag};
use bytes::Bytes;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How many older ancestors of a refresh token are remembered for reuse detection.
const ANCESTORS: usize = 8;

struct Session {
    tag: UserTag,
    user_uuid: String,
    refresh: TokenDigest,
    refresh_expires: Instant,
    max_expires: Option<Instant>,
    access: Option<(TokenDigest, Instant)>,
    /// The redeemed predecessor of `refresh` and when it was redeemed.
    previous: Option<(TokenDigest, Instant)>,
    /// 32-bit digest prefixes of the tokens before `previous`, oldest first.
    ancestors: VecDeque<String>,
    user_json: String,
    client_id: String,
    scope: String,
    created_ms: u64,
    refreshed_ms: u64,
    ip: String,
    user_agent: String,
}

#[derive(Default)]
struct State {
    sessions: HashMap<SessionId, Session>,
    by_user: HashMap<UserTag, BTreeSet<SessionId>>,
    /// Each user's generation and when it is forgotten.
    generations: HashMap<UserTag, (Generation, Instant)>,
}

impl State {
    /// Past `cap` (0 = none), ends the user's live sessions that expire first, `new` kept:
    /// how many ended.
    fn trim(&mut self, new: &SessionRef, cap: usize, now: Instant) -> u32 {
        if cap == 0 {
            return 0;
        }
        let mut others: Vec<(Instant, SessionId)> = self.by_user[&new.tag]
            .iter()
            .filter(|id| **id != new.id)
            .filter_map(|id| self.sessions.get(id).map(|s| (s.refresh_expires, *id)))
            .filter(|(exp, _)| *exp > now)
            .collect();
        others.sort();
        let excess = (others.len() + 1).saturating_sub(cap);
        for (_, id) in others.iter().take(excess) {
            self.remove(id);
        }
        excess.min(others.len()) as u32
    }

    fn remove(&mut self, id: &SessionId) {
        if let Some(s) = self.sessions.remove(id)
            && let Some(ids) = self.by_user.get_mut(&s.tag)
        {
            ids.remove(id);
            if ids.is_empty() {
                self.by_user.remove(&s.tag);
            }
        }
    }

    /// The live session `id` of `tag`, dropping it first if it has expired.
    fn live(&mut self, tag: &UserTag, id: &SessionId, now: Instant) -> Option<&mut Session> {
        if self
            .sessions
            .get(id)
            .is_some_and(|s| s.refresh_expires <= now)
        {
            self.remove(id);
        }
        self.sessions.get_mut(id).filter(|s| s.tag == *tag)
    }

    fn sweep(&mut self, now: Instant) {
        let expired: Vec<SessionId> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.refresh_expires <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.remove(&id);
        }
        for s in self.sessions.values_mut() {
            if s.access.as_ref().is_some_and(|(_, exp)| *exp <= now) {
                s.access = None;
            }
        }
        self.generations.retain(|_, (_, until)| *until > now);
    }

    fn generation(&self, tag: &UserTag, now: Instant) -> Generation {
        self.generations
            .get(tag)
            .filter(|(_, until)| *until > now)
            .map(|(g, _)| g.clone())
            .unwrap_or_default()
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn left(until: Instant, now: Instant) -> u64 {
    until.saturating_duration_since(now).as_secs()
}

/// The embedded store: sessions in this process's memory, for one instance only. Clones share it.
#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
    guard: MemoryGuard,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-written session: every step
        // writes its entry whole, so the data is still consistent.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The login guards kept with this store.
    pub fn guard(&self) -> &MemoryGuard {
        &self.guard
    }

    /// Drops expired sessions and counters every `period` for as long as the store lives.
    pub fn spawn_sweeper(&self, period: Duration) {
        let state = Arc::downgrade(&self.state);
        let counters = self.guard.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(state) = state.upgrade() else { break };
                state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .sweep(Instant::now());
                counters.sweep();
            }
        });
    }

    /// Starts a session with `pair` unless the user's generation has changed; past the per-user
    /// cap, ends the user's sessions that expire first.
    pub fn issue_session(
        &self,
        s: &NewSession,
        pair: TokenPair,
        policy: &SessionPolicy,
    ) -> Result<Started, StoreError> {
        let session = pair.session();
        let now = Instant::now();
        let refresh = policy
            .max_lifetime
            .map_or(policy.refresh, |m| m.min(policy.refresh));
        let access = policy.access.min(refresh);
        let created_ms = epoch_ms();
        let mut state = self.lock();
        if state.generation(&session.tag, now) != s.generation {
            return Ok(Started::UserChanged);
        }
        state.sessions.insert(
            session.id,
            Session {
                tag: session.tag,
                user_uuid: s.user_uuid.clone(),
                refresh: pair.refresh.digest(),
                refresh_expires: now + refresh,
                max_expires: policy.max_lifetime.map(|m| now + m),
                access: Some((pair.access.digest(), now + access)),
                previous: None,
                ancestors: VecDeque::new(),
                user_json: s.user_json.clone(),
                client_id: s.client_id.clone(),
                scope: s.scope.clone(),
                created_ms,
                refreshed_ms: created_ms,
                ip: s.ip.clone(),
                user_agent: s.user_agent.clone(),
            },
        );
        state
            .by_user
            .entry(session.tag)
            .or_default()
            .insert(session.id);
        let ended = state.trim(&session, policy.max_sessions_per_user, now);
        let issued = Issued {
            pair,
            access_expires_in: access.as_secs(),
            refresh_expires_in: refresh.as_secs(),
        };
        Ok(Started::Issued(issued, ended))
    }

    /// The user's generation now; empty if none is kept.
    pub fn user_generation(&self, tag: &UserTag) -> Result<Generation, StoreError> {
        Ok(self.lock().generation(tag, Instant::now()))
    }

    /// The session's user JSON if `token` is its live access token.
    pub fn validate_access(&self, token: &Token) -> Result<Option<Bytes>, StoreError> {
        let at = token.session();
        let now = Instant::now();
        let mut state = self.lock();
        let Some(s) = state.live(&at.tag, &at.id, now) else {
            return Ok(None);
        };
        let valid = s
            .access
            .as_ref()
            .is_some_and(|(d, exp)| *exp > now && *d == token.digest());
        Ok(valid.then(|| Bytes::from(s.user_json.clone())))
    }

    /// Ends the session `token` belongs to if the token is live (and, with `client`, was issued to
    /// that client); false otherwise.
    pub fn end_session(&self, token: &Token, client: Option<&str>) -> Result<bool, StoreError> {
        let at = token.session();
        let now = Instant::now();
        let mut state = self.lock();
        let Some(s) = state.live(&at.tag, &at.id, now) else {
            return Ok(false);
        };
        if client.is_some_and(|c| c != s.client_id) {
            return Ok(false);
        }
        let digest = token.digest();
        let live = match token.kind() {
            TokenKind::Access => s
                .access
                .as_ref()
                .is_some_and(|(d, exp)| *exp > now && *d == digest),
            TokenKind::Refresh => s.refresh == digest,
        };
        if live {
            state.remove(&at.id);
        }
        Ok(live)
    }

    /// What a live token stands for; `None` if it is not live.
    pub fn introspect(&self, token: &Token) -> Result<Option<Introspection>, StoreError> {
        let at = token.session();
        let now = Instant::now();
        let mut state = self.lock();
        let Some(s) = state.live(&at.tag, &at.id, now) else {
            return Ok(None);
        };
        let digest = token.digest();
        let expires = match token.kind() {
            TokenKind::Access => match &s.access {
                Some((d, exp)) if *d == digest && *exp > now => *exp,
                _ => return Ok(None),
            },
            TokenKind::Refresh if s.refresh == digest => s.refresh_expires,
            TokenKind::Refresh => return Ok(None),
        };
        Ok(Some(Introspection {
            user_json: s.user_json.clone(),
            client_id: s.client_id.clone(),
            scope: s.scope.clone(),
            created_ms: s.created_ms,
            refreshed_ms: s.refreshed_ms,
            expires_ms: epoch_ms() + expires.saturating_duration_since(now).as_millis() as u64,
        }))
    }

    /// Number of sessions held, expired or not; for tests of the sweep.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_session() -> NewSession {
        NewSession {
            user_uuid: "u-1".into(),
            user_json: "{}".into(),
            client_id: "c".into(),
            scope: "read".into(),
            ip: String::new(),
            user_agent: String::new(),
            generation: Generation::default(),
        }
    }

    #[test]
    fn the_sweep_drops_expired_sessions_and_their_index() {
        let store = MemoryStore::new();
        let policy = |d| SessionPolicy {
            access: d,
            refresh: d,
            rotation: true,
            reuse_grace: Duration::ZERO,
            max_lifetime: None,
            max_sessions_per_user: 0,
        };
        let pair = || TokenPair::for_new_session("u-1");
        store
            .issue_session(&new_session(), pair(), &policy(Duration::from_millis(1)))
            .unwrap();
        let Started::Issued(kept, _) = store
            .issue_session(&new_session(), pair(), &policy(Duration::from_secs(60)))
            .unwrap()
        else {
            panic!("the session did not start");
        };
        std::thread::sleep(Duration::from_millis(5));
        store.lock().sweep(Instant::now());
        assert_eq!(store.len(), 1);
        assert_eq!(
            store
                .lock()
                .by_user
                .values()
                .map(BTreeSet::len)
                .sum::<usize>(),
            1
        );
        assert!(store.validate_access(&kept.pair.access).unwrap().is_some());
    }
}
