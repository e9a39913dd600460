//! Test harness: a private `redis-server` per test, the application on a free port, seeded
//! users with cost-4 bcrypt hashes, and a client that speaks the API.

use reqwest::{Response, StatusCode};
use serde_json::Value;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use token_server::config::Settings;
use token_server::startup::Application;

pub const BASIC_DIGIT: &str = "Basic ZWdvdi11c2VyLWNsaWVudDo=";

/// A seeded user: name, tenant, password, type.
pub struct Seed {
    pub name: &'static str,
    pub tenant: &'static str,
    pub password: &'static str,
    pub user_type: &'static str,
    pub active: bool,
}

pub const EMPLOYEE: Seed = Seed {
    name: "EMP-0001",
    tenant: "pb",
    password: "Emp-Secret-Pass-1",
    user_type: "EMPLOYEE",
    active: true,
};
pub const CITIZEN: Seed = Seed {
    name: "9999999999",
    tenant: "pb",
    password: "Citizen-Secret-Pass-2",
    user_type: "CITIZEN",
    active: true,
};
pub const INACTIVE: Seed = Seed {
    name: "sleepy",
    tenant: "pb",
    password: "Inactive-Secret-Pass-3",
    user_type: "EMPLOYEE",
    active: false,
};
/// The same user name in two tenants.
pub const TWIN_PB: Seed = Seed {
    name: "twin",
    tenant: "pb",
    password: "Twin-Secret-Pass-4",
    user_type: "EMPLOYEE",
    active: true,
};
pub const TWIN_MZ: Seed = Seed {
    name: "twin",
    tenant: "mz",
    password: "Twin-Secret-Pass-5",
    user_type: "CITIZEN",
    active: true,
};

pub const SEEDS: [&Seed; 5] = [&EMPLOYEE, &CITIZEN, &INACTIVE, &TWIN_PB, &TWIN_MZ];

pub fn user_json(seed: &Seed, id: usize) -> Value {
    serde_json::json!({
        "id": id,
        "uuid": format!("uuid-{}-{}", seed.tenant, seed.name),
        "userName": seed.name,
        "name": format!("Name of {}", seed.name),
        "mobileNumber": null,
        "emailId": null,
        "locale": "en_IN",
        "type": seed.user_type,
        "roles": [{"name": "Employee", "code": "EMPLOYEE", "tenantId": seed.tenant}],
        "active": seed.active,
        "tenantId": seed.tenant,
    })
}

/// The seed file's JSON: every user of `SEEDS` with a cost-4 bcrypt hash.
fn seed_file_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        let users: Vec<Value> = SEEDS
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let mut u = user_json(s, i + 1);
                u["password"] = bcrypt::hash(s.password, 4).unwrap().into();
                u
            })
            .collect();
        serde_json::to_string_pretty(&users).unwrap()
    })
}

/// Basic credentials of the confidential test client `gateway`.
pub const GATEWAY_SECRET: &str = "gateway-secret-0123456789";

pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// Clients beside the default one: `gateway` (confidential, read and write), `mobile`
/// (public) and `password-only` (public, no refresh grant).
pub fn write_clients_file(dir: &Path) -> PathBuf {
    static JSON: OnceLock<String> = OnceLock::new();
    let json = JSON.get_or_init(|| {
        serde_json::json!([
            {"client_id": "gateway", "client_secret_hash": bcrypt::hash(GATEWAY_SECRET, 4).unwrap(),
             "grant_types": ["password", "refresh_token"], "scopes": ["read", "write"]},
            {"client_id": "mobile", "scopes": ["read"]},
            {"client_id": "password-only", "grant_types": ["password"]},
        ])
        .to_string()
    });
    let path = dir.join("clients.json");
    std::fs::write(&path, json).unwrap();
    path
}

pub fn write_seed_file(dir: &Path) -> PathBuf {
    let path = dir.join("users.json");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(seed_file_json().as_bytes()))
        .unwrap();
    path
}

/// A port that was free a moment ago. Another process may take it before it is used, so a
/// harness that binds it later retries on new ports; as a port nothing listens on, it stays
/// free unless something takes it meanwhile.
pub fn free_port() -> u16 {
    free_ports(1)[0]
}

