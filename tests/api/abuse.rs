//! The attacker's next move against each guard: logins racing admin commands, parallel guesses,
//! one account spelled several ways, client-secret floods, a hostile account holder's session
//! pile, and names chosen to collide with other users' records.

use crate::both_stores;
use crate::support::process::{ServerProcess, args, env_of, run};
use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

both_stores!(
    parallel_guesses_cannot_exceed_the_lockout_budget,
    lockout_answers_do_not_tell_whether_an_account_exists,
    every_spelling_of_an_account_spends_one_budget,
    wrong_client_secrets_spend_the_address_budget,
    a_client_secret_flood_never_makes_logins_answer_503,
    a_client_locks_after_its_budget_of_wrong_secrets,
    sessions_per_user_are_capped_by_default,
    a_tenant_cannot_reach_another_tenants_records_through_the_delimiter,
);

const VICTIM: &str = "victim";
const VICTIM_PASSWORD: &str = "Victim-Pass-1";

/// A seed file holding one user, `victim` in pb, with a hash of `cost`.
fn victim_file(dir: &std::path::Path, uuid: &str, password: &str, cost: u32) -> String {
    let mut user = user_json(&EMPLOYEE, 77);
    user["userName"] = VICTIM.into();
    user["uuid"] = uuid.into();
    user["password"] = bcrypt::hash(password, cost).unwrap().into();
    let path = dir.join(format!("{uuid}-{cost}.json"));
    std::fs::write(&path, serde_json::to_string(&[user]).unwrap()).unwrap();
    path.display().to_string()
}

