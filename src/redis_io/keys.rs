//! The one place Redis key names are made. Every key starts with the configured prefix. All keys
//! of one user's sessions share the hash tag `{<user tag>}`, so each multi-key script touches a
//! single Redis Cluster slot:
//!
//! | key | type | holds | TTL |
//! |---|---|---|---|
//! | `P:{T}:s:<sid>` | hash | session: refresh digest, client, scope, times, expiry `rx` | horizon `kx` (≥ `rx`, ≤ `rx` + 1 h) |
//! | `P:{T}:a:<sid>` | string | digest of the session's current access token | access validity |
//! | `P:{T}:u` | string | the user's public JSON, as of the latest login | latest horizon |
//! | `P:{T}:i` | sorted set | the user's session ids scored by horizon (ms) | latest horizon |
//! | `P:{T}:g` | string | the user's generation: a new random value whenever all of the user's sessions end | 1 hour |
//! | `P:ip:<address>` | string | password attempts from one client address this minute | 1 minute |
//! | `P:lease` | string | the read lease (ms) every replica on this Redis runs | 1 hour |
//! | `P:probe:<random>` | string | a new tracking connection's proof that invalidations reach it | 10 s |
//! | `P:{lo:<userName>}:n` / `P:{lc:<clientId>:<address>}:n` | string | wrong passwords of an account (user name, or client) in the current period | the period |
//! | `P:{lo:<userName>}:r` / `P:{lc:<clientId>:<address>}:r` | sorted set | the account's password checks in flight, held until (ms) | 30 s |
//! | `P:{lo:<userName>}:l` / `P:{lc:<clientId>:<address>}:l` | string | present while the account is locked | the cool-down |
//! | `P:user:<tenant>:<userName>` | hash | a user record (written by operators); tenants hold no `:` | none |
//! | `P:user-tenants:<userName>` | set | tenants that have a user of that name | none |
//! | `P:user-mobile:<mobileNumber>` | set | `<tenant>:<userName>` of user records written with that mobile number (a reader checks each record) | none |
//! | `P:{otp:<tenant>:<number>}:c` | hash | the live one-time code of a number: HMAC `d`, wrong tries `w`, expiry `x` (ms) | the code's TTL |
//! | `P:{otp:<tenant>:<number>}:s` | sorted set | sends to the number in the last hour (id -> ms) | 1 hour |
//! | `P:otp-ip:<address>` | string | code sends from one client address this minute | 1 minute |

use crate::domain::account::Account;
use crate::domain::token::{SessionId, SessionRef, UserTag};

