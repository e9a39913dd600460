//! Login guards shared by all replicas: a per-address attempt counter and the account lockout.
//! Every password check first reserves a place in its account's budget: failures in the period
//! plus checks in flight never exceed it, so parallel guesses cannot run more wrong checks than
//! the budget allows, and the failure that spends it locks the account. A reservation is held
//! for at most [`HOLD`], so one lost with its request frees itself. Every key has a TTL.

use super::lua::{CountArgs, FailArgs, ReserveArgs, SettleArgs};
use super::{StoreError, ms};
use crate::domain::account::Account;
use crate::redis_io::{Keys, Lua, RedisConn};
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// One reserved check, to be settled as failed, succeeded or released.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

impl Ticket {
    /// A new random ticket.
    pub fn new() -> Self {
        Ticket(rand::random())
    }

    fn id(&self) -> String {
        format!("{:016x}", self.0)
    }
}

impl Default for Ticket {
    fn default() -> Self {
        Self::new()
    }
}

/// The answer to a reservation, given before any password is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reservation {
    Granted(Ticket),
    /// The account is locked, or its failures have spent the budget.
    Locked,
    /// Checks in flight hold the rest of the budget: retry when they end.
    Busy,
}

/// The longest a reservation is held if its check never settles it.
pub const HOLD: Duration = Duration::from_secs(30);

static COUNT: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("lua/count.lua")));
static RESERVE: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("lua/reserve.lua")));
static FAIL: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("lua/fail.lua")));
static SETTLE: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("lua/settle.lua")));

/// Redis side: one script or command each, on one key or one hash-tagged pair.
pub struct RedisGuard<'a> {
    pub conn: RedisConn,
    pub keys: &'a Keys,
}

impl RedisGuard<'_> {
    /// Counts an attempt from `address`; past `limit` this minute, how long until the window ends.
    pub async fn hit_address(
        &mut self,
        address: &str,
        limit: u32,
    ) -> Result<Option<Duration>, StoreError> {
        let cmd = CountArgs {
            counter: self.keys.ip_attempts(address),
            window_ms: ms(Duration::from_secs(60)),
        }
        .call(&COUNT);
        let (n, left): (u64, u64) = COUNT.run(&cmd, &mut self.conn.get().await?).await?;
        Ok((n > u64::from(limit)).then(|| Duration::from_millis(left)))
    }

    /// Reserves one check of `a`'s budget of `max`, held for at most [`HOLD`] unless settled.
    pub async fn reserve(&mut self, a: &Account, max: u32) -> Result<Reservation, StoreError> {
        let ticket = Ticket::new();
        let cmd = ReserveArgs {
            failures: self.keys.login_failures(a),
            lock: self.keys.account_lock(a),
            checks: self.keys.account_checks(a),
            max_attempts: max,
            ticket: ticket.id(),
            hold_ms: ms(HOLD),
        }
        .call(&RESERVE);
        let answer: i64 = RESERVE.run(&cmd, &mut self.conn.get().await?).await?;
        Ok(match answer {
            1 => Reservation::Granted(ticket),
            0 => Reservation::Locked,
            _ => Reservation::Busy,
        })
    }

    /// Settles `ticket` as a wrong password; true if that spent the budget and locked `a`.
    pub async fn fail(
        &mut self,
        a: &Account,
        ticket: Ticket,
        max: u32,
        period: Duration,
        cool_down: Duration,
    ) -> Result<bool, StoreError> {
        let cmd = FailArgs {
            failures: self.keys.login_failures(a),
            lock: self.keys.account_lock(a),
            checks: self.keys.account_checks(a),
            ticket: ticket.id(),
            max_attempts: max,
            period_ms: ms(period),
            cool_down_ms: ms(cool_down),
        }
        .call(&FAIL);
        let locked: i64 = FAIL.run(&cmd, &mut self.conn.get().await?).await?;
        Ok(locked == 1)
    }

    /// Gives the ticket's place back; `correct` also starts the count of failures over.
    pub async fn settle(
        &mut self,
        a: &Account,
        ticket: Ticket,
        correct: bool,
    ) -> Result<(), StoreError> {
        let cmd = SettleArgs {
            failures: self.keys.login_failures(a),
            checks: self.keys.account_checks(a),
            ticket: ticket.id(),
            correct: if correct { "1" } else { "0" },
        }
        .call(&SETTLE);
        let _: i64 = SETTLE.run(&cmd, &mut self.conn.get().await?).await?;
        Ok(())
    }
}

