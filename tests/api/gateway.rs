//! Gateways and discovery: `/auth` for nginx `auth_request`, Traefik `forwardAuth` and Envoy
//! `ext_authz`, real nginx with deploy/nginx-gateway.conf in front of a backend, and RFC 8414
//! metadata read by a real OAuth library.

use crate::both_stores;
use crate::support::backend::Backend;
use crate::support::nginx::Nginx;
use crate::support::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::time::{Duration, Instant};

both_stores!(
    forward_auth_lets_a_live_access_token_through_with_its_user,
    forward_auth_reads_the_token_where_each_gateway_puts_it,
    forward_auth_refuses_missing_ended_and_refresh_tokens,
    metadata_names_absolute_endpoints_under_the_public_url,
    metadata_never_names_a_host_the_client_chose,
    introspection_names_the_token_type_bearer_and_its_use,
);

const USER_HEADERS: [&str; 5] = [
    "x-user-id",
    "x-user-name",
    "x-tenant-id",
    "x-user-type",
    "x-user-roles",
];

async fn auth(app: &TestApp, method: Method, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = app.client.request(method, app.url("/auth"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn assert_refused(res: &reqwest::Response) {
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\""
    );
    for h in USER_HEADERS {
        assert!(!res.headers().contains_key(h), "{h} on a refusal");
    }
}

async fn forward_auth_lets_a_live_access_token_through_with_its_user(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let t = app.login_ok(&EMPLOYEE).await;
    let bearer = format!("Bearer {}", t.access);
    for method in [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
    ] {
        let res = auth(&app, method.clone(), &[("authorization", &bearer)]).await;
        assert_eq!(res.status(), StatusCode::OK, "{method}");
        let h = res.headers().clone();
        assert_eq!(h["cache-control"], "no-store");
        assert_eq!(h["x-user-id"], format!("uuid-pb-{}", EMPLOYEE.name));
        assert_eq!(h["x-user-name"], EMPLOYEE.name);
        assert_eq!(h["x-tenant-id"], "pb");
        assert_eq!(h["x-user-type"], "EMPLOYEE");
        assert_eq!(h["x-user-roles"], "EMPLOYEE");
        assert!(
            res.bytes().await.unwrap().is_empty(),
            "{method}: empty body"
        );
    }
    // A body of any shape is ignored.
    let res = app
        .client
        .post(app.url("/auth"))
        .header("authorization", &bearer)
        .header("content-type", "application/json")
        .body("[null, {\"access_token\": 5}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

async fn forward_auth_reads_the_token_where_each_gateway_puts_it(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let t = app.login_ok(&CITIZEN).await;
    let in_uri = format!("/api/things?x=1&access_token={}", t.access);
    for (name, value) in [
        ("auth-token", t.access.clone()),
        ("x-original-uri", in_uri.clone()),
        ("x-forwarded-uri", in_uri.clone()),
    ] {
        let res = auth(&app, Method::GET, &[(name, &value)]).await;
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        assert_eq!(res.headers()["x-user-name"], CITIZEN.name);
    }
    // Envoy appends the original path and query to its path prefix.
    let res = app
        .client
        .get(app.url(&format!("/auth{in_uri}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["x-user-type"], "CITIZEN");
}

async fn forward_auth_refuses_missing_ended_and_refresh_tokens(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    assert_refused(&auth(&app, Method::GET, &[]).await);
    let t = app.login_ok(&EMPLOYEE).await;
    let refresh = format!("Bearer {}", t.refresh);
    assert_refused(&auth(&app, Method::GET, &[("authorization", &refresh)]).await);
    let garbage = format!("Bearer {}x", t.access);
    assert_refused(&auth(&app, Method::GET, &[("authorization", &garbage)]).await);
    assert_eq!(app.logout(&t.access).await.status(), StatusCode::OK);
    let ended = format!("Bearer {}", t.access);
    assert_refused(&auth(&app, Method::GET, &[("authorization", &ended)]).await);
}

#[tokio::test]
async fn forward_auth_answers_503_never_401_while_the_store_is_down() {
    let mut redis = TestRedis::start();
    let url = redis.url();
    let app = TestApp::spawn_on(None, Options::default().with("REDIS_URL", url)).await;
    let t = app.login_ok(&EMPLOYEE).await;
    redis.stop();
    let bearer = format!("Bearer {}", t.access);
    let res = auth(&app, Method::GET, &[("authorization", &bearer)]).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(!res.headers().contains_key("x-user-id"));
}

#[tokio::test]
async fn user_headers_carry_any_record_text_without_breaking_out() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    let hash = bcrypt::hash("odd-Pass-1", 4).unwrap();
    let roles = r#"[{"name":"x","code":"ADMIN,SUPER","tenantId":"pb"},{"name":"y","code":"Ré 1","tenantId":"pb"}]"#;
    let _: () = redis::cmd("HSET")
        .arg(app.key_names().user("pb", "odd"))
        .arg(&[
            ("id", "7"),
            ("uuid", "uuid\r\nX-User-Id: admin"),
            ("userName", "odd"),
            ("type", "EMPLOYEE"),
            ("active", "true"),
            ("tenantId", "pb"),
            ("roles", roles),
            ("password", hash.as_str()),
        ])
        .query(&mut app.redis().conn())
        .unwrap();
    let res = app
        .password_login("odd", "odd-Pass-1", [("tenantId", "pb")])
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let t = Tokens::from(res.json::<Value>().await.unwrap());
    let res = auth(&app, Method::GET, &[("auth-token", &t.access)]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let h = res.headers();
    assert_eq!(h["x-user-id"], "uuid%0D%0AX-User-Id%3A%20admin");
    assert_eq!(h.get_all("x-user-id").iter().count(), 1);
    let roles: Vec<&str> = h["x-user-roles"].to_str().unwrap().split(',').collect();
    assert_eq!(roles, ["ADMIN%2CSUPER", "R%C3%A9%201"]);
}

async fn metadata(app: &TestApp, headers: &[(&str, &str)]) -> Value {
    let mut req = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

async fn metadata_names_absolute_endpoints_under_the_public_url(kind: StoreKind) {
    let options = Options::default().with("PUBLIC_URL", "https://auth.example.org/");
    let app = TestApp::spawn_with(&kind, options).await;
    let doc = metadata(&app, &[("x-forwarded-host", "evil.example")]).await;
    assert_eq!(doc["issuer"], "https://auth.example.org");
    assert_eq!(
        doc["token_endpoint"],
        "https://auth.example.org/user/oauth/token"
    );
    assert_eq!(
        doc["revocation_endpoint"],
        "https://auth.example.org/oauth/revoke"
    );
    assert_eq!(
        doc["introspection_endpoint"],
        "https://auth.example.org/oauth/introspect"
    );
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["password", "refresh_token"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(
        doc["introspection_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        doc["scopes_supported"],
        serde_json::json!(["read", "write"])
    );
    assert!(doc["response_types_supported"].is_array());
}

async fn metadata_never_names_a_host_the_client_chose(kind: StoreKind) {
    let chosen = [
        ("host", "evil.example"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "evil.example"),
    ];
    // Even from a trusted proxy, whose forwarded addresses count.
    let behind = Options::default().with("TRUSTED_PROXIES", "127.0.0.1");
    let app = TestApp::spawn_with(&kind, behind).await;
    let mut req = app
        .client
        .get(app.url("/.well-known/oauth-authorization-server"));
    for (k, v) in chosen {
        req = req.header(k, v);
    }
    let res = req.send().await.unwrap();
    if matches!(kind, StoreKind::Embedded) {
        // A single dev instance without PUBLIC_URL: its own name for itself.
        assert_eq!(res.status(), StatusCode::OK);
        let doc: Value = res.json().await.unwrap();
        let port = app.address.rsplit(':').next().unwrap();
        assert_eq!(doc["issuer"], format!("http://localhost:{port}"));
        assert_eq!(
            doc["token_endpoint"],
            format!("http://localhost:{port}/user/oauth/token")
        );
    } else {
        // With Redis (a deployment), no PUBLIC_URL means no metadata.
        let body = assert_oauth_error(res, StatusCode::NOT_FOUND, "not_found").await;
        let text = body["error_description"].as_str().unwrap();
        assert!(text.contains("PUBLIC_URL"), "{text}");
    }
}

async fn introspection_names_the_token_type_bearer_and_its_use(kind: StoreKind) {
    let app = TestApp::spawn(&kind).await;
    let t = app.login_ok(&EMPLOYEE).await;
    for (token, used) in [(&t.access, "access_token"), (&t.refresh, "refresh_token")] {
        let res = app
            .post_form_as(
                "/oauth/introspect",
                &basic("gateway", GATEWAY_SECRET),
                &[("token", token)],
            )
            .await;
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["active"], true, "{body}");
        assert_eq!(body["token_type"], "bearer", "{body}");
        assert_eq!(body["token_use"], used, "{body}");
    }
}

/// authlib in a venv under target/, made on first use (pip from PyPI).
fn authlib_python() -> std::path::PathBuf {
    let venv = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/authlib-venv");
    let python = venv.join("bin/python");
    let ready = std::process::Command::new(&python)
        .args(["-c", "import authlib, requests"])
        .status()
        .is_ok_and(|s| s.success());
    if !ready {
        let made = std::process::Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            made,
            "cannot make a Python venv: install python3 and python3-venv (Debian: apt-get install -y python3-venv)"
        );
        let installed = std::process::Command::new(venv.join("bin/pip"))
            .args([
                "install",
                "-q",
                "--disable-pip-version-check",
                "authlib==1.6.5",
                "requests==2.32.5",
            ])
            .status()
            .is_ok_and(|s| s.success());
        assert!(installed, "pip could not install authlib into {venv:?}");
    }
    python
}

#[tokio::test]
async fn an_oauth_library_reads_the_metadata_and_uses_its_endpoints() {
    let port = free_port();
    let options = Options::default()
        .with("PORT", port)
        .with("PUBLIC_URL", format!("http://127.0.0.1:{port}"));
    let app = TestApp::spawn_with(&StoreKind::Redis, options).await;
    let script = r#"
import os, sys, requests
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.integrations.requests_client import OAuth2Session
base, user, password, secret = sys.argv[1:5]
doc = requests.get(base + "/.well-known/oauth-authorization-server").json()
meta = AuthorizationServerMetadata(doc)
meta.validate()
assert meta["issuer"] == base, meta["issuer"]
client = OAuth2Session("gateway", secret, scope="read")
token = client.fetch_token(meta["token_endpoint"], username=user, password=password, tenantId="pb")
assert token["token_type"] == "bearer", token
seen = requests.post(meta["introspection_endpoint"], auth=("gateway", secret),
                     data={"token": token["access_token"]}).json()
assert seen["active"] is True and seen["token_type"] == "bearer", seen
client.revoke_token(meta["revocation_endpoint"], token["refresh_token"])
seen = requests.post(meta["introspection_endpoint"], auth=("gateway", secret),
                     data={"token": token["access_token"]}).json()
assert seen == {"active": False}, seen
print("ok")
"#;
    let base = app.address.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(authlib_python())
            .arg("-c")
            .arg(script)
            .arg(&base)
            .arg(EMPLOYEE.name)
            .arg(EMPLOYEE.password)
            .arg(GATEWAY_SECRET)
            // The test server speaks plain HTTP on loopback.
            .env("AUTHLIB_INSECURE_TRANSPORT", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "{stdout}\n{stderr}"
    );
}

#[tokio::test]
async fn nginx_lets_only_live_tokens_reach_the_backend_with_their_user() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    let backend = Backend::start();
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let nginx = Nginx::gateway(backend.port, port);
    let base = nginx.base();
    let http = reqwest::Client::new();
    let get = |path: &str, headers: Vec<(&'static str, String)>| {
        let mut req = http.get(format!("{base}{path}"));
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };

    let res = get("/api/things", vec![]).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(backend.requests().is_empty(), "the backend was reached");

    let t = app.login_ok(&EMPLOYEE).await;
    // A forged user header is replaced by the real one.
    let res = get(
        "/api/things",
        vec![
            ("authorization", format!("Bearer {}", t.access)),
            ("x-user-id", "someone-else".into()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.text().await.unwrap(), "backend");
    let seen = backend.requests();
    let header = |name: &str| seen[0].header(name);
    assert_eq!(header("x-user-id"), [format!("uuid-pb-{}", EMPLOYEE.name)]);
    assert_eq!(header("x-user-name"), [EMPLOYEE.name]);
    assert_eq!(header("x-tenant-id"), ["pb"]);
    assert_eq!(header("x-user-type"), ["EMPLOYEE"]);
    assert_eq!(header("x-user-roles"), ["EMPLOYEE"]);

    let in_query = format!("/api/things?access_token={}", t.access);
    assert_eq!(
        get(&in_query, vec![]).await.unwrap().status(),
        StatusCode::OK
    );

    assert_eq!(app.logout(&t.access).await.status(), StatusCode::OK);
    let before = backend.requests().len();
    assert_eq!(
        get(&in_query, vec![]).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        backend.requests().len(),
        before,
        "an ended token reached the backend"
    );

    // token-server's store down: 503 with Retry-After, never a 401 that logs users out.
    let live = app.login_ok(&CITIZEN).await;
    drop(app);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = get("/api/things", vec![("auth-token", live.access.clone())])
            .await
            .unwrap();
        if res.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(res.headers()["retry-after"], "1");
            break;
        }
        assert!(Instant::now() < deadline, "{}", res.status());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn nginx_passes_the_backend_no_token_and_no_client_made_user_header() {
    let app = TestApp::spawn(&StoreKind::Redis).await;
    let backend = Backend::start();
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let nginx = Nginx::gateway(backend.port, port);
    let base = nginx.base();
    let http = reqwest::Client::new();
    let t = app.login_ok(&EMPLOYEE).await;
    let user_id = format!("uuid-pb-{}", EMPLOYEE.name);
    // What a client may send to pass for someone else or for more than it is.
    let forged = [
        ("x-user-id", "someone-else"),
        ("x-user-admin", "1"),
        ("x-user-roles", "SUPERUSER"),
        ("x-user-scopes", "all"),
    ];
    let send = |method: Method, path: &str, headers: Vec<(&'static str, String)>| {
        let mut req = http.request(method, format!("{base}{path}"));
        for (k, v) in forged {
            req = req.header(k, v);
        }
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req
    };
    let bearer = format!("Bearer {}", t.access);
    let tok = &t.access;

    // The token in the query, wherever it stands, and under an escaped name token-server
    // decodes to `access_token`: gone from the URI; the other parameters kept as sent.
    let cases = [
        (
            format!("/api/things?x=1&access_token={tok}&y=a%20b"),
            "/api/things?x=1&y=a%20b",
        ),
        (format!("/api/things?access_token={tok}"), "/api/things"),
        (
            format!("/api/things?access_token={tok}&page=2"),
            "/api/things?page=2",
        ),
        (
            format!("/api/a%2Fb?page=2&access_token={tok}"),
            "/api/a%2Fb?page=2",
        ),
        (
            format!("/api/things?access%5Ftoken={tok}&access_tokens=3"),
            "/api/things?access_tokens=3",
        ),
    ];
    for (path, expected) in &cases {
        let res = send(Method::GET, path, vec![]).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let got = backend.requests().pop().unwrap();
        assert_eq!(got.line, format!("GET {expected} HTTP/1.0"), "{path}");
    }
    // In the headers nginx reads it from.
    let res = send(
        Method::GET,
        "/api/things?page=2",
        vec![
            ("authorization", bearer.clone()),
            ("auth-token", tok.clone()),
        ],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        backend.requests().pop().unwrap().line,
        "GET /api/things?page=2 HTTP/1.0"
    );
    // A body and its type still reach the backend.
    let body = r#"{"name":"x"}"#;
    let res = send(
        Method::POST,
        "/api/things",
        vec![("auth-token", tok.clone())],
    )
    .header("content-type", "application/json")
    .body(body)
    .send()
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let got = backend.requests().pop().unwrap();
    assert_eq!(got.line, "POST /api/things HTTP/1.0");
    assert_eq!(got.header("content-type"), ["application/json"]);
    assert_eq!(got.body, body.as_bytes());

    let seen = backend.requests();
    assert_eq!(seen.len(), cases.len() + 2);
    for got in &seen {
        // The user is token-server's, once; no other X-User-* header.
        assert_eq!(got.header("x-user-id"), [user_id.as_str()], "{got:?}");
        assert_eq!(got.header("x-user-roles"), ["EMPLOYEE"], "{got:?}");
        for (name, _) in &got.headers {
            assert!(
                !name.starts_with("x-user-") || USER_HEADERS.contains(&name.as_str()),
                "a client-made {name} reached the backend: {got:?}"
            );
        }
        for name in ["authorization", "auth-token"] {
            assert!(
                got.header(name).is_empty(),
                "{name} reached the backend: {got:?}"
            );
        }
        let text = format!("{} {:?}", got.line, got.headers);
        assert!(
            !text.contains(tok.as_str()),
            "the token reached the backend: {got:?}"
        );
    }

    // A second access_token would be left over: refused, the backend not reached.
    for path in [
        format!("/api/things?access_token={tok}&access_token={tok}"),
        format!("/api/things?x=1&access_token={tok}&%61ccess_token={tok}"),
    ] {
        let res = send(Method::GET, &path, vec![("authorization", bearer.clone())])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    assert_eq!(
        backend.requests().len(),
        seen.len(),
        "the backend was reached"
    );
}

#[tokio::test]
async fn the_load_balancer_sets_forwarded_host_and_proto_itself() {
    let backend = Backend::start();
    let nginx = Nginx::balancer(&[backend.port]);
    let res = reqwest::Client::new()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            nginx.base()
        ))
        .header("x-forwarded-host", "evil.example")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let got = backend.requests().pop().unwrap();
    assert_eq!(got.header("x-forwarded-host"), ["127.0.0.1"], "{got:?}");
    assert_eq!(got.header("x-forwarded-proto"), ["http"], "{got:?}");
}
