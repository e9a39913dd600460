//! A gateway's day on the cost-4 server: 90% details, 7% refresh, 2% login, 1% logout, with
//! its RSS sampled while it runs.

use crate::bench::Bench;
use crate::measure::measured;
use crate::procs;
use crate::report::Tables;
use crate::seed::{self, PASSWORD};
use crate::workloads::{Details, Login, Mix, Refresh};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub async fn run(b: &Bench, t: &mut Tables) {
    let mix = Arc::new(Mix {
        details: Details {
            tokens: b.tokens.clone(),
        },
        refresh: Refresh {
            refresh_tokens: seed::refresh_tokens(&b.store, 128, 2_000_000).await,
        },
        login: Login {
            user: "bench4",
            password: PASSWORD,
        },
    });
    let (warmup, duration) = b.single();
    let pid = b.light.child.id();
    let sampler = tokio::spawn(async move {
        let mut max = 0u64;
        let end = Instant::now() + warmup + duration;
        while Instant::now() < end {
            max = max.max(procs::rss_of(pid));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        max
    });
    let mixed = measured(&b.light, &b.redis, mix, 64, warmup, duration).await;
    let rss_load = sampler.await.unwrap_or(0);
    let a = t.ceiling_a();
    t.row(
        "gateway mix: 90% details, 7% refresh, 2% login, 1% logout",
        &mixed,
        &a,
    );
    t.measure(
        "token-server RSS idle / peak under the gateway mix",
        format!("{} / {rss_load} KiB", b.light_rss_idle),
    );
}
