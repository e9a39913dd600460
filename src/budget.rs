//! A budgeted secret check (a user's password, a client's secret), shared by the login and
//! client authentication.
//!
//! - **A place, waited for.** A check first reserves a place in its account's budget; while
//!   other checks of the account hold the rest of it, the check waits (up to [`PLACE_WAIT`])
//!   for one to end instead of being refused: pods sharing a service account log in at once
//!   when a deployment starts. Failures plus checks in flight still never exceed the budget.
//! - **Run to its end.** The reservation, the check and its settling run in a task of their
//!   own. A request that goes away mid-check (its client reset the connection) does not
//!   cancel it: the check finishes and is counted like any other, so no place is left held
//!   until it expires, and the abandonment is logged and counted
//!   (`token_server_checks_abandoned_total`).

use crate::config::Lockout;
use crate::domain::account::Account;
use crate::metrics::Verdict;
use crate::store::guard::Reservation;
use crate::store::{Store, StoreError};
use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a check waits for a place held by other checks of the same account.
pub const PLACE_WAIT: Duration = Duration::from_secs(2);

/// Told to a detached check: whether the request awaiting it went away.
#[derive(Clone, Default)]
pub struct Watch(Rc<Cell<bool>>);

impl Watch {
    pub fn went_away(&self) -> bool {
        self.0.get()
    }
}

/// Marks the watch when the awaiting request is dropped before the check answered.
struct Awaiting {
    watch: Watch,
    answered: bool,
}

impl Drop for Awaiting {
    fn drop(&mut self) {
        if !self.answered {
            self.watch.0.set(true);
        }
    }
}

/// Runs `check` in a task of its own on this worker, so that it runs to its end even if the
/// caller is dropped. `None` only if the task panicked.
pub async fn to_the_end<T, F, Fut>(check: F) -> Option<T>
where
    T: 'static,
    F: FnOnce(Watch) -> Fut,
    Fut: Future<Output = T> + 'static,
{
    let watch = Watch::default();
    let handle = actix_web::rt::spawn(check(watch.clone()));
    let mut awaiting = Awaiting {
        watch,
        answered: false,
    };
    let answer = handle.await.ok();
    awaiting.answered = true;
    answer
}

/// Reports a check that finished after its request went away: an audit line and a count by
/// `verdict` (`wrong`, `right`, `none`).
pub fn abandoned(account: &Account, verdict: Verdict) {
    log::info!(
        target: "audit",
        "check of {account} finished after its request went away: verdict {}",
        verdict.as_str()
    );
    crate::metrics::check_abandoned(verdict);
}

/// Reserves a place in `account`'s budget, waiting up to [`PLACE_WAIT`] while checks in
/// flight hold the rest of it. Stops waiting if the request goes away (then `Busy`).
pub async fn reserve(
    store: &Store,
    account: &Account,
    lockout: &Lockout,
    watch: &Watch,
) -> Result<Reservation, StoreError> {
    let deadline = Instant::now() + PLACE_WAIT;
    let mut pause = Duration::from_millis(10);
    loop {
        let answer = store.reserve_attempt(account, lockout).await?;
        let now = Instant::now();
        if answer != Reservation::Busy || now >= deadline || watch.went_away() {
            return Ok(answer);
        }
        // Jittered, growing pauses: the waiters of one account do not ask in step.
        let jitter = Duration::from_millis(rand::random_range(0..=pause.as_millis() as u64));
        let sleep = (pause / 2 + jitter).min(deadline - now);
        tokio::time::sleep(sleep).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}
