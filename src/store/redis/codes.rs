//! One-time codes on Redis: each step one script on the keys of one number (which share a
//! hash tag), so replicas never see half a send or a code redeemed twice. The rules are in
//! `store/codes.rs`; `store/memory/codes.rs` is the same in memory.

use crate::domain::code::{CodeDigest, CodeOwner};
use crate::redis_io::{Keys, Lua, RedisConn};
use crate::store::codes::{MAX_WRONG, SendLimits, Started};
use crate::store::lua::{CodeDiscardArgs, CodeRedeemArgs, CodeSendArgs, CountArgs};
use crate::store::{StoreError, ms};
use std::sync::LazyLock;
use std::time::Duration;

static SEND: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("../lua/code_send.lua")));
static REDEEM: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("../lua/code_redeem.lua")));
static DISCARD: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("../lua/code_discard.lua")));
static COUNT: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("../lua/count.lua")));

/// Codes on Redis. Clones share the connection.
#[derive(Clone)]
pub struct RedisCodes {
    conn: RedisConn,
    keys: Keys,
}

impl RedisCodes {
    /// Codes on `conn`, under the prefix of `keys`.
    pub fn new(conn: RedisConn, keys: Keys) -> Self {
        RedisCodes { conn, keys }
    }

    /// See `CodeStore::start`.
    pub async fn start(
        &self,
        owner: &CodeOwner,
        digest: &CodeDigest,
        limits: SendLimits,
    ) -> Result<Started, StoreError> {
        let cmd = CodeSendArgs {
            sends: self.keys.otp_sends(owner.tenant(), owner.number()),
            code: self.keys.otp_code(owner.tenant(), owner.number()),
            digest: digest.as_str(),
            ttl_ms: ms(limits.ttl),
            interval_ms: limits.interval.as_millis() as u64,
            per_hour: limits.per_hour,
            send_id: format!("{:016x}", rand::random::<u64>()),
        }
        .call(&SEND);
        let (stored, wait): (i64, i64) = SEND.run(&cmd, &mut self.conn.get().await?).await?;
        Ok(if stored == 1 {
            Started::Stored
        } else {
            Started::Throttled(Duration::from_millis(wait.max(1) as u64))
        })
    }

    /// See `CodeStore::discard`.
    pub async fn discard(&self, owner: &CodeOwner, digest: &CodeDigest) -> Result<(), StoreError> {
        let cmd = CodeDiscardArgs {
            code: self.keys.otp_code(owner.tenant(), owner.number()),
            digest: digest.as_str(),
        }
        .call(&DISCARD);
        let _: i64 = DISCARD.run(&cmd, &mut self.conn.get().await?).await?;
        Ok(())
    }

    /// See `CodeStore::redeem`.
    pub async fn redeem(
        &self,
        owner: &CodeOwner,
        presented: &CodeDigest,
    ) -> Result<bool, StoreError> {
        let cmd = CodeRedeemArgs {
            code: self.keys.otp_code(owner.tenant(), owner.number()),
            presented: presented.as_str(),
            max_wrong: MAX_WRONG,
        }
        .call(&REDEEM);
        let matched: i64 = REDEEM.run(&cmd, &mut self.conn.get().await?).await?;
        Ok(matched == 1)
    }

    /// See `CodeStore::hit_address`.
    pub async fn hit_address(
        &self,
        address: &str,
        limit: u32,
    ) -> Result<Option<Duration>, StoreError> {
        if limit == 0 {
            return Ok(None);
        }
        let cmd = CountArgs {
            counter: self.keys.otp_address_sends(address),
            window_ms: ms(Duration::from_secs(60)),
        }
        .call(&COUNT);
        let (n, left): (u64, u64) = COUNT.run(&cmd, &mut self.conn.get().await?).await?;
        Ok((n > u64::from(limit)).then(|| Duration::from_millis(left)))
    }
}
