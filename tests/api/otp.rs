//! Citizens log in with a one-time code (issue 23): DIGIT's `/user-otp/v1/_send` and code
//! login, without DIGIT's weaknesses: one live code per number, single use even under
//! concurrency, three wrong tries per code, throttled sends, no fixed code with Redis, no
//! code in a log line, a metric or Redis in clear. A real HTTP server plays the SMS webhook
//! and egov-otp.

use crate::both_stores;
use crate::support::otp::*;
use crate::support::process::ServerProcess;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn a_citizens_code_arrives_at_the_webhook_and_logs_in_like_a_password(kind: StoreKind) {
    let c = CodeApp::spawn(&kind, Options::default()).await;
    let res = c.send(&RAVI).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"responseInfo": null, "isSuccessful": true})
    );
    let seen = c.hook.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let sms = &seen[0];
    let code = sms["otp"].as_str().unwrap().to_string();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "{sms}"
    );
    assert_eq!(sms["mobileNumber"], RAVI.mobile);
    assert_eq!(sms["tenantId"], "pb");
    assert_eq!(sms["type"], "login");
    assert!(sms["message"].as_str().unwrap().contains(&code), "{sms}");

    let res = c.login(&RAVI, &code).await;
    assert_eq!(res.status(), StatusCode::OK);
    let tokens = Tokens::from(res.json::<Value>().await.unwrap());
    assert_eq!(tokens.body["token_type"], "bearer");
    assert_eq!(tokens.body["scope"], "read");
    assert_eq!(
        tokens.body["ResponseInfo"]["status"],
        "Access Token generated successfully"
    );
    assert_eq!(tokens.body["UserRequest"]["userName"], RAVI.name);
    assert_eq!(tokens.body["UserRequest"]["type"], "CITIZEN");
    assert_eq!(tokens.body["UserRequest"]["mobileNumber"], RAVI.mobile);

    let details = c.app.details(&tokens.access).await;
    assert_eq!(details.status(), StatusCode::OK);
    assert_eq!(
        details.json::<Value>().await.unwrap()["userName"],
        RAVI.name
    );
    assert_eq!(c.app.logout(&tokens.access).await.status(), StatusCode::OK);
    c.app.assert_session_ended(&tokens).await;
    // The password is no longer what a citizen logs in with.
    let res = c.login(&RAVI, PASSWORD).await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
}

