//! The shared states of the validation cache: what a request finds before its barrier and
//! checks after it, without the cache's lock.

use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// An access key's digest as Redis last gave it, with the snapshot it names.
pub struct Found {
    pub(super) digest: String,
    pub(super) deadline: Instant,
    pub(super) generation: u64,
    pub(super) live: AtomicBool,
    /// Hit since the clock hand last passed: spared once.
    pub(super) used: AtomicBool,
    pub(super) user_key: Arc<str>,
    pub(super) user: Arc<UserState>,
    pub(super) session: Option<Arc<SessionState>>,
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

pub(super) struct SessionState {
    pub(super) key: Arc<str>,
    pub(super) fields: SessionFields,
    pub(super) deadline: Instant,
    pub(super) generation: u64,
    pub(super) live: AtomicBool,
}

pub(super) struct UserState {
    pub(super) json: Bytes,
    /// Milliseconds after `base`: a later read of the unchanged key moves it.
    deadline_ms: AtomicU64,
    base: Instant,
    pub(super) generation: u64,
    pub(super) live: AtomicBool,
}

impl UserState {
    pub(super) fn new(json: Bytes, deadline: Instant, generation: u64) -> Self {
        let base = Instant::now();
        let state = UserState {
            json,
            deadline_ms: AtomicU64::new(0),
            base,
            generation,
            live: AtomicBool::new(true),
        };
        state.set_deadline(deadline);
        state
    }

    pub(super) fn set_deadline(&self, deadline: Instant) {
        let ms = deadline.saturating_duration_since(self.base).as_millis() as u64;
        self.deadline_ms.store(ms, Ordering::Relaxed);
    }

    fn deadline(&self) -> Instant {
        self.base + Duration::from_millis(self.deadline_ms.load(Ordering::Relaxed))
    }
}

impl Found {
    /// The snapshot, if both states are still what Redis holds as of a barrier completed on
    /// `generation`, and neither has passed its deadline.
    pub fn current(&self, generation: u64) -> Option<Bytes> {
        let now = Instant::now();
        let user = &self.user;
        let fresh = self.live.load(Ordering::Acquire)
            && user.live.load(Ordering::Acquire)
            && self.generation == generation
            && user.generation == generation
            && self.deadline > now
            && user.deadline() > now;
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
    pub fn current_session(&self, generation: u64) -> Option<(Bytes, &SessionFields, Instant)> {
        let session = self.session.as_ref()?;
        let fresh = session.live.load(Ordering::Acquire)
            && session.generation == generation
            && session.deadline > Instant::now();
        let user = self.current(generation).filter(|_| fresh)?;
        Some((user, &session.fields, self.deadline))
    }
}
