//! Prometheus metrics: the names, their bounded label values, and the recorder. Label values
//! come from fixed sets (route patterns, outcomes, operations), never from user names or tokens.

use actix_web::{HttpResponse, web};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

mod describe;
mod labels;
mod sharded;
use describe::describe;
pub use labels::{
    CacheResult, ClientFailure, LoginOutcome, LogoutKind, OtpSendOutcome, RefreshOutcome, StoreOp,
    Verdict,
};

/// Counter of HTTP requests, by `method`, `route` and `status`.
pub const HTTP_REQUESTS: &str = "token_server_http_requests_total";
/// Histogram of HTTP request latency in seconds, by `method`, `route` and `status`.
pub const HTTP_DURATION: &str = "token_server_http_request_duration_seconds";
/// Counter of password logins, by `outcome`.
pub const LOGINS: &str = "token_server_logins_total";
/// Counter of refresh grants, by `outcome`.
pub const REFRESHES: &str = "token_server_refreshes_total";
/// Counter of sessions ended on request, by `kind`.
pub const LOGOUTS: &str = "token_server_logouts_total";
/// Histogram of session store latency in seconds, by `op`.
pub const STORE_DURATION: &str = "token_server_store_operation_duration_seconds";
/// Counter of failed session store operations, by `op`.
pub const STORE_ERRORS: &str = "token_server_store_errors_total";
/// Gauge of password checks running or waiting for a bcrypt thread.
pub const BCRYPT_QUEUE: &str = "token_server_bcrypt_queue_depth";
/// Counter of validations by the cache's `result`: `hit` or `miss`.
pub const VALIDATION_CACHE: &str = "token_server_validation_cache_total";
/// Counter of keys Redis said changed, dropped from the validation cache.
pub const VALIDATION_INVALIDATIONS: &str = "token_server_validation_cache_invalidations_total";
/// Counter of validations that waited for a barrier PING another request had sent.
pub const BARRIER_WAITS: &str = "token_server_validation_barrier_waits_total";
/// Gauge of access keys the validation caches of this process hold.
pub const VALIDATION_ENTRIES: &str = "token_server_validation_cache_entries";
/// Histogram of requests sharing one barrier PING.
pub const BARRIER_BATCH: &str = "token_server_validation_barrier_batch_size";

/// Counter of bcrypt work done by password checks, in cost-0 rounds (a cost-c run is 2^c).
pub const BCRYPT_WORK: &str = "token_server_bcrypt_work_total";
/// Counter of read-lease heartbeats (`WAIT 0 0`) confirmed.
pub const HEARTBEATS: &str = "token_server_validation_heartbeats_total";
/// Counter of new tracking connections whose invalidations did not arrive as their probe
/// required: the validation cache stays off for a while and validations read Redis.
pub const TRACKING_UNPROVEN: &str = "token_server_validation_cache_unproven_total";
/// Counter of password and client-secret checks that finished after their request went
/// away, by `verdict`: `wrong`, `right`, `none` (no verdict: an error or no place).
pub const CHECKS_ABANDONED: &str = "token_server_checks_abandoned_total";
/// Counter of failed client authentications of registered confidential clients, by `client`
/// (a registered id: a bounded set) and `reason`: `wrong_secret`, `locked`, `throttled`.
pub const CLIENT_AUTH_FAILURES: &str = "token_server_client_auth_failures_total";
/// Counter of one-time code sends (`/user-otp/v1/_send`), by `outcome`: see [`OtpSendOutcome`].
pub const OTP_SENDS: &str = "token_server_otp_sends_total";

/// Upper bounds of the barrier batch buckets, in requests.
const BATCH_BUCKETS: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

/// Upper bounds of the latency buckets, in seconds: validation sits in the first few, logins
/// (bcrypt) in the middle, timeouts at the end.
const BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use (several in-process servers share it).
/// `None` if another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .ok()?
                .set_buckets_for_metric(Matcher::Full(BARRIER_BATCH.into()), &BATCH_BUCKETS)
                .ok()?;
            let handle = match builder.install_recorder() {
                Ok(h) => h,
                Err(e) => {
                    log::warn!("metrics are off: {e}");
                    return None;
                }
            };
            describe();
            zero();
            let upkeep = handle.clone();
            // Histograms are drained into their buckets by upkeep; without it they grow.
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                log::warn!("metrics upkeep thread did not start: {e}");
            }
            Some(handle)
        })
        .as_ref()
}

