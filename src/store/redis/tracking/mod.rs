//! Validation without a Redis command per request, and logout still instant everywhere.
//!
//! Each worker thread has a tracking connection of its own (RESP3, `CLIENT TRACKING ON`) and a
//! [`Cache`] of what it read there. Redis pushes an invalidation on that connection whenever a
//! key it read changes, is deleted or expires; the push is applied in the connection's driver,
//! in stream order, before any later reply is handed out. So a hit is trusted only after a
//! barrier: a `PING` sent after the request arrived, whose reply has come back. Every
//! invalidation Redis had queued for this worker before then has been applied by that time.
//! All requests that arrive while a `PING` is in flight share the next one: under load, about
//! one `PING` per round trip instead of one read per request.
//!
//! A lost connection (a disconnection push, an error or a timeout) clears the cache, since
//! pushes sent while it was down are gone; requests read through the ordinary connection until
//! a new tracking connection is up. A new connection serves no hit until it has proved its
//! invalidation path (see [`Tracker::prove`]): a proxy or a Redis-compatible server that
//! accepts `CLIENT TRACKING` yet answers `PING` without pushing would otherwise break instant
//! logout in silence.

mod reads;

use super::cache::{Cache, SessionFields};
use crate::domain::session::Introspection;
use crate::redis_io::TrackingSource;
use bytes::Bytes;
use reads::unix_ms;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, PushInfo, PushKind, Value};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;

/// How long after a failed connect requests read through before the next attempt.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long after a connection failed its proof requests read through before the next one.
const RETRY_UNPROVEN: Duration = Duration::from_secs(30);

/// The tracking setup of a store: shared by its workers' trackers.
pub struct TrackingConfig {
    /// Tells one store's trackers from another's on the same thread.
    pub id: u64,
    /// Where tracking connections come from.
    pub source: TrackingSource,
    /// Access keys each worker's cache holds at most.
    pub capacity: usize,
    pub timeout: Duration,
    /// The start of the keys that prove a new connection's invalidation path.
    pub probe_prefix: String,
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
    /// A tracking connection was just made: whoever takes this makes sure the worker's
    /// ordinary connection is alive too (Redis may have restarted since it last spoke).
    connected: bool,
    /// The probe key of the connection being proved, and whether its invalidation came.
    probe: Option<(String, bool)>,
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

/// The barrier PING a request claimed to send. A request goes away mid-await when its client
/// resets the connection: the claim is then handed back, or every later barrier on this
/// worker would wait for a PING no one awaits.
struct Claim<'a> {
    tracker: &'a Tracker,
    settled: bool,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.tracker.lock().in_flight = false;
            self.tracker.barrier_done.notify_waiters();
        }
    }
}

/// One worker's tracking connection, barrier and cache.
pub struct Tracker {
    config: Arc<TrackingConfig>,
    cache: Arc<Cache>,
    state: Mutex<State>,
    barrier_done: Notify,
    connecting: tokio::sync::Mutex<()>,
}

