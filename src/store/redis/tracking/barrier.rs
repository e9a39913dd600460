//! The barrier: a `WAIT 0 0` sent on the tracking connection after a request arrived, whose
//! reply has come back. Redis queues an invalidation on this connection while it runs the
//! write that causes it, and the connection's driver applies pushes in stream order before
//! it hands out a later reply (redis 1.8, `aio::multiplexed_connection`: a push with no reply
//! is sent to the push sender inline; the test `a_tracking_connection_that_gets_no_
//! invalidations_serves_no_hit` and the lagging-proxy tests pin it). So once the reply is
//! here, every invalidation Redis had queued before it ran has been applied.
//!
//! `WAIT 0 0` rather than `PING`: it answers at once on a master and fails on a replica, and a
//! tracking connection left on a demoted master (Redis does not close it) must prove nothing.
//!
//! Tickets: a request takes ticket `sent + 1` and is served by the first command numbered at
//! or above it; requests arriving while one is in flight share the next, so under load about
//! one command goes per round trip.

use super::{Bypass, Tracker};
use redis::aio::MultiplexedConnection;
use std::time::Instant;

/// The barrier command a request claimed to send. A request goes away mid-await when its
/// client resets the connection: the claim is then handed back, or every later barrier on
/// this worker would wait for a command no one awaits.
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

impl Tracker {
    /// Waits for a `WAIT 0 0` sent after this call began to come back on `conn`; the
    /// generation it completed on. Requests arriving while one is in flight share the next.
    /// Its send time also confirms the lease.
    pub(super) async fn barrier(
        &self,
        conn: &MultiplexedConnection,
        generation: u64,
    ) -> Result<u64, Bypass> {
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
            // Requests this worker reads from its sockets before the command goes out take
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
            // Taken before the command is queued: the lease it confirms starts no later than
            // the moment Redis runs it.
            let sent = Instant::now();
            let reply = tokio::time::timeout(self.config.timeout, on_master(&mut conn)).await;
            let ok = matches!(reply, Ok(Ok(())));
            claim.settled = true;
            {
                let mut s = self.lock();
                s.in_flight = false;
                if ok {
                    s.done = number;
                    s.done_generation = generation;
                    s.confirm(generation, sent);
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
}

/// `WAIT 0 0`: answers at once on a master, fails on a replica.
pub(super) async fn on_master(conn: &mut MultiplexedConnection) -> redis::RedisResult<()> {
    redis::cmd("WAIT")
        .arg(0)
        .arg(0)
        .query_async::<i64>(conn)
        .await
        .map(|_| ())
}
