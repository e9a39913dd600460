//! The validation cache of one worker: what Redis last said an access key and a user snapshot
//! hold, kept only while Redis would tell this worker's tracking connection of any change.
//!
//! Entries are key states, not verdicts: an access key's current digest and a snapshot's JSON,
//! each with the deadline its TTL gives and the tracking connection's generation. A fill is
//! announced before its read is sent (a pending token per key) and lands only if no
//! invalidation of the key, no flush and no reconnect came in between: a read in flight when
//! its key changed never fills the cache.
//!
//! A hit costs one map lookup under the lock before the barrier and none after it: the states
//! are shared, and an invalidation marks them dead as it drops them, so a request that found
//! one before its barrier sees the change after it. Eviction is a CLOCK (second chance): a hit
//! only sets a flag.
//!
//! An entry filled for introspection also holds the session's fields (client, scope, times);
//! one filled for validation does not need them.

mod entry;

use bytes::Bytes;
pub use entry::{Found, SessionFields};
use entry::{SessionState, UserState};
// foldhash, seeded per process: these are looked up on every validation, with keys a client
// picks; only the server's own keys (live sessions') are ever inserted.
use foldhash::HashMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

struct UserEntry {
    state: Arc<UserState>,
    /// Access entries that name this snapshot; it goes with the last of them.
    refs: usize,
}

#[derive(Default)]
struct Inner {
    access: HashMap<Arc<str>, Arc<Found>>,
    users: HashMap<Arc<str>, UserEntry>,
    /// Session hashes of entries filled for introspection, by key: one per access entry.
    sessions: HashMap<Arc<str>, Arc<SessionState>>,
    /// The clock: access entries in insertion order, dead ones dropped as the hand meets them.
    clock: VecDeque<(Arc<str>, Arc<Found>)>,
    /// key -> token of the fill in flight for it.
    pending: HashMap<String, u64>,
    next: u64,
    /// Misses that found the cache full.
    full_misses: u64,
}

/// When the cache is full, one miss in this many fills it (evicting an entry); the others
/// read through. Tokens cycling through more than the cache holds then leave a stable part
/// of them cached instead of each evicting the next before it is used again.
const ADMIT_WHEN_FULL: u64 = 32;

/// A fill announced before its read: the tokens of its keys.
pub struct Fill {
    access: (String, u64),
    user: (String, u64),
    session: Option<(String, u64)>,
}

/// What Redis answered for a fill: each value with the instant it stops being valid.
#[derive(Clone)]
pub struct Read {
    pub digest: String,
    pub access_deadline: Instant,
    pub user_json: Bytes,
    pub user_deadline: Instant,
    /// With introspection: the session's fields and the deadline of its hash.
    pub session: Option<(SessionFields, Instant)>,
}

/// A bounded cache of access keys and the snapshots they name.
pub struct Cache {
    inner: Mutex<Inner>,
    capacity: usize,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache {
            inner: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every step leaves the maps consistent, so a poisoned lock's data is still good.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry of `access_key` if it names `user_key` and both are held from `generation`:
    /// worth a barrier. Check it with [`Found::current`] once the barrier is done.
    pub fn find(&self, access_key: &str, user_key: &str, generation: u64) -> Option<Arc<Found>> {
        let inner = self.lock();
        let found = inner.access.get(access_key)?;
        (found.generation == generation
            && found.user.generation == generation
            && &*found.user_key == user_key)
            .then(|| found.clone())
    }

    /// As [`Cache::find`], for an entry filled for introspection of session `session_key`.
    pub fn find_session(
        &self,
        access_key: &str,
        user_key: &str,
        session_key: &str,
        generation: u64,
    ) -> Option<Arc<Found>> {
        self.find(access_key, user_key, generation).filter(|f| {
            f.session
                .as_ref()
                .is_some_and(|s| &*s.key == session_key && s.generation == generation)
        })
    }

    /// Whether a miss should fill the cache: always while there is room, else one in
    /// [`ADMIT_WHEN_FULL`].
    pub fn admits(&self) -> bool {
        let mut inner = self.lock();
        if inner.access.len() < self.capacity {
            return true;
        }
        inner.full_misses += 1;
        inner.full_misses.is_multiple_of(ADMIT_WHEN_FULL)
    }

    /// Announces a read of the keys: the session's too, for introspection.
    pub fn begin_fill(&self, access_key: &str, user_key: &str, session_key: Option<&str>) -> Fill {
        let mut inner = self.lock();
        let mut token = |key: &str| {
            inner.next += 1;
            let t = inner.next;
            inner.pending.insert(key.to_string(), t);
            (key.to_string(), t)
        };
        Fill {
            access: token(access_key),
            user: token(user_key),
            session: session_key.map(&mut token),
        }
    }

    /// Stores what a read announced by `fill` found, unless either key changed meanwhile (its
    /// pending token is gone or replaced).
    pub fn finish_fill(&self, fill: Fill, read: Read, generation: u64) {
        let mut inner = self.lock();
        if !claimed(&mut inner, &fill) {
            return;
        }
        let session = match (fill.session, read.session) {
            (Some((key, _)), Some((fields, deadline))) => Some(Arc::new(SessionState {
                key: key.into(),
                fields,
                deadline,
                generation,
                live: AtomicBool::new(true),
            })),
            (None, None) => None,
            // A session announced but not read, or read unannounced: nothing to trust.
            _ => return,
        };
        let access_key: Arc<str> = fill.access.0.into();
        remove_access(&mut inner, &access_key);
        while inner.access.len() >= self.capacity && evict_one(&mut inner) {}
        let (user_key, user) = user_state(
            &mut inner,
            fill.user.0,
            read.user_json,
            read.user_deadline,
            generation,
        );
        let found = Arc::new(Found {
            digest: read.digest,
            deadline: read.access_deadline,
            generation,
            live: AtomicBool::new(true),
            used: AtomicBool::new(false),
            user_key,
            user,
            session: session.clone(),
        });
        if let Some(session) = session
            && let Some(old) = inner.sessions.insert(session.key.clone(), session)
        {
            old.live.store(false, Ordering::Release);
        }
        crate::metrics::validation_entries(1);
        inner.clock.push_back((access_key.clone(), found.clone()));
        inner.access.insert(access_key, found);
        // Invalidated entries stay in the clock until the hand meets them; keep it near the
        // size of the cache.
        if inner.clock.len() > 2 * inner.access.len() + 64 {
            inner.clock.retain(|(_, f)| f.live.load(Ordering::Relaxed));
        }
    }

    /// Gives up a fill whose read failed.
    pub fn abandon_fill(&self, fill: Fill) {
        let mut inner = self.lock();
        for (key, token) in [Some(fill.access), Some(fill.user), fill.session]
            .into_iter()
            .flatten()
        {
            if inner.pending.get(&key) == Some(&token) {
                inner.pending.remove(&key);
            }
        }
    }

    /// Redis says `key` changed: forget it, and any fill of it in flight.
    pub fn invalidate(&self, key: &str) {
        let mut inner = self.lock();
        inner.pending.remove(key);
        remove_access(&mut inner, key);
        if let Some(user) = inner.users.remove(key) {
            user.state.live.store(false, Ordering::Release);
        }
        if let Some(session) = inner.sessions.remove(key) {
            session.live.store(false, Ordering::Release);
        }
    }

    /// Forgets everything: a flush, or a tracking connection lost.
    pub fn clear(&self) {
        let mut inner = self.lock();
        crate::metrics::validation_entries(-(inner.access.len() as i64));
        for found in inner.access.values() {
            found.live.store(false, Ordering::Release);
        }
        for user in inner.users.values() {
            user.state.live.store(false, Ordering::Release);
        }
        for session in inner.sessions.values() {
            session.live.store(false, Ordering::Release);
        }
        inner.sessions.clear();
        inner.access.clear();
        inner.users.clear();
        inner.clock.clear();
        inner.pending.clear();
    }

    /// Access keys held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().access.len()
    }
}

