//! Which Redis connection a handler should use: ceiling (a) over a multiplexed connection
//! per worker against one shared by the workers (alternating rounds: the difference is
//! smaller than this machine's drift), and over a deadpool-redis pool.

use crate::bench::Bench;
use crate::measure::{alternating, measured, side};
use crate::report::{Against, Tables};
use crate::workloads::CeilingGet;
use std::sync::Arc;

pub async fn run(b: &Bench, t: &mut Tables) {
    let get = Arc::new(CeilingGet { keys: 1_000 });
    let (redis, round) = (&b.redis, b.round());
    let sides = [
        side(&b.per_worker, redis, 64, round, |_| get.clone()),
        side(&b.shared, redis, 64, round, |_| get.clone()),
    ];
    let [per_worker, shared] = alternating(&sides, b.timing.short_rounds)
        .await
        .try_into()
        .unwrap_or_else(|_| panic!("one measurement per side"));
    if t.found.ceiling_a.is_none() {
        t.row(
            "ceiling (a): bare handler, one GET, a multiplexed connection per worker; alternating with the next",
            &per_worker,
            &[],
        );
    }
    t.row(
        "same with one multiplexed connection shared by the workers",
        &shared,
        &[Against::new(per_worker.rate(), "(a) alternating")],
    );
    let (warmup, duration) = b.single();
    let pooled = measured(&b.pooled, redis, get.clone(), 64, warmup, duration).await;
    // Ceiling (a) as the details rounds measured it, when they ran.
    let a = match t.found.ceiling_a {
        Some(rate) => Against::new(rate, "(a)"),
        None => Against::new(per_worker.rate(), "(a) alternating"),
    };
    t.row(
        "same with a deadpool-redis pool (checkout per request)",
        &pooled,
        &[a],
    );
}
