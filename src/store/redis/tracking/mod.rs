//! Validation without a Redis round trip per request, and logout still instant everywhere.
//!
//! A replica has one tracking connection (RESP3, `CLIENT TRACKING ON OPTIN`) and one
//! [`Cache`] of what it read there, shared by its worker threads. Redis pushes an invalidation
//! on that connection whenever a key it read changes, is deleted or expires; the push is
//! applied in the connection's driver, in stream order, before any later reply is handed out.
//! A hit is trusted under a read lease (`lease.rs`: a heartbeat confirmed within the lease,
//! and every revoking write waits the lease out), or else after a barrier (`barrier.rs`: a
//! `WAIT 0 0` sent after the request arrived, whose reply has come back).
//!
//! A lost connection (a disconnection push, an error or a timeout) clears the cache, since
//! pushes sent while it was down are gone; requests read through the ordinary connection until
//! a new tracking connection is up. A new connection serves no hit until it has proved its
//! invalidation path (`connect.rs`, `Tracker::prove`): a proxy or a Redis-compatible server
//! that accepts `CLIENT TRACKING` yet answers without pushing would otherwise break instant
//! logout in silence.
//!
//! **The concurrency contract.**
//! - Locks: the tracker's `state` mutex and the cache's mutex are never held together, except
//!   that `on_push` (in the driver) takes the state lock inside `probed` and then, released,
//!   the cache's; no path takes the cache's lock and then the state's. `connecting` (a tokio
//!   mutex, only `try_lock`ed) is held across the connect's awaits and never waited for.
//! - No std lock is held across an `.await`: every `lock()` is in a block that ends before the
//!   next await (the heartbeat, spawned with `tokio::spawn`, could not hold one: the guards
//!   are not `Send`).
//! - Threads: the tracking connection's driver (and so `on_push`) and its heartbeat run on
//!   the worker that made the connection; hits on any worker take only the locks. A driver on
//!   a thread of its own was measured and dropped: it kept the lease from lapsing on a
//!   saturated replica (barriers 143 -> 11 in `bench/run --only details`), but its wake-ups
//!   cost the hits about 15% of their throughput (1.19 -> 1.02 x ceiling (a)).
//! - Orderings: an invalidation stores `live = false` (Release) on the entries it drops before
//!   the driver hands out any later reply; a hit reads `confirmed` under the state mutex and
//!   then the entry's flags (Acquire). The heartbeat or barrier that confirmed the lease set
//!   `confirmed` under the same mutex after its reply, which came after the push: mutex then
//!   Acquire makes the dead flag visible to the hit. `used` is a hint (Relaxed).
//! - What it relies on in redis-rs (1.8, `aio::multiplexed_connection`): a push with no reply
//!   (`PushKind::Invalidate`) is given to the push sender inline, in the driver, before the
//!   next reply completes its request; a closure sender runs `on_push` there. Pinned by
//!   `tests/api/leases.rs` (with the lease in force, fails without the commit wait),
//!   `tests/api/validation_cache.rs` (the lagging-proxy rounds, the pushless proxy) and the
//!   read-leases note's source reading.

mod barrier;
mod connect;
mod lease;
mod reads;

pub use lease::commit_wait;

use super::cache::{Cache, Found, SessionFields};
use crate::domain::session::Introspection;
use crate::metrics::CacheResult;
use crate::redis_io::TrackingSource;
use bytes::Bytes;
use reads::unix_ms;
use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind, Value};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;

/// How long after a failed connect requests read through before the next attempt.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long after a connection failed its proof requests read through before the next one.
const RETRY_UNPROVEN: Duration = Duration::from_secs(30);

/// The tracking setup of a store: shared by its workers' trackers.
pub struct TrackingConfig {
    /// Where tracking connections come from.
    pub source: TrackingSource,
    /// Access keys the cache holds at most.
    pub capacity: usize,
    pub timeout: Duration,
    /// The start of the keys that prove a new connection's invalidation path.
    pub probe_prefix: String,
    /// The read lease (0 = none: the barrier on every hit).
    pub lease: Duration,
    /// Where the lease every replica must run is kept.
    pub lease_key: String,
    /// The largest lease seen stored there: what revoking writes wait out.
    pub lease_seen: Arc<AtomicU64>,
}

/// The tracking connection as a request found it.
pub(super) struct Link {
    /// Left out under the lease: see [`Tracker::link_conn`].
    conn: Option<MultiplexedConnection>,
    generation: u64,
    /// A heartbeat confirmed within the lease: a hit may answer at once.
    leased: bool,
}

/// Why a validation could not use the cache: the caller reads through instead.
pub struct Bypass;

