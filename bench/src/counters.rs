//! Counters read around a scenario: Redis's `INFO commandstats` (calls and time per command)
//! and token-server's own metrics (the validation cache and its barrier).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Calls and microseconds per command name, as `INFO commandstats` counts them.
#[derive(Default, Clone)]
pub struct Commands(HashMap<String, (u64, u64)>);

impl Commands {
    pub fn read(conn: &mut redis::Connection) -> Commands {
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(conn)
            .unwrap_or_default();
        let field = |line: &str, name: &str| {
            line.split([':', ','])
                .find_map(|f| f.strip_prefix(name))
                .and_then(|v| v.parse::<u64>().ok())
        };
        Commands(
            info.lines()
                .filter_map(|l| {
                    let name = l.strip_prefix("cmdstat_")?.split(':').next()?;
                    Some((
                        name.to_string(),
                        (field(l, "calls=")?, field(l, "usec=").unwrap_or(0)),
                    ))
                })
                .collect(),
        )
    }

    /// What was counted between `before` and this reading.
    pub fn since(&self, before: &Commands) -> Commands {
        Commands(
            self.0
                .iter()
                .map(|(k, &(calls, usec))| {
                    let (c0, u0) = before.0.get(k).copied().unwrap_or((0, 0));
                    (
                        k.clone(),
                        (calls.saturating_sub(c0), usec.saturating_sub(u0)),
                    )
                })
                .collect(),
        )
    }

    pub fn add(&mut self, other: &Commands) {
        for (k, &(calls, usec)) in &other.0 {
            let e = self.0.entry(k.clone()).or_default();
            e.0 += calls;
            e.1 += usec;
        }
    }

    /// Commands in all, leaving out the readings' own `INFO`.
    pub fn calls(&self) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| k.as_str() != "info")
            .map(|(_, (calls, _))| calls)
            .sum()
    }

    /// Each command's calls per operation, the most frequent first (`INFO` left out).
    pub fn per_op(&self, ops: u64) -> String {
        let mut by: Vec<(&String, f64)> = self
            .0
            .iter()
            .filter(|(k, _)| k.as_str() != "info")
            .map(|(k, &(calls, _))| (k, calls as f64 / ops.max(1) as f64))
            .filter(|&(_, per)| per > 0.0)
            .collect();
        by.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        let parts: Vec<String> = by.iter().map(|(k, per)| format!("{k} {per:.3}")).collect();
        parts.join(", ")
    }

    /// Waits until `conn`'s Redis counts no command but the readings' own for 300 ms (other
    /// servers' heartbeats run on for a second after their traffic stops), at most 3 s.
    pub fn wait_quiet(conn: &mut redis::Connection) {
        let deadline = std::time::Instant::now() + Duration::from_secs(3);
        let mut last = Commands::read(conn);
        while std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(300));
            let now = Commands::read(conn);
            if now.since(&last).calls() == 0 {
                return;
            }
            last = now;
        }
    }

    pub fn usec_per_call(&self, cmd: &str) -> f64 {
        self.0
            .get(cmd)
            .map_or(f64::NAN, |&(calls, usec)| usec as f64 / calls as f64)
    }
}

/// token-server's metrics, one value per series (name and labels).
#[derive(Default, Clone)]
pub struct Metrics(HashMap<String, f64>);

impl Metrics {
    /// Scrapes `GET /metrics` on the server's port; empty when it does not answer.
    pub fn read(addr: SocketAddr) -> Metrics {
        let mut text = String::new();
        let scraped =
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).and_then(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(5)))?;
                s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
                s.read_to_string(&mut text)
            });
        if scraped.is_err() {
            return Metrics::default();
        }
        Metrics(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (series, value) = l.rsplit_once(' ')?;
                    Some((series.to_string(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    fn value(&self, key: &str) -> f64 {
        if key.contains('{') {
            return self.0.get(key).copied().unwrap_or(0.0);
        }
        self.0
            .iter()
            .filter(|(series, _)| series.split('{').next() == Some(key))
            .map(|(_, v)| v)
            .sum()
    }

    /// A series given whole (`name{label="v"}`), or a bare name summed over its label sets.
    pub fn get(&self, key: &str) -> f64 {
        self.value(key)
    }

    /// The validation cache's hits ÷ validations.
    pub fn hit_rate(&self) -> f64 {
        self.get("token_server_validation_cache_total{result=\"hit\"}")
            / self.get("token_server_validation_cache_total").max(1.0)
    }

    /// What grew between `before` and this reading.
    pub fn since(&self, before: &Metrics) -> Metrics {
        Metrics(
            self.0
                .iter()
                .map(|(k, v)| (k.clone(), v - before.0.get(k).copied().unwrap_or(0.0)))
                .collect(),
        )
    }
}
