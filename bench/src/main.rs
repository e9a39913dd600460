//! The benchmark: starts its own redis-server, the release token-server and the ceiling
//! server, seeds users and sessions, runs each scenario with a fixed number of connections
//! for a fixed time after a warm-up, and prints one markdown table. Run it with `bench/run`.

mod load;
mod procs;
mod workloads;

use load::{Report, run};
use std::sync::Arc;
use std::time::{Duration, Instant};
use token_server::config::TokenSecret;
use token_server::domain::session::{Generation, NewSession, SessionPolicy, Started};
use token_server::redis_io::RedisConn;
use token_server::store::Store;
use token_server::store::redis::RedisStore;
use workloads::*;

const USER_JSON: &str = r#"{"id":1,"uuid":"5e5c7d4e-4a5b-4d4a-9a43-9d7c1f2f0a01","userName":"bench4","name":"Bench User","mobileNumber":"9999999999","emailId":"bench@example.org","locale":"en_IN","type":"EMPLOYEE","roles":[{"name":"Employee","code":"EMPLOYEE","tenantId":"pb"},{"name":"Superuser","code":"SUPERUSER","tenantId":"pb"}],"active":true,"tenantId":"pb"}"#;

struct Row {
    scenario: String,
    report: Report,
    ceiling: Option<(f64, &'static str)>,
    /// Share of one core used by the server under test, Redis and the load generator.
    cpu: Option<[f64; 3]>,
}

/// CPU seconds used so far by the server under test, Redis and this process.
fn cpu_now(server: u32, redis: u32) -> [Duration; 3] {
    [
        procs::cpu_of(server),
        procs::cpu_of(redis),
        procs::cpu_of(std::process::id()),
    ]
}

fn cpu_share(before: [Duration; 3], after: [Duration; 3], wall: Duration) -> [f64; 3] {
    let share = |i: usize| (after[i] - before[i]).as_secs_f64() / wall.as_secs_f64();
    [share(0), share(1), share(2)]
}

/// Runs a scenario and notes how the CPU was shared while it ran.
async fn measured<W: load::Workload>(
    target: &procs::Proc,
    redis: &procs::Proc,
    workload: Arc<W>,
    conns: usize,
    warmup: Duration,
    duration: Duration,
) -> (Report, [f64; 3]) {
    let before = cpu_now(target.child.id(), redis.child.id());
    let t0 = Instant::now();
    let report = run(target.addr, workload, conns, warmup, duration).await;
    (
        report,
        cpu_share(
            before,
            cpu_now(target.child.id(), redis.child.id()),
            t0.elapsed(),
        ),
    )
}

/// Rounds in which a ceiling and the scenario compared with it alternate.
const ROUNDS: usize = 3;

/// Adds one measurement to another: operations, time and histograms sum, CPU shares average
/// by time.
fn merge(acc: Option<(Report, [f64; 3])>, (next, cpu): (Report, [f64; 3])) -> (Report, [f64; 3]) {
    let Some((mut sum, sum_cpu)) = acc else {
        return (next, cpu);
    };
    let weight = |a: f64, b: f64| (a * sum.secs + b * next.secs) / (sum.secs + next.secs);
    let cpu = [
        weight(sum_cpu[0], cpu[0]),
        weight(sum_cpu[1], cpu[1]),
        weight(sum_cpu[2], cpu[2]),
    ];
    sum.ops += next.ops;
    sum.errors += next.errors;
    sum.secs += next.secs;
    let _ = sum.hist.add(next.hist);
    (sum, cpu)
}

/// Measures the ceiling and a scenario alternately, one round per entry of `loads`, and merges
/// each side's rounds: drift of this shared machine during the run then touches both alike.
#[allow(clippy::too_many_arguments)]
async fn alternating<C: load::Workload, W: load::Workload>(
    ceiling: &procs::Proc,
    ceiling_load: Arc<C>,
    target: &procs::Proc,
    loads: Vec<Arc<W>>,
    redis: &procs::Proc,
    conns: usize,
    warmup: Duration,
    duration: Duration,
) -> ((Report, [f64; 3]), (Report, [f64; 3])) {
    let (mut a, mut b) = (None, None);
    for load in loads {
        let m = measured(
            ceiling,
            redis,
            ceiling_load.clone(),
            conns,
            warmup,
            duration,
        )
        .await;
        a = Some(merge(a, m));
        let m = measured(target, redis, load, conns, warmup, duration).await;
        b = Some(merge(b, m));
    }
    match (a, b) {
        (Some(a), Some(b)) => (a, b),
        _ => panic!("alternating needs at least one round"),
    }
}

fn seed_users(dir: &std::path::Path) -> std::path::PathBuf {
    let user = |name: &str, password: &str, cost: u32, id: u32| {
        let mut u: serde_json::Value = serde_json::from_str(USER_JSON).expect("user JSON");
        u["id"] = id.into();
        u["uuid"] = format!("bench-{name}").into();
        u["userName"] = name.into();
        u["password"] = bcrypt::hash(password, cost).expect("bcrypt").into();
        u
    };
    let users = serde_json::json!([
        user("bench10", "bench-password", 10, 1),
        user("bench4", "bench-password", 4, 2)
    ]);
    let path = dir.join("users.json");
    std::fs::write(&path, users.to_string()).expect("users file");
    path
}

/// Starts `count` sessions spread over `users` users, straight through the library's store.
async fn seed_sessions(
    store: &Store,
    count: usize,
    users: usize,
    offset: usize,
) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(count);
    let mut batch = vec![];
    for i in 0..count {
        let store = store.clone();
        let user = (offset + i) % users;
        batch.push(tokio::spawn(async move {
            let session = NewSession {
                user_uuid: format!("bench-user-{user}"),
                user_json: USER_JSON.to_string(),
                client_id: "egov-user-client".into(),
                scope: "read".into(),
                ip: "127.0.0.1".into(),
                user_agent: "token-server-bench".into(),
                generation: Generation::default(),
            };
            match store.issue_session(&session).await {
                Ok(Started::Issued(issued, _)) => {
                    Some((issued.pair.access.expose(), issued.pair.refresh.expose()))
                }
                _ => None,
            }
        }));
        if batch.len() == 256 || i + 1 == count {
            for t in batch.drain(..) {
                if let Ok(Some(pair)) = t.await {
                    out.push(pair);
                }
            }
        }
    }
    out
}

