//! What the one-time code tests start: users with mobile numbers, a real HTTP server that
//! plays the operator's SMS webhook or DIGIT's egov-otp, and the citizen app's requests as
//! DIGIT's UI sends them.

use super::{BASIC_DIGIT, Options, StoreKind, TestApp};
use actix_web::{App, HttpResponse, HttpServer, web};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A user who logs in with codes: user name, mobile number, tenant, type.
pub struct Person {
    pub name: &'static str,
    pub mobile: &'static str,
    pub tenant: &'static str,
    pub user_type: &'static str,
}

/// A citizen whose user name is the mobile number, as DIGIT registers citizens.
pub const RAVI: Person = Person {
    name: "9876500001",
    mobile: "9876500001",
    tenant: "pb",
    user_type: "CITIZEN",
};
/// A citizen whose user name is not the mobile number: found by the number all the same.
pub const ASHA: Person = Person {
    name: "asha",
    mobile: "9876500002",
    tenant: "pb",
    user_type: "CITIZEN",
};
/// An employee of a city tenant, with a password (employees' codes are off by default).
pub const OFFICER: Person = Person {
    name: "EMP-OTP",
    mobile: "9876500003",
    tenant: "pb.amritsar",
    user_type: "EMPLOYEE",
};
/// The bcrypt password of every [`Person`].
pub const PASSWORD: &str = "Person-Secret-Pass-7";

pub fn person_json(p: &Person, id: usize) -> Value {
    json!({
        "id": id,
        "uuid": format!("uuid-otp-{}", p.name),
        "userName": p.name,
        "name": format!("Name of {}", p.name),
        "mobileNumber": p.mobile,
        "emailId": null,
        "locale": "en_IN",
        "type": p.user_type,
        "roles": [{"name": "Citizen", "code": "CITIZEN", "tenantId": p.tenant}],
        "active": true,
        "tenantId": p.tenant,
    })
}

/// A seed file of the [`Person`]s in `dir`.
pub fn people_file(dir: &std::path::Path) -> PathBuf {
    let hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let users: Vec<Value> = [&RAVI, &ASHA, &OFFICER]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut u = person_json(p, 100 + i);
            u["password"] = hash.clone().into();
            u
        })
        .collect();
    let path = dir.join("people.json");
    std::fs::write(&path, serde_json::to_string(&users).unwrap()).unwrap();
    path
}

type Reply = dyn Fn(&Value) -> (u16, Value) + Send + Sync;

struct StubState {
    seen: Mutex<Vec<Value>>,
    reply: Box<Reply>,
    /// Answers every request with this status instead, when not 0.
    status: AtomicU16,
    /// Waits this long (ms) before answering.
    delay_ms: AtomicU64,
}

/// A real HTTP server on a free port that records every JSON body posted to it and answers
/// as `reply` says: the operator's SMS webhook, or egov-otp's `/otp/v1/_validate`.
pub struct Stub {
    pub url: String,
    state: Arc<StubState>,
    handle: actix_web::dev::ServerHandle,
}

async fn answer(state: web::Data<Arc<StubState>>, body: web::Bytes) -> HttpResponse {
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (mut status, reply) = (state.reply)(&json);
    state.seen.lock().unwrap().push(json);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let forced = state.status.load(Ordering::SeqCst);
    if forced != 0 {
        status = forced;
    }
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap()).json(reply)
}