/// Moves the clock hand to the first entry not hit since it last passed and drops it; false
/// if the clock is empty.
fn evict_one(inner: &mut Inner) -> bool {
    while let Some((key, found)) = inner.clock.pop_front() {
        if !found.live.load(Ordering::Relaxed) {
            continue;
        }
        if found.used.swap(false, Ordering::Relaxed) {
            inner.clock.push_back((key, found));
            continue;
        }
        remove_access(inner, &key);
        return true;
    }
    false
}

fn remove_access(inner: &mut Inner, key: &str) {
    let Some(found) = inner.access.remove(key) else {
        return;
    };
    found.live.store(false, Ordering::Release);
    crate::metrics::validation_entries(-1);
    if let Some(session) = &found.session
        && inner
            .sessions
            .get(&session.key)
            .is_some_and(|s| Arc::ptr_eq(s, session))
    {
        inner.sessions.remove(&session.key);
    }
    // Only the state this entry names loses a reference: a newer state under the same key
    // (the record was rewritten) is counted by its own entries, and dropping it early would
    // leave those unreachable by the user key's invalidation.
    if let Some(user) = inner.users.get_mut(&*found.user_key)
        && Arc::ptr_eq(&user.state, &found.user)
    {
        user.refs = user.refs.saturating_sub(1);
        if user.refs == 0 {
            inner.users.remove(&*found.user_key);
        }
    }
}

#[cfg(test)]
mod tests;

/// Takes the fill's pending tokens out; true if every one was still its own (no key changed
/// while the read was in flight). A newer fill of a key keeps its claim.
fn claimed(inner: &mut Inner, fill: &Fill) -> bool {
    let mut ours = |(key, token): &(String, u64)| {
        let mine = inner.pending.get(key) == Some(token);
        if mine {
            inner.pending.remove(key);
        }
        mine
    };
    let access_ok = ours(&fill.access);
    let user_ok = ours(&fill.user);
    let session_ok = fill.session.as_ref().is_none_or(&mut ours);
    access_ok && user_ok && session_ok
}

/// The user state a new access entry names: the one held, if it is of this generation and
/// holds the same JSON (one more entry names it), or else a new one in its place.
fn user_state(
    inner: &mut Inner,
    user_key: String,
    json: bytes::Bytes,
    deadline: Instant,
    generation: u64,
) -> (Arc<str>, Arc<UserState>) {
    let kept = inner
        .users
        .get_key_value(user_key.as_str())
        .filter(|(_, u)| u.state.generation == generation && u.state.json == json)
        .map(|(key, u)| (key.clone(), u.state.clone()));
    if let Some((key, state)) = kept {
        // Redis sent no invalidation since that read, so this read's TTL holds for it.
        if let Some(entry) = inner.users.get_mut(&key) {
            entry.refs += 1;
        }
        state.set_deadline(deadline);
        return (key, state);
    }
    let key: Arc<str> = user_key.into();
    let state = Arc::new(UserState::new(json, deadline, generation));
    let entry = UserEntry {
        state: state.clone(),
        refs: 1,
    };
    if let Some(old) = inner.users.insert(key.clone(), entry) {
        // Entries that named the old state now miss and read again.
        old.state.live.store(false, Ordering::Release);
    }
    (key, state)
}
