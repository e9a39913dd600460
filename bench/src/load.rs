//! The load generator: a fixed number of HTTP/1.1 keep-alive connections, each sending one
//! operation after another (or, paced, one every interval) until the deadline; operations that complete during the warm-up, or
//! after the deadline, are not counted. Latency per operation goes into an HDR histogram
//! (microseconds).

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

pub type Reply = Result<(StatusCode, Bytes), String>;

impl Conn {
    pub async fn open(addr: SocketAddr) -> Result<Self, String> {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        Ok(Conn { sender })
    }

    async fn send(&mut self, req: Request<Full<Bytes>>) -> Reply {
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let res = self
            .sender
            .send_request(req)
            .await
            .map_err(|e| e.to_string())?;
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, body))
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let req = Request::builder()
            .method(Method::GET)
            .uri(path)
            .header("host", "127.0.0.1")
            .body(Full::new(Bytes::new()))
            .map_err(|e| e.to_string())?;
        self.send(req).await
    }

    pub async fn post_form(&mut self, path: &str, body: String) -> Reply {
        let req = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("host", "127.0.0.1")
            .header("authorization", "Basic ZWdvdi11c2VyLWNsaWVudDo=")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        self.send(req).await
    }
}

/// What each connection does, one operation at a time.
pub trait Workload: Send + Sync + 'static {
    type State: Send + 'static;
    fn state(&self, conn: usize) -> Self::State;
    /// Untimed work before each operation (a session for it to end, say); none by default.
    fn prepare(&self, _state: &mut Self::State) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// One operation; true if it got the answer it expected.
    fn op(&self, conn: &mut Conn, state: &mut Self::State) -> impl Future<Output = bool> + Send;
}

#[derive(Clone)]
pub struct Report {
    pub conns: usize,
    pub ops: u64,
    /// Operations completed in all, warm-up included: what Redis's counters also saw.
    pub all_ops: u64,
    pub errors: u64,
    pub secs: f64,
    pub hist: Histogram<u64>,
}

impl Report {
    pub fn empty(conns: usize) -> Report {
        Report {
            conns,
            ops: 0,
            all_ops: 0,
            errors: 0,
            secs: 0.0,
            hist: histogram(),
        }
    }
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.secs
    }
    pub fn p50_ms(&self) -> f64 {
        self.hist.value_at_quantile(0.50) as f64 / 1000.0
    }
    pub fn p99_ms(&self) -> f64 {
        self.hist.value_at_quantile(0.99) as f64 / 1000.0
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

pub async fn run<W: Workload>(
    addr: SocketAddr,
    workload: Arc<W>,
    conns: usize,
    warmup: Duration,
    duration: Duration,
) -> Report {
    drive(addr, workload, conns, (warmup, duration), None).await
}

/// As [`run`], but each connection sends at a fixed pace, `rate` operations per second in
/// all (open loop): sides compared this way carry the same load, so their latencies compare.
/// A connection that falls behind sends at once, without making up for lost sends.
pub async fn run_paced<W: Workload>(
    addr: SocketAddr,
    workload: Arc<W>,
    conns: usize,
    (warmup, duration): (Duration, Duration),
    rate: f64,
) -> Report {
    let every = Duration::from_secs_f64(conns as f64 / rate.max(1.0));
    drive(addr, workload, conns, (warmup, duration), Some(every)).await
}

async fn drive<W: Workload>(
    addr: SocketAddr,
    workload: Arc<W>,
    conns: usize,
    (warmup, duration): (Duration, Duration),
    every: Option<Duration>,
) -> Report {
    let start = Instant::now();
    let window = (start + warmup, start + warmup + duration);
    let tasks: Vec<_> = (0..conns)
        .map(|i| {
            // Paced connections start spread over one interval.
            let first = every.map(|e| start + e.mul_f64(i as f64 / conns as f64));
            tokio::spawn(connection(
                addr,
                workload.clone(),
                i,
                window,
                every.zip(first),
            ))
        })
        .collect();
    let mut report = Report {
        secs: duration.as_secs_f64(),
        ..Report::empty(conns)
    };
    for t in tasks {
        if let Ok((h, ops, all_ops, errors)) = t.await {
            let _ = report.hist.add(h);
            report.ops += ops;
            report.all_ops += all_ops;
            report.errors += errors;
        }
    }
    report
}

/// One connection's operations until the window ends: its histogram, operations counted,
/// operations in all and errors. Paced, it sends at `next`, then every `every` after.
async fn connection<W: Workload>(
    addr: SocketAddr,
    workload: Arc<W>,
    i: usize,
    (counted_from, end): (Instant, Instant),
    pace: Option<(Duration, Instant)>,
) -> (Histogram<u64>, u64, u64, u64) {
    let mut hist = histogram();
    let (mut ops, mut all_ops, mut errors) = (0u64, 0u64, 0u64);
    let mut state = workload.state(i);
    let Ok(mut conn) = Conn::open(addr).await else {
        return (hist, 0, 0, 1);
    };
    let mut next = pace.map(|(_, first)| first);
    while Instant::now() < end {
        workload.prepare(&mut state).await;
        if let (Some(at), Some((every, _))) = (next, pace) {
            tokio::time::sleep_until(at.into()).await;
            next = Some((at + every).max(Instant::now()));
        }
        let t0 = Instant::now();
        let ok = workload.op(&mut conn, &mut state).await;
        let t1 = Instant::now();
        all_ops += 1;
        // Counted by completion time, so long operations that straddle the warm-up boundary
        // are not lost from the rate.
        if t1 >= counted_from && t1 <= end {
            ops += 1;
            if !ok {
                errors += 1;
            }
            let _ = hist.record((t1 - t0).as_micros().max(1) as u64);
        }
        if !ok && conn.sender.is_closed() {
            match Conn::open(addr).await {
                Ok(c) => conn = c,
                Err(_) => break,
            }
        }
    }
    (hist, ops, all_ops, errors)
}