async fn a_code_works_once_and_a_new_send_replaces_the_old_one(kind: StoreKind) {
    let c = CodeApp::spawn(&kind, Options::default()).await;
    let code = c.code_for(&RAVI).await;
    assert_eq!(c.login(&RAVI, &code).await.status(), StatusCode::OK);
    let again = assert_oauth_error(
        c.login(&RAVI, &code).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(again["error_description"], "Invalid login credentials");

    // DIGIT keeps every code sent live; here the second send replaces the first.
    let first = c.code_for(&RAVI).await;
    let mut second = c.code_for(&RAVI).await;
    while second == first {
        second = c.code_for(&RAVI).await;
    }
    let res = c.login(&RAVI, &first).await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(c.login(&RAVI, &second).await.status(), StatusCode::OK);
}

async fn three_wrong_codes_kill_the_code_and_count_toward_the_lockout(kind: StoreKind) {
    let options = Options::default().with("MAX_INVALID_LOGIN_ATTEMPTS", 5);
    let c = CodeApp::spawn(&kind, options).await;
    let code = c.code_for(&ASHA).await;
    let wrong = other_than(&code);
    for i in 0..3 {
        // isInternal, egov-user's bypass, changes nothing here.
        let res = code_login(
            &c.app.client,
            &c.app.address,
            &ASHA,
            &wrong,
            &[("isInternal", "true")],
        )
        .await;
        let body = assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_eq!(
            body["error_description"], "Invalid login credentials",
            "try {i}"
        );
    }
    let res = c.login(&ASHA, &code).await;
    let body = assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(
        body["error_description"], "Invalid login credentials",
        "after three wrong tries the code is dead, even for the right digits"
    );
    // Four failures so far; the fifth locks the account, and then even a new right code
    // is refused.
    let res = c.login(&ASHA, "000000").await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    let fresh = c.code_for(&ASHA).await;
    let res = c.login(&ASHA, &fresh).await;
    let body = assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(body["error_description"], "Account locked");
}

async fn a_locked_account_spends_no_code(kind: StoreKind) {
    let options = Options::default()
        .with("MAX_INVALID_LOGIN_ATTEMPTS", 2)
        .with("ACCOUNT_UNLOCK_COOL_DOWN_PERIOD_MINUTES", 0.05);
    let c = CodeApp::spawn(&kind, options).await;
    for _ in 0..2 {
        let res = c.login(&RAVI, "123456").await;
        assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    }
    let code = c.code_for(&RAVI).await;
    let res = c.login(&RAVI, &code).await;
    let body = assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;
    assert_eq!(body["error_description"], "Account locked");
    // The lock was checked before the code: once it lifts, the same code still works.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    assert_eq!(c.login(&RAVI, &code).await.status(), StatusCode::OK);
}

async fn two_simultaneous_logins_with_one_code_start_exactly_one_session(kind: StoreKind) {
    let options = Options::default().with("MAX_INVALID_LOGIN_ATTEMPTS", 50);
    let c = CodeApp::spawn(&kind, options).await;
    for at_once in [2, 2, 2, 2, 2, 8] {
        let code = c.code_for(&RAVI).await;
        let logins = (0..at_once).map(|_| c.login(&RAVI, &code));
        let answers = futures_util::future::join_all(logins).await;
        let ok = answers
            .iter()
            .filter(|r| r.status() == StatusCode::OK)
            .count();
        let refused = answers
            .iter()
            .filter(|r| r.status() == StatusCode::BAD_REQUEST)
            .count();
        assert_eq!(
            (ok, refused),
            (1, at_once - 1),
            "{at_once} logins with one code"
        );
    }
}

async fn sends_are_throttled_per_number_and_per_address(kind: StoreKind) {
    // The defaults: one send per number per 30 s, five per hour.
    let options = Options::default()
        .with("OTP_SEND_INTERVAL_SECONDS", 30)
        .with("OTP_SENDS_PER_HOUR", 5);
    let c = CodeApp::spawn(&kind, options).await;
    assert_eq!(c.send(&RAVI).await.status(), StatusCode::CREATED);
    let res = c.send(&RAVI).await;
    let wait = retry_after(&res);
    assert!((1..=30).contains(&wait), "Retry-After {wait}");
    assert_otp_error(res, StatusCode::TOO_MANY_REQUESTS, "OTP.TOO_MANY_REQUESTS").await;
    assert_eq!(
        c.hook.codes_for(RAVI.mobile).len(),
        1,
        "the throttled send sent nothing"
    );
    // Another number is not held up by this one.
    assert_eq!(c.send(&ASHA).await.status(), StatusCode::CREATED);

    let hourly = CodeApp::spawn(&kind, Options::default().with("OTP_SENDS_PER_HOUR", 2)).await;
    for _ in 0..2 {
        assert_eq!(hourly.send(&RAVI).await.status(), StatusCode::CREATED);
    }
    let res = hourly.send(&RAVI).await;
    let wait = retry_after(&res);
    assert!((3500..=3600).contains(&wait), "Retry-After {wait}");
    assert_otp_error(res, StatusCode::TOO_MANY_REQUESTS, "OTP.TOO_MANY_REQUESTS").await;

    // Per client address, whatever the number, and only that address.
    let per_ip = CodeApp::spawn(
        &kind,
        Options::default().with("OTP_SENDS_PER_IP_PER_MINUTE", 3),
    )
    .await;
    let from = |ip: &str| {
        reqwest::Client::builder()
            .local_address(ip.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap()
    };
    let (a, b) = (from("127.0.0.2"), from("127.0.0.3"));
    let base = &per_ip.app.address;
    for number in [RAVI.mobile, ASHA.mobile, "9000000000"] {
        let res = send_code(&a, base, number, "pb", "login").await;
        assert_ne!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let res = send_code(&a, base, RAVI.mobile, "pb", "login").await;
    let wait = retry_after(&res);
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert_otp_error(res, StatusCode::TOO_MANY_REQUESTS, "OTP.TOO_MANY_REQUESTS").await;
    let res = send_code(&b, base, RAVI.mobile, "pb", "login").await;
    assert_eq!(res.status(), StatusCode::CREATED);
}

async fn an_unknown_number_gets_digits_envelope_and_nothing_is_sent(kind: StoreKind) {
    let c = CodeApp::spawn(&kind, Options::default()).await;
    let res = send_code(&c.app.client, &c.app.address, "9000000000", "pb", "login").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"responseInfo": null, "error": {
            "code": 400,
            "message": "User name not registered. Please try again or sign up.",
            "description": null,
            "fields": [{"code": "OTP.UNKNOWN_CREDENTIAL", "message": "No such username or password",
                "field": "otp.mobileNumber"}],
        }})
    );
    // An employee's number is no citizen's, and employees' codes are off.
    let res = c.send(&OFFICER).await;
    assert_otp_error(res, StatusCode::BAD_REQUEST, "OTP.UNKNOWN_CREDENTIAL").await;
    let res = c
        .app
        .client
        .post(c.app.url("/user-otp/v1/_send"))
        .json(
            &json!({"otp": {"mobileNumber": OFFICER.mobile, "tenantId": OFFICER.tenant,
            "userType": "EMPLOYEE", "type": "login"}}),
        )
        .send()
        .await
        .unwrap();
    assert_otp_error(res, StatusCode::BAD_REQUEST, "OTP.UNKNOWN_CREDENTIAL").await;
    // Bad fields, in DIGIT's words.
    let res = c
        .app
        .client
        .post(c.app.url("/user-otp/v1/_send"))
        .json(&json!({"otp": {"mobileNumber": "98765", "type": "login"}}))
        .send()
        .await
        .unwrap();
    let body = assert_otp_error(res, StatusCode::BAD_REQUEST, "OTP.TENANT_ID_MANDATORY").await;
    assert_eq!(body["error"]["message"], "Invalid OTP request");
    assert_eq!(
        body["error"]["fields"][1]["code"],
        "OTP.MOBILE_NUMBER_INVALIDLENGTH"
    );
    assert!(
        c.hook.seen().is_empty(),
        "nothing was sent: {:?}",
        c.hook.seen()
    );
}

