//! The scripts' keys and arguments, one struct per script beside its `.lua`, in the script's
//! order: each script names them in its first lines, and the tests below compare.

use crate::redis_io::script::lua_args;

lua_args! {
    /// `issue.lua`: starts a session.
    pub struct IssueArgs<'a> {
        keys { session, access, index, snapshot, generation }
        args {
            access_digest: &'a str,
            access_ttl_ms: u64,
            refresh_digest: &'a str,
            refresh_ttl_ms: u64,
            session_id: String,
            user_uuid: &'a str,
            user_json: &'a str,
            client_id: &'a str,
            scope: &'a str,
            ip: &'a str,
            user_agent: &'a str,
            /// 0 = none.
            max_lifetime_ms: u64,
            /// 0 = unlimited.
            max_sessions: usize,
            /// `P:{T}:`, the start of the user's session and access keys.
            key_base: String,
            /// The user's generation the login read ('' = none).
            read_generation: &'a str,
        }
    }
}

lua_args! {
    /// `refresh.lua`: redeems a refresh token.
    pub struct RefreshArgs<'a> {
        keys { session, access, index, snapshot }
        args {
            presented: &'a str,
            access_digest: &'a str,
            access_ttl_ms: u64,
            refresh_digest: &'a str,
            refresh_ttl_ms: u64,
            session_id: String,
            /// '' keeps the session's scope.
            requested_scope: &'a str,
            client_id: &'a str,
            /// "1" or "0".
            rotation: &'static str,
            retry_window_ms: u64,
        }
    }
}

lua_args! {
    /// `end.lua`: ends a session given either of its live tokens.
    pub struct EndArgs<'a> {
        keys { session, access, index, snapshot }
        args {
            /// "a" (access) or "r" (refresh).
            kind: &'static str,
            digest: &'a str,
            session_id: String,
            /// '' = any client.
            client_id: &'a str,
        }
    }
}

lua_args! {
    /// `introspect.lua`: what a live token stands for.
    pub struct IntrospectArgs<'a> {
        keys { session, access, snapshot }
        args {
            /// "a" (access) or "r" (refresh).
            kind: &'static str,
            digest: &'a str,
        }
    }
}

lua_args! {
    /// `sessions.lua`: one user's sessions (the admin commands).
    pub struct SessionsArgs {
        keys { index, snapshot, generation }
        args {
            key_base: String,
            /// "list", "end" or "end_all".
            op: &'static str,
            /// The session id for "end".
            target: String,
            limit: u32,
            /// For "end_all".
            new_generation: String,
            generation_ttl_ms: u64,
        }
    }
}

lua_args! {
    /// `caller.lua` then `sessions.lua`: the caller's own sessions, if its token is live.
    pub struct OwnSessionsArgs<'a> {
        keys { index, snapshot, generation, caller_access }
        args {
            key_base: String,
            op: &'static str,
            target: String,
            limit: u32,
            new_generation: String,
            generation_ttl_ms: u64,
            caller_digest: &'a str,
        }
    }
}

lua_args! {
    /// `count.lua`: a fixed-window counter.
    pub struct CountArgs {
        keys { counter }
        args { window_ms: u64 }
    }
}

lua_args! {
    /// `reserve.lua`: one check of an account's budget.
    pub struct ReserveArgs {
        keys { failures, lock, checks }
        args { max_attempts: u32, ticket: String, hold_ms: u64 }
    }
}

lua_args! {
    /// `fail.lua`: a reserved check failed.
    pub struct FailArgs {
        keys { failures, lock, checks }
        args { ticket: String, max_attempts: u32, period_ms: u64, cool_down_ms: u64 }
    }
}

lua_args! {
    /// `settle.lua`: a reserved check ended without failing.
    pub struct SettleArgs {
        keys { failures, checks }
        args {
            ticket: String,
            /// "1" if the password was right.
            correct: &'static str,
        }
    }
}

lua_args! {
    /// `code_send.lua`: a one-time code for a number, unless its sends are throttled.
    pub struct CodeSendArgs<'a> {
        keys { sends, code }
        args {
            digest: &'a str,
            ttl_ms: u64,
            /// The least time between two sends.
            interval_ms: u64,
            per_hour: u32,
            /// Names this send in the number's sorted set of sends.
            send_id: String,
        }
    }
}

lua_args! {
    /// `code_redeem.lua`: a one-time code redeemed at most once.
    pub struct CodeRedeemArgs<'a> {
        keys { code }
        args { presented: &'a str, max_wrong: u32 }
    }
}

