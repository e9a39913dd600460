//! Every key matching a pattern, on every master: for the admin commands only, since SCAN walks
//! the whole keyspace.

use super::conn::{Conn, RedisConn};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{ErrorKind, RedisResult};
use std::time::Duration;

impl RedisConn {
    /// Every key matching `pattern`, on every master (for the admin commands; never on a
    /// request path: SCAN walks the whole keyspace).
    pub async fn scan(&self, pattern: &str) -> RedisResult<Vec<String>> {
        let scan = |cursor: u64| {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000);
            cmd
        };
        let mut keys = Vec::new();
        match self {
            RedisConn::Cluster { .. } => {
                let Conn::Cluster(mut conn) = self.get().await? else {
                    return Ok(keys);
                };
                let nodes: String = redis::cmd("CLUSTER")
                    .arg("NODES")
                    .query_async(&mut conn)
                    .await?;
                for (host, port) in masters(&nodes) {
                    let mut cursor = 0;
                    loop {
                        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                            host: host.clone(),
                            port,
                        });
                        let reply = on_node(&mut conn, scan(cursor), route).await?;
                        let (next, batch): (u64, Vec<String>) = redis::from_redis_value(reply)?;
                        keys.extend(batch);
                        cursor = next;
                        if cursor == 0 {
                            break;
                        }
                    }
                }
            }
            _ => {
                let mut conn = self.get().await?;
                let mut cursor = 0;
                loop {
                    let (next, batch): (u64, Vec<String>) =
                        scan(cursor).query_async(&mut conn).await?;
                    keys.extend(batch);
                    cursor = next;
                    if cursor == 0 {
                        break;
                    }
                }
            }
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }
}

/// `cmd` on the node `route` names. A node's connection the client is still (re)making answers
/// "connection not found" at once, so that is retried for a few seconds, as the cluster client
/// retries commands routed by slot.
async fn on_node(
    conn: &mut ClusterConnection,
    cmd: redis::Cmd,
    route: RoutingInfo,
) -> RedisResult<redis::Value> {
    let mut wait = Duration::from_millis(50);
    loop {
        match conn.route_command(cmd.clone(), route.clone()).await {
            Err(e) if e.kind() == ErrorKind::ClusterConnectionNotFound && wait <= MAX_WAIT => {
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            reply => return reply,
        }
    }
}

/// The longest single wait for a node's connection (the waits double up to it: about 3 s in all).
const MAX_WAIT: Duration = Duration::from_millis(1600);

/// The reachable masters in a `CLUSTER NODES` reply, as host and port.
fn masters(nodes: &str) -> Vec<(String, u16)> {
    nodes
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address = fields.nth(1)?;
            let flags = fields.next()?;
            let is_master = flags.split(',').any(|f| f == "master")
                && !flags.split(',').any(|f| f == "fail" || f == "noaddr");
            if !is_master {
                return None;
            }
            // ip:port@cport[,hostname]
            let host_port = address.split('@').next()?;
            let (host, port) = host_port.rsplit_once(':')?;
            Some((host.to_string(), port.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn masters_are_read_from_cluster_nodes() {
        let nodes = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1 4 connected
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
67ed 127.0.0.1:30002@40002 master - 0 1 2 connected 5461-10922
292f 127.0.0.1:30003@40003 master,fail - 0 1 3 disconnected
";
        assert_eq!(
            super::masters(nodes),
            vec![("127.0.0.1".into(), 30001), ("127.0.0.1".into(), 30002)]
        );
    }
}
