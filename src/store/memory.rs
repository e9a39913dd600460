//! The embedded in-process store, for a single instance without Redis. Same semantics as the
//! Redis store: TTL expiry, single-use refresh tokens, atomic logout. Each operation holds one
//! mutex for its whole step, which is what makes it atomic; expired entries are dropped when
//! touched and by a periodic sweep, so memory stays bounded.

use super::StoreError;
use crate::domain::session::{Issued, Lifetimes, NewSession, Refresh, TokenPair};
use crate::domain::token::{SessionId, Token, TokenDigest, TokenKind, UserTag};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

struct Session {
    tag: UserTag,
    refresh: TokenDigest,
    refresh_expires: Instant,
    access: Option<(TokenDigest, Instant)>,
    user_json: String,
    client_id: String,
    scope: String,
}

#[derive(Default)]
struct State {
    sessions: HashMap<SessionId, Session>,
    by_user: HashMap<UserTag, BTreeSet<SessionId>>,
}

impl State {
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

    /// The live session `id`, dropping it first if it has expired.
    fn live(&mut self, id: &SessionId, now: Instant) -> Option<&mut Session> {
        if self
            .sessions
            .get(id)
            .is_some_and(|s| s.refresh_expires <= now)
        {
            self.remove(id);
        }
        self.sessions.get_mut(id)
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
    }
}

#[derive(Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

fn expiries(now: Instant, lifetimes: &Lifetimes) -> (Duration, Duration, Instant, Instant) {
    let refresh = lifetimes.refresh;
    let access = lifetimes.access.min(refresh);
    (access, refresh, now + access, now + refresh)
}

impl MemoryStore {
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

    /// Drops expired sessions every `period` for as long as the store lives.
    pub fn spawn_sweeper(&self, period: Duration) {
        let state = Arc::downgrade(&self.state);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(state) = state.upgrade() else { break };
                let mut guard = state.lock().unwrap_or_else(|p| p.into_inner());
                guard.sweep(Instant::now());
            }
        });
    }

    pub fn issue_session(
        &self,
        s: &NewSession,
        lifetimes: &Lifetimes,
    ) -> Result<Issued, StoreError> {
        let pair = TokenPair::for_new_session(&s.user_uuid);
        let session = pair.session();
        let now = Instant::now();
        let (access, refresh, access_expires, refresh_expires) = expiries(now, lifetimes);
        let mut state = self.lock();
        state.sessions.insert(
            session.id,
            Session {
                tag: session.tag,
                refresh: pair.refresh.digest(),
                refresh_expires,
                access: Some((pair.access.digest(), access_expires)),
                user_json: s.user_json.clone(),
                client_id: s.client_id.clone(),
                scope: s.scope.clone(),
            },
        );
        state
            .by_user
            .entry(session.tag)
            .or_default()
            .insert(session.id);
        Ok(Issued {
            pair,
            access_expires_in: access.as_secs(),
            refresh_expires_in: refresh.as_secs(),
        })
    }

    pub fn rotate_refresh(
        &self,
        presented: &Token,
        scope: Option<&str>,
        lifetimes: &Lifetimes,
    ) -> Result<Refresh, StoreError> {
        let id = presented.session().id;
        let now = Instant::now();
        let mut state = self.lock();
        let Some(s) = state.live(&id, now) else {
            return Ok(Refresh::InvalidToken);
        };
        if s.tag != presented.session().tag || s.refresh != presented.digest() {
            return Ok(Refresh::InvalidToken);
        }
        if let Some(requested) = scope {
            let have: Vec<&str> = s.scope.split(' ').collect();
            if !requested.split(' ').all(|r| have.contains(&r)) {
                return Ok(Refresh::ScopeTooWide);
            }
            s.scope = requested.to_string();
        }
        let pair = TokenPair::generate(presented.session());
        let (access, refresh, access_expires, refresh_expires) = expiries(now, lifetimes);
        s.refresh = pair.refresh.digest();
        s.refresh_expires = refresh_expires;
        s.access = Some((pair.access.digest(), access_expires));
        Ok(Refresh::Rotated {
            issued: Box::new(Issued {
                pair,
                access_expires_in: access.as_secs(),
                refresh_expires_in: refresh.as_secs(),
            }),
            user_json: s.user_json.clone(),
            client_id: s.client_id.clone(),
            scope: s.scope.clone(),
        })
    }

    pub fn validate_access(&self, token: &Token) -> Result<Option<String>, StoreError> {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(s) = state.live(&token.session().id, now) else {
            return Ok(None);
        };
        let valid = s.tag == token.session().tag
            && s.access
                .as_ref()
                .is_some_and(|(d, exp)| *exp > now && *d == token.digest());
        Ok(valid.then(|| s.user_json.clone()))
    }

    pub fn end_session(&self, token: &Token) -> Result<bool, StoreError> {
        let id = token.session().id;
        let now = Instant::now();
        let mut state = self.lock();
        let Some(s) = state.live(&id, now) else {
            return Ok(false);
        };
        let digest = token.digest();
        let live = s.tag == token.session().tag
            && match token.kind() {
                TokenKind::Access => s
                    .access
                    .as_ref()
                    .is_some_and(|(d, exp)| *exp > now && *d == digest),
                TokenKind::Refresh => s.refresh == digest,
            };
        if live {
            state.remove(&id);
        }
        Ok(live)
    }

    /// Number of sessions held, expired or not; for tests of the sweep.
    pub fn len(&self) -> usize {
        self.lock().sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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
        }
    }

    #[test]
    fn the_sweep_drops_expired_sessions_and_their_index() {
        let store = MemoryStore::new();
        let short = Lifetimes {
            access: Duration::from_millis(1),
            refresh: Duration::from_millis(1),
        };
        let long = Lifetimes {
            access: Duration::from_secs(60),
            refresh: Duration::from_secs(60),
        };
        store.issue_session(&new_session(), &short).unwrap();
        let kept = store.issue_session(&new_session(), &long).unwrap();
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
