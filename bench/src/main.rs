//! The benchmark: starts its own redis-server, the release token-server and the ceiling
//! server, seeds users and sessions, runs each scenario with a fixed number of connections
//! for a fixed time after a warm-up, and prints one markdown table. Run it with `bench/run`.

mod counters;
mod load;
mod procs;
mod workloads;

use counters::{Commands, Metrics};
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

/// A scenario's report, the CPU each process used while it ran, and the Redis commands it
/// caused.
struct Measured {
    report: Report,
    /// CPU seconds of the server under test, Redis and the load generator.
    cpu_secs: [f64; 3],
    wall: f64,
    commands: Commands,
}

impl Measured {
    /// A scenario that did not run.
    fn none() -> Measured {
        Measured {
            report: Report::empty(0),
            cpu_secs: [0.0; 3],
            wall: 1.0,
            commands: Commands::default(),
        }
    }
    /// Share of one core each process used.
    fn cpu(&self) -> [f64; 3] {
        self.cpu_secs.map(|c| c / self.wall)
    }
    /// Redis commands per operation, warm-up included on both sides.
    fn commands_per_op(&self) -> f64 {
        self.commands.calls() as f64 / self.report.all_ops.max(1) as f64
    }
    /// The Redis process's CPU µs per operation: its commands and its I/O.
    fn redis_usec_per_op(&self) -> f64 {
        self.cpu_secs[1] * 1e6 / self.report.all_ops.max(1) as f64
    }
    /// The server's CPU µs per operation.
    fn server_usec_per_op(&self) -> f64 {
        self.cpu_secs[0] * 1e6 / self.report.all_ops.max(1) as f64
    }
}

fn redis_conn(redis: &procs::Proc) -> redis::Connection {
    redis::Client::open(format!("redis://{}", redis.addr))
        .and_then(|c| c.get_connection())
        .expect("a connection to the benchmark's Redis")
}

/// CPU seconds used so far by the server under test, Redis and this process.
fn cpu_now(server: u32, redis: u32) -> [Duration; 3] {
    [
        procs::cpu_of(server),
        procs::cpu_of(redis),
        procs::cpu_of(std::process::id()),
    ]
}

fn cpu_secs(before: [Duration; 3], after: [Duration; 3]) -> [f64; 3] {
    let secs = |i: usize| (after[i] - before[i]).as_secs_f64();
    [secs(0), secs(1), secs(2)]
}

/// Runs a scenario and notes how the CPU was shared while it ran.
async fn measured<W: load::Workload>(
    target: &procs::Proc,
    redis: &procs::Proc,
    workload: Arc<W>,
    conns: usize,
    warmup: Duration,
    duration: Duration,
) -> Measured {
    let mut conn = redis_conn(redis);
    let commands = Commands::read(&mut conn);
    let before = cpu_now(target.child.id(), redis.child.id());
    let t0 = Instant::now();
    let report = run(target.addr, workload, conns, warmup, duration).await;
    Measured {
        report,
        cpu_secs: cpu_secs(before, cpu_now(target.child.id(), redis.child.id())),
        wall: t0.elapsed().as_secs_f64(),
        commands: Commands::read(&mut conn).since(&commands),
    }
}

/// Rounds in which a ceiling and the scenario compared with it alternate.
const ROUNDS: usize = 3;

