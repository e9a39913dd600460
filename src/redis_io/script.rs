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

/// Declares a script's keys and arguments, in its order, as a struct whose `call` builds the
/// `EVALSHA`. The script names the same keys and arguments, in the same order, in its first
/// lines (`local session, access = unpack(KEYS)`, `… = unpack(ARGV)`); [`declared`] reads
/// them, and each script's test compares the two, so neither side can drift.
macro_rules! lua_args {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident $(<$lt:lifetime>)? {
            keys { $($(#[$km:meta])* $k:ident),* $(,)? }
            args { $($(#[$am:meta])* $a:ident: $t:ty),* $(,)? }
        }
    ) => {
        $(#[$meta])*
        $vis struct $name $(<$lt>)? {
            $($(#[$km])* pub $k: String,)*
            $($(#[$am])* pub $a: $t,)*
        }

        impl $(<$lt>)? $name $(<$lt>)? {
            /// The keys' names, in the script's order.
            #[allow(dead_code)]
            pub const KEYS: &'static [&'static str] = &[$(stringify!($k)),*];
            /// The arguments' names, in the script's order.
            #[allow(dead_code)]
            pub const ARGS: &'static [&'static str] = &[$(stringify!($a)),*];

            /// `EVALSHA` of `script` with these keys and arguments.
            pub fn call(&self, script: &$crate::redis_io::Lua) -> redis::Cmd {
                let mut cmd = script.call(Self::KEYS.len(), Self::ARGS.len(), 512);
                $(cmd.arg(&self.$k);)*
                $(cmd.arg(&self.$a);)*
                cmd
            }
        }
    };
}
pub(crate) use lua_args;

/// The names a script's first `local … = unpack(<table>)` statement (which may span lines)
/// gives `table`'s entries (`KEYS` or `ARGV`), in order; empty if it has none.
pub fn declared(source: &str, table: &str) -> Vec<String> {
    let end = format!("= unpack({table})");
    let mut statement = String::new();
    for line in source.lines() {
        if statement.is_empty() && !line.starts_with("local ") {
            continue;
        }
        statement.push_str(line.trim());
        statement.push(' ');
        if let Some(names) = statement.trim_end().strip_suffix(end.as_str()) {
            return names["local ".len()..]
                .split(',')
                .map(|n| n.trim().to_string())
                .filter(|n| !n.is_empty())
                .collect();
        }
        if line.contains('=') {
            statement.clear();
        }
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::declared;

    #[test]
    fn declared_names_come_in_the_scripts_order() {
        let source =
            "-- a script\nlocal session, access = unpack(KEYS)\nlocal digest = unpack(ARGV)\n";
        assert_eq!(declared(source, "KEYS"), ["session", "access"]);
        assert_eq!(declared(source, "ARGV"), ["digest"]);
        assert!(declared("return 1", "ARGV").is_empty());
    }
}
