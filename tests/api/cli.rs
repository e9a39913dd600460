//! The admin commands of the `token-server` binary, against the Redis a running server uses.

use crate::support::cluster::TestCluster;
use crate::support::process::{args, env_of, run};
use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;

/// A password grant of `user` in `tenant`; panics unless it is a 200.
async fn login_ok(app: &TestApp, user: &str, tenant: &str, password: &str) -> Tokens {
    let res = app
        .password_login(user, password, [("tenantId", tenant)])
        .await;
    assert_eq!(res.status(), StatusCode::OK, "login of {user}");
    Tokens::from(res.json::<Value>().await.unwrap())
}

#[tokio::test]
async fn an_added_user_logs_in_and_a_new_password_ends_the_old_sessions() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    let env = env_of(&app);
    let add = args(&[
        "users",
        "add",
        "asha",
        "--tenant",
        "pb.amritsar",
        "--type",
        "citizen",
        "--role",
        "CITIZEN:Citizen",
        "--name",
        "Asha K",
    ]);
    let out = run(&env, &add, "first-Pass-1\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stdout.contains("added \"asha\""), "{}", out.stdout);

    let tokens = login_ok(&app, "asha", "pb.amritsar", "first-Pass-1").await;
    let details: Value = app.details(&tokens.access).await.json().await.unwrap();
    assert_eq!(details["userName"], "asha");
    assert_eq!(details["name"], "Asha K");
    assert_eq!(details["type"], "CITIZEN");
    assert_eq!(details["roles"][0]["code"], "CITIZEN");
    assert_eq!(details["roles"][0]["tenantId"], "pb.amritsar");

    // The same name in the same tenant again is refused and changes nothing.
    let again = run(&env, &add, "other-Pass-2\n");
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already"), "{}", again.stderr);
    assert_eq!(
        app.password_login("asha", "other-Pass-2", [("tenantId", "pb.amritsar")])
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );

    let set = run(
        &env,
        &args(&["users", "set-password", "asha"]),
        "second-Pass-2\n",
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert!(set.stdout.contains("1 session(s) ended"), "{}", set.stdout);
    assert_eq!(
        app.details_status(&tokens.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.refresh(&tokens.refresh).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.password_login("asha", "first-Pass-1", [("tenantId", "pb.amritsar")])
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    login_ok(&app, "asha", "pb.amritsar", "second-Pass-2").await;
}

#[tokio::test]
async fn a_disabled_user_is_refused_and_loses_every_session_until_enabled() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    let env = env_of(&app);
    let out = run(
        &env,
        &args(&["users", "add", "ravi", "--tenant", "pb"]),
        "ravi-Pass-1\n",
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let phone = login_ok(&app, "ravi", "pb", "ravi-Pass-1").await;
    let laptop = login_ok(&app, "ravi", "pb", "ravi-Pass-1").await;

    let off = run(&env, &["users", "disable", "ravi"], "");
    assert_eq!(off.code, 0, "{}", off.stderr);
    assert!(off.stdout.contains("2 session(s) ended"), "{}", off.stdout);
    for t in [&phone, &laptop] {
        assert_eq!(
            app.details_status(&t.access).await,
            StatusCode::UNAUTHORIZED
        );
    }
    let refused = app
        .password_login("ravi", "ravi-Pass-1", [("tenantId", "pb")])
        .await;
    let body = assert_oauth_error(refused, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(body["error_description"], "Please activate your account");

    let on = run(&env, &["users", "enable", "ravi", "--tenant", "pb"], "");
    assert_eq!(on.code, 0, "{}", on.stderr);
    login_ok(&app, "ravi", "pb", "ravi-Pass-1").await;
}

#[tokio::test]
async fn importing_a_seed_file_twice_adds_each_user_once_and_keeps_later_changes() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    let env = env_of(&app);
    let dir = tempfile::tempdir().unwrap();
    let file = write_seed_file(dir.path()).display().to_string();

    let first = run(&env, &["users", "import", &file], "");
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first
            .stdout
            .contains(&format!("{} user(s) added", SEEDS.len())),
        "{}",
        first.stdout
    );
    // Not a terminal: no progress bar in the output.
    assert!(!first.stderr.contains("users"), "{}", first.stderr);

    // An operator changes a password; importing again must not undo it.
    let set = run(
        &env,
        &args(&["users", "set-password", EMPLOYEE.name]),
        "changed-Pass-9\n",
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    let second = run(&env, &["users", "import", &file], "");
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second
            .stdout
            .contains(&format!("0 user(s) added, {} already", SEEDS.len())),
        "{}",
        second.stdout
    );
    login_ok(&app, EMPLOYEE.name, EMPLOYEE.tenant, "changed-Pass-9").await;

    let list = run(&env, &["users", "list", "--json"], "");
    assert_eq!(list.code, 0, "{}", list.stderr);
    let users: Vec<Value> = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(users.len(), SEEDS.len(), "{users:?}");
    for seed in SEEDS {
        assert!(
            users
                .iter()
                .any(|u| u["userName"] == seed.name && u["tenantId"] == seed.tenant),
            "{} missing",
            seed.name
        );
    }
    assert!(users.iter().all(|u| u.get("password").is_none()));
    let table = run(&env, &["users", "list", "--tenant", "mz"], "");
    assert_eq!(table.stdout.lines().count(), 2, "{}", table.stdout);
    assert!(table.stdout.contains("twin"), "{}", table.stdout);

    // A malformed file is refused whole: nothing written.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"[{"id":1,"uuid":"u-new","userName":"fresh","type":"EMPLOYEE","roles":[],"active":true,"tenantId":"pb","password":"$2a$04$abcdefghijklmnopqrstuuvwxyz0123456789ABCDEFGHIJKLMNOP"},{"userName":"broken"}]"#,
    )
    .unwrap();
    let refused = run(&env, &["users", "import", bad.to_str().unwrap()], "");
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("bad.json"), "{}", refused.stderr);
    let after = run(&env, &["users", "list", "--json"], "");
    let users: Vec<Value> = serde_json::from_str(&after.stdout).unwrap();
    assert!(users.iter().all(|u| u["userName"] != "fresh"));
}

