//! The one-time codes of the password grant, on Redis (`redis/codes.rs` with
//! `lua/code_*.lua`) or in this process (`memory/codes.rs`), under the same rules:
//!
//! - only a code's keyed HMAC is stored, with the code's TTL;
//! - one live code per number: a send replaces it, and its count of wrong tries;
//! - single use: the check that matches ends the code in the same atomic step;
//! - [`MAX_WRONG`] wrong tries end a code, so it is dead even for the right digits;
//! - sends are throttled per number (a least interval, and a count per hour) and per client
//!   address (a count per minute).

use super::memory::codes::MemoryCodes;
use super::redis::codes::RedisCodes;
use super::{StoreError, timed};
use crate::domain::code::{CodeDigest, CodeOwner};
use crate::metrics::StoreOp;
use crate::redis_io::{Keys, RedisConn};
use std::time::Duration;

/// Wrong tries that end a code.
pub const MAX_WRONG: u32 = 3;

/// How long a code lives and how often one number may be sent one.
#[derive(Clone, Copy, Debug)]
pub struct SendLimits {
    pub ttl: Duration,
    /// Least time between two sends to one number.
    pub interval: Duration,
    /// Sends to one number per hour.
    pub per_hour: u32,
}

/// The answer to starting a code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Started {
    /// The code is live, in place of the number's previous one.
    Stored,
    /// The number's sends are throttled for this long; nothing changed.
    Throttled(Duration),
}

/// Where codes live: Redis, shared by every replica, or this process's memory.
#[derive(Clone)]
pub enum CodeStore {
    Redis(RedisCodes),
    Memory(MemoryCodes),
}

impl CodeStore {
    /// Codes on `conn`, under the prefix of `keys`.
    pub fn redis(conn: RedisConn, keys: Keys) -> Self {
        CodeStore::Redis(RedisCodes::new(conn, keys))
    }

    /// Codes in this process, swept every `period`.
    pub fn memory(period: Duration) -> Self {
        let codes = MemoryCodes::default();
        codes.spawn_sweeper(period);
        CodeStore::Memory(codes)
    }

    /// Makes `digest` the live code of `owner`, unless the owner's sends are throttled.
    pub async fn start(
        &self,
        owner: &CodeOwner,
        digest: &CodeDigest,
        limits: SendLimits,
    ) -> Result<Started, StoreError> {
        timed(StoreOp::OtpSend, async {
            match self {
                CodeStore::Redis(r) => r.start(owner, digest, limits).await,
                CodeStore::Memory(m) => Ok(m.start(owner, digest, limits)),
            }
        })
        .await
    }

    /// Ends `owner`'s code if it is still `digest` (its delivery failed).
    pub async fn discard(&self, owner: &CodeOwner, digest: &CodeDigest) -> Result<(), StoreError> {
        timed(StoreOp::OtpDiscard, async {
            match self {
                CodeStore::Redis(r) => r.discard(owner, digest).await,
                CodeStore::Memory(m) => {
                    m.discard(owner, digest);
                    Ok(())
                }
            }
        })
        .await
    }

    /// True if `presented` is `owner`'s live code, which it then ends; otherwise a wrong try
    /// counts against the live code, if there is one.
    pub async fn redeem(
        &self,
        owner: &CodeOwner,
        presented: &CodeDigest,
    ) -> Result<bool, StoreError> {
        timed(StoreOp::OtpRedeem, async {
            match self {
                CodeStore::Redis(r) => r.redeem(owner, presented).await,
                CodeStore::Memory(m) => Ok(m.redeem(owner, presented)),
            }
        })
        .await
    }

    /// Counts a send from `address`; past `limit` this minute, how long until the window ends.
    pub async fn hit_address(
        &self,
        address: &str,
        limit: u32,
    ) -> Result<Option<Duration>, StoreError> {
        timed(StoreOp::OtpThrottle, async {
            match self {
                CodeStore::Redis(r) => r.hit_address(address, limit).await,
                CodeStore::Memory(m) => Ok(m.hit_address(address, limit)),
            }
        })
        .await
    }
}
