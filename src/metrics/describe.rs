//! The help text of every metric, given to the recorder once.

use super::*;

pub(super) fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by method, route pattern and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "HTTP request latency by method, route pattern and status"
    );
    describe_counter!(
        LOGINS,
        "password logins by outcome: ok, bad_credentials, inactive, locked, throttled, busy, user_changed, invalid_request, store_error, error"
    );
    describe_counter!(
        REFRESHES,
        "refresh grants by outcome: rotated, retried (inside the retry window), invalid, reuse_detected, scope_too_wide, store_error"
    );
    describe_counter!(
        LOGOUTS,
        "sessions ended on request, by kind: logout, revoke, session (one of the user's), logout_all"
    );
    describe_histogram!(
        STORE_DURATION,
        Unit::Seconds,
        "session store latency by operation"
    );
    describe_counter!(STORE_ERRORS, "failed session store operations by operation");
    describe_gauge!(
        BCRYPT_QUEUE,
        "password verifications running or waiting for a bcrypt thread"
    );
    describe_counter!(
        VALIDATION_CACHE,
        "validations by the cache's result: hit, miss"
    );
    describe_counter!(
        VALIDATION_INVALIDATIONS,
        "keys Redis said changed, dropped from the validation cache"
    );
    describe_counter!(
        BARRIER_WAITS,
        "validations that waited for a barrier PING another request had sent"
    );
    describe_histogram!(BARRIER_BATCH, "requests sharing one barrier PING");
    describe_counter!(HEARTBEATS, "read-lease heartbeats confirmed");
    describe_counter!(
        BCRYPT_WORK,
        "bcrypt work done by password checks, in cost-0 rounds (one check at cost c: 2^c)"
    );
    describe_counter!(
        TRACKING_UNPROVEN,
        "tracking connections whose invalidation path failed its proof (the cache stays off for a while)"
    );
    describe_counter!(
        CHECKS_ABANDONED,
        "password and client-secret checks that finished after their request went away, by verdict: wrong, right, none"
    );
    describe_counter!(
        CLIENT_AUTH_FAILURES,
        "failed authentications of confidential clients, by client and reason: wrong_secret, locked, throttled"
    );
    describe_gauge!(
        VALIDATION_ENTRIES,
        "access keys the validation caches of this process hold"
    );
    describe_counter!(
        OTP_SENDS,
        "one-time code sends by outcome: sent, unknown_number, throttled, undelivered, not_served, store_error"
    );
}
