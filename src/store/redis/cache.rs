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

use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// An access key's digest as Redis last gave it, with the snapshot it names.
pub struct Found {
    digest: String,
    deadline: Instant,
    generation: u64,
    live: AtomicBool,
    /// Hit since the clock hand last passed: spared once.
    used: AtomicBool,
    user_key: Arc<str>,
    user: Arc<UserState>,
    session: Option<Arc<SessionState>>,
}

/// The fields of a session hash introspection shows, as Redis last gave them.
#[derive(Clone)]
pub struct SessionFields {
    pub client_id: String,
    pub scope: String,
    pub created_ms: u64,
    pub refreshed_ms: u64,
    /// When the session ends (`rx`), epoch milliseconds.
    pub ends_ms: u64,
}

struct SessionState {
    key: Arc<str>,
    fields: SessionFields,
    deadline: Instant,
    generation: u64,
    live: AtomicBool,
}

struct UserState {
    json: Bytes,
    /// Milliseconds after the cache's epoch: a later read of the unchanged key moves it.
    deadline_ms: AtomicU64,
    generation: u64,
    live: AtomicBool,
}

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

impl Found {
    /// The snapshot, if both states are still what Redis holds as of a barrier completed on
    /// `generation`, and neither has passed its deadline.
    pub fn current(&self, generation: u64, epoch: Instant) -> Option<Bytes> {
        let now = Instant::now();
        let user = &self.user;
        let fresh = self.live.load(Ordering::Acquire)
            && user.live.load(Ordering::Acquire)
            && self.generation == generation
            && user.generation == generation
            && self.deadline > now
            && epoch + Duration::from_millis(user.deadline_ms.load(Ordering::Relaxed)) > now;
        if !fresh {
            return None;
        }
        self.used.store(true, Ordering::Relaxed);
        Some(user.json.clone())
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// As [`Found::current`], with the session's fields: for an entry filled for
    /// introspection whose session hash is also unchanged and within its deadline.
    pub fn current_session(
        &self,
        generation: u64,
        epoch: Instant,
    ) -> Option<(Bytes, &SessionFields, Instant)> {
        let session = self.session.as_ref()?;
        let fresh = session.live.load(Ordering::Acquire)
            && session.generation == generation
            && session.deadline > Instant::now();
        let user = self.current(generation, epoch).filter(|_| fresh)?;
        Some((user, &session.fields, self.deadline))
    }
}

/// A bounded cache of access keys and the snapshots they name.
pub struct Cache {
    inner: Mutex<Inner>,
    capacity: usize,
    /// What user deadlines count from.
    epoch: Instant,
}

impl Cache {
    pub fn new(capacity: usize) -> Self {
        Cache {
            inner: Mutex::default(),
            capacity: capacity.max(1),
            epoch: Instant::now(),
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

    /// What user deadlines count from.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    /// Whether `found` is still what Redis holds; see [`Found::current`].
    pub fn current(&self, found: &Found, generation: u64) -> Option<Bytes> {
        found.current(generation, self.epoch)
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
        // Only our own token is taken out: a newer fill of the key keeps its claim.
        let ours = |inner: &mut Inner, (key, token): &(String, u64)| {
            let mine = inner.pending.get(key) == Some(token);
            if mine {
                inner.pending.remove(key);
            }
            mine
        };
        let access_ok = ours(&mut inner, &fill.access);
        let user_ok = ours(&mut inner, &fill.user);
        let session_ok = fill.session.as_ref().is_none_or(|s| ours(&mut inner, s));
        if !(access_ok && user_ok && session_ok) {
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
        let user_key = fill.user.0;
        remove_access(&mut inner, &access_key);
        while inner.access.len() >= self.capacity && evict_one(&mut inner) {}
        let user_deadline = read.user_deadline.saturating_duration_since(self.epoch);
        let user_deadline = user_deadline.as_millis() as u64;
        let kept = inner
            .users
            .get_key_value(user_key.as_str())
            .filter(|(_, u)| u.state.generation == generation && u.state.json == read.user_json)
            .map(|(key, u)| (key.clone(), u.state.clone()));
        let (user_key, user) = match kept {
            // Redis sent no invalidation since that read, so this read's TTL holds for it.
            Some((key, state)) => {
                if let Some(entry) = inner.users.get_mut(&key) {
                    entry.refs += 1;
                }
                state.deadline_ms.store(user_deadline, Ordering::Relaxed);
                (key, state)
            }
            None => {
                let key: Arc<str> = user_key.into();
                let state = Arc::new(UserState {
                    json: read.user_json,
                    deadline_ms: AtomicU64::new(user_deadline),
                    generation,
                    live: AtomicBool::new(true),
                });
                if let Some(old) = inner.users.insert(
                    key.clone(),
                    UserEntry {
                        state: state.clone(),
                        refs: 1,
                    },
                ) {
                    // Entries that named the old state now miss and read again.
                    old.state.live.store(false, Ordering::Release);
                }
                (key, state)
            }
        };
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
    if let Some(user) = inner.users.get_mut(&*found.user_key) {
        user.refs = user.refs.saturating_sub(1);
        if user.refs == 0 {
            inner.users.remove(&*found.user_key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(digest: &str) -> Read {
        let later = Instant::now() + Duration::from_secs(60);
        Read {
            digest: digest.into(),
            access_deadline: later,
            user_json: Bytes::from_static(b"{}"),
            user_deadline: later,
            session: None,
        }
    }

    fn hit(cache: &Cache, key: &str, generation: u64) -> Option<String> {
        let found = cache.find(key, "u", generation)?;
        cache
            .current(&found, generation)
            .map(|_| found.digest().to_string())
    }

    #[test]
    fn a_fill_overtaken_by_an_invalidation_does_not_land() {
        let cache = Cache::new(10);
        let fill = cache.begin_fill("a", "u", None);
        cache.invalidate("a");
        cache.finish_fill(fill, read("d"), 1);
        assert!(hit(&cache, "a", 1).is_none());
        let fill = cache.begin_fill("a", "u", None);
        cache.finish_fill(fill, read("d"), 1);
        assert_eq!(hit(&cache, "a", 1).as_deref(), Some("d"));
        // Another generation's entries do not count.
        assert!(hit(&cache, "a", 2).is_none());
    }

    #[test]
    fn an_invalidation_after_the_lookup_is_seen_after_the_barrier() {
        let cache = Cache::new(10);
        let fill = cache.begin_fill("a", "u", None);
        cache.finish_fill(fill, read("d"), 1);
        let found = cache.find("a", "u", 1).unwrap();
        cache.invalidate("u");
        assert!(cache.current(&found, 1).is_none(), "the user changed");
        let fill = cache.begin_fill("a", "u", None);
        cache.finish_fill(fill, read("d"), 1);
        let found = cache.find("a", "u", 1).unwrap();
        cache.invalidate("a");
        assert!(cache.current(&found, 1).is_none(), "the access key changed");
    }

    #[test]
    fn the_cache_keeps_its_bound_and_spares_what_was_used() {
        let cache = Cache::new(3);
        for key in ["a", "b", "c"] {
            let fill = cache.begin_fill(key, "u", None);
            cache.finish_fill(fill, read(key), 1);
        }
        assert!(hit(&cache, "a", 1).is_some());
        let fill = cache.begin_fill("d", "u", None);
        cache.finish_fill(fill, read("d"), 1);
        assert_eq!(cache.len(), 3);
        assert!(
            hit(&cache, "b", 1).is_none(),
            "b was not used since it came"
        );
        assert!(hit(&cache, "a", 1).is_some());
        // Many more keys than room, with invalidations: the bound holds.
        for i in 0..1000 {
            let key = format!("k{i}");
            let fill = cache.begin_fill(&key, "u", None);
            cache.finish_fill(fill, read(&key), 1);
            if i % 3 == 0 {
                cache.invalidate(&key);
            }
        }
        assert!(cache.len() <= 3);
        assert!(cache.lock().clock.len() <= 2 * 3 + 64 + 1);
    }

    #[test]
    fn a_full_cache_admits_one_miss_in_thirty_two() {
        let cache = Cache::new(2);
        assert!(cache.admits());
        for key in ["a", "b"] {
            let fill = cache.begin_fill(key, "u", None);
            cache.finish_fill(fill, read(key), 1);
        }
        let admitted = (0..64).filter(|_| cache.admits()).count();
        assert_eq!(admitted, 64 / ADMIT_WHEN_FULL as usize);
        cache.invalidate("a");
        assert!(cache.admits(), "room again");
    }

    #[test]
    fn an_entry_never_outlives_its_deadline() {
        let cache = Cache::new(3);
        let fill = cache.begin_fill("a", "u", None);
        let mut r = read("d");
        r.access_deadline = Instant::now();
        cache.finish_fill(fill, r, 1);
        assert!(hit(&cache, "a", 1).is_none());
        let fill = cache.begin_fill("b", "u", None);
        let mut r = read("d");
        r.user_deadline = Instant::now();
        cache.finish_fill(fill, r, 1);
        assert!(hit(&cache, "b", 1).is_none());
    }
}