async fn register_and_passwordreset_send_nothing_and_no_validate_endpoint_is_open(kind: StoreKind) {
    let c = CodeApp::spawn(&kind, Options::default()).await;
    for (kind, mobile) in [
        ("register", "9000000001"),
        ("register", RAVI.mobile),
        ("passwordreset", RAVI.mobile),
        ("", "9000000002"),
    ] {
        let res = send_code(&c.app.client, &c.app.address, mobile, "pb", kind).await;
        let body =
            assert_otp_error(res, StatusCode::BAD_REQUEST, "OTP.REQUEST_TYPE_MANDATORY").await;
        assert_eq!(body["error"]["fields"][0]["field"], "otp.type", "{kind}");
    }
    assert!(c.hook.seen().is_empty(), "{:?}", c.hook.seen());
    // DIGIT's egov-otp answers code guesses at an open /otp/v1/_validate, with no lockout;
    // here codes are checked only by the token endpoint, under the account's budget.
    for path in ["/otp/v1/_validate", "/otp/v1/_create", "/otp/v1/_search"] {
        let res = c
            .app
            .client
            .post(c.app.url(path))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
    }
}

async fn a_failing_webhook_answers_503_and_leaves_no_live_code(kind: StoreKind) {
    let c = CodeApp::spawn(&kind, Options::default().with("OTP_HTTP_TIMEOUT_MS", 300)).await;
    let live_code_keys = || match &c.app.redis {
        Some(_) => c
            .app
            .keys()
            .into_iter()
            .filter(|k| k.ends_with(":c"))
            .count(),
        None => 0,
    };
    c.hook.answer_with(500);
    let res = c.send(&RAVI).await;
    assert!(retry_after(&res) >= 1);
    assert_otp_error(res, StatusCode::SERVICE_UNAVAILABLE, "OTP.DELIVERY_FAILED").await;
    let undelivered = c.hook.last_code(RAVI.mobile);
    assert_eq!(live_code_keys(), 0);
    let res = c.login(&RAVI, &undelivered).await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // A webhook slower than OTP_HTTP_TIMEOUT_MS has failed too.
    c.hook.answer_with(0);
    c.hook.delay(Duration::from_millis(1500));
    let res = c.send(&RAVI).await;
    assert_otp_error(res, StatusCode::SERVICE_UNAVAILABLE, "OTP.DELIVERY_FAILED").await;
    let late = c.hook.last_code(RAVI.mobile);
    assert_eq!(live_code_keys(), 0);
    c.hook.delay(Duration::ZERO);
    let res = c.login(&RAVI, &late).await;
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_grant").await;

    // Back to normal, the next code works.
    let code = c.code_for(&RAVI).await;
    assert_eq!(c.login(&RAVI, &code).await.status(), StatusCode::OK);
}