impl Tracker {
    pub fn new(config: Arc<TrackingConfig>) -> Arc<Self> {
        Arc::new(Tracker {
            cache: Arc::new(Cache::new(config.capacity)),
            config,
            state: Mutex::default(),
            barrier_done: Notify::new(),
            connecting: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// True once after each tracking connection is made: Redis may have gone away and come
    /// back since other connections to it last spoke, and they would not know it yet.
    pub fn take_connected(&self) -> bool {
        std::mem::take(&mut self.lock().connected)
    }

    /// The user JSON of the session if the access key holds `digest`; from the cache when a
    /// barrier shows it current, else read (and cached) on the tracking connection.
    pub async fn validate(
        self: &Arc<Self>,
        access_key: &str,
        user_key: &str,
        digest: &str,
    ) -> Result<Option<Bytes>, Bypass> {
        let (conn, generation) = self.connection().await.ok_or(Bypass)?;
        if let Some(found) = self.cache.find(access_key, user_key, generation) {
            let barrier = self.barrier(&conn, generation).await?;
            if let Some(user_json) = found.current(barrier) {
                crate::metrics::validation_cache("hit");
                return Ok((found.digest() == digest).then_some(user_json));
            }
        }
        crate::metrics::validation_cache("miss");
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
        let (conn, generation) = self.connection().await.ok_or(Bypass)?;
        let live = |fields: &SessionFields| fields.ends_ms > unix_ms(SystemTime::now());
        let found = self
            .cache
            .find_session(access_key, user_key, session_key, generation);
        if let Some(found) = found {
            let barrier = self.barrier(&conn, generation).await?;
            if let Some((user, fields, expires)) = found.current_session(barrier) {
                crate::metrics::validation_cache("hit");
                let answer = found.digest() == digest && live(fields);
                return Ok(answer.then(|| introspection(&user, fields.clone(), expires)));
            }
        }
        crate::metrics::validation_cache("miss");
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

    /// Waits for a PING sent after this call began to come back on `conn`; the generation
    /// it completed on. Requests arriving while one is in flight share the next.
    async fn barrier(&self, conn: &MultiplexedConnection, generation: u64) -> Result<u64, Bypass> {
        let ticket = {
            let mut s = self.lock();
            s.arrivals += 1;
            s.sent + 1
        };
        let mut waited = false;
        loop {
            let notified = self.barrier_done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let send = {
                let mut s = self.lock();
                if s.done >= ticket {
                    if waited {
                        crate::metrics::barrier_wait();
                    }
                    return Ok(s.done_generation);
                }
                if s.failed >= ticket {
                    return Err(Bypass);
                }
                let claim = !s.in_flight;
                s.in_flight = true;
                claim
            };
            if !send {
                waited = true;
                notified.await;
                continue;
            }
            let mut claim = Claim {
                tracker: self,
                settled: false,
            };
            // Requests this worker reads from its sockets before the PING goes out take
            // tickets it serves: let them come first.
            tokio::task::yield_now().await;
            let number = {
                let mut s = self.lock();
                s.sent += 1;
                crate::metrics::barrier_batch(s.arrivals - s.arrivals_at_send);
                s.arrivals_at_send = s.arrivals;
                s.sent
            };
            let mut conn = conn.clone();
            let pong = tokio::time::timeout(
                self.config.timeout,
                redis::cmd("PING").query_async::<String>(&mut conn),
            )
            .await;
            let ok = matches!(pong, Ok(Ok(_)));
            claim.settled = true;
            {
                let mut s = self.lock();
                s.in_flight = false;
                if ok {
                    s.done = number;
                    s.done_generation = generation;
                } else {
                    s.failed = number;
                }
            }
            if !ok {
                self.lost(generation);
            }
            self.barrier_done.notify_waiters();
        }
    }

    /// The tracking connection, made (with tracking on) if there is none; `None` while one
    /// cannot be had, so that requests read through.
    async fn connection(self: &Arc<Self>) -> Option<(MultiplexedConnection, u64)> {
        let epoch = self.config.source.epoch();
        {
            let mut s = self.lock();
            match &s.conn {
                Some((conn, generation, made_in)) if *made_in == epoch => {
                    return Some((conn.clone(), *generation));
                }
                // The master may have changed since: ask the sentinels again.
                Some(_) => {
                    s.conn = None;
                    drop(s);
                    self.cache.clear();
                }
                None if s.retry_at.is_some_and(|at| at > Instant::now()) => {
                    return None;
                }
                None => {}
            }
        }
        // One request connects; the others read through meanwhile.
        let _connecting = self.connecting.try_lock().ok()?;
        let generation = {
            let mut s = self.lock();
            if let Some((conn, generation, _)) = &s.conn {
                return Some((conn.clone(), *generation));
            }
            s.generation += 1;
            s.generation
        };
        match self.connect(generation).await {
            Err(Unproven) => {
                self.lock().retry_at = Some(Instant::now() + RETRY_UNPROVEN);
                None
            }
            Ok(Some(conn)) => {
                self.cache.clear();
                let mut s = self.lock();
                s.conn = Some((conn.clone(), generation, epoch));
                s.retry_at = None;
                s.connected = true;
                Some((conn, generation))
            }
            Ok(None) => {
                self.lock().retry_at = Some(Instant::now() + RETRY_AFTER);
                None
            }
        }
    }

    /// A new tracking connection whose invalidation path is proved, `Ok(None)` if none could
    /// be made now.
    async fn connect(
        self: &Arc<Self>,
        generation: u64,
    ) -> Result<Option<MultiplexedConnection>, Unproven> {
        let tracker = Arc::downgrade(self);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.timeout))
            .set_response_timeout(Some(self.config.timeout))
            .set_push_sender(move |push: PushInfo| -> Result<(), ()> {
                on_push(&tracker, generation, push);
                Ok(())
            });
        let connected = tokio::time::timeout(self.config.timeout, async {
            let mut conn = self.config.source.connect(&config).await?;
            // OPTIN: only reads announced with CLIENT CACHING YES are tracked, so reads that
            // do not fill the cache leave nothing in Redis's tracking table.
            redis::cmd("CLIENT")
                .arg("TRACKING")
                .arg("ON")
                .arg("OPTIN")
                .query_async::<()>(&mut conn)
                .await?;
            Ok::<_, redis::RedisError>(conn)
        })
        .await;
        let mut conn = match connected {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => {
                log::warn!("validation cache off until tracking reconnects: {e}");
                return Ok(None);
            }
            Err(_) => return Ok(None),
        };
        match tokio::time::timeout(self.config.timeout, self.prove(&mut conn)).await {
            Ok(Ok(true)) => Ok(Some(conn)),
            Ok(Ok(false)) => {
                log::warn!(
                    "validation cache off for {} s: Redis accepted CLIENT TRACKING but pushed no invalidation before a later PING's reply (a proxy, or a Redis-compatible server that does not track?); validations read Redis",
                    RETRY_UNPROVEN.as_secs()
                );
                crate::metrics::tracking_unproven();
                Err(Unproven)
            }
            Ok(Err(e)) => {
                log::warn!("validation cache off until tracking reconnects: {e}");
                Ok(None)
            }
            Err(_) => Ok(None),
        }
    }

    /// Proves the invalidation path of a new tracking connection before any hit trusts it:
    /// reads a fresh probe key on it (tracked), changes that key from another connection,
    /// then sends a `PING`. Redis queues the invalidation on this connection while running
    /// the change, so it must have been applied by the time the `PING`'s reply comes back.
    async fn prove(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<bool> {
        let key = format!(
            "{}{:032x}",
            self.config.probe_prefix,
            rand::random::<u128>()
        );
        self.lock().probe = Some((key.clone(), false));
        let mut read = redis::pipe();
        read.cmd("CLIENT")
            .arg("CACHING")
            .arg("YES")
            .ignore()
            .cmd("GET")
            .arg(&key);
        read.query_async::<(Option<String>,)>(conn).await?;
        let mut other = self
            .config
            .source
            .connect(&AsyncConnectionConfig::new().set_response_timeout(Some(self.config.timeout)))
            .await?;
        redis::cmd("SET")
            .arg(&key)
            .arg("1")
            .arg("PX")
            .arg(10_000)
            .query_async::<()>(&mut other)
            .await?;
        redis::cmd("PING").query_async::<String>(conn).await?;
        let seen = self.lock().probe.take().is_some_and(|(_, seen)| seen);
        let _ = redis::cmd("DEL")
            .arg(&key)
            .query_async::<i64>(&mut other)
            .await;
        Ok(seen)
    }

    /// True if `key` is the probe key being proved: its invalidation is noted.
    fn probed(&self, key: &str) -> bool {
        if !key.starts_with(&self.config.probe_prefix) {
            return false;
        }
        let mut s = self.lock();
        match &mut s.probe {
            Some((probe, seen)) if probe == key => {
                *seen = true;
                true
            }
            _ => false,
        }
    }

    /// The connection of `generation` is gone: its pushes may be lost, so the cache is too.
    fn lost(&self, generation: u64) {
        let mut s = self.lock();
        if s.conn.as_ref().is_some_and(|(_, g, _)| *g == generation) {
            s.conn = None;
            s.generation += 1;
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
