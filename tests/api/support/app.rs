//! The application in process on a free port, on the store a test picks: a fresh private
//! Redis, the embedded store, a shared Redis Cluster or Sentinel setup. Settings come from
//! `Options` over test defaults; `both_stores!` runs a behaviour test on Redis and embedded.

use super::cluster::TestCluster;
use super::sentinel::TestSentinel;
use super::{ApiClient, Keys, TestRedis, write_clients_file, write_seed_file};
use std::path::PathBuf;
use std::sync::Arc;
use token_server::config::Settings;
use token_server::startup::Application;

/// The `TOKEN_SECRET` every app and server process of the tests shares.
pub const TOKEN_SECRET: &str = "test-secret-0123456789-abcdefghijklmnop";

/// Which store a behaviour test runs on: a fresh private Redis, the embedded store, or a
/// shared Redis Cluster or Sentinel setup (each app under its own key prefix).
#[derive(Clone)]
pub enum StoreKind {
    Redis,
    Embedded,
    Cluster(Arc<TestCluster>),
    Sentinel(Arc<TestSentinel>),
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

fn unique_prefix() -> String {
    format!("t{}", uuid::Uuid::new_v4().simple())
}

/// The settings of an app on `redis_url` (none: the embedded store) under `prefix`.
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

/// The application running in this process; it speaks the API as an [`ApiClient`] (which it
/// derefs to) and stops on drop.
pub struct TestApp {
    api: ApiClient,
    pub redis: Option<Arc<TestRedis>>,
    pub prefix: String,
    handle: actix_web::dev::ServerHandle,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for TestApp {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

impl TestApp {
    /// An app on its own store: a fresh private Redis, or the embedded store.
    pub async fn spawn(kind: &StoreKind) -> TestApp {
        Self::spawn_with(kind, Options::default()).await
    }

    pub async fn spawn_with(kind: &StoreKind, options: Options) -> TestApp {
        match kind {
            StoreKind::Redis => Self::spawn_on(Some(Arc::new(TestRedis::start())), options).await,
            StoreKind::Embedded => Self::spawn_on(None, options).await,
            StoreKind::Cluster(cluster) => {
                let options = options.with("REDIS_CLUSTER_NODES", cluster.nodes_setting());
                Self::spawn_on(None, options).await
            }
            StoreKind::Sentinel(sentinel) => {
                let options = options
                    .with("REDIS_SENTINELS", sentinel.sentinels_setting())
                    .with("REDIS_SENTINEL_MASTER", super::sentinel::MASTER)
                    .with("REDIS_SENTINEL_PASSWORD", super::sentinel::PASSWORD);
                Self::spawn_on(None, options).await
            }
        }
    }

    /// An app on `redis` (shared with other apps when they use the same prefix).
    pub async fn spawn_on(redis: Option<Arc<TestRedis>>, options: Options) -> TestApp {
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
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            // A real browser's length, longer than a compact Redis hash value.
            .user_agent("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
            .build()
            .unwrap();
        TestApp {
            api: ApiClient::new(&address, client),
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

    /// The names of this app's Redis keys, as the server makes them.
    pub fn key_names(&self) -> Keys {
        Keys::new(&self.prefix)
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

/// Defines `redis` and `embedded` variants of a behaviour test taking `StoreKind`.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test]
                async fn redis() {
                    super::$name($crate::support::StoreKind::Redis).await
                }
                #[tokio::test]
                async fn embedded() {
                    super::$name($crate::support::StoreKind::Embedded).await
                }
            }
        )*

        /// Every test of this module, one after another, on `kind`.
        pub async fn run_all(kind: $crate::support::StoreKind) {
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
