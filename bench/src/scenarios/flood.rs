//! Details at 32 connections, idle and during a flood of cost-10 logins on 16 more, in
//! alternating rounds: what bcrypt on the same cores does to validation's latency.

use super::login::bcrypt10;
use crate::bench::Bench;
use crate::counters::Commands;
use crate::load::run as load;
use crate::measure::{CpuMark, Measured, measured, plus};
use crate::report::{Against, Tables};
use crate::workloads::{details, login};

pub async fn run(b: &Bench, t: &mut Tables) {
    let (warmup, round) = b.round();
    let (mut idle, mut flooded, mut flood) = (None::<Measured>, None::<Measured>, None::<Measured>);
    for _ in 0..b.timing.rounds {
        let m = measured(&b.server, &b.redis, details(&b.tokens), 32, warmup, round).await;
        idle = Some(plus(idle, m));
        let mark = CpuMark::now(&b.server, &b.redis);
        let (validations, logins) = tokio::join!(
            load(b.server.addr, details(&b.tokens), 32, warmup, round),
            load(b.server.addr, login("bench10"), 16, warmup, round),
        );
        let (cpu_secs, wall) = mark.since();
        let m = |report, cpu_secs| Measured {
            report,
            cpu_secs,
            wall,
            commands: Commands::default(),
        };
        flooded = Some(plus(flooded, m(validations, cpu_secs)));
        flood = Some(plus(flood, m(logins, [0.0; 3])));
    }
    let (Some(idle), Some(flooded), Some(flood)) = (idle, flooded, flood) else {
        panic!("no flood rounds ran");
    };
    t.row("details, 32 connections, idle", &idle, &[]);
    t.row(
        "details, 32 connections, during a cost-10 login flood",
        &flooded,
        &[],
    );
    let bcrypt10 = bcrypt10(t);
    t.row_without_cpu(
        "the login flood itself (16 connections)",
        &flood,
        &[Against::new(bcrypt10, "(b) cost 10")],
    );
    let ratio = flooded.report.p99_ms() / idle.report.p99_ms().max(0.001);
    t.measure(
        "details p99 during login flood ÷ idle p99 (32 connections)",
        format!("{ratio:.2}"),
    );
    t.found.flood_ratio = Some(ratio);
}