lua_args! {
    /// `code_discard.lua`: a code whose delivery failed ends.
    pub struct CodeDiscardArgs<'a> {
        keys { code }
        args { digest: &'a str }
    }
}

lua_args! {
    /// `lease.lua`: the read lease every replica on this Redis must run.
    pub struct LeaseArgs {
        keys { lease }
        args { lease_ms: u64, ttl_ms: u64 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redis_io::script::declared;

    fn check(source: &str, keys: &[&str], args: &[&str]) {
        assert_eq!(declared(source, "KEYS"), keys, "KEYS");
        assert_eq!(declared(source, "ARGV"), args, "ARGV");
    }

    #[test]
    fn each_script_names_its_keys_and_arguments_as_its_struct_does() {
        check(include_str!("issue.lua"), IssueArgs::KEYS, IssueArgs::ARGS);
        check(
            include_str!("refresh.lua"),
            RefreshArgs::KEYS,
            RefreshArgs::ARGS,
        );
        check(include_str!("end.lua"), EndArgs::KEYS, EndArgs::ARGS);
        check(
            include_str!("introspect.lua"),
            IntrospectArgs::KEYS,
            IntrospectArgs::ARGS,
        );
        check(
            include_str!("sessions.lua"),
            SessionsArgs::KEYS,
            SessionsArgs::ARGS,
        );
        check(include_str!("count.lua"), CountArgs::KEYS, CountArgs::ARGS);
        check(
            include_str!("reserve.lua"),
            ReserveArgs::KEYS,
            ReserveArgs::ARGS,
        );
        check(include_str!("fail.lua"), FailArgs::KEYS, FailArgs::ARGS);
        check(
            include_str!("settle.lua"),
            SettleArgs::KEYS,
            SettleArgs::ARGS,
        );
        check(
            include_str!("code_send.lua"),
            CodeSendArgs::KEYS,
            CodeSendArgs::ARGS,
        );
        check(
            include_str!("code_redeem.lua"),
            CodeRedeemArgs::KEYS,
            CodeRedeemArgs::ARGS,
        );
        check(
            include_str!("code_discard.lua"),
            CodeDiscardArgs::KEYS,
            CodeDiscardArgs::ARGS,
        );
        check(include_str!("lease.lua"), LeaseArgs::KEYS, LeaseArgs::ARGS);
        // caller.lua names only its own additions (the last key and argument).
        let caller = include_str!("caller.lua");
        let own = |names: &[&str]| -> Vec<String> {
            let mut names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            for n in names.iter_mut().rev().skip(1) {
                *n = "_".into();
            }
            names
        };
        assert_eq!(declared(caller, "KEYS"), own(OwnSessionsArgs::KEYS));
        assert_eq!(declared(caller, "ARGV"), own(OwnSessionsArgs::ARGS));
        assert_eq!(&OwnSessionsArgs::KEYS[..3], SessionsArgs::KEYS);
        assert_eq!(&OwnSessionsArgs::ARGS[..6], SessionsArgs::ARGS);
    }

    /// The scripts name a session's keys from the user's key base and an index entry (the
    /// cap's trim, the sessions calls): only `s:` and `a:`, the suffixes `Keys` uses.
    #[test]
    fn the_session_keys_the_scripts_build_are_those_keys_rs_builds() {
        use crate::domain::token::{SessionId, SessionRef, UserTag};
        use crate::redis_io::Keys;
        let keys = Keys::new("ts");
        let session = SessionRef {
            tag: UserTag::for_user("5e5c7d4e-4a5b-4d4a-9a43-9d7c1f2f0a01"),
            id: SessionId::parse("8b1e0f52-6c3d-4f8e-b1a2-3c4d5e6f7a02").unwrap(),
        };
        let base = keys.tag_base(&session.tag);
        let sid = session.id.key_part();
        assert_eq!(format!("{base}s:{sid}"), keys.session(&session));
        assert_eq!(format!("{base}a:{sid}"), keys.access(&session));
        for script in [include_str!("issue.lua"), include_str!("sessions.lua")] {
            let suffixes: Vec<&str> = script
                .split("key_base .. '")
                .skip(1)
                .map(|rest| rest.split('\'').next().unwrap_or(""))
                .collect();
            assert!(!suffixes.is_empty());
            assert!(
                suffixes.iter().all(|s| *s == "s:" || *s == "a:"),
                "{suffixes:?}"
            );
        }
    }
}