#[tokio::test]
async fn operators_list_and_end_any_users_sessions() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    let dir = tempfile::tempdir().unwrap();
    let mut env = env_of(&app);
    // The seed file the server uses, so its users can be named.
    env.push((
        "USERS_FILE",
        write_seed_file(dir.path()).display().to_string(),
    ));
    let a = app.login_ok(&EMPLOYEE).await;
    let b = app.login_ok(&EMPLOYEE).await;
    let other = app.login_ok(&CITIZEN).await;

    let list = run(
        &env,
        &["sessions", "list", "--user", EMPLOYEE.name, "--json"],
        "",
    );
    assert_eq!(list.code, 0, "{}", list.stderr);
    let listed: Vec<Value> = serde_json::from_str(&list.stdout).unwrap();
    let own: Value = app.sessions_of(&a.access).await;
    let ids = |v: &[Value]| {
        let mut ids: Vec<String> = v.iter().map(|s| s["id"].as_str().unwrap().into()).collect();
        ids.sort();
        ids
    };
    assert_eq!(listed.len(), 2);
    assert_eq!(ids(&listed), ids(own["sessions"].as_array().unwrap()));
    let table = run(&env, &["sessions", "list", "--user", EMPLOYEE.name], "");
    assert!(table.stdout.starts_with("ID "), "{}", table.stdout);
    assert_eq!(table.stdout.lines().count(), 3, "{}", table.stdout);

    // One session by id: the other stays.
    let current_a = own["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let end = run(&env, &["sessions", "end", "--id", &current_a], "");
    assert_eq!(end.code, 0, "{}", end.stderr);
    assert_eq!(
        app.details_status(&a.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.details_status(&b.access).await, StatusCode::OK);
    let again = run(&env, &["sessions", "end", "--id", &current_a], "");
    assert_eq!(again.code, 1, "{}", again.stdout);

    // All of a user's sessions: other users keep theirs.
    let all = run(&env, &["sessions", "end", "--user", EMPLOYEE.name], "");
    assert_eq!(all.code, 0, "{}", all.stderr);
    assert!(all.stdout.contains("1 session(s)"), "{}", all.stdout);
    assert_eq!(
        app.details_status(&b.access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.details_status(&other.access).await, StatusCode::OK);

    // A name two tenants share needs --tenant.
    let twin = run(&env, &["sessions", "list", "--user", "twin"], "");
    assert_eq!(twin.code, 2);
    assert!(twin.stderr.contains("--tenant"), "{}", twin.stderr);
    let pb = run(
        &env,
        &["sessions", "list", "--user", "twin", "--tenant", "pb"],
        "",
    );
    assert_eq!(pb.code, 0, "{}", pb.stderr);
}

#[tokio::test]
async fn wrong_input_gets_a_message_and_a_nonzero_exit_and_writes_nothing() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    let env = env_of(&app);
    let long = "p".repeat(100);
    let cases: Vec<(Vec<&str>, &str, i32, &str)> = vec![
        (
            vec![
                "users",
                "add",
                "x",
                "--tenant",
                "pb",
                "--password-stdin",
                "--cost",
                "4",
            ],
            "pw-1\n",
            2,
            "--insecure-cost",
        ),
        (
            args(&["users", "add", "x", "--tenant", "pb"]),
            "\n",
            2,
            "empty",
        ),
        (
            args(&["users", "add", "x", "--tenant", "pb"]),
            &long,
            2,
            "72 bytes",
        ),
        (
            args(&["users", "add", "x", "--tenant", ""]),
            "pw-1\n",
            2,
            "tenant",
        ),
        (
            args(&["users", "add", "x", "--tenant", "pb", "--role", ":"]),
            "pw-1\n",
            2,
            "--role",
        ),
        (
            args(&["users", "add", "x", "--tenant", "pb", "--type", "ADMIN"]),
            "pw-1\n",
            2,
            "CITIZEN",
        ),
        (
            vec!["users", "add", "x", "--tenant", "pb"],
            "",
            2,
            "--password-stdin",
        ),
        (
            args(&["users", "set-password", "nobody"]),
            "pw-1\n",
            1,
            "no user",
        ),
        (
            vec!["users", "disable", "nobody", "--tenant", "pb"],
            "",
            1,
            "no user",
        ),
        (
            vec!["sessions", "end", "--id", "not-a-uuid"],
            "",
            2,
            "session id",
        ),
        (vec!["sessions", "end"], "", 2, "--user"),
        (
            vec!["users", "import", "/no/such/file.json"],
            "",
            2,
            "/no/such/file.json",
        ),
        (vec!["users", "frobnicate"], "", 2, "frobnicate"),
    ];
    for (argv, stdin, code, says) in cases {
        let out = run(&env, &argv, stdin);
        assert_eq!(out.code, code, "{argv:?}: {}", out.stderr);
        assert!(out.stderr.contains(says), "{argv:?}: {}", out.stderr);
    }
    let list = run(&env, &["users", "list", "--json"], "");
    assert_eq!(list.stdout.trim(), "[]", "a refused command wrote a user");

    // The seed file's users are changed in the file, not in Redis.
    let dir = tempfile::tempdir().unwrap();
    let mut with_seed = env.clone();
    with_seed.push((
        "USERS_FILE",
        write_seed_file(dir.path()).display().to_string(),
    ));
    let seed_only = run(&with_seed, &["users", "disable", EMPLOYEE.name], "");
    assert_eq!(seed_only.code, 2);
    assert!(
        seed_only.stderr.contains("USERS_FILE"),
        "{}",
        seed_only.stderr
    );

    // Without Redis there is nothing to administer.
    let embedded = run(&[], &["users", "list"], "");
    assert_eq!(embedded.code, 2);
    assert!(embedded.stderr.contains("REDIS_URL"), "{}", embedded.stderr);
}

#[test]
fn hash_password_prints_a_bcrypt_hash_of_the_password() {
    let out = run(&[], &args(&["hash-password"]), "seed-Pass-7\n");
    assert_eq!(out.code, 0, "{}", out.stderr);
    let hash = out.stdout.trim();
    assert!(hash.starts_with("$2b$04$"), "{hash}");
    assert!(bcrypt::verify("seed-Pass-7", hash).unwrap());
    assert!(!bcrypt::verify("seed-Pass-8", hash).unwrap());
    // The cost comes from BCRYPT_COST when not given.
    let env = [("BCRYPT_COST", "11".to_string())];
    let out = run(
        &env,
        &["hash-password", "--password-stdin"],
        "seed-Pass-7\n",
    );
    assert!(out.stdout.starts_with("$2b$11$"), "{}", out.stdout);
    // A bad BCRYPT_COST is reported as the setting it is.
    let env = [("BCRYPT_COST", "lots".to_string())];
    let out = run(
        &env,
        &["hash-password", "--password-stdin"],
        "seed-Pass-7\n",
    );
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(
        out.stderr.contains("BCRYPT_COST=\"lots\""),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("--cost"), "{}", out.stderr);
}

#[test]
fn check_validates_settings_and_reaches_the_store() {
    let redis = TestRedis::start();
    let ok = run(
        &[
            ("REDIS_URL", redis.url()),
            ("TOKEN_SECRET", TOKEN_SECRET.into()),
        ],
        &["check"],
        "",
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("reachable"), "{}", ok.stdout);

    // A port that was bound and released: nothing listens there.
    let down = run(
        &[
            ("REDIS_URL", format!("redis://127.0.0.1:{}", free_port())),
            ("TOKEN_SECRET", TOKEN_SECRET.into()),
            ("REDIS_TIMEOUT_MS", "300".into()),
        ],
        &["check"],
        "",
    );
    assert_eq!(down.code, 2, "{}", down.stdout);
    assert!(down.stderr.contains("unreachable"), "{}", down.stderr);

    let bad = run(
        &[("ACCESS_TOKEN_VALIDITY_IN_MINUTES", "soon".into())],
        &["check"],
        "",
    );
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("ACCESS_TOKEN_VALIDITY_IN_MINUTES"),
        "{}",
        bad.stderr
    );

    let embedded = run(&[], &["check"], "");
    assert_eq!(embedded.code, 0, "{}", embedded.stderr);
    assert!(embedded.stdout.contains("embedded"), "{}", embedded.stdout);
}

