//! One-time codes in this process, for the embedded store: `lua/code_send.lua`,
//! `lua/code_redeem.lua` and `lua/code_discard.lua` in the same sections, each step under one
//! mutex. The rules are in `store/codes.rs`. Expired entries are dropped when touched and by
//! a periodic sweep, so memory stays bounded.

use crate::domain::code::{CodeDigest, CodeOwner};
use crate::store::codes::{MAX_WRONG, SendLimits, Started};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);
const MINUTE: Duration = Duration::from_secs(60);

struct Live {
    digest: CodeDigest,
    wrong: u32,
    expires: Instant,
}

#[derive(Default)]
struct State {
    codes: HashMap<CodeOwner, Live>,
    /// Each number's sends of the last hour, oldest first.
    sends: HashMap<CodeOwner, VecDeque<Instant>>,
    /// Sends per client address: count and end of the window.
    addresses: HashMap<String, (u64, Instant)>,
}

/// Codes in this process's memory. Clones share them.
#[derive(Clone, Default)]
pub struct MemoryCodes {
    state: Arc<Mutex<State>>,
}

impl MemoryCodes {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// See `CodeStore::start`.
    pub fn start(&self, owner: &CodeOwner, digest: &CodeDigest, limits: SendLimits) -> Started {
        let now = Instant::now();
        let mut state = self.lock();

        // Throttle: the gap since the last send, and the sends of the last hour.
        let sends = state.sends.entry(owner.clone()).or_default();
        sends.retain(|at| *at + HOUR > now);
        let mut wait = Duration::ZERO;
        if let Some(last) = sends.back() {
            wait = wait.max((*last + limits.interval).saturating_duration_since(now));
        }
        if sends.len() >= limits.per_hour as usize
            && let Some(first) = sends.front()
        {
            wait = wait.max((*first + HOUR).saturating_duration_since(now));
        }
        if !wait.is_zero() {
            return Started::Throttled(wait);
        }

        // The send counts, and its code replaces the number's live one.
        sends.push_back(now);
        state.codes.insert(
            owner.clone(),
            Live {
                digest: digest.clone(),
                wrong: 0,
                expires: now + limits.ttl,
            },
        );
        Started::Stored
    }

    /// See `CodeStore::redeem`.
    pub fn redeem(&self, owner: &CodeOwner, presented: &CodeDigest) -> bool {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(live) = state.codes.get_mut(owner) else {
            return false;
        };
        if live.expires <= now {
            state.codes.remove(owner);
            return false;
        }

        if live.digest.matches(presented) {
            state.codes.remove(owner);
            return true;
        }

        live.wrong += 1;
        if live.wrong >= MAX_WRONG {
            state.codes.remove(owner);
        }
        false
    }

    /// See `CodeStore::discard`.
    pub fn discard(&self, owner: &CodeOwner, digest: &CodeDigest) {
        let mut state = self.lock();
        if state
            .codes
            .get(owner)
            .is_some_and(|live| live.digest.matches(digest))
        {
            state.codes.remove(owner);
        }
    }

    /// See `CodeStore::hit_address`.
    pub fn hit_address(&self, address: &str, limit: u32) -> Option<Duration> {
        if limit == 0 {
            return None;
        }
        let now = Instant::now();
        let mut state = self.lock();
        let entry = state
            .addresses
            .entry(address.to_string())
            .or_insert((0, now + MINUTE));
        if entry.1 <= now {
            *entry = (0, now + MINUTE);
        }
        entry.0 += 1;
        (entry.0 > u64::from(limit)).then(|| entry.1 - now)
    }

    /// Drops expired codes, send histories and address windows.
    fn sweep(&self) {
        let now = Instant::now();
        let mut state = self.lock();
        state.codes.retain(|_, live| live.expires > now);
        state.sends.retain(|_, sends| {
            sends.retain(|at| *at + HOUR > now);
            !sends.is_empty()
        });
        state.addresses.retain(|_, (_, until)| *until > now);
    }

    /// Sweeps every `period` for as long as the codes are in use.
    pub fn spawn_sweeper(&self, period: Duration) {
        let state = Arc::downgrade(&self.state);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                let Some(state) = state.upgrade() else { break };
                MemoryCodes { state }.sweep();
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::code::CodeKey;

    const LIMITS: SendLimits = SendLimits {
        ttl: Duration::from_secs(300),
        interval: Duration::ZERO,
        per_hour: 100,
    };

    #[test]
    fn a_code_dies_after_its_wrong_tries_and_a_send_replaces_it() {
        let codes = MemoryCodes::default();
        let key = CodeKey::new(b"k");
        let owner = CodeOwner::new("9876543210", "pb");
        let right = key.digest(&owner, "111111");
        assert_eq!(codes.start(&owner, &right, LIMITS), Started::Stored);
        for _ in 0..MAX_WRONG {
            assert!(!codes.redeem(&owner, &key.digest(&owner, "222222")));
        }
        assert!(
            !codes.redeem(&owner, &right),
            "dead after {MAX_WRONG} wrong tries"
        );
        assert_eq!(codes.start(&owner, &right, LIMITS), Started::Stored);
        let newer = key.digest(&owner, "333333");
        assert_eq!(codes.start(&owner, &newer, LIMITS), Started::Stored);
        assert!(!codes.redeem(&owner, &right), "replaced");
        assert!(codes.redeem(&owner, &newer));
        assert!(!codes.redeem(&owner, &newer), "single use");
    }
}
