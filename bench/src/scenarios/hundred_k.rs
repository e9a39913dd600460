//! 100k against 1k live sessions: a second Redis holds 100k sessions over 20k users behind
//! a second token-server (default settings), and the two pairs are measured in alternating
//! rounds. Also Redis's memory per session, and the server's RSS with its cache full.

use crate::bench::{Bench, Config, PREFIX};
use crate::counters::Metrics;
use crate::load::run as load;
use crate::measure::{alternating, side};
use crate::procs::{self, Proc};
use crate::report::Tables;
use crate::seed;
use crate::workloads::details;
use std::sync::Arc;
use std::time::Duration;

/// The second pair, its sessions' access tokens and Redis bytes per session.
struct Big {
    server: Proc,
    redis: Proc,
    tokens: Arc<Vec<String>>,
    bytes_per_session: f64,
}

pub async fn run(b: &Bench, t: &mut Tables) {
    let big = start(b).await;
    // Gateways validate the same tokens over and over: one unmeasured pass over the 100k
    // tokens first, so that the rounds see the cache as steady traffic leaves it.
    let pass = (Duration::ZERO, 2 * b.timing.round);
    load(big.server.addr, details(&big.tokens), 64, pass.0, pass.1).await;
    let metrics = Metrics::read(big.server.addr);
    let round = b.round();
    let sides = [
        side(&b.server, &b.redis, 64, round, |_| details(&b.tokens)),
        side(&big.server, &big.redis, 64, round, |_| details(&big.tokens)),
    ];
    let [small, large] = alternating(&sides, b.timing.rounds)
        .await
        .try_into()
        .unwrap_or_else(|_| panic!("one measurement per side"));
    let rss_full = procs::rss_of(big.server.child.id());
    let after = Metrics::read(big.server.addr);
    t.measure(
        "validation cache with 100k live sessions: hits ÷ validations",
        format!("{:.3}", after.since(&metrics).hit_rate()),
    );
    let a = t.ceiling_a();
    t.row(
        "details (1k live sessions), alternating with 100k",
        &small,
        &a,
    );
    t.row(
        "details (100k live sessions: a second Redis and server)",
        &large,
        &a,
    );
    t.cost("validation (details, 100k sessions)", &large);
    t.usec_per_call("details MGET, 100k", &large, "mget");
    let ratio = large.rate() / small.rate().max(1.0);
    t.measure(
        "details throughput, 100k ÷ 1k live sessions (alternating rounds)",
        format!("{ratio:.2}"),
    );
    t.measure(
        "Redis memory per live session (INFO used_memory delta over 100k sessions)",
        format!("{:.0} bytes", big.bytes_per_session),
    );
    let cached = after.get("token_server_validation_cache_entries");
    t.measure(
        "token-server RSS after the 100k rounds, with its cache entries",
        format!("{rss_full} KiB, {cached:.0} entries"),
    );
    t.found.big_ratio = Some(ratio);
    t.found.session_bytes = Some(big.bytes_per_session);
}

/// The second Redis and server, and the 100k sessions seeded into it.
async fn start(b: &Bench) -> Big {
    let redis = procs::redis(&b.dir);
    let url = format!("redis://{}", redis.addr);
    let server = b.token_server(&url, Config::default());
    let store = seed::store(&url, PREFIX);
    let mut conn = procs::redis_conn(&redis);
    let before = seed::used_memory(&mut conn);
    let tokens = seed::access_tokens(&store, 100_000, 20_000).await;
    let after = seed::used_memory(&mut conn);
    Big {
        bytes_per_session: (after - before) as f64 / tokens.len().max(1) as f64,
        tokens: Arc::new(tokens),
        server,
        redis,
    }
}