/// The Redis key names under one prefix; the only place a key format is spelled.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`, taken as given (the settings check it).
    pub fn new(prefix: &str) -> Self {
        Keys {
            prefix: prefix.to_string(),
        }
    }

    /// The prefix every key starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// `P:{T}:`, the start of every key of one user's sessions.
    pub fn tag_base(&self, tag: &UserTag) -> String {
        self.tag_key(tag, "")
    }

    /// `P:{T}:` followed by `rest`, in one allocation: these keys are built on every request.
    fn tag_key(&self, tag: &UserTag, rest: &str) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 26 + rest.len() + 24);
        key.push_str(&self.prefix);
        key.push_str(":{");
        tag.push_key_part(&mut key);
        key.push_str("}:");
        key.push_str(rest);
        key
    }

    /// `P:{T}:s:<sid>`: the session's hash.
    pub fn session(&self, s: &SessionRef) -> String {
        let mut key = self.tag_key(&s.tag, "s:");
        s.id.push_key_part(&mut key);
        key
    }

    /// `P:{T}:a:<sid>`: the digest of the session's current access token.
    pub fn access(&self, s: &SessionRef) -> String {
        let mut key = self.tag_key(&s.tag, "a:");
        s.id.push_key_part(&mut key);
        key
    }

    /// `P:{T}:u`: the user's public JSON as of the latest login.
    pub fn user_snapshot(&self, tag: &UserTag) -> String {
        self.tag_key(tag, "u")
    }

    /// `P:{T}:i`: the user's session ids, scored by horizon (ms).
    pub fn user_sessions(&self, tag: &UserTag) -> String {
        self.tag_key(tag, "i")
    }

    /// `P:probe:`, followed by a random id: a key a new tracking connection reads and then
    /// changes from another connection, to see Redis push its invalidation (lives 10 s).
    pub fn tracking_probe_prefix(&self) -> String {
        format!("{}:probe:", self.prefix)
    }

    /// `P:lease`: the read lease (ms) every replica on this Redis must run.
    pub fn lease(&self) -> String {
        format!("{}:lease", self.prefix)
    }

    /// `P:ip:<address>`: password attempts from `address` this minute.
    pub fn ip_attempts(&self, address: &str) -> String {
        format!("{}:ip:{address}", self.prefix)
    }

    /// `P:{T}:g`: changes whenever all of the user's sessions end, so a login that read the
    /// user before that cannot start a session after it.
    pub fn user_generation(&self, tag: &UserTag) -> String {
        self.tag_key(tag, "g")
    }

    /// `P:{lo:<name>}` or `P:{lc:<client>:<address>}` (client ids hold no `:`), the base of
    /// an account's lockout keys.
    fn account(&self, account: &Account, suffix: &str) -> String {
        match account {
            Account::User(name) => format!("{}:{{lo:{name}}}:{suffix}", self.prefix),
            Account::Client { id, address } => {
                format!("{}:{{lc:{id}:{address}}}:{suffix}", self.prefix)
            }
        }
    }

    /// Wrong passwords of `account` in the current period.
    pub fn login_failures(&self, account: &Account) -> String {
        self.account(account, "n")
    }

    /// The checks of `account` in flight: ticket -> hold until (ms).
    pub fn account_checks(&self, account: &Account) -> String {
        self.account(account, "r")
    }

    /// Present while `account` is locked.
    pub fn account_lock(&self, account: &Account) -> String {
        self.account(account, "l")
    }

    /// A user record. Tenants cannot hold `:` (see `TenantId`), so the first `:` after
    /// `user:` ends the tenant and no two (tenant, name) pairs share a key.
    pub fn user(&self, tenant: &str, user_name: &str) -> String {
        format!("{}:user:{tenant}:{user_name}", self.prefix)
    }

    /// `P:user-tenants:<userName>`: the tenants that have a user named `user_name`.
    pub fn user_tenants(&self, user_name: &str) -> String {
        format!("{}:user-tenants:{user_name}", self.prefix)
    }

    /// `P:user-mobile:<mobile>`: `<tenant>:<userName>` of the user records written with that
    /// mobile number.
    pub fn user_mobile(&self, mobile: &str) -> String {
        format!("{}:user-mobile:{mobile}", self.prefix)
    }

    /// `P:{otp:<tenant>:<number>}:c`: the number's live one-time code. Tenants hold no `:`,
    /// so no two (tenant, number) pairs share a key; the code and the sends of one number
    /// share a hash tag, for scripts that touch both.
    pub fn otp_code(&self, tenant: &str, number: &str) -> String {
        format!("{}:{{otp:{tenant}:{number}}}:c", self.prefix)
    }

    /// `P:{otp:<tenant>:<number>}:s`: the sends to the number in the last hour.
    pub fn otp_sends(&self, tenant: &str, number: &str) -> String {
        format!("{}:{{otp:{tenant}:{number}}}:s", self.prefix)
    }

    /// `P:otp-ip:<address>`: code sends from `address` this minute.
    pub fn otp_address_sends(&self, address: &str) -> String {
        format!("{}:otp-ip:{address}", self.prefix)
    }

    /// The SCAN pattern of the session `id`'s hash, whatever its user.
    pub fn session_pattern(&self, id: &SessionId) -> String {
        format!("{}:{{*}}:s:{}", glob_escape(&self.prefix), id.key_part())
    }

    /// The SCAN pattern of every user record.
    pub fn users_pattern(&self) -> String {
        format!("{}:user:*", glob_escape(&self.prefix))
    }
}

/// `text` with Redis glob's special characters escaped.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_keys_of_one_user_share_a_hash_tag() {
        let keys = Keys::new("ts");
        let tag = UserTag::for_user("uuid-1");
        let s = SessionRef {
            tag,
            id: SessionId::generate(),
        };
        let hash_tag = |k: &str| k[k.find('{').unwrap()..=k.find('}').unwrap()].to_string();
        let expected = format!("{{{}}}", tag.key_part());
        for key in [
            keys.session(&s),
            keys.access(&s),
            keys.user_sessions(&tag),
            keys.user_snapshot(&tag),
        ] {
            assert!(key.starts_with("ts:"), "{key}");
            assert_eq!(hash_tag(&key), expected, "{key}");
        }
        let id = s.id.key_part();
        assert_eq!(keys.session(&s), format!("ts:{expected}:s:{id}"));
        assert_eq!(keys.access(&s), format!("ts:{expected}:a:{id}"));
        assert_eq!(keys.user_snapshot(&tag), format!("ts:{expected}:u"));
        assert_eq!(keys.user_sessions(&tag), format!("ts:{expected}:i"));
    }
}
