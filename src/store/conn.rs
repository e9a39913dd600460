//! The Redis connection of a process: one multiplexed connection to a single node (redis-rs
//! `ConnectionManager`, which reconnects by itself) or to a Redis Cluster (redis-rs
//! `ClusterConnection`, which follows slot moves and failovers). Both connect lazily, so the
//! server starts while Redis is down and reports it on `/ready`.

use super::StoreError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OnceCell;

#[derive(Clone)]
pub enum RedisConn {
    Single(ConnectionManager),
    Cluster {
        client: Arc<ClusterClient>,
        conn: Arc<OnceCell<ClusterConnection>>,
    },
}

impl RedisConn {
    pub fn single(url: &str, timeout: Duration) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        Ok(RedisConn::Single(ConnectionManager::new_lazy_with_config(
            client, config,
        )?))
    }

    pub fn cluster(nodes: &[String], timeout: Duration) -> Result<Self, redis::RedisError> {
        let client = ClusterClientBuilder::new(nodes.to_vec())
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .retries(3)
            .build()?;
        Ok(RedisConn::Cluster {
            client: Arc::new(client),
            conn: Arc::default(),
        })
    }

    /// A handle for one operation; cheap, all share one multiplexed connection.
    pub async fn get(&self) -> Result<Conn, StoreError> {
        match self {
            RedisConn::Single(c) => Ok(Conn::Single(c.clone())),
            RedisConn::Cluster { client, conn } => {
                let c = conn
                    .get_or_try_init(|| client.get_async_connection())
                    .await?;
                Ok(Conn::Cluster(c.clone()))
            }
        }
    }
}

pub enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
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
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}
