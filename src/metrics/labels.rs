//! The values of the metrics' labels: each label one enum, so that a call site names a
//! variant and the series zeroed at start-up (`ALL`) are exactly those that can be counted.

/// An enum of label values, with `ALL` and `as_str`.
macro_rules! label {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $value:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant),*
        }

        impl $name {
            /// Every value, zeroed at start-up.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The label's text.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $value),*
                }
            }

            /// Every value's text, for the help text: "a, b, c".
            pub fn listed() -> String {
                [$($value),*].join(", ")
            }
        }
    };
}

label! {
    /// `outcome` of `token_server_logins_total`.
    LoginOutcome {
        Ok => "ok",
        BadCredentials => "bad_credentials",
        Inactive => "inactive",
        Locked => "locked",
        Throttled => "throttled",
        Busy => "busy",
        UserChanged => "user_changed",
        InvalidRequest => "invalid_request",
        StoreError => "store_error",
        Error => "error",
    }
}

label! {
    /// `outcome` of `token_server_refreshes_total`.
    RefreshOutcome {
        Rotated => "rotated",
        Retried => "retried",
        Invalid => "invalid",
        ReuseDetected => "reuse_detected",
        ScopeTooWide => "scope_too_wide",
        StoreError => "store_error",
    }
}

label! {
    /// `kind` of `token_server_logouts_total`.
    LogoutKind {
        Logout => "logout",
        Revoke => "revoke",
        Session => "session",
        LogoutAll => "logout_all",
    }
}

label! {
    /// `op` of the store metrics.
    StoreOp {
        Ping => "ping",
        Issue => "issue",
        Generation => "generation",
        Refresh => "refresh",
        Validate => "validate",
        End => "end",
        Introspect => "introspect",
        Sessions => "sessions",
        Throttle => "throttle",
        LockoutReserve => "lockout_reserve",
        LockoutFail => "lockout_fail",
        LockoutSettle => "lockout_settle",
        Users => "users",
        OtpSend => "otp_send",
        OtpRedeem => "otp_redeem",
        OtpDiscard => "otp_discard",
        OtpThrottle => "otp_throttle",
    }
}

label! {
    /// `verdict` of `token_server_checks_abandoned_total`: what a check whose request went
    /// away found.
    Verdict {
        Wrong => "wrong",
        Right => "right",
        None => "none",
    }
}

label! {
    /// `reason` of `token_server_client_auth_failures_total`.
    ClientFailure {
        WrongSecret => "wrong_secret",
        Locked => "locked",
        Throttled => "throttled",
    }
}

label! {
    /// `outcome` of `token_server_otp_sends_total`.
    OtpSendOutcome {
        Sent => "sent",
        UnknownNumber => "unknown_number",
        Throttled => "throttled",
        Undelivered => "undelivered",
        NotServed => "not_served",
        StoreError => "store_error",
    }
}

label! {
    /// `result` of `token_server_validation_cache_total`.
    CacheResult {
        Hit => "hit",
        Miss => "miss",
    }
}
