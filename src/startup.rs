//! Builds the application from settings: store, users, clients, bcrypt limiter and the HTTP
//! server on its own listener (port 0 picks a free one, as tests do).

use crate::clients::Clients;
use crate::config::{RedisTarget, Settings, TokenSecret};
use crate::domain::session::SessionPolicy;
use crate::login::Login;
use crate::otp::Otp;
use crate::password::PasswordVerifier;
use crate::redis_io::Keys;
use crate::redis_io::RedisConn;
use crate::routes::{self, AppState};
use crate::store::Store;
use crate::store::codes::CodeStore;
use crate::store::memory::MemoryStore;
use crate::store::redis::RedisStore;
use crate::users::UserDirectory;
use crate::users::redis::RedisUsers;
use crate::users::seed::SeedUsers;
use actix_web::dev::Server;
use actix_web::middleware::Condition;
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Why the server could not start. `Config` errors exit with code 2.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: String,
        source: std::io::Error,
    },
}

/// The server the settings describe: listening, and serving once run.
pub struct Application {
    port: u16,
    server: Server,
    /// `/metrics` on its own port (METRICS_PORT), and that port.
    metrics: Option<(Server, u16)>,
    draining: Arc<AtomicBool>,
    shutdown_delay: Duration,
}

const DEMO_USERS: &str = include_str!("../demo/users.json");

/// Client secret checks that may wait; past it a client authentication answers 503.
const CLIENT_QUEUE: usize = 16;

impl Application {
    /// Everything the settings describe, listening (on a free port when `PORT` is 0) but not
    /// yet serving: `run_until_stopped` or `run_until_signalled` does that.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut state = app_state(&settings)?;
        if let Some(stored) = state
            .store
            .lease_conflict(settings.redis.validation_lease)
            .await
        {
            return Err(StartupError::Config(format!(
                "invalid setting VALIDATION_LEASE_MS={}: the replicas on this Redis (key prefix {:?}) run {stored}; every replica must run the same (to change it, stop them all, or delete the key {:?}:lease and accept that until all run the new value a logout may take up to the larger lease to reach some replicas)",
                settings.redis.validation_lease.as_millis(),
                settings.redis.key_prefix,
                settings.redis.key_prefix
            )));
        }
        let (listener, port) = bind(&settings.server.host, settings.server.port)?;
        if state.public_url.is_none() {
            if settings.redis.uses_redis() {
                log::info!("PUBLIC_URL is not set: no RFC 8414 metadata is published");
            } else {
                // A single dev instance: a name no client chose.
                state.public_url = Some(format!("http://localhost:{port}"));
            }
        }
        let state = web::Data::new(state);
        let draining = state.draining.clone();
        // Installs the process's recorder before the first request.
        crate::metrics::handle();
        crate::metrics::zero_client_failures(state.clients.confidential());
        let server = api_server(&settings, state, listener, port)?;
        log::info!("listening on {}:{port}", settings.server.host);
        let metrics = match settings.server.metrics_port {
            Some(wanted) => Some(metrics_server(&settings.server.host, wanted)?),
            None => None,
        };
        Ok(Application {
            port,
            server,
            metrics,
            draining,
            shutdown_delay: settings.server.shutdown_delay,
        })
    }

    /// The port the API listens on: the free one picked when `PORT` is 0.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server from elsewhere (tests, signal handlers).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The port `/metrics` is served on.
    pub fn metrics_port(&self) -> u16 {
        self.metrics.as_ref().map_or(self.port, |(_, port)| *port)
    }

    /// Serves until stopped through [`Self::handle`]; signals do not stop it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        serve_both(self.server, self.metrics.map(|(server, _)| server)).await
    }

    /// Runs until SIGTERM or SIGINT, then drains: `/ready` turns 503 at once, requests are
    /// still served for the shutdown delay (so load balancers see it), then the server stops
    /// accepting and waits for in-flight requests up to the drain time.
    pub async fn run_until_signalled(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let draining = self.draining.clone();
        let delay = self.shutdown_delay;
        tokio::spawn(async move {
            wait_for_signal().await;
            draining.store(true, Ordering::Release);
            log::info!("shutting down: /ready answers 503; serving for {delay:?}, then draining");
            tokio::time::sleep(delay).await;
            handle.stop(true).await;
        });
        serve_both(self.server, self.metrics.map(|(server, _)| server)).await
    }
}