async fn a_citizen_found_by_mobile_number_logs_in_by_user_name(kind: StoreKind) {
    let c = CodeApp::spawn(&kind, Options::default()).await;
    let code = c.code_for(&ASHA).await;
    let res = c.login(&ASHA, &code).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["UserRequest"]["userName"], ASHA.name);
    // An employee still logs in with the password while only citizens' codes are on.
    let res = c
        .app
        .password_login(
            OFFICER.name,
            PASSWORD,
            [("tenantId", OFFICER.tenant), ("userType", "EMPLOYEE")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

async fn egov_otp_success_400_and_500_map_to_200_counted_400_and_503(kind: StoreKind) {
    let egov = Stub::start(|body| {
        let answer = |ok: bool| {
            json!({"responseInfo": null, "otp": {"otp": body["otp"]["otp"],
            "UUID": "u", "identity": body["otp"]["identity"], "tenantId": body["otp"]["tenantId"],
            "isValidationSuccessful": ok}})
        };
        match body["otp"]["otp"].as_str().unwrap_or_default() {
            "111111" => (200, answer(true)),
            "444444" => (200, answer(false)),
            "333333" => (500, json!({})),
            _ => (
                400,
                json!({"responseInfo": null, "error": {"code": 400,
                "message": "OTP validation unsuccessful", "description": null,
                "fields": [{"code": "OTP.VALIDATION_UNSUCCESSFUL",
                    "message": "OTP validation unsuccessful", "field": "otp.otp"}]}}),
            ),
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default()
        .with("USERS_FILE", people_file(dir.path()).display())
        .with("citizen.login.password.otp.enabled", "true")
        .with("OTP_VALIDATE_URL", &egov.url)
        .with("MAX_INVALID_LOGIN_ATTEMPTS", 2);
    let app = TestApp::spawn_with(&kind, options).await;
    let login = |code: &'static str| code_login(&app.client, &app.address, &ASHA, code, &[]);

    // An outage is not the citizen's fault: 503, and no try is counted.
    for _ in 0..3 {
        assert_unavailable(login("333333").await, "egov-otp answering 500").await;
    }
    let res = login("111111").await;
    assert_eq!(res.status(), StatusCode::OK);
    let asked = egov.seen().pop().unwrap();
    assert_eq!(
        asked["otp"]["identity"], ASHA.mobile,
        "the stored number, not the user name"
    );
    assert_eq!(asked["otp"]["tenantId"], ASHA.tenant);
    assert_eq!(asked["otp"]["otp"], "111111");
    assert_eq!(asked["RequestInfo"]["action"], "validate");

    // A 400 and a 200 with isValidationSuccessful:false are wrong codes, counted: the
    // second locks the account.
    for code in ["222222", "444444"] {
        let body =
            assert_oauth_error(login(code).await, StatusCode::BAD_REQUEST, "invalid_grant").await;
        assert_eq!(
            body["error_description"], "Invalid login credentials",
            "{code}"
        );
    }
    let asked = egov.seen().len();
    let body = assert_oauth_error(
        login("111111").await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(body["error_description"], "Account locked");
    assert_eq!(
        egov.seen().len(),
        asked,
        "a locked account's code is not sent to egov-otp"
    );

    // Here /user-otp/v1/_send is DIGIT's user-otp, not this server's.
    let res = send_code(&app.client, &app.address, ASHA.mobile, "pb", "login").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}

both_stores!(
    a_citizens_code_arrives_at_the_webhook_and_logs_in_like_a_password,
    a_code_works_once_and_a_new_send_replaces_the_old_one,
    three_wrong_codes_kill_the_code_and_count_toward_the_lockout,
    a_locked_account_spends_no_code,
    two_simultaneous_logins_with_one_code_start_exactly_one_session,
    sends_are_throttled_per_number_and_per_address,
    an_unknown_number_gets_digits_envelope_and_nothing_is_sent,
    register_and_passwordreset_send_nothing_and_no_validate_endpoint_is_open,
    a_failing_webhook_answers_503_and_leaves_no_live_code,
    a_citizen_found_by_mobile_number_logs_in_by_user_name,
    egov_otp_success_400_and_500_map_to_200_counted_400_and_503,
);

#[tokio::test]
async fn a_fresh_server_sends_no_codes_and_checks_passwords_with_bcrypt() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options::default().with("USERS_FILE", people_file(dir.path()).display());
    let app = TestApp::spawn_with(&StoreKind::Embedded, options).await;
    let res = send_code(&app.client, &app.address, RAVI.mobile, "pb", "login").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = code_login(&app.client, &app.address, &RAVI, PASSWORD, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_redis_user_record_is_found_by_its_mobile_number() {
    let c = CodeApp::spawn(&StoreKind::Redis, Options::default()).await;
    let mut record = person_json(&ASHA, 7);
    record["userName"] = "meera".into();
    record["uuid"] = "uuid-otp-meera".into();
    record["mobileNumber"] = "9876500009".into();
    record["password"] = bcrypt::hash(PASSWORD, 4).unwrap().into();
    let user: token_server::domain::user::User = serde_json::from_value(record).unwrap();
    let conn = token_server::redis_io::RedisConn::single(
        &c.app.redis().url(),
        Duration::from_secs(1),
        None,
    )
    .unwrap();
    let users = token_server::users::redis::RedisUsers::new(
        conn,
        token_server::redis_io::Keys::new(&c.app.prefix),
    );
    let mode = token_server::users::redis::WriteMode::Create;
    assert!(users.write(&user, mode).await.unwrap());
    let meera = Person {
        name: "meera",
        mobile: "9876500009",
        tenant: "pb",
        user_type: "CITIZEN",
    };
    let code = c.code_for(&meera).await;
    assert_eq!(c.login(&meera, &code).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn only_a_keyed_hmac_of_a_code_is_stored_with_its_ttl() {
    let c = CodeApp::spawn(&StoreKind::Redis, Options::default()).await;
    let code = c.code_for(&RAVI).await;
    let mut conn = c.app.redis().conn();
    let key = c.app.key_names().otp_code(RAVI.tenant, RAVI.mobile);
    let stored: std::collections::HashMap<String, String> =
        redis::cmd("HGETALL").arg(&key).query(&mut conn).unwrap();
    assert_eq!(stored["d"].len(), 64, "{stored:?}");
    assert!(!stored.values().any(|v| v.contains(&code)), "{stored:?}");
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
    assert!((290_000..=300_000).contains(&ttl), "TTL {ttl} ms");
    for key in c.app.keys() {
        let ttl: i64 = redis::cmd("PTTL").arg(&key).query(&mut conn).unwrap();
        assert!(ttl > 0, "{key} has no TTL");
    }
}

/// Whether `text` holds `code` as a number of its own (not inside a longer run of digits).
fn holds(text: &str, code: &str) -> bool {
    text.match_indices(code).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test]
async fn no_code_reaches_the_log_redis_in_clear_or_metrics() {
    let redis = TestRedis::start();
    let hook = Stub::webhook().await;
    let dir = tempfile::tempdir().unwrap();
    let people = people_file(dir.path()).display().to_string();
    let url = redis.url();
    let server = ServerProcess::start(&[
        ("USERS_FILE", people.as_str()),
        ("REDIS_URL", &url),
        ("TOKEN_SECRET", TOKEN_SECRET),
        ("RUST_LOG", "debug"),
        ("citizen.login.password.otp.enabled", "true"),
        ("OTP_WEBHOOK_URL", &hook.url),
        ("OTP_SEND_INTERVAL_SECONDS", "0"),
    ]);
    let client = reqwest::Client::new();
    let base = server.address.clone();
    let send = || send_code(&client, &base, RAVI.mobile, "pb", "login");
    assert_eq!(send().await.status(), StatusCode::CREATED);
    let first = hook.last_code(RAVI.mobile);
    let wrong = other_than(&first);
    let res = code_login(&client, &base, &RAVI, &wrong, &[]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        code_login(&client, &base, &RAVI, &first, &[])
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(send().await.status(), StatusCode::CREATED);
    let live = hook.last_code(RAVI.mobile);
    hook.answer_with(500);
    assert_eq!(send().await.status(), StatusCode::SERVICE_UNAVAILABLE);
    let undelivered = hook.last_code(RAVI.mobile);
    hook.answer_with(0);
    assert_eq!(send().await.status(), StatusCode::CREATED);
    let stored = hook.last_code(RAVI.mobile);

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        sample(
            &metrics,
            "token_server_otp_sends_total",
            &[("outcome", "sent")]
        )
        .is_some_and(|n| n >= 3.0),
        "{metrics}"
    );
    let log = server
        .log_line("not delivered", Duration::from_secs(5))
        .await;
    let mut conn = redis.conn();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    let mut stored_text = String::new();
    for key in &keys {
        let kind: String = redis::cmd("TYPE").arg(key).query(&mut conn).unwrap();
        let dump: Vec<String> = match kind.as_str() {
            "string" => vec![redis::cmd("GET").arg(key).query(&mut conn).unwrap()],
            "hash" => redis::cmd("HGETALL").arg(key).query(&mut conn).unwrap(),
            "set" => redis::cmd("SMEMBERS").arg(key).query(&mut conn).unwrap(),
            "zset" => redis::cmd("ZRANGE")
                .arg(key)
                .arg(0)
                .arg(-1)
                .query(&mut conn)
                .unwrap(),
            other => panic!("{key}: unexpected type {other}"),
        };
        stored_text.push_str(&format!("{key} {}\n", dump.join(" ")));
    }
    for code in [&first, &wrong, &live, &undelivered, &stored] {
        assert!(!holds(&log, code), "a code is in the log:\n{log}");
        assert!(!holds(&metrics, code), "a code is in the metrics");
        assert!(
            !holds(&stored_text, code),
            "a code is in Redis:\n{stored_text}"
        );
    }
}

#[tokio::test]
async fn on_the_embedded_store_without_a_webhook_codes_go_to_the_log_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let people = people_file(dir.path()).display().to_string();
    let server = ServerProcess::start(&[
        ("USERS_FILE", people.as_str()),
        ("citizen.login.password.otp.enabled", "true"),
    ]);
    let start = server.log();
    assert!(start.contains("WRITTEN TO THIS LOG"), "{start}");
    let client = reqwest::Client::new();
    let res = send_code(&client, &server.address, RAVI.mobile, "pb", "login").await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let log = server
        .log_line("one-time code ", Duration::from_secs(5))
        .await;
    let line = log.lines().find(|l| l.contains("DEV MODE")).unwrap();
    assert!(line.contains("WARN"), "{line}");
    let code: String = line
        .split("one-time code ")
        .nth(1)
        .unwrap()
        .chars()
        .take(6)
        .collect();
    let res = code_login(&client, &server.address, &RAVI, &code, &[]).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[test]
fn a_fixed_code_or_codes_in_the_log_are_refused_with_redis_at_start_up() {
    let fixed = [
        ("citizen.login.password.otp.fixed.enabled", "true"),
        ("citizen.login.password.otp.fixed.value", "123456"),
        ("OTP_WEBHOOK_URL", "http://127.0.0.1:9/sms"),
    ];
    for (extra, setting, why) in [
        (
            &fixed[..],
            "citizen.login.password.otp.fixed.enabled",
            "refused with Redis",
        ),
        (&[][..], "OTP_WEBHOOK_URL", "the embedded store only"),
    ] {
        let mut envs = vec![
            ("REDIS_URL", "redis://127.0.0.1:9"),
            ("TOKEN_SECRET", TOKEN_SECRET),
            ("citizen.login.password.otp.enabled", "true"),
        ];
        envs.extend_from_slice(extra);
        let err = match ServerProcess::try_start(&envs) {
            Ok(_) => panic!("{setting}: started"),
            Err(log) => log,
        };
        assert!(err.contains("exit status: 2"), "{err}");
        assert!(err.contains(setting) && err.contains(why), "{err}");
        assert!(!err.contains("123456"), "{err}");
    }
}