#[derive(Default)]
struct Counters {
    addresses: HashMap<String, (u64, Instant)>,
    failures: HashMap<Account, (u64, Instant)>,
    in_flight: HashMap<Account, HashMap<Ticket, Instant>>,
    locks: HashMap<Account, Instant>,
}

/// The embedded store's guards, with the same windows and the same rules.
#[derive(Clone, Default)]
pub struct MemoryGuard {
    counters: Arc<Mutex<Counters>>,
}

fn bump<K: std::hash::Hash + Eq + Clone>(
    map: &mut HashMap<K, (u64, Instant)>,
    key: &K,
    window: Duration,
    now: Instant,
) -> (u64, Instant) {
    let entry = map.entry(key.clone()).or_insert((0, now + window));
    if entry.1 <= now {
        *entry = (0, now + window);
    }
    entry.0 += 1;
    *entry
}

impl MemoryGuard {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts an attempt from `address`; past `limit` this minute, how long until the window ends.
    pub fn hit_address(&self, address: &str, limit: u32) -> Option<Duration> {
        let now = Instant::now();
        let (n, until) = bump(
            &mut self.lock().addresses,
            &address.to_string(),
            Duration::from_secs(60),
            now,
        );
        (n > u64::from(limit)).then(|| until - now)
    }

    /// Reserves one check of `a`'s budget of `max`, held for at most [`HOLD`] unless settled.
    pub fn reserve(&self, a: &Account, max: u32) -> Reservation {
        let now = Instant::now();
        let mut c = self.lock();
        if c.locks.get(a).is_some_and(|until| *until > now) {
            return Reservation::Locked;
        }
        let failed = c
            .failures
            .get(a)
            .filter(|(_, until)| *until > now)
            .map_or(0, |(n, _)| *n);
        if failed >= u64::from(max) {
            return Reservation::Locked;
        }
        let held = c.in_flight.entry(a.clone()).or_default();
        held.retain(|_, until| *until > now);
        if failed + held.len() as u64 >= u64::from(max) {
            return Reservation::Busy;
        }
        let ticket = Ticket::new();
        held.insert(ticket, now + HOLD);
        Reservation::Granted(ticket)
    }

    /// Settles `ticket` as a wrong password; true if that spent the budget and locked `a`.
    pub fn fail(
        &self,
        a: &Account,
        ticket: Ticket,
        max: u32,
        period: Duration,
        cool_down: Duration,
    ) -> bool {
        let now = Instant::now();
        let mut c = self.lock();
        Self::release(&mut c, a, ticket);
        let (n, _) = bump(&mut c.failures, a, period, now);
        if n < u64::from(max) {
            return false;
        }
        c.failures.remove(a);
        c.locks.insert(a.clone(), now + cool_down);
        true
    }

    /// Gives the ticket's place back; `correct` also starts the count of failures over.
    pub fn settle(&self, a: &Account, ticket: Ticket, correct: bool) {
        let mut c = self.lock();
        Self::release(&mut c, a, ticket);
        if correct {
            c.failures.remove(a);
        }
    }

    fn release(c: &mut Counters, a: &Account, ticket: Ticket) {
        if let Some(held) = c.in_flight.get_mut(a) {
            held.remove(&ticket);
            if held.is_empty() {
                c.in_flight.remove(a);
            }
        }
    }

    /// Drops expired windows and locks.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut c = self.lock();
        c.addresses.retain(|_, (_, until)| *until > now);
        c.failures.retain(|_, (_, until)| *until > now);
        c.in_flight.retain(|_, held| {
            held.retain(|_, until| *until > now);
            !held.is_empty()
        });
        c.locks.retain(|_, until| *until > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_reservations_never_exceed_the_budget() {
        let guard = MemoryGuard::default();
        let a = Account::User("x".into());
        let minute = Duration::from_secs(60);
        let answers: Vec<Reservation> = (0..12).map(|_| guard.reserve(&a, 5)).collect();
        let tickets: Vec<Ticket> = answers
            .iter()
            .filter_map(|r| match r {
                Reservation::Granted(t) => Some(*t),
                _ => None,
            })
            .collect();
        assert_eq!(tickets.len(), 5);
        assert!(answers[5..].iter().all(|r| *r == Reservation::Busy));
        // A correct password gives its place back; the failure that spends the budget locks.
        guard.settle(&a, tickets[0], true);
        assert!(matches!(guard.reserve(&a, 5), Reservation::Granted(_)));
        for t in &tickets[1..] {
            assert!(!guard.fail(&a, *t, 5, minute, minute));
        }
        assert_eq!(guard.reserve(&a, 5), Reservation::Busy);
    }
}