impl Stub {
    pub async fn start(reply: impl Fn(&Value) -> (u16, Value) + Send + Sync + 'static) -> Stub {
        let state = Arc::new(StubState {
            seen: Mutex::new(vec![]),
            reply: Box::new(reply),
            status: AtomicU16::new(0),
            delay_ms: AtomicU64::new(0),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(shared.clone()))
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Stub {
            url: format!("http://127.0.0.1:{port}/sms/otp"),
            state,
            handle,
        }
    }

    /// An SMS webhook that takes every code.
    pub async fn webhook() -> Stub {
        Self::start(|_| (200, json!({"ok": true}))).await
    }

    /// Every body posted so far.
    pub fn seen(&self) -> Vec<Value> {
        self.state.seen.lock().unwrap().clone()
    }

    /// Answers every request with `status` from now on (0: as `reply` says).
    pub fn answer_with(&self, status: u16) {
        self.state.status.store(status, Ordering::SeqCst);
    }

    /// Waits `delay` before answering, from now on.
    pub fn delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The codes posted for `mobile`, oldest first.
    pub fn codes_for(&self, mobile: &str) -> Vec<String> {
        self.seen()
            .iter()
            .filter(|m| m["mobileNumber"] == mobile)
            .map(|m| m["otp"].as_str().unwrap().to_string())
            .collect()
    }

    /// The code last posted for `mobile`.
    pub fn last_code(&self, mobile: &str) -> String {
        self.codes_for(mobile)
            .pop()
            .unwrap_or_else(|| panic!("no code was posted for {mobile}"))
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// An app whose citizens log in with codes delivered to a [`Stub`] webhook.
pub struct CodeApp {
    pub app: TestApp,
    pub hook: Stub,
    _dir: tempfile::TempDir,
}

/// Settings of a [`CodeApp`]: sends not throttled per number unless a test says so.
pub fn code_options(hook: &Stub, dir: &std::path::Path) -> Options {
    Options::default()
        .with("USERS_FILE", people_file(dir).display())
        .with("citizen.login.password.otp.enabled", "true")
        .with("OTP_WEBHOOK_URL", &hook.url)
        .with("OTP_SEND_INTERVAL_SECONDS", 0)
        .with("OTP_SENDS_PER_HOUR", 1000)
}

impl CodeApp {
    /// `options` on top of [`code_options`] (a setting given again replaces it).
    pub async fn spawn(kind: &StoreKind, options: Options) -> CodeApp {
        let hook = Stub::webhook().await;
        let dir = tempfile::tempdir().unwrap();
        let mut all = code_options(&hook, dir.path());
        let norm = |k: &str| k.to_ascii_lowercase().replace('.', "_");
        all.env
            .retain(|(k, _)| !options.env.iter().any(|(o, _)| norm(o) == norm(k)));
        all.env.extend(options.env);
        CodeApp {
            app: TestApp::spawn_with(kind, all).await,
            hook,
            _dir: dir,
        }
    }

    /// Asks for a login code for `p` as DIGIT's citizen app does.
    pub async fn send(&self, p: &Person) -> Response {
        send_code(
            &self.app.client,
            &self.app.address,
            p.mobile,
            p.tenant,
            "login",
        )
        .await
    }

    /// Asks for a code for `p` and returns it as the webhook got it.
    pub async fn code_for(&self, p: &Person) -> String {
        let res = self.send(p).await;
        assert_eq!(
            res.status(),
            StatusCode::CREATED,
            "{}",
            res.text().await.unwrap()
        );
        self.hook.last_code(p.mobile)
    }

    /// The citizen app's login with a code.
    pub async fn login(&self, p: &Person, code: &str) -> Response {
        code_login(&self.app.client, &self.app.address, p, code, &[]).await
    }
}

/// `POST /user-otp/v1/_send` as DIGIT's UI sends it (query `tenantId` and `_`, `RequestInfo`).
pub async fn send_code(
    client: &reqwest::Client,
    base: &str,
    mobile: &str,
    tenant: &str,
    kind: &str,
) -> Response {
    client
        .post(format!("{base}/user-otp/v1/_send?tenantId={tenant}&_=1724140000000"))
        .json(&json!({
            "otp": {"mobileNumber": mobile, "tenantId": tenant, "userType": "citizen", "type": kind},
            "RequestInfo": {"apiId": "Rainmaker", "msgId": "1724140000000|en_IN"},
        }))
        .send()
        .await
        .unwrap()
}

/// The password grant with a code, exactly as DIGIT's UI sends it: lowercase `userType`,
/// the state tenant, `scope=read`, `_` in the query; `extra` form fields after.
pub async fn code_login(
    client: &reqwest::Client,
    base: &str,
    p: &Person,
    code: &str,
    extra: &[(&str, &str)],
) -> Response {
    let mut form = vec![
        ("username", p.name),
        ("password", code),
        ("tenantId", p.tenant),
        ("userType", "citizen"),
        ("scope", "read"),
        ("grant_type", "password"),
    ];
    form.extend_from_slice(extra);
    client
        .post(format!("{base}/user/oauth/token?_=1724140000000"))
        .header("authorization", BASIC_DIGIT)
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// A code other than `code`.
pub fn other_than(code: &str) -> String {
    let n: u32 = code.parse().unwrap();
    format!("{:06}", (n + 1) % 1_000_000)
}

/// Asserts DIGIT user-otp's error envelope with `status` and one field of `code`; the body.
pub async fn assert_otp_error(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["responseInfo"], Value::Null, "{body}");
    assert_eq!(body["error"]["code"], status.as_u16(), "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert_eq!(body["error"]["fields"][0]["code"], code, "{body}");
    body
}

/// The Retry-After header in seconds.
pub fn retry_after(res: &Response) -> u64 {
    res.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After header in seconds")
}
