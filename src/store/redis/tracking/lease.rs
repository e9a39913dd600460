//! Read leases: a hit answers from memory, with no Redis round trip, while a heartbeat
//! confirmed within the lease; every write that ends or changes what a replica may hold waits
//! the lease out before it answers (commit wait, `RedisStore::commit_wait`).
//!
//! **Why no ended token is served.** Let B's revoking write be acknowledged at t1; B answers
//! at R ≥ t1 + LEASE + margin. A validation reaches replica A at Q > R. A answers from its
//! lease only if its latest confirmed `WAIT 0 0` was sent at S with Q − S < LEASE, so
//! S > Q − LEASE > t1: that command was queued after the write was acknowledged, so Redis
//! ran it after the write and queued the write's invalidation on A's connection before its
//! reply. A's driver applied the push before it handed out the reply, and `confirmed` was
//! set after that. So the entry was already dead when A looked (A reads `confirmed` first,
//! then the entry, in that order: `connection()` then `Cache::find`).
//!
//! **What it promises.** A validation that starts after a revoking request answered never
//! answers 200, on any replica. Validations overlapping the revoking request may disagree until
//! it answers.
//!
//! **What it assumes.** `Instant` (CLOCK_MONOTONIC) on every replica runs at nearly the same
//! rate (NTP slews it by at most 500 ppm; the margin covers it), and no replica's VM is
//! stopped for longer than the margin: a paused KVM guest's clock does not count the pause.
//! Operators who pause or snapshot VMs set `VALIDATION_LEASE_MS=0`. `sent` is taken before the
//! command is queued, `confirmed` belongs to one connection generation, and the heartbeat's
//! `WAIT 0 0` fails on a replica, so a connection left on a demoted master confirms nothing.
//!
//! **Heartbeat.** While validations use the cache, a task sends `WAIT 0 0` every LEASE / 4;
//! after [`IDLE`] without one it stops, and the next validation takes the barrier (which also
//! confirms the lease) and starts it again.

use super::barrier::on_master;
use super::{State, Tracker};
use redis::aio::MultiplexedConnection;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A heartbeat stops after this long without a validation.
const IDLE: Duration = Duration::from_secs(1);

/// The margin a commit wait adds to the lease: clock-rate drift and timer slack.
pub fn commit_wait(lease: Duration) -> Duration {
    if lease.is_zero() {
        return Duration::ZERO;
    }
    lease + Duration::from_millis(1) + lease / 50
}

impl Tracker {
    /// Whether a hit may answer at once on the connection of `generation`; also keeps its
    /// heartbeat going. Called under the state lock, before the caller looks at any entry.
    pub(super) fn lease_now(self: &Arc<Self>, s: &mut State, generation: u64) -> bool {
        let lease = self.config.lease;
        if lease.is_zero() || !s.leases {
            return false;
        }
        let now = Instant::now();
        s.active_at = Some(now);
        if s.beating != Some(generation)
            && let Some((conn, _, _)) = &s.conn
        {
            let conn = conn.clone();
            s.beating = Some(generation);
            tokio::spawn(self.clone().heartbeat(conn, generation));
        }
        s.confirmed
            .is_some_and(|c| now.saturating_duration_since(c) < lease)
    }

    /// Sends `WAIT 0 0` every LEASE / 4 while the connection of `generation` lives and
    /// validations use it; each reply confirms the lease from when it was sent.
    async fn heartbeat(self: Arc<Self>, mut conn: MultiplexedConnection, generation: u64) {
        let every = (self.config.lease / 4).max(Duration::from_millis(1));
        loop {
            tokio::time::sleep(every).await;
            {
                let mut s = self.lock();
                let live = s.conn.as_ref().is_some_and(|(_, g, _)| *g == generation);
                let active = s.active_at.is_some_and(|at| at.elapsed() < IDLE);
                if !live || !active {
                    if s.beating == Some(generation) {
                        s.beating = None;
                    }
                    return;
                }
            }
            // Taken before the command is queued (see the module's argument).
            let sent = Instant::now();
            let reply = tokio::time::timeout(self.config.timeout, on_master(&mut conn)).await;
            if matches!(reply, Ok(Ok(()))) {
                self.lock().confirm(generation, sent);
                crate::metrics::heartbeat();
            } else {
                {
                    let mut s = self.lock();
                    if s.beating == Some(generation) {
                        s.beating = None;
                    }
                }
                self.lost(generation);
                return;
            }
        }
    }
}