/// The seed users the settings name: the file, none (Redis users only), or the demo users
/// when nothing at all is configured.
fn seed_users(settings: &Settings) -> Result<SeedUsers, StartupError> {
    let seed = match (&settings.accounts.users_file, settings.redis.uses_redis()) {
        (Some(path), _) => SeedUsers::load(path).map_err(StartupError::Config)?,
        (None, true) => SeedUsers::default(),
        // Nothing configured at all: a developer's first run, so a login works at once.
        (None, false) => {
            log::warn!("USERS_FILE is not set: serving the demo users of demo/users.json");
            SeedUsers::parse(DEMO_USERS).map_err(StartupError::Config)?
        }
    };
    log::info!("{} users from the seed file", seed.len());
    Ok(seed)
}

/// The session store, the Redis user records when there is a Redis, and the one-time codes.
fn stores(settings: &Settings) -> Result<(Store, Option<RedisUsers>, CodeStore), StartupError> {
    let s = &settings.sessions;
    let policy = SessionPolicy {
        access: s.access_validity,
        refresh: s.refresh_validity,
        rotation: s.rotation,
        reuse_grace: s.reuse_grace,
        max_lifetime: s.max_lifetime,
        max_sessions_per_user: s.max_sessions_per_user,
    };
    // Only one instance uses the embedded store, so a random secret serves it.
    let secret = s.token_secret.clone().unwrap_or_else(TokenSecret::random);
    Ok(match redis_connection(settings)? {
        Some(conn) => {
            let prefix = &settings.redis.key_prefix;
            let redis = RedisStore::new(conn.clone(), prefix)
                .with_lease(settings.redis.validation_lease)
                .with_validation_cache(
                    settings.redis.validation_cache_entries,
                    settings.redis.timeout,
                );
            let users = RedisUsers::new(conn.clone(), Keys::new(prefix));
            let codes = CodeStore::redis(conn, Keys::new(prefix));
            (Store::redis(redis, policy, &secret), Some(users), codes)
        }
        None => {
            log::warn!(
                "REDIS_URL is not set: using the embedded in-process store; tokens are neither shared between replicas nor kept across restarts"
            );
            let memory = MemoryStore::new();
            memory.spawn_sweeper(Duration::from_secs(30));
            let codes = CodeStore::memory(Duration::from_secs(30));
            (Store::memory(memory, policy, &secret), None, codes)
        }
    })
}

/// What every handler shares.
fn app_state(settings: &Settings) -> Result<AppState, StartupError> {
    let seed = seed_users(settings)?;
    let (store, redis_users, codes) = stores(settings)?;
    let guards = &settings.guards;
    // Every check costs at least what the admin commands hash at, or the seed file's dearest
    // hash: a name that finds nobody must cost what a real user does.
    let cost = seed.max_cost().unwrap_or(0).max(guards.bcrypt_cost);
    let verifier =
        PasswordVerifier::new(guards.bcrypt_max_concurrent, guards.bcrypt_max_queue, cost)
            .map_err(StartupError::Config)?;
    // Client secrets have a pool of their own, so a flood of them cannot crowd out logins.
    let client_verifier =
        PasswordVerifier::new(1, CLIENT_QUEUE, 4).map_err(StartupError::Config)?;
    let clients = Clients::load(
        settings.accounts.clients_file.as_deref(),
        settings.accounts.default_client_enabled,
    )
    .map_err(StartupError::Config)?;
    let users = UserDirectory::new(seed, redis_users);
    // Replicas on Redis share TOKEN_SECRET (required there); one embedded instance needs none.
    let code_secret = settings.sessions.token_secret.clone();
    let code_secret = code_secret.unwrap_or_else(TokenSecret::random);
    let otp = Otp::new(&settings.otp, codes, code_secret.expose(), users.clone())
        .map_err(StartupError::Config)?;
    let login = Login {
        store: store.clone(),
        users,
        verifier,
        lockout: guards.lockout,
        attempts_per_ip_per_minute: guards.attempts_per_ip_per_minute,
        codes: otp.map(Arc::new),
        hints: Default::default(),
    };
    Ok(AppState {
        store,
        login,
        clients,
        verifier: client_verifier,
        trusted_proxies: guards.trusted_proxies.clone(),
        public_url: settings.server.public_url.clone(),
        draining: Arc::new(AtomicBool::new(false)),
        metrics_on_api_port: settings.server.metrics_port.is_none(),
        body_timeout: settings.server.body_timeout,
        account_page: settings.server.account_page,
    })
}

