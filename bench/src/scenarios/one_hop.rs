//! Redis one hop away: three more token-servers reach this run's Redis through a proxy that
//! holds what passes each way (`--hop-delay-us`, 0.25 ms by default), and details runs on
//! each in alternating rounds: the read lease, the barrier and reading through. The lease
//! answers cached validations with no round trip, so its latency should not carry the hop.

use crate::bench::{Bench, Config};
use crate::measure::{alternating, side};
use crate::proxy::DelayProxy;
use crate::report::Tables;
use crate::workloads::details;

pub async fn run(b: &Bench, t: &mut Tables) {
    let proxy = DelayProxy::start(b.redis.addr, b.hop_delay);
    let url = format!("redis://{}", proxy.addr);
    let lease = b.token_server(&url, Config::default());
    let barrier = b.token_server(&url, Config::BARRIER);
    let through = b.token_server(&url, Config::THROUGH);
    let (redis, round) = (&b.redis, b.round());
    let sides = [
        side(&lease, redis, 64, round, |_| details(&b.tokens)),
        side(&barrier, redis, 64, round, |_| details(&b.barrier_tokens)),
        side(&through, redis, 64, round, |_| details(&b.tokens)),
    ];
    let [lease_m, barrier_m, through_m] = alternating(&sides, b.timing.rounds)
        .await
        .try_into()
        .unwrap_or_else(|_| panic!("one measurement per side"));
    let hop = format!(
        "Redis one hop away ({:.2} ms each way through a proxy)",
        b.hop_delay.as_secs_f64() * 1000.0
    );
    t.row(&format!("details, {hop}: read lease"), &lease_m, &[]);
    t.row(
        &format!("details, {hop}: `VALIDATION_LEASE_MS=0`"),
        &barrier_m,
        &[],
    );
    t.row(&format!("details, {hop}: reading through"), &through_m, &[]);
    let through_p50 = through_m.report.p50_ms().max(0.001);
    let ratio = lease_m.report.p50_ms() / through_p50;
    t.measure(
        "one hop: details p50 ÷ reading-through p50, read lease / `VALIDATION_LEASE_MS=0`",
        format!(
            "{ratio:.2} / {:.2}",
            barrier_m.report.p50_ms() / through_p50
        ),
    );
    t.measure(
        "one hop: the proxy's mean hold per chunk, each way",
        format!("{:.3} ms", proxy.mean_hold_ms()),
    );
    t.found.hop_p50_ratio = Some(ratio);
}
