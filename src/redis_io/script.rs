//! The one way scripts are called: `EVALSHA` written straight into one command, loading the
//! script first where Redis does not know it (a restarted or new node). redis-rs's
//! `ScriptInvocation` holds each key and argument in a buffer of its own and then copies them
//! into the command; on the hot paths that copy showed in profiles.

use redis::aio::ConnectionLike;
use redis::{Cmd, FromRedisValue, RedisResult, Script};

/// A Lua script of the server's.
pub struct Lua {
    hash: String,
    code: &'static str,
}

impl Lua {
    /// The script `code`, to be called by its SHA-1; nothing reaches Redis until it runs.
    pub fn new(code: &'static str) -> Self {
        Lua {
            hash: Script::new(code).get_hash().to_string(),
            code,
        }
    }

    /// `EVALSHA <hash> <keys>`; the caller appends the keys, then the arguments (`args` of
    /// them in all, about `bytes` long: the buffers are sized once).
    pub fn call(&self, keys: usize, args: usize, bytes: usize) -> Cmd {
        let mut cmd = Cmd::with_capacity(3 + keys + args, 64 + bytes);
        cmd.arg("EVALSHA").arg(&self.hash).arg(keys);
        cmd
    }

    /// Runs `cmd`, loading the script first if this Redis does not know it (a restarted or
    /// new node).
    pub async fn run<T: FromRedisValue>(
        &self,
        cmd: &Cmd,
        conn: &mut impl ConnectionLike,
    ) -> RedisResult<T> {
        match cmd.query_async(conn).await {
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                redis::cmd("SCRIPT")
                    .arg("LOAD")
                    .arg(self.code)
                    .exec_async(conn)
                    .await?;
                cmd.query_async(conn).await
            }
            result => result,
        }
    }

    /// `EVALSHA <hash> <keys>`: append the `keys` keys, then the arguments.
    pub fn cmd(&self, keys: usize) -> Cmd {
        self.call(keys, 8, 256)
    }
}
