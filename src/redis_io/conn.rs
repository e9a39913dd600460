//! The Redis connection of a process: to a single node, one multiplexed connection per thread
//! that uses it (redis-rs `ConnectionManager`, which reconnects by itself), to a Redis Cluster
//! (redis-rs `ClusterConnection`, which follows slot moves and failovers), or to the master
//! that Redis Sentinel names (redis-rs `SentinelClient`; the connection is dropped on a
//! connection error or a READONLY/MASTERDOWN answer, and the next request asks the sentinels
//! again). All connect lazily, so the server starts while Redis is down and reports it on
//! `/ready`.

use redis::AsyncConnectionConfig;
use redis::IntoConnectionInfo;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Cmd, Pipeline, RedisFuture, RedisResult, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

fn certificates(ca: &[u8]) -> redis::TlsCertificates {
    redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(ca.to_vec()),
    }
}

/// How a process reaches Redis: one node, a cluster, or the master Sentinel names. Connects lazily;
/// clones share the connections.
#[derive(Clone)]
pub enum RedisConn {
    Single(Arc<Node>),
    Cluster {
        client: Arc<ClusterClient>,
        conn: Arc<OnceCell<ClusterConnection>>,
    },
    Sentinel(Arc<SentinelState>),
}

/// The sentinels' client and the master connection, dropped on an error that may mean failover.
pub struct SentinelState {
    client: tokio::sync::Mutex<SentinelClient>,
    /// The same sentinels, for RESP3 connections to the master (tracking connections).
    resp3: Arc<tokio::sync::Mutex<SentinelClient>>,
    /// Bumped whenever the master connection is dropped: connections made before may point at
    /// a master that is one no more.
    epoch: std::sync::atomic::AtomicU64,
    /// The connection to the master last named; `None` after it failed.
    current: std::sync::RwLock<Option<MultiplexedConnection>>,
    config: AsyncConnectionConfig,
}

impl SentinelState {
    fn forget(&self, failed: &redis::RedisError) {
        let stale = failed.is_io_error()
            || failed.is_connection_dropped()
            || failed.is_connection_refusal()
            || failed.is_timeout()
            || matches!(
                failed.kind(),
                redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
                    | redis::ErrorKind::Server(redis::ServerErrorKind::MasterDown)
            );
        if stale && let Ok(mut current) = self.current.write() {
            *current = None;
            self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
    }
}

/// One Redis node, reached over a multiplexed connection per thread and runtime. Each server
/// worker is a single-threaded runtime: with a connection of its own, its requests never wait
/// for another worker to poll a shared connection's I/O task, and replies need no wake-up
/// across threads (measured with `bench/run`: 14–23% more single-GET requests per second on two
/// workers).
pub struct Node {
    id: u64,
    client: redis::Client,
    config: ConnectionManagerConfig,
}

thread_local! {
    /// This thread's connections: node id, the runtime they run on, the connection.
    static NODE_CONNS: std::cell::RefCell<Vec<(u64, tokio::runtime::Id, ConnectionManager)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

impl Node {
    fn local(&self) -> RedisResult<ConnectionManager> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| redis::RedisError::from(std::io::Error::other(e)))?
            .id();
        NODE_CONNS.with_borrow_mut(|conns| {
            if let Some((.., c)) = conns
                .iter()
                .find(|(id, rt, _)| *id == self.id && *rt == runtime)
            {
                return Ok(c.clone());
            }
            // A connection of this node made on an earlier runtime of this thread is dead.
            conns.retain(|(id, ..)| *id != self.id);
            let c =
                ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())?;
            conns.push((self.id, runtime, c.clone()));
            Ok(c)
        })
    }
}

/// Where the tracking connections of the validation cache come from: the one node, or the
/// master the sentinels name.
pub enum TrackingSource {
    Node(Box<redis::Client>),
    Sentinel(Arc<SentinelState>),
}

impl TrackingSource {
    /// A new RESP3 connection to the node reads go to, with `config` (its push sender).
    pub async fn connect(
        &self,
        config: &AsyncConnectionConfig,
    ) -> RedisResult<MultiplexedConnection> {
        match self {
            TrackingSource::Node(client) => {
                client
                    .get_multiplexed_async_connection_with_config(config)
                    .await
            }
            TrackingSource::Sentinel(state) => {
                let mut client = state.resp3.lock().await;
                client.get_async_connection_with_config(config).await
            }
        }
    }

    /// Changes when a connection made before may point at a node that is no longer the
    /// master (always 0 for one node).
    pub fn epoch(&self) -> u64 {
        match self {
            TrackingSource::Node(_) => 0,
            TrackingSource::Sentinel(state) => {
                state.epoch.load(std::sync::atomic::Ordering::Acquire)
            }
        }
    }
}

impl RedisConn {
    /// Where tracking connections come from; `None` for a cluster, whose client cannot order
    /// a node's pushes with its replies (they pass through one channel of all nodes).
    pub fn tracking_source(&self) -> Option<TrackingSource> {
        match self {
            RedisConn::Single(node) => {
                let info = node.client.get_connection_info().clone();
                let resp3 = info
                    .redis_settings()
                    .clone()
                    .set_protocol(redis::ProtocolVersion::RESP3);
                redis::Client::open(info.set_redis_settings(resp3))
                    .ok()
                    .map(|c| TrackingSource::Node(Box::new(c)))
            }
            RedisConn::Sentinel(state) => Some(TrackingSource::Sentinel(state.clone())),
            RedisConn::Cluster { .. } => None,
        }
    }