/// Mean microseconds Redis spent per call of `cmd` since the last reset, then resets the stats.
fn usec_per_call(conn: &mut redis::Connection, cmd: &str) -> f64 {
    usec_per_calls(conn, &[cmd])[0]
}

/// Redis's own time per call of each of `cmds` since the last reset, then resets the counts.
fn usec_per_calls(conn: &mut redis::Connection, cmds: &[&str]) -> Vec<f64> {
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(conn)
        .unwrap_or_default();
    let _: redis::RedisResult<()> = redis::cmd("CONFIG").arg("RESETSTAT").query(conn);
    cmds.iter()
        .map(|cmd| {
            stats
                .lines()
                .find(|l| l.starts_with(&format!("cmdstat_{cmd}:")))
                .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("usec_per_call=")))
                .and_then(|v| v.parse().ok())
                .unwrap_or(f64::NAN)
        })
        .collect()
}

fn used_memory(conn: &mut redis::Connection) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(conn)
        .expect("INFO memory");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO")
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

/// The scenario table.
fn print_rows(rows: &[Row]) {
    println!(
        "| scenario | conns | req/s | p50 ms | p99 ms | errors | ratio to ceiling | CPU: server / redis / load generator |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|---|");
    for r in rows {
        let ratio = r.ceiling.map_or("".to_string(), |(c, name)| {
            format!("{:.2} × {name}", r.report.rate() / c)
        });
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {} | {} | {} |",
            r.scenario,
            r.report.conns,
            r.report.rate(),
            r.report.p50_ms(),
            r.report.p99_ms(),
            r.report.errors,
            ratio,
            r.cpu.map_or(String::new(), |[a, b, c]| format!(
                "{:.0}% / {:.0}% / {:.0}%",
                a * 100.0,
                b * 100.0,
                c * 100.0
            ))
        );
    }
}

