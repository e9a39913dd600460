//! The scenario families, one file each; each measures, then adds its rows, measures, costs
//! and findings to the tables.

mod commit_wait;
mod connections;
mod flood;
mod hundred_k;
mod login;
mod mix;
mod one_hop;
mod refresh;
mod tail;
mod validation;

use crate::args::Family;
use crate::bench::Bench;
use crate::report::Tables;

/// Runs one family against the shared processes.
pub async fn run(family: Family, b: &Bench, t: &mut Tables) {
    match family {
        Family::Details => validation::run(b, t).await,
        Family::Connections => connections::run(b, t).await,
        Family::OneHop => one_hop::run(b, t).await,
        Family::CommitWait => commit_wait::run(b, t).await,
        Family::Refresh => refresh::run(b, t).await,
        Family::Login => login::run(b, t).await,
        Family::Mix => mix::run(b, t).await,
        Family::Flood => flood::run(b, t).await,
        Family::HundredK => hundred_k::run(b, t).await,
    }
}