#[tokio::test]
async fn the_admin_commands_work_on_a_redis_cluster() {
    let cluster = Arc::new(TestCluster::start());
    let app = TestApp::spawn(&StoreKind::Cluster(cluster.clone())).await;
    let env = vec![
        ("REDIS_CLUSTER_NODES", cluster.nodes_setting()),
        ("REDIS_KEY_PREFIX", app.prefix.clone()),
        ("TOKEN_SECRET", TOKEN_SECRET.into()),
        // A fresh process meets six nodes at once; the whole suite runs beside it on two cores.
        ("REDIS_TIMEOUT_MS", "10000".into()),
    ];
    // Users land on different masters; listing must visit them all.
    for name in ["u1", "u2", "u3", "u4", "u5", "u6"] {
        let out = run(
            &env,
            &args(&["users", "add", name, "--tenant", "pb"]),
            "pw-Cluster-1\n",
        );
        assert_eq!(out.code, 0, "{}", out.stderr);
    }
    let list = run(&env, &["users", "list", "--json"], "");
    assert_eq!(list.code, 0, "{}", list.stderr);
    let users: Vec<Value> = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(users.len(), 6, "{}", list.stdout);

    let tokens = login_ok(&app, "u4", "pb", "pw-Cluster-1").await;
    let listed = run(&env, &["sessions", "list", "--user", "u4", "--json"], "");
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let sessions: Vec<Value> = serde_json::from_str(&listed.stdout).unwrap();
    let id = sessions[0]["id"].as_str().unwrap();
    let end = run(&env, &["sessions", "end", "--id", id], "");
    assert_eq!(end.code, 0, "{}", end.stderr);
    assert_eq!(
        app.details_status(&tokens.access).await,
        StatusCode::UNAUTHORIZED
    );
}