/// The API's HTTP server on `listener`, started.
fn api_server(
    settings: &Settings,
    state: web::Data<AppState>,
    listener: TcpListener,
    port: u16,
) -> Result<Server, StartupError> {
    // The access log formats every request before knowing whether the line is wanted; with
    // info off for its target it is left out.
    let access_log = log::log_enabled!(target: "actix_web::middleware::logger", log::Level::Info);
    let proxies = settings.guards.trusted_proxies.clone();
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .wrap(routes::observe::Observe)
            .wrap(Condition::new(
                access_log,
                routes::access_log(proxies.clone()),
            ))
            .configure(routes::configure)
    })
    .on_connect(|_, data| {
        data.insert(routes::UnreadBody::default());
    })
    .workers(settings.server.workers)
    .shutdown_timeout(settings.server.shutdown_drain.as_secs().max(1))
    // Signals are ours: SIGTERM first turns /ready to 503, then stops gracefully.
    .disable_signals()
    .listen(listener)
    .map_err(|source| StartupError::Bind {
        address: format!("port {port}"),
        source,
    })?
    .run())
}

/// Runs the API server; the metrics server, if any, stops with it.
async fn serve_both(api: Server, metrics: Option<Server>) -> std::io::Result<()> {
    let Some(metrics) = metrics else {
        return api.await;
    };
    let metrics_handle = metrics.handle();
    let metrics_task = tokio::spawn(metrics);
    let result = api.await;
    metrics_handle.stop(false).await;
    let _ = metrics_task.await;
    result
}

/// A listener on `host:port` and the port it got (port 0 picks a free one).
fn bind(host: &str, port: u16) -> Result<(TcpListener, u16), StartupError> {
    let address = format!("{host}:{port}");
    let listener = TcpListener::bind(&address).map_err(|source| StartupError::Bind {
        address: address.clone(),
        source,
    })?;
    let port = listener
        .local_addr()
        .map_err(|source| StartupError::Bind { address, source })?
        .port();
    Ok((listener, port))
}

/// `/metrics` alone on `port` of `host`, so it need not be exposed with the API.
fn metrics_server(host: &str, port: u16) -> Result<(Server, u16), StartupError> {
    let (listener, port) = bind(host, port)?;
    let server = HttpServer::new(|| App::new().configure(crate::metrics::configure))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .map_err(|source| StartupError::Bind {
            address: format!("port {port}"),
            source,
        })?
        .run();
    log::info!("metrics on {host}:{port}/metrics");
    Ok((server, port))
}

/// The Redis connection the settings name, or `None` for the embedded store. Connects lazily,
/// so this succeeds while Redis is down.
pub fn redis_connection(settings: &Settings) -> Result<Option<RedisConn>, StartupError> {
    let redis = &settings.redis;
    let ca = match &redis.tls_ca_file {
        Some(path) => Some(std::fs::read(path).map_err(|e| {
            StartupError::Config(format!(
                "cannot read REDIS_TLS_CA_FILE {}: {e}",
                path.display()
            ))
        })?),
        None => None,
    };
    let ca = ca.as_deref();
    let prefix = &redis.key_prefix;
    let conn = match &redis.target {
        RedisTarget::Embedded => return Ok(None),
        RedisTarget::Cluster(urls) => {
            let nodes: Vec<String> = urls.iter().map(|u| u.expose().to_string()).collect();
            let conn = RedisConn::cluster(&nodes, redis.timeout, ca)
                .map_err(|e| StartupError::Config(format!("REDIS_CLUSTER_NODES: {e}")))?;
            log::info!(
                "session store: redis cluster at {} node(s) given, key prefix {prefix:?}",
                nodes.len()
            );
            conn
        }
        RedisTarget::Sentinel(sentinel) => {
            let sentinels: Vec<String> = sentinel
                .sentinels
                .iter()
                .map(|u| u.expose().to_string())
                .collect();
            let password = sentinel.master_password.as_ref().map(|p| p.expose());
            let conn =
                RedisConn::sentinel(&sentinels, &sentinel.master, password, redis.timeout, ca)
                    .map_err(|e| StartupError::Config(format!("REDIS_SENTINELS: {e}")))?;
            log::info!(
                "session store: redis master {:?} via {} sentinel(s), key prefix {prefix:?}",
                sentinel.master,
                sentinels.len()
            );
            conn
        }
        RedisTarget::Single(url) => {
            let conn = RedisConn::single(url.expose(), redis.timeout, ca)
                .map_err(|e| StartupError::Config(format!("REDIS_URL {url}: {e}")))?;
            log::info!("session store: redis at {url}, key prefix {prefix:?}");
            conn
        }
    };
    Ok(Some(conn))
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            log::error!("cannot listen for SIGTERM/SIGINT; stop with SIGKILL");
            std::future::pending::<()>().await;
        }
    }
}
