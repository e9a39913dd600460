//! The help text of every metric, given to the recorder once. A labelled counter's help
//! lists its label's values from the label's enum.

use super::*;
use metrics::Unit;

enum Kind {
    Counter,
    Gauge,
    Histogram(Option<Unit>),
}

pub(super) fn describe() {
    for (kind, name, help) in help() {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram(Some(unit)) => metrics::describe_histogram!(name, unit, help),
            Kind::Histogram(None) => metrics::describe_histogram!(name, help),
        }
    }
}

/// The help text of metric `name`.
pub(super) fn help_of(name: &str) -> String {
    help()
        .into_iter()
        .find_map(|(_, n, help)| (n == name).then_some(help))
        .unwrap_or_default()
}

fn help() -> Vec<(Kind, &'static str, String)> {
    use Kind::{Counter, Gauge, Histogram};
    let seconds = || Histogram(Some(Unit::Seconds));
    let by = |what: &str, label: &str, values: String| format!("{what}, by {label}: {values}");
    vec![
        (Counter, HTTP_REQUESTS, "HTTP requests by method, route pattern and status".into()),
        (seconds(), HTTP_DURATION, "HTTP request latency by method, route pattern and status".into()),
        (Counter, LOGINS, by("password logins", "outcome", LoginOutcome::listed())),
        (Counter, REFRESHES, by("refresh grants (retried: inside the retry window)", "outcome", RefreshOutcome::listed())),
        (Counter, LOGOUTS, by("sessions ended on request (session: one of the user's)", "kind", LogoutKind::listed())),
        (seconds(), STORE_DURATION, by("session store latency", "operation", StoreOp::listed())),
        (Counter, STORE_ERRORS, by("failed session store operations", "operation", StoreOp::listed())),
        (Gauge, BCRYPT_QUEUE, "password verifications running or waiting for a bcrypt thread".into()),
        (Counter, VALIDATION_CACHE, by("validations", "the cache's result", CacheResult::listed())),
        (Counter, VALIDATION_INVALIDATIONS, "keys Redis said changed, dropped from the validation cache".into()),
        (Counter, BARRIER_WAITS, "validations that waited for a barrier PING another request had sent".into()),
        (Histogram(None), BARRIER_BATCH, "requests sharing one barrier PING".into()),
        (Counter, HEARTBEATS, "read-lease heartbeats confirmed".into()),
        (Counter, BCRYPT_WORK, "bcrypt work done by password checks, in cost-0 rounds (one check at cost c: 2^c)".into()),
        (Counter, TRACKING_UNPROVEN, "tracking connections whose invalidation path failed its proof (the cache stays off for a while)".into()),
        (Counter, CHECKS_ABANDONED, by("password and client-secret checks that finished after their request went away", "verdict", Verdict::listed())),
        (Counter, CLIENT_AUTH_FAILURES, by("failed authentications of confidential clients, by client", "reason", ClientFailure::listed())),
        (Gauge, VALIDATION_ENTRIES, "access keys the validation caches of this process hold".into()),
        (Counter, OTP_SENDS, by("one-time code sends", "outcome", OtpSendOutcome::listed())),
    ]
}
