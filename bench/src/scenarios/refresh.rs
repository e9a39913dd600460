//! Refresh against ceiling (c), `POST /floor`: the bare handler running
//! `bench/lua/refresh-floor.lua`. At 64 connections a closed-loop refresh mostly measures the
//! commit wait (see `commit_wait.rs`), so both run at 512 connections, where the work shows.

use crate::bench::Bench;
use crate::measure::{alternating, side};
use crate::report::{Against, Tables};
use crate::seed;
use crate::workloads::{CeilingFloor, Refresh};
use std::sync::Arc;

/// Connections of the comparison.
const CONNS: usize = 512;

pub async fn run(b: &Bench, t: &mut Tables) {
    let mut chains = vec![];
    for round in 0..b.timing.rounds {
        let offset = 1_000_000 + 1_000 * round;
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
        "ceiling (c): bare handler running bench/lua/refresh-floor.lua, 512 connections; alternating with refresh",
        &c,
        &[],
    );
    t.row(
        "refresh (rotation on), 512 connections (at 64 the commit wait hides the work)",
        &refresh,
        &[Against::new(c.rate(), "(c)")],
    );
    t.cost("ceiling (c): the refresh floor script, 512 connections", &c);
    t.cost("refresh (rotation on), 512 connections", &refresh);
    t.usec_per_call("refresh script", &refresh, "evalsha");
    t.usec_per_call("floor script", &c, "evalsha");
    t.found.refresh_vs_c = Some(refresh.rate() / c.rate().max(1.0));
}