/// Adds one measurement to another: operations, time, CPU, commands and histograms sum.
fn merge(acc: Option<Measured>, next: Measured) -> Measured {
    let Some(mut sum) = acc else {
        return next;
    };
    sum.report.ops += next.report.ops;
    sum.report.all_ops += next.report.all_ops;
    sum.report.errors += next.report.errors;
    sum.report.secs += next.report.secs;
    let _ = sum.report.hist.add(next.report.hist);
    for i in 0..3 {
        sum.cpu_secs[i] += next.cpu_secs[i];
    }
    sum.wall += next.wall;
    sum.commands.add(&next.commands);
    sum
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
) -> (Measured, Measured) {
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

/// A users file of `bench10` (bcrypt cost 10) and `bench4` (cost 4), or of `bench4` alone.
fn seed_users(dir: &std::path::Path, with_cost_10: bool) -> std::path::PathBuf {
    let user = |name: &str, password: &str, cost: u32, id: u32| {
        let mut u: serde_json::Value = serde_json::from_str(USER_JSON).expect("user JSON");
        u["id"] = id.into();
        u["uuid"] = format!("bench-{name}").into();
        u["userName"] = name.into();
        u["password"] = bcrypt::hash(password, cost).expect("bcrypt").into();
        u
    };
    let mut users = vec![user("bench4", "bench-password", 4, 2)];
    if with_cost_10 {
        users.push(user("bench10", "bench-password", 10, 1));
    }
    let path = dir.join(if with_cost_10 {
        "users.json"
    } else {
        "users-cost-4.json"
    });
    let users = serde_json::Value::from(users);
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
    let users = seed_users(&dir, true);
    // Every password check costs at least BCRYPT_COST and what the costliest hash in use does
    // (so that timing tells nothing): cost-4 logins are measured on a server with
    // BCRYPT_COST=4 that knows no costlier hash.
    let users_cost_4 = seed_users(&dir, false);
    let secret = "bench-secret-0123456789-0123456789-abcdef";
    let start_with = |redis_url: &str, cache: Option<&str>, users: &std::path::Path| {
        let mut envs = vec![
            ("REDIS_URL", redis_url.to_string()),
            ("TOKEN_SECRET", secret.into()),
            ("USERS_FILE", users.display().to_string()),
            ("LOGIN_MAX_ATTEMPTS_PER_IP_PER_MINUTE", "0".into()),
            ("MAX_INVALID_LOGIN_ATTEMPTS", "0".into()),
            ("BCRYPT_MAX_QUEUE", "100000".into()),
        ];
        envs.extend(cache.map(|c| ("VALIDATION_CACHE_ENTRIES", c.to_string())));
        if users == users_cost_4.as_path() {
            envs.push(("BCRYPT_COST", "4".into()));
        }
        procs::token_server(&dir, &envs)
    };
    let start_server = |redis_url: &str| start_with(redis_url, None, &users);
    let server = start_server(&redis_url);
    // The same server reading every validation through to Redis, for comparison.
    let through = start_with(&redis_url, Some("0"), &users);
    let light = start_with(&redis_url, None, &users_cost_4);
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
    let rss_idle = procs::rss_of(light.child.id());

    let mut rows: Vec<Row> = vec![];
    let row = |scenario: &str, m: &Measured, ceiling: Option<(f64, &'static str)>| Row {
        scenario: scenario.into(),
        report: Report {
            hist: m.report.hist.clone(),
            ..m.report
        },
        ceiling,
        cpu: Some(m.cpu()),
    };
    let ceiling_get = || Arc::new(CeilingGet { keys: 1_000 });
    let ceiling_floor = || Arc::new(CeilingFloor { keys: 1_000 });
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

    // The targets compare a scenario with a ceiling measured in alternating rounds: this
    // shared machine drifts over a run by more than the differences being measured.
    let round = Duration::from_secs_f64((duration.as_secs_f64() * 0.6).max(1.0));
    let (mut a, mut ceiling_p99) = (None, f64::NAN);
    let mut measures: Vec<(String, String)> = vec![];
    let mut costs: Vec<(&str, &Measured)> = vec![];
    let (ceiling_a, details_1k, ceiling_c, refresh);
    let mut costs_through = None;
    if want("details") {
        let metrics = Metrics::read(server.addr);
        (ceiling_a, details_1k) = alternating(
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
        let metrics = Metrics::read(server.addr).since(&metrics);
        ceiling_p99 = ceiling_a.report.p99_ms();
        a = Some((ceiling_a.report.rate(), "(a)"));
        rows.push(row(
            "ceiling (a): bare handler, one GET, a multiplexed connection per worker; alternating with details",
            &ceiling_a,
            None,
        ));
        if only.is_none() {
            // The per-worker connection against one shared by the workers, in their own
            // alternating rounds: the difference is smaller than this machine's drift.
            let (per_worker, shared_get) = alternating(
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
                &shared_get,
                Some((per_worker.report.rate(), "(a) alternating")),
            ));
            let pooled_get = measured(&pooled, &redis, ceiling_get(), 64, warmup, duration).await;
            rows.push(row(
                "same with a deadpool-redis pool (checkout per request)",
                &pooled_get,
                a,
            ));
        }
        rows.push(row("details (1k live sessions)", &details_1k, a));
        let (ceiling_again, details_through) = alternating(
            &multiplexed,
            ceiling_get(),
            &through,
            vec![details(&tokens); ROUNDS],
            &redis,
            64,
            warmup,
            round,
        )
        .await;
        rows.push(row(
            "details reading through to Redis (`VALIDATION_CACHE_ENTRIES=0`), alternating with (a) again",
            &details_through,
            Some((ceiling_again.report.rate(), "(a) again")),
        ));
        costs_through = Some(details_through);
        let batches = metrics.get("token_server_validation_barrier_batch_size_count");
        measures.push((
            "Redis commands per validation under 64 connections (`INFO commandstats`; ceiling (a): one)".into(),
            format!("{:.3}", details_1k.commands_per_op()),
        ));
        measures.push((
            "validation cache: hits ÷ validations; barrier PINGs; mean requests per PING".into(),
            format!(
                "{:.3}; {:.0}; {:.1}",
                metrics.get("token_server_validation_cache_total{result=\"hit\"}")
                    / metrics.get("token_server_validation_cache_total").max(1.0),
                batches,
                metrics.get("token_server_validation_barrier_batch_size_sum") / batches.max(1.0)
            ),
        ));
        costs.push(("ceiling (a): one GET", &ceiling_a));
        costs.push(("validation (details, 1k sessions), cached", &details_1k));
    } else {
        (ceiling_a, details_1k) = (Measured::none(), Measured::none());
    }
    if want("refresh") {
        (ceiling_c, refresh) = alternating(
            &multiplexed,
            ceiling_floor(),
            &server,
            refresh_rounds,
            &redis,
            64,
            warmup,
            round,
        )
        .await;
        rows.push(row(
            "ceiling (c): bare handler running bench/lua/refresh-floor.lua; alternating with refresh",
            &ceiling_c,
            None,
        ));
        rows.push(row(
            "refresh (rotation on)",
            &refresh,
            Some((ceiling_c.report.rate(), "(c)")),
        ));
        costs.push(("ceiling (c): the refresh floor script", &ceiling_c));
        costs.push(("refresh (rotation on)", &refresh));
    } else {
        (ceiling_c, refresh) = (Measured::none(), Measured::none());
    }
    if let Some(m) = &costs_through {
        costs.push(("validation (details, 1k sessions), reading through", m));
    }
    if only.is_some() {
        print_rows(&rows);
        print_measures(&measures);
        print_costs(&costs);
        drop((server, through, light, multiplexed, shared, pooled, redis));
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }

    let bcrypt10 = bcrypt_rate(10, 3.0);
    let bcrypt4 = bcrypt_rate(4, 2.0);
    let login10 = measured(&server, &redis, login("bench10"), 16, warmup, duration).await;
    rows.push(row(
        "login, bcrypt cost 10",
        &login10,
        Some((bcrypt10, "(b) cost 10")),
    ));
    let login4 = measured(&light, &redis, login("bench4"), 16, warmup, duration).await;
    rows.push(row(
        "login, bcrypt cost 4 (on a server whose users are all cost 4, as are the next two)",
        &login4,
        Some((bcrypt4, "(b) cost 4")),
    ));
    let pairs = Arc::new(LoginLogout {
        user: "bench4",
        password: "bench-password",
    });
    let login_logout = measured(&light, &redis, pairs, 32, warmup, duration).await;
    rows.push(row(
        "logout + login (cost 4), per pair",
        &login_logout,
        None,
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
    let pid = light.child.id();
    let sampler = tokio::spawn(async move {
        let mut max = 0u64;
        let end = Instant::now() + warmup + duration;
        while Instant::now() < end {
            max = max.max(procs::rss_of(pid));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        max
    });
    let mixed = measured(&light, &redis, mix, 64, warmup, duration).await;
    let rss_load = sampler.await.unwrap_or(0);
    rows.push(row(
        "gateway mix: 90% details, 7% refresh, 2% login, 1% logout",
        &mixed,
        a,
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
        let cpu = cpu_secs(before, cpu_now(server.child.id(), redis.child.id()));
        let wall = t0.elapsed().as_secs_f64();
        flooded_acc = Some(merge(
            flooded_acc,
            Measured {
                report: flooded,
                cpu_secs: cpu,
                wall,
                commands: Commands::default(),
            },
        ));
        flood_acc = Some(merge(
            flood_acc,
            Measured {
                report: flood,
                cpu_secs: [0.0; 3],
                wall,
                commands: Commands::default(),
            },
        ));
    }
    let (Some(idle32), Some(flooded), Some(flood)) = (idle_acc, flooded_acc, flood_acc) else {
        panic!("no flood rounds ran");
    };
    let (idle_p99, flooded_p99) = (idle32.report.p99_ms(), flooded.report.p99_ms());
    rows.push(row("details, 32 connections, idle", &idle32, None));
    rows.push(row(
        "details, 32 connections, during a cost-10 login flood",
        &flooded,
        None,
    ));
    let mut flood_row = row(
        "the login flood itself (16 connections)",
        &flood,
        Some((bcrypt10, "(b) cost 10")),
    );
    flood_row.cpu = None;
    rows.push(flood_row);

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
    let mut big_conn = redis_conn(&big_redis);
    let before = used_memory(&mut big_conn);
    let big: Vec<String> = seed_sessions(&big_store, 100_000, 20_000, 0)
        .await
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    let after = used_memory(&mut big_conn);
    let per_session = (after - before) as f64 / big.len().max(1) as f64;
    let big = Arc::new(big);
    // Gateways validate the same tokens over and over: one unmeasured pass over the 100k
    // tokens first, so that the rounds see the cache as steady traffic leaves it.
    run(
        big_server.addr,
        details(&big),
        64,
        Duration::ZERO,
        2 * round,
    )
    .await;
    let big_metrics = Metrics::read(big_server.addr);
    let (mut small_acc, mut big_acc) = (None, None);
    for _ in 0..ROUNDS {
        let m = measured(&server, &redis, details(&tokens), 64, warmup, round).await;
        small_acc = Some(merge(small_acc, m));
        let m = measured(&big_server, &big_redis, details(&big), 64, warmup, round).await;
        big_acc = Some(merge(big_acc, m));
    }
    let (Some(details_1k_again), Some(details_100k)) = (small_acc, big_acc) else {
        panic!("no 100k rounds ran");
    };
    let rss_full = procs::rss_of(big_server.child.id());
    let big_metrics = Metrics::read(big_server.addr).since(&big_metrics);
    measures.push((
        "validation cache with 100k live sessions: hits ÷ validations".into(),
        format!(
            "{:.3}",
            big_metrics.get("token_server_validation_cache_total{result=\"hit\"}")
                / big_metrics
                    .get("token_server_validation_cache_total")
                    .max(1.0)
        ),
    ));
    let cached = Metrics::read(big_server.addr).get("token_server_validation_cache_entries");
    rows.push(row(
        "details (1k live sessions), alternating with 100k",
        &details_1k_again,
        a,
    ));
    rows.push(row(
        "details (100k live sessions: a second Redis and server)",
        &details_100k,
        a,
    ));
    costs.push(("login, cost 4", &login4));
    costs.push(("logout + login (cost 4), per pair", &login_logout));
    costs.push(("validation (details, 100k sessions)", &details_100k));

    measures.push((
        "ceiling (a) p99 under 64 connections".into(),
        format!("{ceiling_p99:.2} ms"),
    ));
    measures.push((
        "ceiling (b): bcrypt verify/s on all cores, cost 10 / cost 4".into(),
        format!("{bcrypt10:.0} / {bcrypt4:.0}"),
    ));
    measures.push((
        "details p99 during login flood ÷ idle p99 (32 connections)".into(),
        format!("{:.2}", flooded_p99 / idle_p99.max(0.001)),
    ));
    measures.push((
        "details throughput, 100k ÷ 1k live sessions (alternating rounds)".into(),
        format!(
            "{:.2}",
            details_100k.report.rate() / details_1k_again.report.rate().max(1.0)
        ),
    ));
    measures.push((
        "Redis memory per live session (INFO used_memory delta over 100k sessions)".into(),
        format!("{per_session:.0} bytes"),
    ));
    measures.push((
        "token-server RSS idle / peak under the gateway mix".into(),
        format!("{rss_idle} / {rss_load} KiB"),
    ));
    measures.push((
        "token-server RSS after the 100k rounds, with its cache entries".into(),
        format!("{rss_full} KiB, {cached:.0} entries"),
    ));
    measures.push((
        "Redis µs per call: ceiling GET / details MGET (1k, 100k) / refresh script / floor script"
            .into(),
        format!(
            "{:.2} / {:.2}, {:.2} / {:.2} / {:.2}",
            ceiling_a.commands.usec_per_call("get"),
            details_1k.commands.usec_per_call("mget"),
            details_100k.commands.usec_per_call("mget"),
            refresh.commands.usec_per_call("evalsha"),
            ceiling_c.commands.usec_per_call("evalsha"),
        ),
    ));

    let target = |name: &str, value: f64, ok: bool| {
        (
            name.to_string(),
            format!("{value:.2} {}", if ok { "✔" } else { "✘" }),
        )
    };
    let details_ratio = details_1k.report.rate() / ceiling_a.report.rate().max(1.0);
    let p99_ratio = details_1k.report.p99_ms() / ceiling_p99.max(0.001);
    let refresh_ratio = refresh.report.rate() / ceiling_c.report.rate().max(1.0);
    let login_ratio = login10.report.rate() / bcrypt10.max(1.0);
    let flood_ratio = flooded_p99 / idle_p99.max(0.001);
    let big_ratio = details_100k.report.rate() / details_1k_again.report.rate().max(1.0);
    let targets = [
        target(
            "details ≥ 1.2 × ceiling (a)",
            details_ratio,
            details_ratio >= 1.2,
        ),
        target(
            "details p99 ≤ 1.5 × ceiling (a)'s p99",
            p99_ratio,
            p99_ratio <= 1.5,
        ),
        target(
            "Redis commands per validation ≤ 0.1 (64 connections)",
            details_1k.commands_per_op(),
            details_1k.commands_per_op() <= 0.1,
        ),
        target(
            "refresh ≥ 0.85 × ceiling (c)",
            refresh_ratio,
            refresh_ratio >= 0.85,
        ),
        target(
            "login ≥ 0.9 × ceiling (b), cost 10",
            login_ratio,
            login_ratio >= 0.9,
        ),
        target(
            "details p99 during a login flood ≤ 2 × idle",
            flood_ratio,
            flood_ratio <= 2.0,
        ),
        target(
            "details with 100k ÷ 1k live sessions ≥ 0.9",
            big_ratio,
            big_ratio >= 0.9,
        ),
        target(
            "Redis KiB per live session ≤ 1",
            per_session / 1024.0,
            per_session <= 1024.0,
        ),
    ];

    print_rows(&rows);
    print_measures(&measures);
    print_costs(&costs);
    println!();
    println!("| target | this run |");
    println!("|---|---:|");
    for (name, value) in targets {
        println!("| {name} | {value} |");
    }
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
        through,
        light,
        big_server,
        multiplexed,
        shared,
        pooled,
        redis,
        big_redis,
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

fn print_measures(measures: &[(String, String)]) {
    println!();
    println!("| measure | value |");
    println!("|---|---:|");
    for (name, value) in measures {
        println!("| {name} | {value} |");
    }
}

/// What one operation costs each side, for sizing: warm-up included, from the CPU time of
/// the Redis and server processes (I/O included) and Redis's command counts (each
/// `redis.call` of a script counts, as `INFO commandstats` counts it).
fn print_costs(costs: &[(&str, &Measured)]) {
    println!();
    println!(
        "| operation | Redis commands per op | Redis CPU µs per op | server CPU µs per op | ops measured |"
    );
    println!("|---|---:|---:|---:|---:|");
    for (name, m) in costs {
        println!(
            "| {name} | {:.3} | {:.2} | {:.1} | {} |",
            m.commands_per_op(),
            m.redis_usec_per_op(),
            m.server_usec_per_op(),
            m.report.all_ops
        );
    }
}
