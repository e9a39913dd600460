//! The price of the commit wait: a revoking write (logout, refresh) waits out the read lease
//! before it answers. Logout and refresh on the default server against the one with
//! `VALIDATION_LEASE_MS=0`, 64 connections, in alternating rounds.

use crate::bench::Bench;
use crate::measure::{Measured, alternating, side};
use crate::report::Tables;
use crate::seed;
use crate::workloads::{Logout, Refresh};
use std::sync::Arc;

pub async fn run(b: &Bench, t: &mut Tables) {
    let rounds = b.timing.short_rounds;
    let (mut lease_chains, mut barrier_chains) = (vec![], vec![]);
    for round in 0..rounds {
        let offset = 3_000_000 + 1_000 * round;
        lease_chains.push(Arc::new(Refresh {
            refresh_tokens: seed::refresh_tokens(&b.store, 64, offset).await,
        }));
        barrier_chains.push(Arc::new(Refresh {
            refresh_tokens: seed::refresh_tokens(&b.barrier_store, 64, offset).await,
        }));
    }
    let logout = Arc::new(Logout {
        store: b.store.clone(),
    });
    let barrier_logout = Arc::new(Logout {
        store: b.barrier_store.clone(),
    });
    let (redis, round) = (&b.redis, b.round());
    let sides = [
        side(&b.server, redis, 64, round, |_| logout.clone()),
        side(&b.barrier, redis, 64, round, |_| barrier_logout.clone()),
        side(&b.server, redis, 64, round, |r| lease_chains[r].clone()),
        side(&b.barrier, redis, 64, round, |r| barrier_chains[r].clone()),
    ];
    let [logout, barrier_logout, refresh, barrier_refresh] = alternating(&sides, rounds)
        .await
        .try_into()
        .unwrap_or_else(|_| panic!("one measurement per side"));
    let started =
        "each after an untimed session start through the library, which the rate and CPU include";
    t.row(
        &format!("logout, read lease (default settings; {started})"),
        &logout,
        &[],
    );
    t.row(
        "logout, `VALIDATION_LEASE_MS=0` (the same)",
        &barrier_logout,
        &[],
    );
    t.row(
        "refresh (rotation on), 64 connections, read lease: mostly the commit wait",
        &refresh,
        &[],
    );
    t.row(
        "refresh (rotation on), 64 connections, `VALIDATION_LEASE_MS=0`",
        &barrier_refresh,
        &[],
    );
    t.measure(
        "price of the commit wait, read lease − `VALIDATION_LEASE_MS=0`: logout p50 / p99; refresh p50 / p99 (64 connections)",
        format!(
            "{}; {}",
            difference(&logout, &barrier_logout),
            difference(&refresh, &barrier_refresh)
        ),
    );
}

/// `p50 / p99` of `lease` less those of `barrier`, in milliseconds.
fn difference(lease: &Measured, barrier: &Measured) -> String {
    format!(
        "{:+.2} / {:+.2} ms",
        lease.report.p50_ms() - barrier.report.p50_ms(),
        lease.report.p99_ms() - barrier.report.p99_ms()
    )
}
