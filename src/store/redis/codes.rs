//! One-time codes on Redis: each step one script on the keys of one number (which share a
//! hash tag), so replicas never see half a send or a code redeemed twice. The rules are in
//! `store/codes.rs`; `store/memory/codes.rs` is the same in memory.

use crate::domain::code::{CodeDigest, CodeOwner};
use crate::redis_io::{Keys, Lua, RedisConn};
use crate::store::codes::{MAX_WRONG, SendLimits, Started};
use crate::store::{StoreError, ms};
use redis::Cmd;
use std::sync::LazyLock;
use std::time::Duration;

static SEND: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("../lua/code_send.lua")));
static REDEEM: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("../lua/code_redeem.lua")));
static DISCARD: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("../lua/code_discard.lua")));
static COUNT: LazyLock<Lua> = LazyLock::new(|| Lua::new(include_str!("../lua/count.lua")));

/// The arguments of `code_send.lua`, in its order.
struct SendArgs<'a> {
    digest: &'a CodeDigest,
    limits: SendLimits,
    /// Names this send in the number's sorted set of sends.
    id: String,
}

impl SendArgs<'_> {
    fn cmd(&self, keys: &Keys, owner: &CodeOwner) -> Cmd {
        let mut cmd = SEND.cmd(2);
        cmd.arg(keys.otp_sends(owner.tenant(), owner.number()))
            .arg(keys.otp_code(owner.tenant(), owner.number()))
            .arg(self.digest.as_str())
            .arg(ms(self.limits.ttl))
            .arg(self.limits.interval.as_millis() as u64)
            .arg(self.limits.per_hour)
            .arg(&self.id);
        cmd
    }
}

/// The arguments of `code_redeem.lua`, in its order.
struct RedeemArgs<'a> {
    presented: &'a CodeDigest,
    max_wrong: u32,
}

impl RedeemArgs<'_> {
    fn cmd(&self, keys: &Keys, owner: &CodeOwner) -> Cmd {
        let mut cmd = REDEEM.cmd(1);
        cmd.arg(keys.otp_code(owner.tenant(), owner.number()))
            .arg(self.presented.as_str())
            .arg(self.max_wrong);
        cmd
    }
}

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
        let args = SendArgs {
            digest,
            limits,
            id: format!("{:016x}", rand::random::<u64>()),
        };
        let cmd = args.cmd(&self.keys, owner);
        let (stored, wait): (i64, i64) = SEND.run(&cmd, &mut self.conn.get().await?).await?;
        Ok(if stored == 1 {
            Started::Stored
        } else {
            Started::Throttled(Duration::from_millis(wait.max(1) as u64))
        })
    }

    /// See `CodeStore::discard`.
    pub async fn discard(&self, owner: &CodeOwner, digest: &CodeDigest) -> Result<(), StoreError> {
        let mut cmd = DISCARD.cmd(1);
        cmd.arg(self.keys.otp_code(owner.tenant(), owner.number()))
            .arg(digest.as_str());
        let _: i64 = DISCARD.run(&cmd, &mut self.conn.get().await?).await?;
        Ok(())
    }

    /// See `CodeStore::redeem`.
    pub async fn redeem(
        &self,
        owner: &CodeOwner,
        presented: &CodeDigest,
    ) -> Result<bool, StoreError> {
        let args = RedeemArgs {
            presented,
            max_wrong: MAX_WRONG,
        };
        let cmd = args.cmd(&self.keys, owner);
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
        let mut cmd = COUNT.cmd(1);
        cmd.arg(self.keys.otp_address_sends(address))
            .arg(ms(Duration::from_secs(60)));
        let (n, left): (u64, u64) = COUNT.run(&cmd, &mut self.conn.get().await?).await?;
        Ok((n > u64::from(limit)).then(|| Duration::from_millis(left)))
    }
}
