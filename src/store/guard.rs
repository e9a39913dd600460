//! Login guards shared by all replicas: a per-address attempt counter and account lockout
//! after repeated wrong passwords. Counters are fixed windows that start at the first hit;
//! every key has a TTL.

use super::StoreError;
use super::keys::Keys;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The account a login names: the user's tenant and name (as given, for unknown users, so
/// that lockout does not reveal which users exist).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Account {
    pub tenant: String,
    pub user_name: String,
}

fn ms(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

/// Redis side: one script or command each, on one key or one hash-tagged pair.
pub struct RedisGuard<'a> {
    pub conn: super::conn::RedisConn,
    pub keys: &'a Keys,
}

impl RedisGuard<'_> {
    async fn count(&mut self, key: String, window: Duration) -> Result<(u64, u64), StoreError> {
        let script = redis::Script::new(include_str!("lua/count.lua"));
        let mut conn = self.conn.get().await?;
        Ok(script
            .key(key)
            .arg(ms(window))
            .invoke_async(&mut conn)
            .await?)
    }

    pub async fn hit_address(
        &mut self,
        address: &str,
        limit: u32,
    ) -> Result<Option<Duration>, StoreError> {
        let (n, left) = self
            .count(self.keys.ip_attempts(address), Duration::from_secs(60))
            .await?;
        Ok((n > u64::from(limit)).then(|| Duration::from_millis(left)))
    }

    pub async fn locked_for(&mut self, a: &Account) -> Result<Option<Duration>, StoreError> {
        let left: i64 = redis::cmd("PTTL")
            .arg(self.keys.account_lock(&a.tenant, &a.user_name))
            .query_async(&mut self.conn.get().await?)
            .await?;
        Ok((left > 0).then(|| Duration::from_millis(left as u64)))
    }

    pub async fn fail(
        &mut self,
        a: &Account,
        max: u32,
        period: Duration,
        cool_down: Duration,
    ) -> Result<bool, StoreError> {
        let script = redis::Script::new(include_str!("lua/fail.lua"));
        let mut conn = self.conn.get().await?;
        let locked: i64 = script
            .key(self.keys.login_failures(&a.tenant, &a.user_name))
            .key(self.keys.account_lock(&a.tenant, &a.user_name))
            .arg(max)
            .arg(ms(period))
            .arg(ms(cool_down))
            .invoke_async(&mut conn)
            .await?;
        Ok(locked == 1)
    }

    pub async fn succeed(&mut self, a: &Account) -> Result<(), StoreError> {
        let _: () = redis::cmd("DEL")
            .arg(self.keys.login_failures(&a.tenant, &a.user_name))
            .query_async(&mut self.conn.get().await?)
            .await?;
        Ok(())
    }
}

#[derive(Default)]
struct Counters {
    addresses: HashMap<String, (u64, Instant)>,
    failures: HashMap<Account, (u64, Instant)>,
    locks: HashMap<Account, Instant>,
}

/// The embedded store's guards, with the same windows.
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

    pub fn locked_for(&self, a: &Account) -> Option<Duration> {
        let now = Instant::now();
        self.lock()
            .locks
            .get(a)
            .filter(|until| **until > now)
            .map(|until| *until - now)
    }

    pub fn fail(&self, a: &Account, max: u32, period: Duration, cool_down: Duration) -> bool {
        let now = Instant::now();
        let mut c = self.lock();
        let (n, _) = bump(&mut c.failures, a, period, now);
        if n < u64::from(max) {
            return false;
        }
        c.failures.remove(a);
        c.locks.insert(a.clone(), now + cool_down);
        true
    }

    pub fn succeed(&self, a: &Account) {
        self.lock().failures.remove(a);
    }

    /// Drops expired windows and locks.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut c = self.lock();
        c.addresses.retain(|_, (_, until)| *until > now);
        c.failures.retain(|_, (_, until)| *until > now);
        c.locks.retain(|_, until| *until > now);
    }
}
