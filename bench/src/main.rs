//! The benchmark: starts its own redis-server, release token-servers and the ceiling
//! servers, seeds users and sessions, runs each scenario family (`src/scenarios/`) with a
//! fixed number of connections for a fixed time after a warm-up, and prints the tables of
//! bench/README.md. Run it with `bench/run`.

mod args;
mod bench;
mod counters;
mod load;
mod measure;
mod procs;
mod proxy;
mod report;
mod scenarios;
mod seed;
mod targets;
mod workloads;

use clap::Parser;
use std::time::Instant;

#[tokio::main]
async fn main() {
    let args = args::Args::parse();
    let started = Instant::now();
    let bench = bench::Bench::start(&args).await;
    let mut tables = report::Tables::default();
    for family in args.families() {
        eprintln!("[{:>4.0} s] {family:?}", started.elapsed().as_secs_f64());
        scenarios::run(family, &bench, &mut tables).await;
    }
    tables.print();
    let t = bench.timing;
    println!();
    println!(
        "{} cores; warm-up {} s; {} s per single scenario; comparisons in {} rounds of {} s ({} where no target depends on them); whole run {:.0} s.",
        bench.workers,
        t.warmup.as_secs_f64(),
        t.single.as_secs_f64(),
        t.rounds,
        t.round.as_secs_f64(),
        t.short_rounds,
        started.elapsed().as_secs_f64()
    );
}
