//! The validation cache of one worker: what Redis last said an access key and a user snapshot
//! hold, kept only while Redis would tell this worker's tracking connection of any change.
//!
//! Entries are key states, not verdicts: an access key's current digest and a snapshot's JSON,
//! each with the deadline its TTL gives and the tracking connection's generation. A fill is
//! announced before its read is sent (a pending token per key) and lands only if no
//! invalidation of the key, no flush and no reconnect came in between: a read in flight when
//! its key changed never fills the cache.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

struct AccessEntry {
    digest: String,
    user_key: String,
    deadline: Instant,
    generation: u64,
    /// Position in the eviction order.
    stamp: u64,
}

struct UserEntry {
    json: Arc<str>,
    deadline: Instant,
    generation: u64,
    /// Access entries that name this snapshot; it goes with the last of them.
    refs: usize,
}

#[derive(Default)]
struct Inner {
    access: HashMap<String, AccessEntry>,
    users: HashMap<String, UserEntry>,
    /// stamp -> access key, oldest first.
    order: BTreeMap<u64, String>,
    /// key -> token of the fill in flight for it.
    pending: HashMap<String, u64>,
    next: u64,
}

/// What a hit gives: the access key's digest and the user's JSON.
pub struct Hit {
    pub digest: String,
    pub user_json: Arc<str>,
}

/// A fill announced before its read: the tokens of the two keys.
pub struct Fill {
    access: (String, u64),
    user: (String, u64),
}

/// What Redis answered for a fill: each value with the instant it stops being valid.
#[derive(Clone)]
pub struct Read {
    pub digest: String,
    pub access_deadline: Instant,
    pub user_json: String,
    pub user_deadline: Instant,
}

/// A bounded cache of access keys (least recently used out first) and the snapshots they
/// name.
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

    /// True if both keys are held from `generation`: worth a barrier. Neither copies nor
    /// reorders anything.
    pub fn holds(&self, access_key: &str, user_key: &str, generation: u64) -> bool {
        let inner = self.lock();
        inner
            .access
            .get(access_key)
            .is_some_and(|e| e.generation == generation)
            && inner
                .users
                .get(user_key)
                .is_some_and(|u| u.generation == generation)
    }

    /// The states of `access_key` and `user_key` if both are cached from `generation` and
    /// neither has passed its deadline.
    pub fn get(&self, access_key: &str, user_key: &str, generation: u64) -> Option<Hit> {
        let now = Instant::now();
        let mut inner = self.lock();
        let inner = &mut *inner;
        let entry = inner.access.get_mut(access_key)?;
        let user = inner.users.get(user_key)?;
        let fresh = |deadline: Instant, g: u64| deadline > now && g == generation;
        if !fresh(entry.deadline, entry.generation) || !fresh(user.deadline, user.generation) {
            return None;
        }
        let stamp = inner.next;
        inner.next += 1;
        if let Some(key) = inner.order.remove(&entry.stamp) {
            inner.order.insert(stamp, key);
        }
        entry.stamp = stamp;
        Some(Hit {
            digest: entry.digest.clone(),
            user_json: user.json.clone(),
        })
    }

    /// Announces a read of both keys.
    pub fn begin_fill(&self, access_key: &str, user_key: &str) -> Fill {
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
        if !(access_ok && user_ok) {
            return;
        }
        let (access_key, _) = fill.access;
        let (user_key, _) = fill.user;
        remove_access(&mut inner, &access_key);
        while inner.access.len() >= self.capacity {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            remove_access(&mut inner, &oldest);
        }
        let user = inner.users.entry(user_key.clone()).or_insert(UserEntry {
            json: Arc::from(read.user_json.as_str()),
            deadline: read.user_deadline,
            generation,
            refs: 0,
        });
        if user.generation != generation || user.json.as_ref() != read.user_json {
            user.json = Arc::from(read.user_json.as_str());
            user.generation = generation;
        }
        user.deadline = read.user_deadline;
        user.refs += 1;
        inner.next += 1;
        let stamp = inner.next;
        inner.order.insert(stamp, access_key.clone());
        crate::metrics::validation_entries(1);
        inner.access.insert(
            access_key,
            AccessEntry {
                digest: read.digest,
                user_key,
                deadline: read.access_deadline,
                generation,
                stamp,
            },
        );
    }

    /// Gives up a fill whose read failed.
    pub fn abandon_fill(&self, fill: Fill) {
        let mut inner = self.lock();
        for (key, token) in [fill.access, fill.user] {
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
        inner.users.remove(key);
    }

    /// Forgets everything: a flush, or a tracking connection lost.
    pub fn clear(&self) {
        let mut inner = self.lock();
        crate::metrics::validation_entries(-(inner.access.len() as i64));
        inner.access.clear();
        inner.users.clear();
        inner.order.clear();
        inner.pending.clear();
    }

    /// Access keys held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().access.len()
    }
}

fn remove_access(inner: &mut Inner, key: &str) {
    let Some(entry) = inner.access.remove(key) else {
        return;
    };
    crate::metrics::validation_entries(-1);
    inner.order.remove(&entry.stamp);
    if let Some(user) = inner.users.get_mut(&entry.user_key) {
        user.refs = user.refs.saturating_sub(1);
        if user.refs == 0 {
            inner.users.remove(&entry.user_key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn read(digest: &str) -> Read {
        let later = Instant::now() + Duration::from_secs(60);
        Read {
            digest: digest.into(),
            access_deadline: later,
            user_json: "{}".into(),
            user_deadline: later,
        }
    }

    #[test]
    fn a_fill_overtaken_by_an_invalidation_does_not_land() {
        let cache = Cache::new(10);
        let fill = cache.begin_fill("a", "u");
        cache.invalidate("a");
        cache.finish_fill(fill, read("d"), 1);
        assert!(cache.get("a", "u", 1).is_none());
        let fill = cache.begin_fill("a", "u");
        cache.finish_fill(fill, read("d"), 1);
        assert_eq!(cache.get("a", "u", 1).unwrap().digest, "d");
        // Another generation's entries do not count.
        assert!(cache.get("a", "u", 2).is_none());
    }

    #[test]
    fn the_cache_keeps_its_bound_and_drops_the_least_recently_used() {
        let cache = Cache::new(3);
        for key in ["a", "b", "c"] {
            let fill = cache.begin_fill(key, "u");
            cache.finish_fill(fill, read(key), 1);
        }
        assert!(cache.get("a", "u", 1).is_some());
        let fill = cache.begin_fill("d", "u");
        cache.finish_fill(fill, read("d"), 1);
        assert_eq!(cache.len(), 3);
        assert!(
            cache.get("b", "u", 1).is_none(),
            "b was the least recently used"
        );
        assert!(cache.get("a", "u", 1).is_some());
    }

    #[test]
    fn an_entry_never_outlives_its_deadline() {
        let cache = Cache::new(3);
        let fill = cache.begin_fill("a", "u");
        let mut r = read("d");
        r.access_deadline = Instant::now();
        cache.finish_fill(fill, r, 1);
        assert!(cache.get("a", "u", 1).is_none());
    }
}
