//! Malformed requests: each gets a 4xx in the documented error shape, and the server keeps
//! serving afterwards.

use crate::both_stores;
use crate::support::*;
use reqwest::StatusCode;
use serde_json::Value;

both_stores!(
    bad_requests_get_a_clear_4xx_and_the_server_keeps_serving,
    values_at_their_length_limit_are_login_attempts_and_one_past_is_refused,
    credentials_in_the_token_endpoints_url_are_refused,
    a_malformed_body_is_refused_even_when_a_header_carries_the_token,
    unknown_form_fields_are_ignored_whatever_they_hold,
    a_body_trickled_past_its_deadline_gets_408_and_the_connection_is_closed,
    a_chunked_body_trickled_past_its_deadline_gets_408_and_the_connection_is_closed,
);

struct Case {
    what: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: StatusCode,
    error: &'static str,
}

fn form(body: &str) -> Vec<u8> {
    body.as_bytes().to_vec()
}

const LOGIN: &str = "grant_type=password&username=EMP-0001&password=Emp-Secret-Pass-1&tenantId=pb";
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const JSON: Option<&str> = Some("application/json");

fn cases() -> Vec<Case> {
    let token = "/user/oauth/token";
    let bad = StatusCode::BAD_REQUEST;
    let case = |what, path, content_type, body, status, error| Case {
        what,
        path,
        content_type,
        body,
        status,
        error,
    };
    vec![
        case(
            "JSON instead of a form",
            token,
            JSON,
            form(r#"{"grant_type":"password"}"#),
            bad,
            "invalid_request",
        ),
        case(
            "no content type",
            token,
            None,
            form(LOGIN),
            bad,
            "invalid_request",
        ),
        case(
            "text/plain",
            token,
            Some("text/plain"),
            form(LOGIN),
            bad,
            "invalid_request",
        ),
        case("empty body", token, FORM, vec![], bad, "invalid_request"),
        case(
            "repeated grant_type",
            token,
            FORM,
            form(&format!("{LOGIN}&grant_type=password")),
            bad,
            "invalid_request",
        ),
        case(
            "repeated password",
            token,
            FORM,
            form(&format!("{LOGIN}&password=x")),
            bad,
            "invalid_request",
        ),
        case(
            "percent-encoded non-UTF-8",
            token,
            FORM,
            form("grant_type=password&username=%ff%fe&password=x"),
            bad,
            "invalid_request",
        ),
        case(
            "raw non-UTF-8 bytes",
            token,
            FORM,
            b"grant_type=password&username=\xff\xfe&password=x".to_vec(),
            bad,
            "invalid_request",
        ),
        case(
            "NUL byte in username",
            token,
            FORM,
            form("grant_type=password&username=a%00b&password=x"),
            bad,
            "invalid_request",
        ),
        case(
            "NUL byte in password",
            token,
            FORM,
            form("grant_type=password&username=ab&password=x%00y"),
            bad,
            "invalid_request",
        ),
        case(
            "60 KB username",
            token,
            FORM,
            form(&format!(
                "grant_type=password&password=x&username={}",
                "u".repeat(60_000)
            )),
            bad,
            "invalid_request",
        ),
        case(
            "100 KB username",
            token,
            FORM,
            form(&format!(
                "grant_type=password&password=x&username={}",
                "u".repeat(100_000)
            )),
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
        ),
        case(
            "2 KB password",
            token,
            FORM,
            form(&format!(
                "grant_type=password&username=a&password={}",
                "p".repeat(2_000)
            )),
            bad,
            "invalid_request",
        ),
        case(
            "broken percent escapes",
            token,
            FORM,
            form("grant%=%%&=&&&=x"),
            bad,
            "invalid_request",
        ),
        case(
            "unknown grant",
            token,
            FORM,
            form("grant_type=implicit"),
            bad,
            "unsupported_grant_type",
        ),
        case(
            "malformed scope",
            token,
            FORM,
            form(&format!("{LOGIN}&scope=%22quoted%22")),
            bad,
            "invalid_request",
        ),
        case(
            "refresh without token",
            token,
            FORM,
            form("grant_type=refresh_token"),
            bad,
            "invalid_request",
        ),
        case(
            "control characters in username",
            token,
            FORM,
            form("grant_type=password&username=a%0Ab&password=x"),
            bad,
            "invalid_request",
        ),
        case(
            "logout: invalid JSON",
            "/user/_logout",
            JSON,
            form("{\"access_token\":"),
            bad,
            "invalid_request",
        ),
        case(
            "logout: deeply nested JSON",
            "/user/_logout",
            JSON,
            form(&"[".repeat(10_000)),
            bad,
            "invalid_request",
        ),
        case(
            "logout: 1 MB body",
            "/user/_logout",
            JSON,
            vec![b' '; 1 << 20],
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
        ),
        case(
            "logout: repeated form token",
            "/user/_logout",
            FORM,
            form("access_token=a&access_token=b"),
            bad,
            "invalid_request",
        ),
        case(
            "details: invalid JSON",
            "/user/_details",
            JSON,
            form("nope"),
            bad,
            "invalid_request",
        ),
        case(
            "unknown path",
            "/user/oauth/authorize",
            FORM,
            form(LOGIN),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
    ]
}

async fn bad_requests_get_a_clear_4xx_and_the_server_keeps_serving(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    for case in cases() {
        let mut req = app
            .client
            .post(app.url(case.path))
            .header("Authorization", BASIC_DIGIT)
            .body(case.body.clone());
        if let Some(ct) = case.content_type {
            req = req.header("content-type", ct);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), case.status, "{}", case.what);
        let body: Value = res
            .json()
            .await
            .unwrap_or_else(|e| panic!("{}: body is not JSON: {e}", case.what));
        assert_eq!(body["error"], case.error, "{}: {body}", case.what);
        assert!(
            !body["error_description"]
                .as_str()
                .unwrap_or_default()
                .is_empty(),
            "{}",
            case.what
        );
    }

    // A method the endpoint does not serve.
    let res = app
        .client
        .get(app.url("/user/oauth/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "invalid_request"
    );
    // A header that is not text.
    let res = app
        .client
        .post(app.url("/user/_logout"))
        .header(
            "auth-token",
            reqwest::header::HeaderValue::from_bytes(b"\xfftoken").unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;

    let tokens = app.login_ok(&EMPLOYEE).await;
    assert_eq!(app.details_status(&tokens.access).await, StatusCode::OK);
}

async fn values_at_their_length_limit_are_login_attempts_and_one_past_is_refused(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let wrong_password = assert_oauth_error(
        app.password_login(EMPLOYEE.name, "wrong", [("tenantId", "pb")])
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    )
    .await;
    assert_eq!(
        wrong_password["error_description"],
        "Invalid login credentials"
    );
    // Names and tenants are limited in characters, passwords in bytes ('é' is two).
    let (long_name, longer_name) = ("é".repeat(256), "u".repeat(257));
    let (long_tenant, longer_tenant) = ("é".repeat(256), "t".repeat(257));
    let (long_password, longer_password) = ("é".repeat(512), format!("{}p", "é".repeat(512)));
    let attempt = |user: &str, tenant: &str, password: &str| {
        let form = [
            ("grant_type", "password".to_string()),
            ("username", user.to_string()),
            ("password", password.to_string()),
            ("tenantId", tenant.to_string()),
        ];
        let req = app
            .client
            .post(app.url("/user/oauth/token"))
            .header("Authorization", BASIC_DIGIT)
            .form(&form);
        async move { req.send().await.unwrap() }
    };
    // At the limit: an ordinary login attempt, answered like any wrong password.
    for (what, res) in [
        ("username", attempt(&long_name, "pb", "wrong").await),
        (
            "tenantId",
            attempt(EMPLOYEE.name, &long_tenant, EMPLOYEE.password).await,
        ),
        (
            "password",
            attempt(EMPLOYEE.name, "pb", &long_password).await,
        ),
    ] {
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{what} at the limit");
        assert_eq!(res.json::<Value>().await.unwrap(), wrong_password, "{what}");
    }
    // One past it: refused before any check, naming the parameter.
    for (what, res) in [
        ("username", attempt(&longer_name, "pb", "wrong").await),
        (
            "tenantId",
            attempt(EMPLOYEE.name, &longer_tenant, EMPLOYEE.password).await,
        ),
        (
            "password",
            attempt(EMPLOYEE.name, "pb", &longer_password).await,
        ),
    ] {
        let body = assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(what), "{what}: {body}");
    }
    app.login_ok(&EMPLOYEE).await;
}

async fn credentials_in_the_token_endpoints_url_are_refused(kind: StoreKind) {
    // They would end up in the access logs of proxies. Each request below is complete and
    // valid in its body; only the copy in the URL makes it fail.
    let app = TestApp::spawn(&kind).await;
    let tokens = app.login_ok(&EMPLOYEE).await;
    let password_grant = [
        ("grant_type", "password"),
        ("username", EMPLOYEE.name),
        ("password", EMPLOYEE.password),
        ("tenantId", EMPLOYEE.tenant),
    ];
    let mut confidential = password_grant.to_vec();
    confidential.extend([("client_id", "gateway"), ("client_secret", GATEWAY_SECRET)]);
    let cases = [
        (
            "refresh_token",
            tokens.refresh.as_str(),
            Some(BASIC_DIGIT),
            vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", &tokens.refresh),
            ],
        ),
        ("client_secret", GATEWAY_SECRET, None, confidential),
        (
            "password",
            EMPLOYEE.password,
            Some(BASIC_DIGIT),
            password_grant.to_vec(),
        ),
    ];
    for (param, value, authorization, form) in cases {
        let mut req = app
            .client
            .post(app.url(&format!("/user/oauth/token?{param}={value}")))
            .form(&form);
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let res = req.send().await.unwrap();
        let body = assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        assert!(
            body["error_description"].as_str().unwrap().contains("URL"),
            "{param}: {body}"
        );
    }
    // The refresh token sent in the URL was not redeemed: it rotates as usual.
    let renewed = app.refresh_ok(&tokens.refresh).await;
    assert_eq!(app.details_status(&renewed.access).await, StatusCode::OK);
}

async fn a_malformed_body_is_refused_even_when_a_header_carries_the_token(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let t = app.login_ok(&EMPLOYEE).await;
    for path in ["/user/_details", "/user/_logout"] {
        for body in [
            "[null, null]",
            "null",
            "{\"access_token\": 5}",
            "{\"RequestInfo\": []}",
            "{\"RequestInfo\": {\"authToken\": false}}",
        ] {
            let res = app
                .client
                .post(app.url(path))
                .bearer_auth(&t.access)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
        }
    }
    // DIGIT's envelope, with members of its own, is fine.
    let res = app
        .client
        .post(app.url("/user/_details"))
        .bearer_auth(&t.access)
        .json(&serde_json::json!({"RequestInfo": {"apiId": "Rainmaker", "authToken": null}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.details_status(&t.access).await, StatusCode::OK);
}

async fn unknown_form_fields_are_ignored_whatever_they_hold(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    // RFC 6749: unrecognized parameters are ignored, even repeated or holding a NUL.
    let body = format!(
        "grant_type=password&username={}&password={}&tenantId=pb&x=1&x=2&y=%00&%ff=1",
        EMPLOYEE.name, EMPLOYEE.password
    );
    let res = app
        .client
        .post(app.url("/user/oauth/token"))
        .header("authorization", BASIC_DIGIT)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A known one repeated is still refused.
    let res = app
        .client
        .post(app.url("/user/oauth/token"))
        .header("authorization", BASIC_DIGIT)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=password&grant_type=password&username=a&password=b")
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, StatusCode::BAD_REQUEST, "invalid_request").await;
}

async fn a_body_trickled_past_its_deadline_gets_408_and_the_connection_is_closed(kind: StoreKind) {
    trickle_past_the_deadline(kind, false).await;
}

async fn a_chunked_body_trickled_past_its_deadline_gets_408_and_the_connection_is_closed(
    kind: StoreKind,
) {
    trickle_past_the_deadline(kind, true).await;
}

/// A login body sent a byte every 300 ms, with a length or in one-byte chunks.
async fn trickle_past_the_deadline(kind: StoreKind, chunked: bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::{Duration, Instant, sleep, sleep_until};
    let options = Options::default().with("REQUEST_BODY_TIMEOUT_MS", 1000);
    let app = TestApp::spawn_with(&kind, options).await;
    let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /user/oauth/token HTTP/1.1\r\nHost: x\r\nAuthorization: {BASIC_DIGIT}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n{}\r\n",
        if chunked {
            "Transfer-Encoding: chunked\r\n"
        } else {
            "Content-Length: 100\r\n"
        }
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let body = format!("{LOGIN:&<100}");
    let (mut from_server, mut to_server) = stream.split();
    // One byte every 300 ms (30 s for the whole body) until an answer comes; a guard well past
    // the 1 s deadline and well before the body could be complete.
    let guard = Instant::now() + Duration::from_secs(5);
    let (mut reply, mut buf, mut sent) = (Vec::new(), [0u8; 4096], 0);
    let closed = loop {
        tokio::select! {
            read = from_server.read(&mut buf) => match read {
                Ok(0) => break true,
                Ok(n) => reply.extend_from_slice(&buf[..n]),
                // A reset once the answer is in (bytes were still on their way) is a close too.
                Err(_) if !reply.is_empty() => break true,
                Err(e) => panic!("reset with no answer after {sent} bytes: {e}"),
            },
            _ = sleep(Duration::from_millis(300)), if reply.is_empty() => {
                let byte = &body.as_bytes()[sent..=sent];
                let piece = match chunked {
                    true => [b"1\r\n", byte, b"\r\n"].concat(),
                    false => byte.to_vec(),
                };
                to_server.write_all(&piece).await.unwrap();
                sent += 1;
            }
            _ = sleep_until(guard) => break false,
        }
    };
    let reply = String::from_utf8_lossy(&reply).into_owned();
    assert!(
        reply.starts_with("HTTP/1.1 408"),
        "after {sent} bytes: {reply:?}"
    );
    assert!(
        closed,
        "the connection is still open after the answer: {reply:?}"
    );
    let (head, json) = reply.split_once("\r\n\r\n").unwrap();
    let head = head.to_ascii_lowercase();
    assert!(head.contains("\r\nconnection: close"), "{head}");
    assert!(head.contains("\r\ncache-control: no-store"), "{head}");
    let json: Value = serde_json::from_str(json).unwrap();
    assert_eq!(json["error"], "invalid_request", "{json}");
    let description = json["error_description"].as_str().unwrap();
    assert!(description.contains("took too long"), "{json}");
    // The server keeps serving.
    app.login_ok(&EMPLOYEE).await;
}