/// `n` distinct ports that were free a moment ago (held together while chosen, so none repeats).
pub fn free_ports(n: usize) -> Vec<u16> {
    let held: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    held.iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

/// The process id of the Redis (server or sentinel) that answers `conn`: tells a server we
/// started from another that holds the port it was meant to bind.
pub fn redis_pid(conn: &mut redis::Connection) -> Option<u32> {
    let info: String = redis::cmd("INFO").arg("server").query(conn).ok()?;
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// How many times a harness starts a server on new ports before it gives up.
pub const START_ATTEMPTS: usize = 5;

/// A private redis-server on a free port, persistence off, killed on drop.
pub struct TestRedis {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Persistence and role arguments: no persistence by default, AOF for restart tests.
    extra: Vec<String>,
    /// TLS only, with the certificates in this folder (see `tls_material`).
    tls: Option<PathBuf>,
}

/// A client for `url`, trusting the test CA in `tls` when given.
pub fn client_for(url: &str, tls: Option<&Path>) -> redis::Client {
    match tls {
        Some(dir) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(std::fs::read(dir.join("ca.crt")).unwrap()),
            },
        )
        .unwrap(),
        None => redis::Client::open(url).unwrap(),
    }
}

/// redis-server arguments that serve only TLS on `port`, replication included.
pub fn tls_args(port: u16, material: &Path) -> Vec<String> {
    let file = |name: &str| material.join(name).display().to_string();
    [
        "--port",
        "0",
        "--tls-port",
        &port.to_string(),
        "--tls-replication",
        "yes",
        "--tls-auth-clients",
        "no",
        "--tls-cert-file",
        &file("redis.crt"),
        "--tls-key-file",
        &file("redis.key"),
        "--tls-ca-cert-file",
        &file("ca.crt"),
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

pub fn redis_server_binary() -> String {
    let found = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "redis-server is not on PATH: these tests run a real Redis. Install it (Debian/Ubuntu: apt-get install -y redis-server)"
    );
    "redis-server".into()
}

impl TestRedis {
    pub fn start() -> Self {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// A Redis that writes every command to its append-only file before answering.
    pub fn start_with_aof() -> Self {
        Self::start_with(&[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
    }

    /// A Redis that requires AUTH with `password`.
    pub fn start_with_password(password: &str) -> Self {
        Self::start_with(&[
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            password,
        ])
    }

    fn start_with(extra: &[&str]) -> Self {
        Self::start_tls_with(None, extra)
    }

    /// With `tls`, a Redis that speaks only TLS, with the certificates in that folder.
    pub fn start_tls_with(tls: Option<&Path>, extra: &[&str]) -> Self {
        let mut log = String::new();
        for _ in 0..START_ATTEMPTS {
            let mut redis = TestRedis {
                port: free_port(),
                dir: tempfile::tempdir().unwrap(),
                child: None,
                extra: extra.iter().map(|a| a.to_string()).collect(),
                tls: tls.map(Path::to_path_buf),
            };
            match redis.launch() {
                Ok(()) => return redis,
                Err(last) => log = last,
            }
        }
        panic!("redis-server did not start after {START_ATTEMPTS} attempts; last log:\n{log}");
    }

    /// Starts redis-server on `self.port`; its log if it exits (its port was taken) or does
    /// not answer as itself within 10 s.
    fn launch(&mut self) -> Result<(), String> {
        let listen = match &self.tls {
            Some(material) => tls_args(self.port, material),
            None => vec!["--port".into(), self.port.to_string()],
        };
        let child = Command::new(redis_server_binary())
            .args(&listen)
            .args(["--bind", "127.0.0.1"])
            .args(&self.extra)
            .args(["--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--logfile", "redis.log"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                self.child = None;
                break;
            }
            if self.answering_pid() == Some(pid) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
        Err(format!("port {}:\n{log}", self.port))
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        match self.password() {
            Some(pw) => format!("{scheme}://:{pw}@127.0.0.1:{}", self.port),
            None => format!("{scheme}://127.0.0.1:{}", self.port),
        }
    }

    /// The password it requires, if started with `--requirepass`.
    pub fn password(&self) -> Option<&str> {
        let i = self.extra.iter().position(|a| a == "--requirepass")?;
        self.extra.get(i + 1).map(String::as_str)
    }

    /// The process id of the Redis that answers on this one's port, if any does.
    fn answering_pid(&self) -> Option<u32> {
        let mut conn = client_for(&self.url(), self.tls.as_deref())
            .get_connection_with_timeout(Duration::from_millis(500))
            .ok()?;
        redis_pid(&mut conn)
    }

    pub fn conn(&self) -> redis::Connection {
        client_for(&self.url(), self.tls.as_deref())
            .get_connection()
            .unwrap()
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and directory (empty unless it persists). Clients
    /// know it by its port, so it cannot move: a few tries, then the test fails.
    pub fn restart(&mut self) {
        self.stop();
        let mut log = String::new();
        for _ in 0..START_ATTEMPTS {
            match self.launch() {
                Ok(()) => return,
                Err(last) => log = last,
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("redis-server did not restart on its port; last log:\n{log}");
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Which store a behaviour test runs on: a fresh private Redis, the embedded store, or a
/// shared Redis Cluster (each app under its own key prefix).
#[derive(Clone)]
pub enum StoreKind {
    Redis,
    Embedded,
    Cluster(std::sync::Arc<crate::cluster_harness::TestCluster>),
    Sentinel(std::sync::Arc<crate::sentinel::TestSentinel>),
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub redis: Option<std::sync::Arc<TestRedis>>,
    pub prefix: String,
    handle: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
}

/// How to configure a spawned app beyond the defaults.
#[derive(Clone)]
pub struct Options {
    pub access_minutes: f64,
    pub refresh_minutes: f64,
    pub prefix: Option<String>,
    /// More settings, by any of their names.
    pub env: Vec<(&'static str, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            access_minutes: 60.0,
            refresh_minutes: 120.0,
            prefix: None,
            env: vec![],
        }
    }
}

impl Options {
    pub fn with(mut self, name: &'static str, value: impl ToString) -> Self {
        self.env.push((name, value.to_string()));
        self
    }

    pub fn lifetimes(access_minutes: f64, refresh_minutes: f64) -> Self {
        Options {
            access_minutes,
            refresh_minutes,
            ..Options::default()
        }
    }
}

pub const TOKEN_SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";

fn unique_prefix() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

pub fn settings(
    redis_url: Option<String>,
    prefix: &str,
    users_file: PathBuf,
    o: &Options,
) -> Settings {
    let mut vars = vec![
        ("HOST".to_string(), "127.0.0.1".to_string()),
        ("PORT".into(), "0".into()),
        (
            "ACCESS_TOKEN_VALIDITY_IN_MINUTES".into(),
            o.access_minutes.to_string(),
        ),
        (
            "REFRESH_TOKEN_VALIDITY_IN_MINUTES".into(),
            o.refresh_minutes.to_string(),
        ),
        ("REDIS_KEY_PREFIX".into(), prefix.to_string()),
        ("REDIS_TIMEOUT_MS".into(), "500".into()),
        ("USERS_FILE".into(), users_file.display().to_string()),
        ("WORKERS".into(), "2".into()),
        ("TOKEN_SECRET".into(), TOKEN_SECRET.into()),
        // The seed users' cost: every password check is padded to BCRYPT_COST.
        ("BCRYPT_COST".into(), "4".into()),
    ];
    // A setting given in the options replaces the default of the same name.
    let norm = |k: &str| k.to_ascii_lowercase().replace('.', "_");
    vars.retain(|(k, _)| !o.env.iter().any(|(e, _)| norm(e) == norm(k)));
    vars.extend(o.env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    if let Some(url) = redis_url {
        vars.push(("REDIS_URL".into(), url));
    }
    Settings::from_vars(vars).unwrap()
}

impl TestApp {
    /// An app on its own store: a fresh private Redis, or the embedded store.
    pub async fn spawn(kind: &StoreKind) -> TestApp {
        Self::spawn_with(kind, Options::default()).await
    }

    pub async fn spawn_with(kind: &StoreKind, options: Options) -> TestApp {
        match kind {
            StoreKind::Redis => {
                Self::spawn_on(Some(std::sync::Arc::new(TestRedis::start())), options).await
            }
            StoreKind::Embedded => Self::spawn_on(None, options).await,
            StoreKind::Cluster(cluster) => {
                let options = options.with("REDIS_CLUSTER_NODES", cluster.nodes_setting());
                Self::spawn_on(None, options).await
            }
            StoreKind::Sentinel(sentinel) => {
                let options = options
                    .with("REDIS_SENTINELS", sentinel.sentinels_setting())
                    .with("REDIS_SENTINEL_MASTER", crate::sentinel::MASTER)
                    .with("REDIS_SENTINEL_PASSWORD", crate::sentinel::PASSWORD);
                Self::spawn_on(None, options).await
            }
        }
    }

    /// An app on `redis` (shared with other apps when they use the same prefix).
    pub async fn spawn_on(redis: Option<std::sync::Arc<TestRedis>>, options: Options) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let users = write_seed_file(dir.path());
        let clients = write_clients_file(dir.path());
        let prefix = options.prefix.clone().unwrap_or_else(unique_prefix);
        // The test clients, unless the options name a clients file of their own.
        let options = if options.env.iter().any(|(k, _)| *k == "CLIENTS_FILE") {
            options
        } else {
            options.with("CLIENTS_FILE", clients.display())
        };
        let s = settings(redis.as_ref().map(|r| r.url()), &prefix, users, &options);
        let app = Application::build(s).await.unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // A real browser's length, longer than a compact Redis hash value.
                .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
                .build()
                .unwrap(),
            redis,
            prefix,
            handle,
            _dir: dir,
        }
    }

    pub fn redis(&self) -> &TestRedis {
        self.redis
            .as_ref()
            .expect("this app runs on the embedded store")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A password grant for `seed` sent from the loopback address `from` with `headers`.
    pub async fn login_from(&self, from: &str, seed: &Seed, headers: &[(&str, &str)]) -> Response {
        let client = reqwest::Client::builder()
            .local_address(from.parse::<std::net::IpAddr>().unwrap())
            .build()
            .unwrap();
        let mut req = client
            .post(self.url("/user/oauth/token"))
            .header("Authorization", BASIC_DIGIT)
            .form(&[
                ("grant_type", "password"),
                ("username", seed.name),
                ("password", seed.password),
                ("tenantId", seed.tenant),
            ]);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap()
    }

    pub async fn token_request(&self, form: &[(&str, &str)]) -> Response {
        self.post_form_as("/user/oauth/token", BASIC_DIGIT, form)
            .await
    }

    /// A form POST with `authorization` as the Authorization header.
    pub async fn post_form_as(
        &self,
        path: &str,
        authorization: &str,
        form: &[(&str, &str)],
    ) -> Response {
        self.client
            .post(self.url(path))
            .header("Authorization", authorization)
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// A password grant with `extra` form fields.
    pub async fn password_login<'a>(
        &self,
        user: &'a str,
        password: &'a str,
        extra: impl AsRef<[(&'a str, &'a str)]>,
    ) -> Response {
        let mut form = vec![
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
        ];
        form.extend_from_slice(extra.as_ref());
        self.token_request(&form).await
    }

    pub async fn login(&self, seed: &Seed) -> Response {
        self.token_request(&[
            ("grant_type", "password"),
            ("username", seed.name),
            ("password", seed.password),
            ("tenantId", seed.tenant),
            ("userType", seed.user_type),
            ("scope", "read"),
        ])
        .await
    }

    /// Logs in and returns the token response body; panics unless it is a 200.
    pub async fn login_ok(&self, seed: &Seed) -> Tokens {
        let res = self.login(seed).await;
        assert_eq!(res.status(), StatusCode::OK, "login of {}", seed.name);
        Tokens::from(res.json::<Value>().await.unwrap())
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    pub async fn refresh_ok(&self, refresh_token: &str) -> Tokens {
        let res = self.refresh(refresh_token).await;
        assert_eq!(res.status(), StatusCode::OK, "refresh");
        Tokens::from(res.json::<Value>().await.unwrap())
    }

    pub async fn logout(&self, access_token: &str) -> Response {
        self.client
            .post(self.url(&format!("/user/_logout?access_token={access_token}")))
            .send()
            .await
            .unwrap()
    }

    pub async fn details(&self, access_token: &str) -> Response {
        self.client
            .post(self.url(&format!("/user/_details?access_token={access_token}")))
            .send()
            .await
            .unwrap()
    }

    /// Login, validation and refresh all succeed now; anything but 200 or 503 is a test failure.
    pub async fn full_cycle_works(&self, seed: &Seed) -> bool {
        let res = self.login(seed).await;
        if res.status() != StatusCode::OK {
            assert_eq!(
                res.status(),
                StatusCode::SERVICE_UNAVAILABLE,
                "only 503s while Redis is away"
            );
            return false;
        }
        let t = Tokens::from(res.json::<Value>().await.unwrap());
        self.details_status(&t.access).await == StatusCode::OK
            && self.refresh(&t.refresh).await.status() == StatusCode::OK
    }

    pub async fn details_status(&self, access_token: &str) -> StatusCode {
        self.details(access_token).await.status()
    }

    /// Neither token of the session works any more.
    pub async fn assert_session_ended(&self, tokens: &Tokens) {
        assert_eq!(
            self.details_status(&tokens.access).await,
            StatusCode::UNAUTHORIZED
        );
        assert_oauth_error(
            self.refresh(&tokens.refresh).await,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .await;
    }

    /// `GET /user/sessions` as the owner of `access_token`.
    pub async fn sessions_of(&self, access_token: &str) -> Value {
        self.client
            .get(self.url("/user/sessions"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// What RFC 7662 introspection, asked by the confidential client `gateway`, says of
    /// `token`. Unlike a refresh it changes nothing, so a test may poll it.
    pub async fn introspect(&self, token: &str) -> Value {
        let res = self
            .post_form_as(
                "/oauth/introspect",
                &basic("gateway", GATEWAY_SECRET),
                &[("token", token)],
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "introspection");
        res.json().await.unwrap()
    }

    /// Whether introspection calls `token` live.
    pub async fn is_active(&self, token: &str) -> bool {
        self.introspect(token).await["active"] == true
    }

    /// Waits until neither `access` nor `refresh` is live any more, by their own clocks: the
    /// access token answers 401 and introspection calls the refresh token inactive.
    pub async fn wait_until_expired(&self, access: &str, refresh: &str, limit: Duration) {
        let expired = eventually(limit, || async {
            self.details_status(access).await == StatusCode::UNAUTHORIZED
                && !self.is_active(refresh).await
        })
        .await;
        assert!(expired, "the tokens were still live after {limit:?}");
    }

    /// Every key under this app's prefix.
    pub fn keys(&self) -> Vec<String> {
        let mut conn = self.redis().conn();
        redis::cmd("KEYS")
            .arg(format!("{}:*", self.prefix))
            .query(&mut conn)
            .unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Sends the stop command at once; the future only reports completion.
        drop(self.handle.stop(false));
    }
}

#[derive(Clone, Debug)]
pub struct Tokens {
    pub access: String,
    pub refresh: String,
    pub body: Value,
}

impl From<Value> for Tokens {
    fn from(body: Value) -> Self {
        Tokens {
            access: body["access_token"].as_str().unwrap().to_string(),
            refresh: body["refresh_token"].as_str().unwrap().to_string(),
            body,
        }
    }
}

/// Asserts an RFC 6749 error body and returns it.
pub async fn assert_oauth_error(res: Response, status: StatusCode, error: &str) -> Value {
    assert_eq!(res.status(), status, "expected {status} {error}");
    assert_eq!(
        res.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].is_string(), "{body}");
    body
}

/// Polls `check` every 100 ms until it is true or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_every(limit, Duration::from_millis(100), check).await
}

/// Polls `check` every `every` until it is true or `limit` has passed.
pub async fn eventually_every<F, Fut>(limit: Duration, every: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}

/// The value of metric series `series` (its name and labels, as the exposition prints them)
/// in `base`'s `/metrics`; 0 if absent. In-process apps share one recorder.
pub async fn metric_at(base: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Defines `redis` and `embedded` variants of a behaviour test taking `StoreKind`.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn redis() {
                    super::$name($crate::helpers::StoreKind::Redis).await
                }
                #[tokio::test]
                async fn embedded() {
                    super::$name($crate::helpers::StoreKind::Embedded).await
                }
            }
        )*

        /// Every test of this module, one after another, on `kind`.
        pub async fn run_all(kind: $crate::helpers::StoreKind) {
            $(
                eprintln!("  {}::{}", module_path!(), stringify!($name));
                $name(kind.clone()).await;
            )*
        }
    };
}

/// The whole behaviour suite, one test after another, on `kind`.
pub async fn run_behaviour_suite(kind: StoreKind) {
    crate::behaviour::run_all(kind.clone()).await;
    crate::rotation::run_all(kind.clone()).await;
    crate::sessions::run_all(kind.clone()).await;
    crate::oauth::run_all(kind.clone()).await;
    crate::guards::run_all(kind.clone()).await;
    crate::bad_input::run_all(kind.clone()).await;
    crate::abuse::run_all(kind.clone()).await;
    crate::trust::run_all(kind.clone()).await;
    crate::otp::run_all(kind.clone()).await;
    crate::gateway::run_all(kind).await;
}

/// A private CA and a certificate for 127.0.0.1 signed by it, made with the openssl CLI.
pub fn tls_material(dir: &std::path::Path) {
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output();
        let out = out.expect("openssl is on PATH (apt-get install -y openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-days",
        "1",
        "-subj",
        "/CN=token-server test CA",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "redis.key",
        "-out",
        "redis.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&[
        "x509",
        "-req",
        "-in",
        "redis.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "redis.crt",
        "-days",
        "1",
        "-extfile",
        "san.ext",
    ]);
}

/// A password grant (tenant `pb`) sent to the server at `base` as DIGIT's public client.
pub async fn password_grant(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> Response {
    client
        .post(format!("{base}/user/oauth/token"))
        .header("Authorization", BASIC_DIGIT)
        .form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", password),
            ("tenantId", "pb"),
        ])
        .send()
        .await
        .unwrap()
}

/// A refresh_token grant sent to the server at `base` as DIGIT's public client.
pub async fn refresh_grant(client: &reqwest::Client, base: &str, refresh_token: &str) -> Response {
    client
        .post(format!("{base}/user/oauth/token"))
        .header("Authorization", BASIC_DIGIT)
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap()
}

/// The status `/user/_details` answers for `access_token` at `base`.
pub async fn details_status_at(
    client: &reqwest::Client,
    base: &str,
    access_token: &str,
) -> StatusCode {
    client
        .get(format!("{base}/user/_details?access_token={access_token}"))
        .send()
        .await
        .unwrap()
        .status()
}

/// Asserts the documented answer of a request the store could not serve: 503
/// `temporarily_unavailable` in the RFC 6749 error shape, with `Retry-After: 1`. `what` names
/// the request in the failure message.
pub async fn assert_unavailable(res: Response, what: &str) {
    let status = res.status();
    let retry_after = res
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = res.text().await.unwrap_or_default();
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: only 503s while the store is away, never a 401 or 400: {body}"
    );
    let json: Value = serde_json::from_str(&body)
        .unwrap_or_else(|e| panic!("{what}: the 503 body is not JSON ({e}): {body}"));
    assert_eq!(json["error"], "temporarily_unavailable", "{what}: {body}");
    assert!(json["error_description"].is_string(), "{what}: {body}");
    assert_eq!(retry_after.as_deref(), Some("1"), "{what}: Retry-After");
}

/// The answer if it is a 200; otherwise asserts it is the documented outage answer (see
/// [`assert_unavailable`]) and gives `None`.
pub async fn ok_or_unavailable(res: Response, what: &str) -> Option<Response> {
    if res.status() == StatusCode::OK {
        return Some(res);
    }
    assert_unavailable(res, what).await;
    None
}

/// One login, validation and refresh of `seed` while the store may be away: true if all three
/// answered 200. Any other answer must be the documented 503 (see [`assert_unavailable`]).
pub async fn full_cycle_or_unavailable(app: &TestApp, seed: &Seed) -> bool {
    let Some(res) = ok_or_unavailable(app.login(seed).await, "login").await else {
        return false;
    };
    let t = Tokens::from(res.json::<Value>().await.unwrap());
    ok_or_unavailable(app.details(&t.access).await, "details of a new session")
        .await
        .is_some()
        && ok_or_unavailable(app.refresh(&t.refresh).await, "refresh")
            .await
            .is_some()
}

impl TestRedis {
    /// A Redis that accepts `DEBUG` commands, persistence off.
    pub fn start_with_debug() -> Self {
        Self::start_with(&[
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
        ])
    }
}
