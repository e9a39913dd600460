//! Refresh against ceiling (c), `POST /floor`: the bare handler running
//! `bench/lua/refresh-floor.lua`. A closed-loop refresh is bounded by its connections over its
//! latency, which includes the commit wait (about 16 ms; see `commit_wait.rs`): at 64
//! connections that bound is about 4k/s, at 512 about 32k/s, near what the work allows, so
//! the CPU still idles. Both run at 1024 connections, where the work is the bound.

use crate::bench::Bench;
use crate::measure::{alternating, side};
use crate::report::{Against, Tables};
use crate::seed;
use crate::workloads::{CeilingFloor, Refresh};
use std::sync::Arc;

/// Connections of the comparison.
const CONNS: usize = 1024;

pub async fn run(b: &Bench, t: &mut Tables) {
    let mut chains = vec![];
    for round in 0..b.timing.rounds {
        let offset = 1_000_000 + 10_000 * round;
        chains.push(Arc::new(Refresh {
            refresh_tokens: seed::refresh_tokens(&b.store, CONNS, offset).await,
        }));
    }
    let floor = Arc::new(CeilingFloor { keys: 1_000 });
    let (redis, round) = (&b.redis, b.round());
    let sides = [
        side(&b.per_worker, redis, CONNS, round, |_| floor.clone()),
        side(&b.server, redis, CONNS, round, |r| chains[r].clone()),
    ];
    let [c, refresh] = alternating(&sides, b.timing.rounds)
        .await
        .try_into()
        .unwrap_or_else(|_| panic!("one measurement per side"));
    t.row(
        &format!("ceiling (c): bare handler running bench/lua/refresh-floor.lua, {CONNS} connections; alternating with refresh"),
        &c,
        &[],
    );
    t.row(
        &format!(
            "refresh (rotation on), {CONNS} connections (fewer and the commit wait bounds the rate)"
        ),
        &refresh,
        &[Against::new(c.rate(), "(c)")],
    );
    t.cost(
        &format!("ceiling (c): the refresh floor script, {CONNS} connections"),
        &c,
    );
    t.cost(
        &format!("refresh (rotation on), {CONNS} connections"),
        &refresh,
    );
    t.usec_per_call("refresh script", &refresh, "evalsha");
    t.usec_per_call("floor script", &c, "evalsha");
    t.found.refresh_vs_c = Some(refresh.rate() / c.rate().max(1.0));
}