    /// `ca` is the PEM of a private CA for `rediss://` (public CAs are built in).
    pub fn single(
        url: &str,
        timeout: Duration,
        ca: Option<&[u8]>,
    ) -> Result<Self, redis::RedisError> {
        let client = match ca {
            Some(ca) => redis::Client::build_with_tls(url, certificates(ca))?,
            None => redis::Client::open(url)?,
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        Ok(RedisConn::Single(Arc::new(Node {
            id: NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            client,
            config,
        })))
    }

    /// A cluster found through some of its `nodes` (the rest are discovered), `ca` as for
    /// [`Self::single`]; connects on first use, fails only on a bad URL.
    pub fn cluster(
        nodes: &[String],
        timeout: Duration,
        ca: Option<&[u8]>,
    ) -> Result<Self, redis::RedisError> {
        let mut builder = ClusterClientBuilder::new(nodes.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(3);
        if let Some(ca) = ca {
            builder = builder.certs(certificates(ca));
        }
        let client = builder.build()?;
        Ok(RedisConn::Cluster {
            client: Arc::new(client),
            conn: Arc::default(),
        })
    }

    /// Sentinels at `sentinels` watching the master named `master`; `master_password` is for
    /// the master and its replicas (the sentinel URLs carry their own credentials). With
    /// `rediss://` sentinels the master is reached over TLS too, trusting `ca` if given.
    pub fn sentinel(
        sentinels: &[String],
        master: &str,
        master_password: Option<&str>,
        timeout: Duration,
        ca: Option<&[u8]>,
    ) -> Result<Self, redis::RedisError> {
        let build = |protocol: redis::ProtocolVersion| -> RedisResult<SentinelClient> {
            let infos = sentinels
                .iter()
                .map(|u| u.as_str().into_connection_info())
                .collect::<Result<Vec<_>, _>>()?;
            let tls = infos
                .iter()
                .any(|i| matches!(i.addr(), redis::ConnectionAddr::TcpTls { .. }));
            let mut builder = SentinelClientBuilder::new(
                infos.iter().map(|i| i.addr().clone()),
                master,
                SentinelServerType::Master,
            )?
            .set_client_to_redis_protocol(protocol);
            if let Some(first) = infos.first() {
                if let Some(user) = first.redis_settings().username() {
                    builder = builder.set_client_to_sentinel_username(user);
                }
                if let Some(password) = first.redis_settings().password() {
                    builder = builder.set_client_to_sentinel_password(password);
                }
            }
            if let Some(password) = master_password {
                builder = builder.set_client_to_redis_password(password);
            }
            if tls {
                builder = builder.set_client_to_redis_tls_mode(redis::TlsMode::Secure);
            }
            if let Some(ca) = ca {
                builder = builder
                    .set_client_to_redis_certificates(certificates(ca))
                    .set_client_to_sentinel_certificates(certificates(ca));
            }
            builder.build()
        };
        Ok(RedisConn::Sentinel(Arc::new(SentinelState {
            client: tokio::sync::Mutex::new(build(redis::ProtocolVersion::RESP2)?),
            resp3: Arc::new(tokio::sync::Mutex::new(build(
                redis::ProtocolVersion::RESP3,
            )?)),
            epoch: std::sync::atomic::AtomicU64::new(0),
            current: std::sync::RwLock::new(None),
            config: AsyncConnectionConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout)),
        })))
    }

    /// A handle for one operation; cheap: a clone of this thread's (single node) or the
    /// process's (cluster, Sentinel) multiplexed connection.
    /// For a cluster, waits (up to about 5 s) until a command reaches every master: a fresh
    /// process meets all the nodes at once, and a node whose connection is not up yet fails
    /// the first command routed to it. An admin command runs once, so it waits first. Other
    /// targets answer at once.
    pub async fn reach_every_master(&self) -> RedisResult<()> {
        if !matches!(self, RedisConn::Cluster { .. }) {
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            let reached = async {
                let mut conn = self.get().await?;
                redis::cmd("DBSIZE").query_async::<i64>(&mut conn).await
            };
            match reached.await {
                Ok(_) => return Ok(()),
                Err(e) if attempt >= 20 => return Err(e),
                Err(_) => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                }
            }
        }
    }

    pub async fn get(&self) -> RedisResult<Conn> {
        match self {
            RedisConn::Single(node) => Ok(Conn::Single(node.local()?)),
            RedisConn::Cluster { client, conn } => {
                let c = conn
                    .get_or_try_init(|| client.get_async_connection())
                    .await?;
                Ok(Conn::Cluster(c.clone()))
            }
            RedisConn::Sentinel(state) => {
                let known = state.current.read().ok().and_then(|c| c.clone());
                if let Some(c) = known {
                    return Ok(Conn::Sentinel(c, state.clone()));
                }
                let mut client = state.client.lock().await;
                // Another request may have reconnected while this one waited.
                if let Some(c) = state.current.read().ok().and_then(|c| c.clone()) {
                    return Ok(Conn::Sentinel(c, state.clone()));
                }
                let c = client
                    .get_async_connection_with_config(&state.config)
                    .await?;
                if let Ok(mut current) = state.current.write() {
                    *current = Some(c.clone());
                }
                Ok(Conn::Sentinel(c, state.clone()))
            }
        }
    }
}

/// A connection for one operation, from [`RedisConn::get`].
pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Sentinel(MultiplexedConnection, Arc<SentinelState>),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
            Conn::Sentinel(c, state) => Box::pin(async move {
                let reply = c.req_packed_command(cmd).await;
                if let Err(e) = &reply {
                    state.forget(e);
                }
                reply
            }),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Sentinel(c, state) => Box::pin(async move {
                let reply = c.req_packed_commands(cmd, offset, count).await;
                if let Err(e) = &reply {
                    state.forget(e);
                }
                reply
            }),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
            Conn::Sentinel(c, _) => c.get_db(),
        }
    }
}
