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
        self.barrier_with(generation, || {
            let mut conn = conn.clone();
            async move { on_master(&mut conn).await }
        })
        .await
    }

    /// [`Self::barrier`], with `send` making and sending the command.
    async fn barrier_with<F, Fut>(&self, generation: u64, send: F) -> Result<u64, Bypass>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<()>>,
    {
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
            let ours = {
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
            if !ours {
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
            // Taken before the command is queued: the lease it confirms starts no later than
            // the moment Redis runs it.
            let sent = Instant::now();
            let reply = tokio::time::timeout(self.config.timeout, send()).await;
            claim.settled = true;
            self.settle(number, generation, sent, matches!(reply, Ok(Ok(()))));
            self.barrier_done.notify_waiters();
        }
    }
}

impl Tracker {
    /// Records how barrier command `number`, sent at `sent` on `generation`, ended: done (and
    /// the lease confirmed) or failed (and the connection given up).
    fn settle(&self, number: u64, generation: u64, sent: Instant, ok: bool) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis_io::TrackingSource;
    use crate::store::redis::tracking::TrackingConfig;
    use std::cell::RefCell;
    use std::rc::Rc;
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::oneshot;

    /// Commands the barrier sent, each answered when the test says.
    type Sent = Rc<RefCell<Vec<oneshot::Sender<redis::RedisResult<()>>>>>;

    fn tracker() -> Arc<Tracker> {
        let client = redis::Client::open("redis://127.0.0.1:1").unwrap();
        Tracker::new(Arc::new(TrackingConfig {
            source: TrackingSource::Node(Box::new(client)),
            capacity: 8,
            timeout: Duration::from_secs(60),
            probe_prefix: "t:probe:".into(),
            lease: Duration::ZERO,
            lease_key: "t:lease".into(),
            lease_seen: Arc::default(),
        }))
    }

    /// A request's barrier whose commands go to `sent`.
    fn request(t: &Arc<Tracker>, sent: &Sent) -> tokio::task::JoinHandle<Result<u64, Bypass>> {
        let (t, sent) = (t.clone(), sent.clone());
        tokio::task::spawn_local(async move {
            t.barrier_with(7, || {
                let (tx, rx) = oneshot::channel();
                sent.borrow_mut().push(tx);
                async move { rx.await.unwrap_or(Ok(())) }
            })
            .await
        })
    }

    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    fn answer(sent: &Sent, n: usize, reply: redis::RedisResult<()>) {
        let tx = std::mem::replace(&mut sent.borrow_mut()[n], oneshot::channel().0);
        let _ = tx.send(reply);
    }

    fn local<F: std::future::Future<Output = ()>>(test: F) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let bounded = async { tokio::time::timeout(Duration::from_secs(5), test).await };
        let done = tokio::task::LocalSet::new().block_on(&rt, bounded);
        assert!(done.is_ok(), "a barrier never answered");
    }

    #[test]
    fn requests_arriving_while_a_command_is_in_flight_share_the_next() {
        local(async {
            let (t, sent) = (tracker(), Sent::default());
            let first = request(&t, &sent);
            settle().await;
            assert_eq!(sent.borrow().len(), 1);
            // Sent before these arrived: it cannot serve them.
            let later = [request(&t, &sent), request(&t, &sent)];
            settle().await;
            assert_eq!(sent.borrow().len(), 1, "one command in flight at a time");
            answer(&sent, 0, Ok(()));
            settle().await;
            assert!(matches!(first.await, Ok(Ok(7))));
            assert_eq!(
                sent.borrow().len(),
                2,
                "the two later ones share one command"
            );
            answer(&sent, 1, Ok(()));
            for r in later {
                assert!(matches!(r.await, Ok(Ok(7))));
            }
            assert_eq!(sent.borrow().len(), 2);
        });
    }

    #[test]
    fn a_request_dropped_with_its_claim_hands_it_on() {
        local(async {
            let (t, sent) = (tracker(), Sent::default());
            let first = request(&t, &sent);
            settle().await;
            let waiting = request(&t, &sent);
            settle().await;
            // Its client went away: the request is dropped mid-await.
            first.abort();
            settle().await;
            assert_eq!(sent.borrow().len(), 2, "the waiting request sent its own");
            answer(&sent, 1, Ok(()));
            assert!(matches!(waiting.await, Ok(Ok(7))));
        });
    }

    #[test]
    fn a_failed_command_fails_the_requests_it_was_to_serve() {
        local(async {
            let (t, sent) = (tracker(), Sent::default());
            let first = request(&t, &sent);
            settle().await;
            let later = request(&t, &sent);
            settle().await;
            let err = redis::RedisError::from((redis::ErrorKind::Io, "gone"));
            answer(&sent, 0, Err(err));
            assert!(matches!(first.await, Ok(Err(Bypass))));
            // The later one was not served by it: it sends its own.
            settle().await;
            assert_eq!(sent.borrow().len(), 2);
            answer(&sent, 1, Ok(()));
            assert!(matches!(later.await, Ok(Ok(7))));
        });
    }
}
