//! Password logins against ceiling (b), bcrypt verifications per second on every core with
//! no HTTP: cost 10 on the default server; cost 4, at the session cap, and logout + login on
//! the server whose users are all cost 4.

use crate::bench::{Bench, PREFIX};
use crate::counters::Commands;
use crate::load::{Conn, Workload};
use crate::measure::measured;
use crate::procs;
use crate::report::{Against, Tables};
use crate::seed::{self, BENCH4_UUID, PASSWORD};
use crate::workloads::{LoginLogout, login};
use std::sync::Arc;
use std::time::{Duration, Instant};
use token_server::config::DEFAULT_MAX_SESSIONS_PER_USER;

pub async fn run(b: &Bench, t: &mut Tables) {
    let (bcrypt10, bcrypt4) = (bcrypt10(t), bcrypt_rate(4, 2.0));
    let (warmup, duration) = b.single();
    let login10 = measured(&b.server, &b.redis, login("bench10"), 16, warmup, duration).await;
    t.row(
        "login, bcrypt cost 10",
        &login10,
        &[Against::new(bcrypt10, "(b) cost 10")],
    );
    t.found.login_vs_b = Some(login10.rate() / bcrypt10.max(1.0));

    // Every counted login is one past the cap: it ends the user's session expiring first.
    let cap = DEFAULT_MAX_SESSIONS_PER_USER as usize;
    let mut conn = procs::redis_conn(&b.redis);
    seed::fill_to(&b.store, &mut conn, PREFIX, BENCH4_UUID, cap).await;
    // One login first, untimed: a replica that has served a name reads its user once per
    // login, one that has not yet reads it twice (`login/hints.rs`), and the 16 connections'
    // first logins would otherwise all be that first one.
    let warm = login("bench4");
    if let Ok(mut c) = Conn::open(b.light.addr).await {
        warm.op(&mut c, &mut ()).await;
    }
    let before = seed::live_sessions(&mut conn, PREFIX, BENCH4_UUID);
    // Its commands are counted on the shared Redis: the other servers' last heartbeats first.
    Commands::wait_quiet(&mut conn);
    let login4 = measured(&b.light, &b.redis, login("bench4"), 16, warmup, duration).await;
    let after = seed::live_sessions(&mut conn, PREFIX, BENCH4_UUID);
    t.row(
        &format!(
            "login, bcrypt cost 4, at the session cap ({cap}: each login ends a session; on a server whose users are all cost 4, as are the next two)"
        ),
        &login4,
        &[Against::new(bcrypt4, "(b) cost 4")],
    );
    t.cost("login, cost 4, at the session cap", &login4);
    t.measure(
        "login, cost 4, at the session cap: Redis commands per login; the user's sessions before / after",
        format!("{:.1}; {before} / {after}", login4.commands_per_op()),
    );
    t.measure(
        "login, cost 4, at the session cap: Redis commands per login, by name",
        login4.commands.per_op(login4.report.all_ops),
    );
    t.found.login_cap_commands = Some(login4.commands_per_op());

    let pairs = Arc::new(LoginLogout {
        user: "bench4",
        password: PASSWORD,
    });
    let login_logout = measured(&b.light, &b.redis, pairs, 32, warmup, duration).await;
    t.row("logout + login (cost 4), per pair", &login_logout, &[]);
    t.cost("logout + login (cost 4), per pair", &login_logout);
    t.measure(
        "ceiling (b): bcrypt verify/s on all cores, cost 10 / cost 4",
        format!("{bcrypt10:.0} / {bcrypt4:.0}"),
    );
}

/// Ceiling (b) at cost 10, measured once per run.
pub fn bcrypt10(t: &mut Tables) -> f64 {
    *t.found.bcrypt10.get_or_insert_with(|| bcrypt_rate(10, 3.0))
}

/// bcrypt verifications per second on every core, no HTTP: ceiling (b).
fn bcrypt_rate(cost: u32, secs: f64) -> f64 {
    let hash = bcrypt::hash("ceiling", cost).expect("bcrypt");
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let hash = hash.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let _ = bcrypt::verify("ceiling", &hash);
                    n += 1;
                }
                n
            })
        })
        .collect();
    let total: u64 = handles.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    total as f64 / secs
}
