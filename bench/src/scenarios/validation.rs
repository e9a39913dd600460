//! Validation: `GET /user/_details` in three modes, the read lease (default settings), the
//! barrier on every cached hit (`VALIDATION_LEASE_MS=0`) and reading through to Redis
//! (`VALIDATION_CACHE_ENTRIES=0`), in rounds alternating with ceiling (a), one Redis `GET`,
//! and ceiling (0), a fixed answer of a details answer's size with no Redis.

use crate::bench::Bench;
use crate::counters::Metrics;
use crate::load::{Conn, run as load};
use crate::measure::{Measured, alternating, side};
use crate::report::{Against, Tables};
use crate::workloads::{CeilingFixed, CeilingGet, details};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// The measurements of one run of the comparison.
struct Details {
    a: Measured,
    zero: Measured,
    lease: Measured,
    barrier: Measured,
    through: Measured,
    /// The metrics of the lease and the barrier server over the rounds.
    lease_metrics: Metrics,
    barrier_metrics: Metrics,
}

pub async fn run(b: &Bench, t: &mut Tables) {
    let d = measure(b).await;
    let (a, zero) = (
        Against::new(d.a.rate(), "(a)"),
        Against::new(d.zero.rate(), "(0)"),
    );
    t.row(
        "ceiling (a): bare handler, one GET, a multiplexed connection per worker; alternating with (0) and details in three modes",
        &d.a,
        &[],
    );
    t.row(
        "ceiling (0): bare handler, a fixed answer of a details answer's size, no Redis",
        &d.zero,
        &[a],
    );
    t.row(
        "details (1k live sessions), read lease (default settings)",
        &d.lease,
        &[a, zero],
    );
    t.row(
        "details, barrier on every cached hit (`VALIDATION_LEASE_MS=0`, own key prefix)",
        &d.barrier,
        &[a, zero],
    );
    t.row(
        "details reading through to Redis (`VALIDATION_CACHE_ENTRIES=0`)",
        &d.through,
        &[a, zero],
    );
    note(b, t, &d).await;
    t.cost("ceiling (a): one GET", &d.a);
    t.cost("ceiling (0): a fixed answer, no Redis", &d.zero);
    t.cost("validation (details, 1k sessions), read lease", &d.lease);
    t.cost(
        "validation (details, 1k sessions), `VALIDATION_LEASE_MS=0`",
        &d.barrier,
    );
    t.cost(
        "validation (details, 1k sessions), reading through",
        &d.through,
    );
    t.usec_per_call("ceiling GET", &d.a, "get");
    t.usec_per_call("details MGET, 1k, reading through", &d.through, "mget");
    let f = &mut t.found;
    f.ceiling_a = Some(d.a.rate());
    f.details_vs_a = Some(d.lease.rate() / d.a.rate().max(1.0));
    f.details_vs_zero = Some(d.lease.rate() / d.zero.rate().max(1.0));
    f.commands_per_validation = Some(d.lease.commands_per_op());
    let closed = d.lease.report.p99_ms() / d.a.report.p99_ms().max(0.001);
    super::tail::run(b, t, d.a.rate(), closed).await;
}

async fn measure(b: &Bench) -> Details {
    // Gateways validate the same tokens over and over: one unmeasured pass fills each
    // worker's cache first, so that the counts are those of steady traffic, not of start-up.
    let warm = b.timing.warmup.max(Duration::from_secs(1));
    load(b.server.addr, details(&b.tokens), 64, Duration::ZERO, warm).await;
    load(
        b.barrier.addr,
        details(&b.barrier_tokens),
        64,
        Duration::ZERO,
        warm,
    )
    .await;
    let (lease_before, barrier_before) =
        (Metrics::read(b.server.addr), Metrics::read(b.barrier.addr));
    let (conns, round, redis) = (64, b.round(), &b.redis);
    let get = Arc::new(CeilingGet { keys: 1_000 });
    let fixed = Arc::new(CeilingFixed {
        tokens: b.tokens.clone(),
    });
    let sides = [
        side(&b.per_worker, redis, conns, round, |_| get.clone()),
        side(&b.per_worker, redis, conns, round, |_| fixed.clone()),
        side(&b.server, redis, conns, round, |_| details(&b.tokens)),
        side(&b.barrier, redis, conns, round, |_| {
            details(&b.barrier_tokens)
        }),
        side(&b.through, redis, conns, round, |_| details(&b.tokens)),
    ];
    let [a, zero, lease, barrier, through] = alternating(&sides, b.timing.rounds)
        .await
        .try_into()
        .unwrap_or_else(|_| panic!("one measurement per side"));
    Details {
        a,
        zero,
        lease,
        barrier,
        through,
        lease_metrics: Metrics::read(b.server.addr).since(&lease_before),
        barrier_metrics: Metrics::read(b.barrier.addr).since(&barrier_before),
    }
}

/// The measures: commands per validation, the cache's counters, the answers' sizes.
async fn note(b: &Bench, t: &mut Tables, d: &Details) {
    t.measure(
        "Redis commands per validation under 64 connections (`INFO commandstats`; ceiling (a): one): read lease / `VALIDATION_LEASE_MS=0` / reading through",
        format!(
            "{:.4} / {:.3} / {:.3}",
            d.lease.commands_per_op(),
            d.barrier.commands_per_op(),
            d.through.commands_per_op()
        ),
    );
    let cache = "hits ÷ validations; barriers; mean requests per barrier; heartbeats (each barrier and heartbeat is a `WAIT 0 0`)";
    t.measure(
        &format!("validation cache, read lease: {cache}"),
        cache_counters(&d.lease_metrics),
    );
    t.measure(
        &format!("validation cache, `VALIDATION_LEASE_MS=0`: {cache}"),
        cache_counters(&d.barrier_metrics),
    );
    t.measure(
        "ceiling (a) p99 under 64 connections",
        format!("{:.2} ms", d.a.report.p99_ms()),
    );
    let query = format!("?access_token={}", b.tokens[0]);
    let details_len = body_len(b.server.addr, &format!("/user/_details{query}")).await;
    let fixed_len = body_len(b.per_worker.addr, &format!("/fixed{query}")).await;
    t.measure(
        "answer body bytes: details / ceiling (0)",
        format!("{details_len} / {fixed_len}"),
    );
}

fn cache_counters(m: &Metrics) -> String {
    let batches = m.get("token_server_validation_barrier_batch_size_count");
    format!(
        "{:.3}; {:.0}; {:.1}; {:.0}",
        m.hit_rate(),
        batches,
        m.get("token_server_validation_barrier_batch_size_sum") / batches.max(1.0),
        m.get("token_server_validation_heartbeats_total"),
    )
}

/// The length of the body `GET path` answers; 0 if it does not.
async fn body_len(addr: SocketAddr, path: &str) -> usize {
    match Conn::open(addr).await {
        Ok(mut conn) => conn.get(path).await.map_or(0, |(_, body)| body.len()),
        Err(_) => 0,
    }
}