/// Eight logins of a Redis user are in flight (each bcrypt check takes a while, one at a time)
/// while an admin command that ends the user's sessions runs. Once it has returned, no token
/// any of those logins got works.
async fn in_flight_logins_leave_no_session_after(command: &[&str], stdin: &str) {
    let options = Options::default()
        .with("bcrypt.max.concurrent", 1)
        .with("max.invalid.login.attempts", 100);
    let app = Arc::new(TestApp::spawn_with(&StoreKind::Redis, options).await);
    let env = env_of(&app);
    let dir = tempfile::tempdir().unwrap();
    let slow = victim_file(dir.path(), "uuid-victim", VICTIM_PASSWORD, 12);
    let added = run(&env, &["users", "import", &slow], "");
    assert_eq!(added.code, 0, "{}", added.stderr);
    // The replacement record for `import --replace`: same user, new password.
    let replacement = victim_file(dir.path(), "uuid-victim", "Victim-Pass-2", 4);

    let finished = Arc::new(AtomicUsize::new(0));
    let logins: Vec<_> = (0..8)
        .map(|_| {
            let (app, finished) = (app.clone(), finished.clone());
            tokio::spawn(async move {
                let res = app
                    .password_login(VICTIM, VICTIM_PASSWORD, [("tenantId", "pb")])
                    .await;
                let done = Instant::now();
                finished.fetch_add(1, Ordering::SeqCst);
                let status = res.status();
                let body: Value = res.json().await.unwrap();
                (status, body, done)
            })
        })
        .collect();
    // Wait until every login holds its place in the victim's budget (the user is read right
    // after) or has finished; most still wait for bcrypt.
    let places = app
        .key_names()
        .account_checks(&Account::User(VICTIM.to_string()));
    let mut conn = app.redis().conn();
    let all_checking = eventually_every(Duration::from_secs(10), Duration::from_millis(5), || {
        let held: usize = redis::cmd("ZCARD").arg(&places).query(&mut conn).unwrap();
        std::future::ready(held + finished.load(Ordering::SeqCst) >= 8)
    })
    .await;
    assert!(
        all_checking,
        "the 8 logins did not all reach their password check within 10 s"
    );
    let argv: Vec<String> = command
        .iter()
        .map(|a| a.replace("{replacement}", &replacement))
        .collect();
    let stdin = stdin.to_string();
    let out = tokio::task::spawn_blocking(move || {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        run(&env, &argv, &stdin)
    })
    .await
    .unwrap();
    assert_eq!(out.code, 0, "{command:?}: {}", out.stderr);
    let returned = Instant::now();

    let mut after = 0;
    for login in logins {
        let (status, body, done) = login.await.unwrap();
        after += usize::from(done > returned);
        if status == StatusCode::OK {
            app.assert_session_ended(&Tokens::from(body)).await;
        } else {
            assert!(
                [StatusCode::BAD_REQUEST, StatusCode::SERVICE_UNAVAILABLE].contains(&status),
                "{status} {body}"
            );
        }
    }
    assert!(
        after > 0,
        "no login was still in flight when {command:?} returned: the race was not played"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_disable_leaves_no_session_from_logins_in_flight() {
    in_flight_logins_leave_no_session_after(&["users", "disable", VICTIM], "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_set_password_leaves_no_session_from_logins_in_flight() {
    let argv = args(&["users", "set-password", VICTIM]);
    in_flight_logins_leave_no_session_after(&argv, "Victim-Pass-2\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_import_replace_leaves_no_session_from_logins_in_flight() {
    let argv = ["users", "import", "--replace", "{replacement}"];
    in_flight_logins_leave_no_session_after(&argv, "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_leaves_no_session_from_logins_in_flight() {
    in_flight_logins_leave_no_session_after(&["sessions", "end", "--user", VICTIM], "").await;
}

#[tokio::test]
async fn an_import_that_changes_a_password_or_active_flag_ends_the_users_sessions() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    let env = env_of(&app);
    let dir = tempfile::tempdir().unwrap();
    let first = victim_file(dir.path(), "uuid-victim", VICTIM_PASSWORD, 4);
    assert_eq!(run(&env, &["users", "import", &first], "").code, 0);
    let login = || async {
        let res = app
            .password_login(VICTIM, VICTIM_PASSWORD, [("tenantId", "pb")])
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        Tokens::from(res.json::<Value>().await.unwrap())
    };
    // The same record again changes nothing: sessions live on.
    let kept = login().await;
    assert_eq!(
        run(&env, &["users", "import", "--replace", &first], "").code,
        0
    );
    assert_eq!(app.details_status(&kept.access).await, StatusCode::OK);
    // A new password ends them.
    let new_password = victim_file(dir.path(), "uuid-victim", "Victim-Pass-2", 4);
    let out = run(&env, &["users", "import", "--replace", &new_password], "");
    assert_eq!(out.code, 0, "{}", out.stderr);
    app.assert_session_ended(&kept).await;
    // So does a record that turns the user inactive.
    let again = victim_file(dir.path(), "uuid-victim", VICTIM_PASSWORD, 4);
    assert_eq!(
        run(&env, &["users", "import", "--replace", &again], "").code,
        0
    );
    let live = login().await;
    let mut inactive: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    inactive[0]["active"] = false.into();
    let inactive_file = dir.path().join("inactive.json");
    std::fs::write(&inactive_file, serde_json::to_string(&inactive).unwrap()).unwrap();
    let path = inactive_file.display().to_string();
    assert_eq!(
        run(&env, &["users", "import", "--replace", &path], "").code,
        0
    );
    app.assert_session_ended(&live).await;
}

#[tokio::test]
async fn a_uuid_another_user_has_is_refused() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    let mut env = env_of(&app);
    let dir = tempfile::tempdir().unwrap();
    env.push((
        "USERS_FILE",
        write_seed_file(dir.path()).display().to_string(),
    ));
    let first = victim_file(dir.path(), "6b0c6a3e-5d5e-4c38-9a57-1f6f2b0f1c11", "x-1", 4);
    assert_eq!(run(&env, &["users", "import", &first], "").code, 0);
    // `users add --uuid` with the Redis user's uuid, and with a seed user's.
    let taken = "6b0c6a3e-5d5e-4c38-9a57-1f6f2b0f1c11";
    let add = args(&["users", "add", "other", "--tenant", "pb", "--uuid", taken]);
    let out = run(&env, &add, "pw-1\n");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains(taken), "{}", out.stderr);
    // An import whose user carries another user's uuid writes nothing.
    let mut clash = user_json(&CITIZEN, 5);
    clash["userName"] = "newcomer".into();
    clash["uuid"] = taken.into();
    clash["password"] = bcrypt::hash("x", 4).unwrap().into();
    let file = dir.path().join("clash.json");
    std::fs::write(&file, serde_json::to_string(&[clash]).unwrap()).unwrap();
    let out = run(&env, &["users", "import", &file.display().to_string()], "");
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains(taken), "{}", out.stderr);
    let list = run(&env, &["users", "list", "--json"], "");
    assert!(!list.stdout.contains("newcomer"), "{}", list.stdout);
    assert!(!list.stdout.contains("\"other\""), "{}", list.stdout);
}

/// Logins check passwords at cost 10, so parallel guesses overlap.
fn lockout_of(budget: u32) -> Options {
    Options::default()
        .with("max.invalid.login.attempts", budget)
        .with("BCRYPT_COST", 10)
}

async fn description(res: reqwest::Response) -> (StatusCode, String) {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    (
        status,
        body["error_description"].as_str().unwrap_or("").into(),
    )
}

async fn parallel_guesses_cannot_exceed_the_lockout_budget(kind: StoreKind) {
    let app = Arc::new(TestApp::spawn_with(&kind, lockout_of(5)).await);
    let guesses = (0..12).map(|i| {
        let app = app.clone();
        tokio::spawn(async move {
            let guess = format!("guess-{i}");
            description(
                app.password_login(EMPLOYEE.name, &guess, [("tenantId", "pb")])
                    .await,
            )
            .await
        })
    });
    let answers: Vec<(StatusCode, String)> = futures_util::future::join_all(guesses)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let checked = answers
        .iter()
        .filter(|(_, d)| d == "Invalid login credentials")
        .count();
    assert!(checked <= 5, "{checked} passwords checked: {answers:?}");
    for (status, d) in &answers {
        assert!(
            d == "Invalid login credentials"
                || d == "Account locked"
                || *status == StatusCode::SERVICE_UNAVAILABLE,
            "{status} {d}"
        );
    }
    // Once the budget is spent, even the right password is refused.
    let settled = eventually(Duration::from_secs(10), || async {
        description(app.login(&EMPLOYEE).await).await.1 == "Account locked"
    })
    .await;
    assert!(settled, "the account never locked: {answers:?}");
}

async fn lockout_answers_do_not_tell_whether_an_account_exists(kind: StoreKind) {
    let mut sequences = vec![];
    for name in [EMPLOYEE.name, "nobody-here"] {
        let app = TestApp::spawn_with(&kind, lockout_of(3)).await;
        let mut answers = vec![];
        for _ in 0..3 {
            answers.push(description(app.password_login(name, "wrong", []).await).await);
        }
        for extra in [[("tenantId", "pb")], [("tenantId", "mz")]] {
            answers.push(description(app.password_login(name, "wrong", extra).await).await);
        }
        sequences.push(answers);
    }
    assert_eq!(sequences[0], sequences[1]);
    assert_eq!(sequences[0][3].1, "Account locked");
}

async fn every_spelling_of_an_account_spends_one_budget(kind: StoreKind) {
    let app = TestApp::spawn_with(&kind, lockout_of(4)).await;
    let spellings: [&[(&str, &str)]; 4] = [
        &[("tenantId", "pb")],
        &[],
        &[("userType", "EMPLOYEE")],
        &[("tenantId", "pb"), ("userType", "employee")],
    ];
    for extra in spellings {
        let (_, d) = description(app.password_login(EMPLOYEE.name, "wrong", extra).await).await;
        assert_eq!(d, "Invalid login credentials");
    }
    let (_, d) = description(app.login(&EMPLOYEE).await).await;
    assert_eq!(d, "Account locked");
}

async fn introspect_with_secret(app: &TestApp, secret: &str) -> reqwest::Response {
    app.post_form_as(
        "/oauth/introspect",
        &basic("gateway", secret),
        &[("token", "x")],
    )
    .await
}

async fn wrong_client_secrets_spend_the_address_budget(kind: StoreKind) {
    let options = Options::default().with("login.max.attempts.per.ip.per.minute", 3);
    let app = TestApp::spawn_with(&kind, options).await;
    for _ in 0..3 {
        let res = introspect_with_secret(&app, "wrong-secret").await;
        assert_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    }
    let res = introspect_with_secret(&app, "wrong-secret").await;
    assert!(res.headers().contains_key("retry-after"));
    assert_oauth_error(res, StatusCode::TOO_MANY_REQUESTS, "too_many_requests").await;
    // The token endpoint spends the same budget.
    let res = app
        .post_form_as(
            "/user/oauth/token",
            &basic("gateway", "wrong-secret"),
            &[("grant_type", "refresh_token"), ("refresh_token", "x")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// A client whose secret takes a cost-12 bcrypt check.
fn slow_client(dir: &std::path::Path) -> String {
    let clients = serde_json::json!([
        {"client_id": "slow", "client_secret_hash": bcrypt::hash("slow-secret", 12).unwrap()},
        {"client_id": DIGIT_CLIENT},
    ]);
    let path = dir.join("slow-clients.json");
    std::fs::write(&path, clients.to_string()).unwrap();
    path.display().to_string()
}

const DIGIT_CLIENT: &str = "egov-user-client";

async fn a_client_secret_flood_never_makes_logins_answer_503(kind: StoreKind) {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .with("CLIENTS_FILE", slow_client(dir.path()))
        .with("default.client.enabled", "false")
        .with("bcrypt.max.concurrent", 1)
        .with("bcrypt.max.queue", 1)
        .with("max.invalid.login.attempts", 0)
        .with("login.max.attempts.per.ip.per.minute", 0);
    let app = Arc::new(TestApp::spawn_with(&kind, options).await);
    let answered = Arc::new(AtomicUsize::new(0));
    let flood: Vec<_> = (0..8)
        .map(|_| {
            let (app, answered) = (app.clone(), answered.clone());
            tokio::spawn(async move {
                let status = app
                    .post_form_as(
                        "/oauth/introspect",
                        &basic("slow", "wrong"),
                        &[("token", "x")],
                    )
                    .await
                    .status();
                answered.fetch_add(1, Ordering::SeqCst);
                status
            })
        })
        .collect();
    // The client pool checks one secret at a time, each at cost 12: once the first secret of
    // the flood is answered, the others hold the pool.
    let flooding = eventually_every(Duration::from_secs(10), Duration::from_millis(5), || {
        std::future::ready(answered.load(Ordering::SeqCst) > 0)
    })
    .await;
    assert!(flooding, "no secret of the flood was checked within 10 s");
    assert!(
        answered.load(Ordering::SeqCst) < 8,
        "the flood was over before the logins: the race was not played"
    );
    for _ in 0..3 {
        let res = app.login(&EMPLOYEE).await;
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "{}",
            res.text().await.unwrap()
        );
    }
    for f in flood {
        let status = f.await.unwrap();
        assert!(
            [StatusCode::UNAUTHORIZED, StatusCode::SERVICE_UNAVAILABLE].contains(&status),
            "{status}"
        );
    }
}

async fn a_client_locks_after_its_budget_of_wrong_secrets(kind: StoreKind) {
    let options = Options::default().with("max.invalid.login.attempts", 3);
    let app = TestApp::spawn_with(&kind, options).await;
    for _ in 0..3 {
        let res = introspect_with_secret(&app, "wrong-secret").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    // Locked at this address: the right secret, never checked on this replica before, is
    // refused too.
    let res = introspect_with_secret(&app, GATEWAY_SECRET).await;
    assert_oauth_error(res, StatusCode::UNAUTHORIZED, "invalid_client").await;
    // Users' logins are another account.
    app.login_ok(&EMPLOYEE).await;
}

async fn sessions_per_user_are_capped_by_default(kind: StoreKind) {
    let options = Options::default().with("login.max.attempts.per.ip.per.minute", 0);
    let app = TestApp::spawn_with(&kind, options).await;
    let first = app.login_ok(&CITIZEN).await;
    let mut last = None;
    for _ in 0..100 {
        last = Some(app.login_ok(&CITIZEN).await);
    }
    let last = last.unwrap();
    assert_eq!(
        app.details_status(&first.access).await,
        StatusCode::UNAUTHORIZED,
        "the 101st login ended the oldest session"
    );
    let listed = app.sessions_of(&last.access).await;
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn ending_all_of_a_huge_pile_of_sessions_takes_bounded_steps() {
    let options = Options::default()
        .with("login.max.attempts.per.ip.per.minute", 0)
        .with("max.sessions.per.user", 0);
    let app = Arc::new(TestApp::spawn_with(&StoreKind::Redis, options).await);
    let per_task = 251;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                for _ in 0..per_task {
                    app.login_ok(&CITIZEN).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let caller = app.login_ok(&CITIZEN).await;
    let total = 4 * per_task + 1;
    // Listing shows a bounded page: the latest sessions, the caller's among them.
    let listed = app.sessions_of(&caller.access).await;
    let listed = listed["sessions"].as_array().unwrap();
    assert_eq!(listed.len(), 500);
    assert!(listed.iter().any(|s| s["current"] == true));

    let script_calls = |app: &TestApp| -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut app.redis().conn())
            .unwrap();
        info.lines()
            .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
            .filter_map(|l| {
                l.split("calls=")
                    .nth(1)?
                    .split(',')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum()
    };
    let before = script_calls(&app);
    let res = app
        .client
        .post(app.url("/user/_logout_all"))
        .bearer_auth(&caller.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["sessionsEnded"], total);
    let calls = script_calls(&app) - before;
    assert!(
        calls >= (total as u64).div_ceil(500),
        "{total} sessions ended in {calls} script call(s): each call must be bounded"
    );
    assert_eq!(
        app.details_status(&caller.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        !app.keys()
            .iter()
            .any(|k| k.contains(":s:") || k.contains(":a:")),
        "every session key is gone"
    );
}

async fn a_tenant_cannot_reach_another_tenants_records_through_the_delimiter(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    // tenant "pb:EMP" + user "0001" would name the key of tenant "pb", user "EMP:0001".
    let res = app
        .password_login("0001", "x", [("tenantId", "pb:EMP")])
        .await;
    let body = assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("tenantId"),
        "{body}"
    );
}

#[tokio::test]
async fn a_user_record_answers_only_for_the_tenant_and_name_of_its_key() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    let mut conn = app.redis().conn();
    // A record planted under pb/imposter that says it is another tenant's user.
    let hash = bcrypt::hash("imposter-Pass-1", 4).unwrap();
    let key = app.key_names().user("pb", "imposter");
    let _: () = redis::cmd("HSET")
        .arg(&key)
        .arg(&[
            ("id", "9"),
            ("uuid", "uuid-imposter"),
            ("userName", "someone-else"),
            ("type", "EMPLOYEE"),
            ("active", "true"),
            ("tenantId", "mz"),
            ("password", hash.as_str()),
        ])
        .query(&mut conn)
        .unwrap();
    let _: () = redis::cmd("SADD")
        .arg(app.key_names().user_tenants("imposter"))
        .arg("pb")
        .query(&mut conn)
        .unwrap();
    for extra in [vec![("tenantId", "pb")], vec![]] {
        let res = app
            .password_login("imposter", "imposter-Pass-1", extra)
            .await;
        let body = assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_eq!(body["error_description"], "Invalid login credentials");
    }
}

/// Redis commands run so far (`INFO commandstats`), the `INFO` itself left out.
fn redis_commands(redis: &TestRedis) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis.conn())
        .unwrap();
    info.lines()
        .filter(|l| !l.starts_with("cmdstat_info:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Not a stopwatch (other tests share the machine): the work itself is counted. A wrong
/// password of a real user and any password of a name that finds nobody do the same bcrypt
/// work and make the same number of Redis commands, so they take the same time.
#[tokio::test]
async fn a_name_that_finds_nobody_costs_what_a_wrong_password_costs() {
    let redis = TestRedis::start();
    // The admin commands hash at BCRYPT_COST 9; the server pads every check to it. A server
    // process of its own: its metrics count only these logins.
    let url = redis.url();
    let server = ServerProcess::start(&[
        ("REDIS_URL", url.as_str()),
        ("TOKEN_SECRET", TOKEN_SECRET),
        ("BCRYPT_COST", "9"),
        ("LOGIN_MAX_ATTEMPTS_PER_IP_PER_MINUTE", "0"),
        ("MAX_INVALID_LOGIN_ATTEMPTS", "0"),
    ]);
    let env = vec![
        ("REDIS_URL", url.clone()),
        ("TOKEN_SECRET", TOKEN_SECRET.to_string()),
        ("BCRYPT_COST", "9".to_string()),
    ];
    let argv = [
        "users",
        "add",
        VICTIM,
        "--tenant",
        "pb",
        "--password-stdin",
        "--insecure-cost",
    ];
    let added = run(&env, &argv, "Victim-Pass-1\n");
    assert_eq!(added.code, 0, "{}", added.stderr);
    let work =
        || async { metric_at(&server.address, "token_server_bcrypt_work_total").await as u64 };
    let mut costs = vec![];
    for user in [VICTIM, "nobody-at-all", VICTIM, "nobody-at-all"] {
        let (before, commands) = (work().await, redis_commands(&redis));
        let res = server
            .password_login(user, "wrong", [("tenantId", "pb")])
            .await;
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{user}");
        costs.push((
            user,
            work().await - before,
            redis_commands(&redis) - commands,
        ));
    }
    for (user, rounds, _) in &costs {
        assert_eq!(*rounds, 1 << 9, "{user}: bcrypt work {costs:?}");
    }
    // A name's first login may read more than its later ones (the replica learns whose
    // generation the name needs): a made-up name costs what the real one does at each.
    for pair in costs.chunks(2) {
        assert_eq!(pair[0].2, pair[1].2, "Redis commands {costs:?}");
    }
}