/// A new tracking connection whose invalidations did not arrive when its probe said they must.
struct Unproven;

#[derive(Default)]
struct State {
    /// The connection requests use, its generation, and the source's epoch it was made in.
    conn: Option<(MultiplexedConnection, u64, u64)>,
    /// Bumped for every connection made: entries and barriers of another one do not count.
    generation: u64,
    /// Barrier PINGs sent, and the last one completed (on which generation) or failed.
    sent: u64,
    done: u64,
    done_generation: u64,
    failed: u64,
    in_flight: bool,
    /// Requests that took a barrier ticket, in all and when the last PING was sent.
    arrivals: u64,
    arrivals_at_send: u64,
    retry_at: Option<Instant>,
    /// The probe key of the connection being proved, and whether its invalidation came.
    probe: Option<(String, bool)>,
    /// When the latest `WAIT 0 0` confirmed on the live connection was sent.
    confirmed: Option<Instant>,
    /// This connection may serve leases (the lease guard passed).
    leases: bool,
    /// When a validation last used the cache: heartbeats stop after a while without one.
    active_at: Option<Instant>,
    /// The generation whose heartbeat runs.
    beating: Option<u64>,
}

impl State {
    /// `WAIT 0 0` sent at `sent` came back on the connection of `generation`.
    fn confirm(&mut self, generation: u64, sent: Instant) {
        if self.conn.as_ref().is_some_and(|(_, g, _)| *g == generation) {
            self.confirmed = Some(self.confirmed.map_or(sent, |c| c.max(sent)));
        }
    }
}

/// What introspection shows, from a session's cached or freshly read state; the access
/// token expires at `expires`.
fn introspection(user_json: &[u8], fields: SessionFields, expires: Instant) -> Introspection {
    let left = expires.saturating_duration_since(Instant::now());
    Introspection {
        user_json: String::from_utf8_lossy(user_json).into_owned(),
        client_id: fields.client_id,
        scope: fields.scope,
        created_ms: fields.created_ms,
        refreshed_ms: fields.refreshed_ms,
        expires_ms: unix_ms(SystemTime::now()) + left.as_millis() as u64,
    }
}

/// One worker's tracking connection, barrier and cache.
pub struct Tracker {
    config: Arc<TrackingConfig>,
    cache: Arc<Cache>,
    state: Mutex<State>,
    barrier_done: Notify,
    connecting: tokio::sync::Mutex<()>,
    /// A tracking connection was just made: whoever takes this makes sure the worker's
    /// ordinary connection is alive too (Redis may have restarted since it last spoke).
    /// Outside `state`: every validation looks at it.
    connected: AtomicBool,
}

