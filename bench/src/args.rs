//! The command line: how long each measurement runs, how many alternating rounds, the hop's
//! delay, and which scenario families to run.

use clap::{Parser, ValueEnum};
use std::time::Duration;

/// Benchmarks token-server against its ceilings on loopback and prints the tables of
/// bench/README.md. Run it with `bench/run`, which builds the release binaries first.
#[derive(Parser, Debug)]
#[command(name = "token-server-bench")]
pub struct Args {
    /// Seconds each single scenario is measured, after the warm-up; a round of an alternating
    /// comparison lasts 0.6 × this (at least 1 s).
    #[arg(long, default_value_t = 5.0, value_parser = positive)]
    pub duration: f64,
    /// Seconds of warm-up before each measurement; not counted.
    #[arg(long, default_value_t = 1.0, value_parser = non_negative)]
    pub warmup: f64,
    /// Rounds of the comparisons behind a target (details with (a) and (0), one hop, refresh
    /// with (c), idle and flooded, 1k and 100k); the others run `rounds - 1` (at least one).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// Microseconds the one-hop proxy holds what passes, each way.
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    pub hop_delay_us: u64,
    /// Run only these scenario families (repeat the flag for several); all when absent.
    #[arg(long, value_enum)]
    pub only: Vec<Family>,
}

/// A scenario family: one file under `src/scenarios/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Family {
    /// Details in three modes (lease, barrier, reading through) with ceilings (a) and (0).
    Details,
    /// Ceiling (a) over one multiplexed connection shared by the workers, and over a
    /// deadpool-redis pool.
    Connections,
    /// Details with Redis one delayed hop away, in the three modes.
    OneHop,
    /// Logout and refresh with the read lease against `VALIDATION_LEASE_MS=0`.
    CommitWait,
    /// Refresh at 1024 connections with ceiling (c).
    Refresh,
    /// Logins (cost 10 and cost 4 at the session cap), logout + login, ceiling (b).
    Login,
    /// The gateway mix.
    Mix,
    /// Details idle and during a cost-10 login flood.
    Flood,
    /// Details with 100k live sessions against 1k.
    #[value(name = "100k")]
    HundredK,
}

impl Family {
    /// Every family, in the order a full run takes them.
    pub const ALL: [Family; 9] = [
        Family::Details,
        Family::Connections,
        Family::OneHop,
        Family::CommitWait,
        Family::Refresh,
        Family::Login,
        Family::Mix,
        Family::Flood,
        Family::HundredK,
    ];
}

impl Args {
    /// The families to run, in the order of [`Family::ALL`].
    pub fn families(&self) -> Vec<Family> {
        Family::ALL
            .into_iter()
            .filter(|f| self.only.is_empty() || self.only.contains(f))
            .collect()
    }

    pub fn timing(&self) -> Timing {
        Timing {
            warmup: Duration::from_secs_f64(self.warmup),
            single: Duration::from_secs_f64(self.duration),
            round: Duration::from_secs_f64((self.duration * 0.6).max(1.0)),
            rounds: self.rounds as usize,
            short_rounds: (self.rounds as usize - 1).max(1),
        }
    }
}

/// How long measurements last.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub warmup: Duration,
    /// A scenario measured on its own.
    pub single: Duration,
    /// One round of an alternating comparison.
    pub round: Duration,
    /// Rounds of a comparison behind a target.
    pub rounds: usize,
    /// Rounds of a comparison that only informs.
    pub short_rounds: usize,
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 3600.0 => Ok(v),
        _ => Err(format!("{s} is not a number of seconds in (0, 3600]")),
    }
}

fn non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=600.0).contains(&v) => Ok(v),
        _ => Err(format!("{s} is not a number of seconds in [0, 600]")),
    }
}