/// Every counter series exists from the start at 0, so `rate()` and alerts see a rise from
/// zero rather than a series appearing.
fn zero() {
    for outcome in LoginOutcome::ALL {
        metrics::counter!(LOGINS, "outcome" => outcome.as_str()).increment(0);
    }
    for outcome in RefreshOutcome::ALL {
        metrics::counter!(REFRESHES, "outcome" => outcome.as_str()).increment(0);
    }
    for kind in LogoutKind::ALL {
        metrics::counter!(LOGOUTS, "kind" => kind.as_str()).increment(0);
    }
    for op in StoreOp::ALL {
        metrics::counter!(STORE_ERRORS, "op" => op.as_str()).increment(0);
    }
    metrics::gauge!(BCRYPT_QUEUE).set(0.0);
    for verdict in Verdict::ALL {
        metrics::counter!(CHECKS_ABANDONED, "verdict" => verdict.as_str()).increment(0);
    }
    for result in CacheResult::ALL {
        sharded::zero(sharded::Key::Cache(result.as_str()));
    }
    metrics::counter!(VALIDATION_INVALIDATIONS).increment(0);
    metrics::counter!(BARRIER_WAITS).increment(0);
    metrics::counter!(TRACKING_UNPROVEN).increment(0);
    metrics::counter!(HEARTBEATS).increment(0);
    metrics::counter!(BCRYPT_WORK).increment(0);
    metrics::gauge!(VALIDATION_ENTRIES).set(0.0);
    for outcome in OtpSendOutcome::ALL {
        metrics::counter!(OTP_SENDS, "outcome" => outcome.as_str()).increment(0);
    }
}

/// Serves the text exposition format.
pub async fn scrape() -> HttpResponse {
    match handle() {
        Some(h) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4; charset=utf-8")
            .body({
                let mut text = h.render();
                sharded::render(&mut text, describe::help_of);
                text
            }),
        None => HttpResponse::NotFound().finish(),
    }
}

/// Counts and times one request by its route pattern (`unmatched` for unknown paths).
pub fn http_request(method: &'static str, route: &'static str, status: u16, took: Duration) {
    let key = sharded::Key::Http {
        method,
        route,
        status,
    };
    sharded::record(key, Some(took));
}

/// The route pattern of a resource, attached to it as app data by the route table.
#[derive(Clone, Copy)]
pub struct RoutePattern(pub &'static str);

thread_local! {
    static COUNTERS: std::cell::RefCell<
        foldhash::HashMap<(&'static str, &'static str), metrics::Counter>,
    > = std::cell::RefCell::default();
    // The validation cache's handles: taken on a worker's first validation, after the
    // recorder is installed.
    static CACHE_HANDLES: CacheHandles = CacheHandles {
        invalidations: metrics::counter!(VALIDATION_INVALIDATIONS),
        entries: metrics::gauge!(VALIDATION_ENTRIES),
        waits: metrics::counter!(BARRIER_WAITS),
        batch: metrics::histogram!(BARRIER_BATCH),
        heartbeats: metrics::counter!(HEARTBEATS),
    };
}

struct CacheHandles {
    invalidations: metrics::Counter,
    entries: metrics::Gauge,
    waits: metrics::Counter,
    batch: metrics::Histogram,
    heartbeats: metrics::Counter,
}

/// The `method` label of a request: GET, POST, DELETE, PUT or HEAD, else `other`.
pub fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method;
    // Any other method would let clients mint label values.
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::DELETE => "DELETE",
        Method::PUT => "PUT",
        Method::HEAD => "HEAD",
        _ => "other",
    }
}

/// Adds one to counter `name` with `label` = `value`, through this thread's cached handle.
fn count(name: &'static str, label: &'static str, value: &'static str) {
    COUNTERS.with_borrow_mut(|counters| {
        counters
            .entry((name, value))
            .or_insert_with(|| metrics::counter!(name, label => value))
            .increment(1);
    });
}

