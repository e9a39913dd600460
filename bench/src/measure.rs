//! One measurement: a scenario's report, the CPU each process used while it ran and the
//! Redis commands it caused; and comparisons measured in alternating rounds, so that the
//! drift of this shared machine during a run touches every side alike.

use crate::counters::Commands;
use crate::load::{self, Report, Workload};
use crate::procs::{self, Proc};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A scenario's report, the CPU each process used while it ran, and the Redis commands it
/// caused.
#[derive(Clone)]
pub struct Measured {
    pub report: Report,
    /// CPU seconds of the server under test, Redis and the load generator.
    pub cpu_secs: [f64; 3],
    pub wall: f64,
    pub commands: Commands,
}

impl Measured {
    /// Share of one core each process used.
    pub fn cpu(&self) -> [f64; 3] {
        self.cpu_secs.map(|c| c / self.wall)
    }
    /// Redis commands per operation, warm-up included on both sides.
    pub fn commands_per_op(&self) -> f64 {
        self.commands.calls() as f64 / self.report.all_ops.max(1) as f64
    }
    /// The Redis process's CPU µs per operation: its commands and its I/O.
    pub fn redis_usec_per_op(&self) -> f64 {
        self.cpu_secs[1] * 1e6 / self.report.all_ops.max(1) as f64
    }
    /// The server's CPU µs per operation.
    pub fn server_usec_per_op(&self) -> f64 {
        self.cpu_secs[0] * 1e6 / self.report.all_ops.max(1) as f64
    }
    pub fn rate(&self) -> f64 {
        self.report.rate()
    }

    /// Adds `next` to this: operations, time, CPU, commands and histograms sum.
    pub fn merge(mut self, next: Measured) -> Measured {
        self.report.ops += next.report.ops;
        self.report.all_ops += next.report.all_ops;
        self.report.errors += next.report.errors;
        self.report.secs += next.report.secs;
        let _ = self.report.hist.add(next.report.hist);
        for i in 0..3 {
            self.cpu_secs[i] += next.cpu_secs[i];
        }
        self.wall += next.wall;
        self.commands.add(&next.commands);
        self
    }
}

/// `next` added to `acc`, or `next` alone.
pub fn plus(acc: Option<Measured>, next: Measured) -> Measured {
    match acc {
        Some(sum) => sum.merge(next),
        None => next,
    }
}

/// CPU used so far by the server under test, Redis and this process.
pub struct CpuMark([Duration; 3], Instant, u32, u32);

impl CpuMark {
    pub fn now(server: &Proc, redis: &Proc) -> CpuMark {
        let (s, r) = (server.child.id(), redis.child.id());
        CpuMark(Self::read(s, r), Instant::now(), s, r)
    }
    fn read(server: u32, redis: u32) -> [Duration; 3] {
        [
            procs::cpu_of(server),
            procs::cpu_of(redis),
            procs::cpu_of(std::process::id()),
        ]
    }
    /// CPU seconds of each process since the mark, and the wall-clock seconds.
    pub fn since(&self) -> ([f64; 3], f64) {
        let after = Self::read(self.2, self.3);
        let secs = |i: usize| (after[i] - self.0[i]).as_secs_f64();
        ([secs(0), secs(1), secs(2)], self.1.elapsed().as_secs_f64())
    }
}

/// Runs a scenario against `target` and notes how the CPU was shared while it ran and the
/// commands `redis` counted.
pub async fn measured<W: Workload>(
    target: &Proc,
    redis: &Proc,
    workload: Arc<W>,
    conns: usize,
    warmup: Duration,
    duration: Duration,
) -> Measured {
    let run = load::run(target.addr, workload, conns, warmup, duration);
    measuring(target, redis, run).await
}

/// What `run` measured against `target`, with the CPU and the commands of `redis`.
async fn measuring(
    target: &Proc,
    redis: &Proc,
    run: impl Future<Output = load::Report>,
) -> Measured {
    let mut conn = procs::redis_conn(redis);
    let commands = Commands::read(&mut conn);
    let mark = CpuMark::now(target, redis);
    let report = run.await;
    let (cpu_secs, wall) = mark.since();
    Measured {
        report,
        cpu_secs,
        wall,
        commands: Commands::read(&mut conn).since(&commands),
    }
}

/// One side of an alternating comparison: given the round's number, its measurement.
pub type Side<'a> = Box<dyn Fn(usize) -> Pin<Box<dyn Future<Output = Measured> + 'a>> + 'a>;

/// A side that runs `load(round)` against `target` with `conns` connections.
pub fn side<'a, W: Workload>(
    target: &'a Proc,
    redis: &'a Proc,
    conns: usize,
    (warmup, duration): (Duration, Duration),
    load: impl Fn(usize) -> Arc<W> + 'a,
) -> Side<'a> {
    Box::new(move |round| {
        Box::pin(measured(
            target,
            redis,
            load(round),
            conns,
            warmup,
            duration,
        ))
    })
}

/// A side that runs `load` against `target` with `conns` connections at `rate` operations
/// per second in all (see [`load::run_paced`]).
pub fn paced_side<'a, W: Workload>(
    target: &'a Proc,
    redis: &'a Proc,
    conns: usize,
    timing: (Duration, Duration),
    rate: f64,
    load: Arc<W>,
) -> Side<'a> {
    Box::new(move |_| {
        let run = load::run_paced(target.addr, load.clone(), conns, timing, rate);
        Box::pin(measuring(target, redis, run))
    })
}

/// Measures each side in turn, `rounds` times over, and merges each side's rounds.
pub async fn alternating(sides: &[Side<'_>], rounds: usize) -> Vec<Measured> {
    let mut acc: Vec<Option<Measured>> = vec![None; sides.len()];
    for round in 0..rounds.max(1) {
        for (sum, side) in acc.iter_mut().zip(sides) {
            *sum = Some(plus(sum.take(), side(round).await));
        }
    }
    acc.into_iter().flatten().collect()
}
