//! The tracking connection: made on demand, proved before it is trusted, and the lease
//! guard run on it.

use super::barrier::on_master;
use super::{Link, RETRY_AFTER, RETRY_UNPROVEN, Tracker, Unproven, on_push};
use crate::redis_io::Lua;
use crate::store::lua::LeaseArgs;
use redis::AsyncConnectionConfig;
use redis::PushInfo;
use redis::aio::MultiplexedConnection;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long the stored lease outlives the last connection that refreshed it.
const LEASE_KEY_TTL: Duration = Duration::from_secs(3600);

static LEASE_GUARD: std::sync::LazyLock<Lua> =
    std::sync::LazyLock::new(|| Lua::new(include_str!("../../lua/lease.lua")));

impl Tracker {
    /// The tracking connection, made (with tracking on) if there is none; `None` while one
    /// cannot be had, so that requests read through. Also whether the lease holds now, read
    /// before the caller looks at any entry.
    pub(super) async fn connection(self: &Arc<Self>) -> Option<Link> {
        let epoch = self.config.source.epoch();
        {
            let mut s = self.lock();
            match &s.conn {
                Some((_, generation, made_in)) if *made_in == epoch => {
                    let generation = *generation;
                    let leased = self.lease_now(&mut s, generation);
                    // A hit under the lease needs no connection: a clone would touch
                    // counters every worker shares, on every validation.
                    let conn = match (&s.conn, leased) {
                        (Some((conn, _, _)), false) => Some(conn.clone()),
                        _ => None,
                    };
                    return Some(Link {
                        conn,
                        generation,
                        leased,
                    });
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
        Box::pin(self.reconnect(epoch)).await
    }

    /// A new tracking connection in place of none; `None` if
    /// another request is making one or none could be made (requests read through).
    async fn reconnect(self: &Arc<Self>, epoch: u64) -> Option<Link> {
        // One request connects; the others read through meanwhile.
        let _connecting = self.connecting.try_lock().ok()?;
        let generation = {
            let mut s = self.lock();
            if let Some((conn, generation, _)) = &s.conn {
                return Some(Link {
                    conn: Some(conn.clone()),
                    generation: *generation,
                    leased: false,
                });
            }
            s.generation += 1;
            s.generation
        };
        match self.connect(generation).await {
            Err(Unproven) => {
                self.lock().retry_at = Some(Instant::now() + RETRY_UNPROVEN);
                None
            }
            Ok(Some((conn, leases))) => {
                self.cache.clear();
                let mut s = self.lock();
                s.conn = Some((conn.clone(), generation, epoch));
                s.retry_at = None;
                self.connected.store(true, Ordering::Relaxed);
                s.confirmed = None;
                s.leases = leases;
                Some(Link {
                    conn: Some(conn),
                    generation,
                    leased: false,
                })
            }
            Ok(None) => {
                self.lock().retry_at = Some(Instant::now() + RETRY_AFTER);
                None
            }
        }
    }

    /// A new tracking connection whose invalidation path is proved, with whether it may serve
    /// leases (see [`Tracker::lease_guard`]); `Ok(None)` if none could be made now.
    async fn connect(
        self: &Arc<Self>,
        generation: u64,
    ) -> Result<Option<(MultiplexedConnection, bool)>, Unproven> {
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
        let proved = tokio::time::timeout(self.config.timeout, async {
            let proved = self.prove(&mut conn).await?;
            let leases = proved && self.lease_guard(&mut conn).await?;
            Ok::<_, redis::RedisError>((proved, leases))
        })
        .await;
        match proved {
            Ok(Ok((true, leases))) => Ok(Some((conn, leases))),
            Ok(Ok((false, _))) => {
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
    /// then sends a `WAIT 0 0` (which also proves the node a master). Redis queues the
    /// invalidation on this connection while running the change, so it must have been
    /// applied by the time the reply comes back.
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
        on_master(conn).await?;
        let seen = self.lock().probe.take().is_some_and(|(_, seen)| seen);
        let _ = redis::cmd("DEL")
            .arg(&key)
            .query_async::<i64>(&mut other)
            .await;
        Ok(seen)
    }

    /// True if `key` is the probe key being proved: its invalidation is noted.
    pub(super) fn probed(&self, key: &str) -> bool {
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

    /// Whether this replica may serve leases: every replica on this Redis must run the same
    /// lease, since each waits out only its own. The first to connect writes its lease
    /// (`P:lease`, refreshed at each connection); a replica whose lease differs serves none
    /// and waits out the larger one (start-up refuses such a replica while Redis answers).
    async fn lease_guard(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<bool> {
        let mine = self.config.lease.as_millis() as u64;
        if mine == 0 {
            return Ok(false);
        }
        let cmd = LeaseArgs {
            lease: self.config.lease_key.clone(),
            lease_ms: mine,
            ttl_ms: LEASE_KEY_TTL.as_millis() as u64,
        }
        .call(&LEASE_GUARD);
        let stored: u64 = LEASE_GUARD.run(&cmd, conn).await?;
        self.config.lease_seen.fetch_max(stored, Ordering::Relaxed);
        if stored != mine {
            log::error!(
                "VALIDATION_LEASE_MS is {mine} here but {stored} on other replicas of this Redis: no read leases here, and revoking writes wait {stored} ms; run one value everywhere"
            );
        }
        Ok(stored == mine)
    }
}