/// Counts a password login by `outcome`.
pub fn login(outcome: LoginOutcome) {
    count(LOGINS, "outcome", outcome.as_str());
}

/// Counts a refresh grant by `outcome`.
pub fn refresh(outcome: RefreshOutcome) {
    count(REFRESHES, "outcome", outcome.as_str());
}

/// Counts `n` sessions ended on request by `kind`.
pub fn logout(kind: LogoutKind, n: u64) {
    if n == 1 {
        count(LOGOUTS, "kind", kind.as_str());
    } else {
        metrics::counter!(LOGOUTS, "kind" => kind.as_str()).increment(n);
    }
}

/// Records how long store operation `op` took, and counts it as failed unless `ok`.
pub fn store(op: StoreOp, took: Duration, ok: bool) {
    let op = op.as_str();
    sharded::record(sharded::Key::Store(op), Some(took));
    if !ok {
        metrics::counter!(STORE_ERRORS, "op" => op).increment(1);
    }
}

/// Counts a validation the cache answered (`hit`) or read through to Redis for (`miss`).
pub fn validation_cache(result: CacheResult) {
    sharded::record(sharded::Key::Cache(result.as_str()), None);
}

/// Counts a key dropped from the validation cache on Redis's word.
pub fn validation_invalidation() {
    CACHE_HANDLES.with(|h| h.invalidations.increment(1));
}

/// Adds `delta` to the validation cache entries held.
pub fn validation_entries(delta: i64) {
    CACHE_HANDLES.with(|h| h.entries.increment(delta as f64));
}

/// Counts a validation that waited for another request's barrier PING.
pub fn barrier_wait() {
    CACHE_HANDLES.with(|h| h.waits.increment(1));
}

/// Records how many requests the barrier PING just sent serves.
pub fn barrier_batch(requests: u64) {
    CACHE_HANDLES.with(|h| h.batch.record(requests as f64));
}

/// Counts the bcrypt work of one password check.
pub fn bcrypt_work(rounds: u64) {
    metrics::counter!(BCRYPT_WORK).increment(rounds);
}

/// Counts a confirmed read-lease heartbeat.
pub fn heartbeat() {
    CACHE_HANDLES.with(|h| h.heartbeats.increment(1));
}

/// Counts a tracking connection whose invalidation path failed its proof.
pub fn tracking_unproven() {
    metrics::counter!(TRACKING_UNPROVEN).increment(1);
}

/// Counts a check that finished after its request went away, by `verdict`.
pub fn check_abandoned(verdict: Verdict) {
    count(CHECKS_ABANDONED, "verdict", verdict.as_str());
}

/// Counts a one-time code send by `outcome`.
pub fn otp_send(outcome: OtpSendOutcome) {
    count(OTP_SENDS, "outcome", outcome.as_str());
}

/// Zeroes the client failure series of registered confidential clients.
pub fn zero_client_failures<'a>(clients: impl IntoIterator<Item = &'a str>) {
    for client in clients {
        for reason in ClientFailure::ALL {
            client_auth_failure_by(client, *reason, 0);
        }
    }
}

/// Counts a failed authentication of registered client `client`, by `reason`.
pub fn client_auth_failure(client: &str, reason: ClientFailure) {
    client_auth_failure_by(client, reason, 1);
}

fn client_auth_failure_by(client: &str, reason: ClientFailure, n: u64) {
    let labels = [
        ("client", client.to_string()),
        ("reason", reason.as_str().to_string()),
    ];
    metrics::counter!(CLIENT_AUTH_FAILURES, &labels).increment(n);
}

/// One password check took (`1`) or left (`-1`) a place among those running or waiting for a
/// bcrypt thread. Moved rather than set: two checks setting what each read of the count could
/// leave the gauge at a value the count no longer has, the later write carrying the older read.
pub fn bcrypt_queue(delta: i8) {
    metrics::gauge!(BCRYPT_QUEUE).increment(f64::from(delta));
}

/// The `/metrics` route, for the main app or a separate metrics listener.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/metrics", web::get().to(scrape));
}