#[tokio::main]
async fn main() {
    let secs: f64 = std::env::args()
        .skip_while(|a| a != "--duration")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(5.0);
    // `--only details` or `--only refresh`: that comparison with its ceiling and nothing else.
    let only: Option<String> = std::env::args().skip_while(|a| a != "--only").nth(1);
    if let Some(o) = &only
        && o != "details"
        && o != "refresh"
    {
        eprintln!("--only takes details or refresh");
        std::process::exit(2);
    }
    let want = |s: &str| only.as_deref().is_none_or(|o| o == s);
    let duration = Duration::from_secs_f64(secs);
    let warmup = Duration::from_secs(1);
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("token-server-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("work dir");

    let redis = procs::redis(&dir);
    let redis_url = format!("redis://{}", redis.addr);
    let users = seed_users(&dir);
    let secret = "bench-secret-0123456789-0123456789-abcdef";
    let start_server = |redis_url: &str| {
        procs::token_server(
            &dir,
            &[
                ("REDIS_URL", redis_url.to_string()),
                ("TOKEN_SECRET", secret.into()),
                ("USERS_FILE", users.display().to_string()),
                ("LOGIN_MAX_ATTEMPTS_PER_IP_PER_MINUTE", "0".into()),
                ("MAX_INVALID_LOGIN_ATTEMPTS", "0".into()),
                ("BCRYPT_MAX_QUEUE", "100000".into()),
            ],
        )
    };
    let server = start_server(&redis_url);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let multiplexed = procs::ceiling(&dir, "per-worker", &redis_url, workers);
    let shared = procs::ceiling(&dir, "shared", &redis_url, workers);
    let pooled = procs::ceiling(&dir, "deadpool", &redis_url, workers);

    let policy = SessionPolicy {
        access: Duration::from_secs(3600),
        refresh: Duration::from_secs(20160 * 60),
        rotation: true,
        reuse_grace: Duration::from_secs(5),
        max_lifetime: None,
        max_sessions_per_user: 0,
    };
    let conn = RedisConn::single(&redis_url, Duration::from_secs(5), None).expect("redis URL");
    let redis_store = RedisStore::new(conn, "ts");
    let store = Store::redis(redis_store, policy, &TokenSecret::random());
    let mut conn = redis::Client::open(redis_url.as_str())
        .and_then(|c| c.get_connection())
        .expect("redis");

    let sessions = seed_sessions(&store, 1_000, 200, 0).await;
    let tokens: Arc<Vec<String>> = Arc::new(sessions.iter().map(|(a, _)| a.clone()).collect());
    // A fresh set of sessions per round: a rotated refresh token cannot be used twice.
    let mut refresh_rounds = vec![];
    for round in 0..ROUNDS {
        let refresh_tokens: Vec<String> =
            seed_sessions(&store, 128, 128, 1_000_000 + 1_000 * round)
                .await
                .into_iter()
                .map(|(_, r)| r)
                .collect();
        refresh_rounds.push(Arc::new(Refresh { refresh_tokens }));
    }
    let mix_refresh: Vec<String> = seed_sessions(&store, 128, 128, 2_000_000)
        .await
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    for i in 0..1_000 {
        let _: () = redis::cmd("SET")
            .arg(format!("bench:ceiling:{i}"))
            .arg(USER_JSON)
            .query(&mut conn)
            .expect("SET");
    }
    let rss_idle = procs::rss_of(server.child.id());

    let mut rows: Vec<Row> = vec![];
    let row = |scenario: &str,
               report: Report,
               ceiling: Option<(f64, &'static str)>,
               cpu: Option<[f64; 3]>| Row {
        scenario: scenario.into(),
        report,
        ceiling,
        cpu,
    };
    let ceiling_get = || Arc::new(CeilingGet { keys: 1_000 });
    let details = |tokens: &Arc<Vec<String>>| {
        Arc::new(Details {
            tokens: tokens.clone(),
        })
    };
    let login = |user: &'static str| {
        Arc::new(Login {
            user,
            password: "bench-password",
        })
    };

    // The targets compare a scenario with ceiling (a) measured in alternating rounds: this
    // shared machine drifts over a run by more than the differences being measured.
    let round = Duration::from_secs_f64((duration.as_secs_f64() * 0.6).max(1.0));
    let (mut a, mut ceiling_p99) = (None, f64::NAN);
    let (mut ceiling_usec, mut details_usec, mut refresh_usec) = (f64::NAN, f64::NAN, f64::NAN);
    if want("details") {
        usec_per_call(&mut conn, "get");
        let ((ceiling_a, cpu_a), (details_1k, cpu)) = alternating(
            &multiplexed,
            ceiling_get(),
            &server,
            vec![details(&tokens); ROUNDS],
            &redis,
            64,
            warmup,
            round,
        )
        .await;
        let usec = usec_per_calls(&mut conn, &["get", "mget"]);
        (ceiling_usec, details_usec) = (usec[0], usec[1]);
        ceiling_p99 = ceiling_a.p99_ms();
        a = Some((ceiling_a.rate(), "(a)"));
        rows.push(row(
            "ceiling (a): bare handler, one GET, a multiplexed connection per worker; alternating with details",
            ceiling_a,
            None,
            Some(cpu_a),
        ));
        if only.is_none() {
            // The per-worker connection against one shared by the workers, in their own
            // alternating rounds: the difference is smaller than this machine's drift.
            let ((per_worker, _), (shared_get, shared_cpu)) = alternating(
                &multiplexed,
                ceiling_get(),
                &shared,
                vec![ceiling_get(); ROUNDS],
                &redis,
                64,
                warmup,
                round,
            )
            .await;
            rows.push(row(
                "same with one multiplexed connection shared by the workers",
                shared_get,
                Some((per_worker.rate(), "(a) alternating")),
                Some(shared_cpu),
            ));
            let (pooled_get, pooled_cpu) =
                measured(&pooled, &redis, ceiling_get(), 64, warmup, duration).await;
            rows.push(row(
                "same with a deadpool-redis pool (checkout per request)",
                pooled_get,
                a,
                Some(pooled_cpu),
            ));
        }
        rows.push(row("details (1k live sessions)", details_1k, a, Some(cpu)));
    }
    if want("refresh") {
        usec_per_call(&mut conn, "evalsha");
        let ((ceiling_r, cpu_a), (refresh, cpu)) = alternating(
            &multiplexed,
            ceiling_get(),
            &server,
            refresh_rounds,
            &redis,
            64,
            warmup,
            round,
        )
        .await;
        refresh_usec = usec_per_call(&mut conn, "evalsha");
        let a_refresh = Some((ceiling_r.rate(), "(a) alternating"));
        rows.push(row(
            "ceiling (a), alternating with refresh",
            ceiling_r,
            None,
            Some(cpu_a),
        ));
        rows.push(row("refresh (rotation on)", refresh, a_refresh, Some(cpu)));
    }
    if only.is_some() {
        print_rows(&rows);
        drop((server, multiplexed, shared, pooled, redis));
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    let bcrypt10 = bcrypt_rate(10, 3.0);
    let bcrypt4 = bcrypt_rate(4, 2.0);
    let (login10, cpu) = measured(&server, &redis, login("bench10"), 16, warmup, duration).await;
    rows.push(row(
        "login, bcrypt cost 10",
        login10,
        Some((bcrypt10, "(b) cost 10")),
        Some(cpu),
    ));
    let (login4, cpu) = measured(&server, &redis, login("bench4"), 16, warmup, duration).await;
    rows.push(row(
        "login, bcrypt cost 4",
        login4,
        Some((bcrypt4, "(b) cost 4")),
        Some(cpu),
    ));
    let pairs = Arc::new(LoginLogout {
        user: "bench4",
        password: "bench-password",
    });
    let (login_logout, cpu) = measured(&server, &redis, pairs, 32, warmup, duration).await;
    rows.push(row(
        "logout + login (cost 4), per pair",
        login_logout,
        None,
        Some(cpu),
    ));

    let mix = Arc::new(Mix {
        details: Details {
            tokens: tokens.clone(),
        },
        refresh: Refresh {
            refresh_tokens: mix_refresh,
        },
        login: Login {
            user: "bench4",
            password: "bench-password",
        },
    });
    let pid = server.child.id();
    let sampler = tokio::spawn(async move {
        let mut max = 0u64;
        let end = Instant::now() + warmup + duration;
        while Instant::now() < end {
            max = max.max(procs::rss_of(pid));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        max
    });
    let (mixed, cpu) = measured(&server, &redis, mix, 64, warmup, duration).await;
    let rss_load = sampler.await.unwrap_or(0);
    rows.push(row(
        "gateway mix: 90% details, 7% refresh, 2% login, 1% logout",
        mixed,
        a,
        Some(cpu),
    ));

    // Idle and flooded rounds alternate, for the same reason as the ceilings.
    let (mut idle_acc, mut flooded_acc, mut flood_acc) = (None, None, None);
    for _ in 0..ROUNDS {
        let m = measured(&server, &redis, details(&tokens), 32, warmup, round).await;
        idle_acc = Some(merge(idle_acc, m));
        let before = cpu_now(server.child.id(), redis.child.id());
        let t0 = Instant::now();
        let (flooded, flood) = tokio::join!(
            run(server.addr, details(&tokens), 32, warmup, round),
            run(server.addr, login("bench10"), 16, warmup, round),
        );
        let cpu = cpu_share(
            before,
            cpu_now(server.child.id(), redis.child.id()),
            t0.elapsed(),
        );
        flooded_acc = Some(merge(flooded_acc, (flooded, cpu)));
        flood_acc = Some(merge(flood_acc, (flood, [0.0; 3])));
    }
    let (Some((idle32, cpu)), Some((flooded, flood_cpu)), Some((flood, _))) =
        (idle_acc, flooded_acc, flood_acc)
    else {
        panic!("no flood rounds ran");
    };
    let (idle_p99, flooded_p99) = (idle32.p99_ms(), flooded.p99_ms());
    rows.push(row(
        "details, 32 connections, idle",
        idle32,
        None,
        Some(cpu),
    ));
    rows.push(row(
        "details, 32 connections, during a cost-10 login flood",
        flooded,
        None,
        Some(flood_cpu),
    ));
    rows.push(row(
        "the login flood itself (16 connections)",
        flood,
        Some((bcrypt10, "(b) cost 10")),
        None,
    ));

    // 100k against 1k live sessions: a second Redis holds 100k sessions behind a second
    // server, and the two pairs are measured in alternating rounds.
    let big_redis = procs::redis(&dir);
    let big_url = format!("redis://{}", big_redis.addr);
    let big_server = start_server(&big_url);
    let big_store = Store::redis(
        RedisStore::new(
            RedisConn::single(&big_url, Duration::from_secs(5), None).expect("redis URL"),
            "ts",
        ),
        policy,
        &TokenSecret::random(),
    );
    let mut big_conn = redis::Client::open(big_url.as_str())
        .and_then(|c| c.get_connection())
        .expect("redis");
    let before = used_memory(&mut big_conn);
    let big: Vec<String> = seed_sessions(&big_store, 100_000, 20_000, 0)
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    let after = used_memory(&mut big_conn);
    let per_session = (after - before) as f64 / big.len().max(1) as f64;
    let big = Arc::new(big);
    usec_per_call(&mut big_conn, "mget");
    let (mut small_acc, mut big_acc) = (None, None);
    for _ in 0..ROUNDS {
        let m = measured(&server, &redis, details(&tokens), 64, warmup, round).await;
        small_acc = Some(merge(small_acc, m));
        let m = measured(&big_server, &big_redis, details(&big), 64, warmup, round).await;
        big_acc = Some(merge(big_acc, m));
    }
    let details_100k_usec = usec_per_call(&mut big_conn, "mget");
    let (Some((details_1k_again, cpu_1k)), Some((details_100k, cpu_100k))) = (small_acc, big_acc)
    else {
        panic!("no 100k rounds ran");
    };
    let details_rate_1k_adjacent = details_1k_again.rate();
    let details_rate_100k = details_100k.rate();
    rows.push(row(
        "details (1k live sessions), alternating with 100k",
        details_1k_again,
        a,
        Some(cpu_1k),
    ));
    rows.push(row(
        "details (100k live sessions: a second Redis and server)",
        details_100k,
        a,
        Some(cpu_100k),
    ));

    print_rows(&rows);
    println!();
    println!("| measure | value |");
    println!("|---|---:|");
    println!("| ceiling (a) p99 under 64 connections | {ceiling_p99:.2} ms |");
    println!(
        "| ceiling (b): bcrypt verify/s on all cores, cost 10 / cost 4 | {bcrypt10:.0} / {bcrypt4:.0} |"
    );
    println!(
        "| details p99 during login flood ÷ idle p99 (32 connections) | {:.2} |",
        flooded_p99 / idle_p99.max(0.001)
    );
    println!(
        "| details throughput, 100k ÷ 1k live sessions (alternating rounds) | {:.2} |",
        details_rate_100k / details_rate_1k_adjacent.max(1.0)
    );
    println!(
        "| Redis memory per live session (INFO used_memory delta over 100k sessions) | {per_session:.0} bytes |"
    );
    println!(
        "| token-server RSS idle / peak under the gateway mix | {} / {} KiB |",
        rss_idle, rss_load
    );
    println!(
        "| Redis µs per command: ceiling GET / validation MGET (1k, 100k sessions) / refresh script | {ceiling_usec:.2} / {details_usec:.2}, {details_100k_usec:.2} / {refresh_usec:.2} |"
    );
    println!();
    println!(
        "{} cores; warm-up {} s and {} s per scenario; whole run {:.0} s.",
        workers,
        warmup.as_secs(),
        secs,
        started.elapsed().as_secs_f64()
    );
    drop((
        server,
        big_server,
        multiplexed,
        shared,
        pooled,
        redis,
        big_redis,
    ));
    let _ = std::fs::remove_dir_all(&dir);
}
