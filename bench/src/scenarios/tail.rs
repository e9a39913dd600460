//! Details' p99 against ceiling (a)'s at the same load. In the closed-loop comparison each
//! side runs as fast as it goes, so the faster side also keeps the load generator busier and
//! its tail is the scheduler's (ceiling (0), with no Redis at all, has a longer p99 than (a)
//! there). Here both are paced at the same rate, 0.6 × (a)'s closed-loop rate, in
//! alternating rounds, so their latencies compare.

use crate::bench::Bench;
use crate::measure::{alternating, paced_side};
use crate::report::Tables;
use crate::workloads::{CeilingGet, details};
use std::sync::Arc;

/// The pace, as a share of ceiling (a)'s closed-loop rate.
const SHARE: f64 = 0.6;

/// `a_rate`: ceiling (a)'s closed-loop rate; `closed`: details p99 ÷ (a)'s in that loop.
pub async fn run(b: &Bench, t: &mut Tables, a_rate: f64, closed: f64) {
    let rate = (SHARE * a_rate).round();
    let (redis, timing) = (&b.redis, b.round());
    let get = Arc::new(CeilingGet { keys: 1_000 });
    let sides = [
        paced_side(&b.per_worker, redis, 64, timing, rate, get),
        paced_side(&b.server, redis, 64, timing, rate, details(&b.tokens)),
    ];
    let [a, lease] = alternating(&sides, b.timing.rounds)
        .await
        .try_into()
        .unwrap_or_else(|_| panic!("one measurement per side"));
    t.row(
        &format!("ceiling (a) paced at {rate:.0} req/s ({SHARE} × its closed-loop rate); alternating with details at the same pace"),
        &a,
        &[],
    );
    t.row("details, read lease, paced at the same rate", &lease, &[]);
    let paced = lease.report.p99_ms() / a.report.p99_ms().max(0.001);
    t.measure(
        "details p99 ÷ ceiling (a)'s p99, 64 connections: paced at the same rate / closed loop (each side as fast as it goes)",
        format!("{paced:.2} / {closed:.2}"),
    );
    t.found.details_p99_vs_a = Some(paced);
}