impl Tracker {
    pub fn new(config: Arc<TrackingConfig>) -> Arc<Self> {
        Arc::new(Tracker {
            cache: Arc::new(Cache::new(config.capacity)),
            config,
            state: Mutex::default(),
            barrier_done: Notify::new(),
            connecting: tokio::sync::Mutex::new(()),
            connected: AtomicBool::new(false),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True once after each tracking connection is made: Redis may have gone away and come
    /// back since other connections to it last spoke, and they would not know it yet.
    pub fn take_connected(&self) -> bool {
        // Read first: a swap on every validation would bounce the line between workers.
        self.connected.load(Ordering::Relaxed) && self.connected.swap(false, Ordering::Relaxed)
    }

    /// The user JSON of the session if the access key holds `digest`; from the cache when a
    /// barrier shows it current, else read (and cached) on the tracking connection.
    pub async fn validate(
        self: &Arc<Self>,
        access_key: &str,
        user_key: &str,
        digest: &str,
    ) -> Result<Option<Bytes>, Bypass> {
        let Link {
            conn,
            generation,
            leased,
        } = self.connection().await.ok_or(Bypass)?;
        let mut found = self.cache.find(access_key, user_key, generation);
        // Under the lease the entry answers at once: see `lease.rs` for why.
        // A dead entry is dropped too: under the lease, dead is what Redis holds.
        if leased
            && let Some(entry) = found.take()
            && let Some(user_json) = entry.current(generation)
        {
            crate::metrics::validation_cache(CacheResult::Hit);
            return Ok((entry.digest() == digest).then_some(user_json));
        }
        // The paths that wait for Redis are boxed: a hit's future stays small, and moving
        // it costs little.
        let conn = self.link_conn(conn, generation)?;
        let keys = [access_key, user_key];
        Box::pin(self.validate_waiting(conn, generation, found, keys, digest)).await
    }

    /// [`Self::validate`] past the lease: the barrier, or a read.
    async fn validate_waiting(
        self: &Arc<Self>,
        conn: MultiplexedConnection,
        generation: u64,
        found: Option<Arc<Found>>,
        [access_key, user_key]: [&str; 2],
        digest: &str,
    ) -> Result<Option<Bytes>, Bypass> {
        if let Some(found) = found {
            let barrier = self.barrier(&conn, generation).await?;
            if let Some(user_json) = found.current(barrier) {
                crate::metrics::validation_cache(CacheResult::Hit);
                return Ok((found.digest() == digest).then_some(user_json));
            }
        }
        crate::metrics::validation_cache(CacheResult::Miss);
        let read = self
            .read_untracked(conn.clone(), generation, access_key, user_key)
            .await?
            .filter(|(d, _)| d == digest);
        // Only a live token's keys are tracked: made-up tokens, which anyone may send without
        // limit, would otherwise fill Redis's tracking table.
        if read.is_some() && self.cache.admits() {
            let _ = self
                .fill(conn, generation, access_key, user_key, None)
                .await;
        }
        Ok(read.map(|(_, user)| user))
    }

    /// What introspection shows of the access token whose key holds `digest`; `None` if it is
    /// not live. From the cache when a barrier shows all three keys current, else read (and
    /// cached).
    pub async fn introspect(
        self: &Arc<Self>,
        keys: [&str; 3],
        digest: &str,
    ) -> Result<Option<Introspection>, Bypass> {
        let [access_key, user_key, session_key] = keys;
        let Link {
            conn,
            generation,
            leased,
        } = self.connection().await.ok_or(Bypass)?;
        let live = |fields: &SessionFields| fields.ends_ms > unix_ms(SystemTime::now());
        let found = self
            .cache
            .find_session(access_key, user_key, session_key, generation);
        if let Some(found) = found {
            let barrier = match leased {
                true => generation,
                false => {
                    let conn = conn.as_ref().ok_or(Bypass)?;
                    self.barrier(conn, generation).await?
                }
            };
            if let Some((user, fields, expires)) = found.current_session(barrier) {
                crate::metrics::validation_cache(CacheResult::Hit);
                let answer = found.digest() == digest && live(fields);
                return Ok(answer.then(|| introspection(&user, fields.clone(), expires)));
            }
        }
        crate::metrics::validation_cache(CacheResult::Miss);
        let conn = self.link_conn(conn, generation)?;
        // As for validation, only a live token's keys are tracked: read untracked first.
        let live_token = self
            .read_untracked(conn.clone(), generation, access_key, user_key)
            .await?
            .is_some_and(|(d, _)| d == digest);
        if !live_token {
            return Ok(None);
        }
        if !self.cache.admits() {
            return Err(Bypass);
        }
        let read = self
            .fill(conn, generation, access_key, user_key, Some(session_key))
            .await?;
        Ok(read.and_then(|r| {
            let (fields, _) = r.session.filter(|(f, _)| live(f))?;
            (r.digest == digest).then(|| introspection(&r.user_json, fields, r.access_deadline))
        }))
    }

    /// The link's connection, or, when the lease left it out, the live one if it is still of
    /// `generation`.
    fn link_conn(
        &self,
        conn: Option<MultiplexedConnection>,
        generation: u64,
    ) -> Result<MultiplexedConnection, Bypass> {
        if let Some(conn) = conn {
            return Ok(conn);
        }
        match &self.lock().conn {
            Some((conn, g, _)) if *g == generation => Ok(conn.clone()),
            _ => Err(Bypass),
        }
    }

    /// The connection of `generation` is gone: its pushes may be lost, so the cache is too.
    fn lost(&self, generation: u64) {
        let mut s = self.lock();
        if s.conn.as_ref().is_some_and(|(_, g, _)| *g == generation) {
            s.conn = None;
            s.generation += 1;
            s.confirmed = None;
        }
        drop(s);
        self.cache.clear();
    }
}

/// Applies a push of the connection of `generation`, in its driver, before any later reply.
fn on_push(tracker: &Weak<Tracker>, generation: u64, push: PushInfo) {
    let Some(tracker) = tracker.upgrade() else {
        return;
    };
    match push.kind {
        PushKind::Invalidate => {
            for keys in push.data {
                match keys {
                    // A flush: everything goes.
                    Value::Nil => tracker.cache.clear(),
                    Value::Array(keys) => {
                        for key in keys {
                            if let Value::BulkString(bytes) = key
                                && let Ok(key) = std::str::from_utf8(&bytes)
                                && !tracker.probed(key)
                            {
                                tracker.cache.invalidate(key);
                                crate::metrics::validation_invalidation();
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        PushKind::Disconnection => tracker.lost(generation),
        _ => {}
    }
}
