//! Redis one hop away: a TCP proxy that holds what passes for a fixed delay each way,
//! preserving order in each direction (as `tests/api/validation_cache.rs`'s `lagging_proxy`
//! does one way). Its threads are OS threads with blocking sockets: tokio's timer counts in
//! whole milliseconds, so a 0.25 ms hold would become 1 ms or more, and a spinning wait would
//! take a core the server and Redis need. Each direction of each connection has a reader,
//! which stamps every chunk with its due time, and a writer, which sleeps until then.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The proxy; it stops accepting when dropped (open connections end with their ends).
pub struct DelayProxy {
    pub addr: SocketAddr,
    stopped: Arc<AtomicBool>,
    held: Arc<Held>,
}

/// How long chunks were actually held, summed.
#[derive(Default)]
struct Held {
    micros: AtomicU64,
    chunks: AtomicU64,
}

impl DelayProxy {
    /// A proxy on a free loopback port to `target`, holding each chunk for `delay` each way.
    pub fn start(target: SocketAddr, delay: Duration) -> DelayProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port for the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let stopped = Arc::new(AtomicBool::new(false));
        let held = Arc::new(Held::default());
        let (stop, h) = (stopped.clone(), held.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let (Ok(client), Ok(server)) = (client, TcpStream::connect(target)) else {
                    continue;
                };
                pipe(&client, &server, delay, &h);
                pipe(&server, &client, delay, &h);
            }
        });
        DelayProxy {
            addr,
            stopped,
            held,
        }
    }

    /// The mean time a chunk was held, in milliseconds: the delay plus the timer's slack.
    pub fn mean_hold_ms(&self) -> f64 {
        let chunks = self.held.chunks.load(Ordering::Relaxed).max(1);
        self.held.micros.load(Ordering::Relaxed) as f64 / chunks as f64 / 1000.0
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Copies `from` into `to`, each chunk `delay` after it was read, in order.
fn pipe(from: &TcpStream, to: &TcpStream, delay: Duration, held: &Arc<Held>) {
    let (Ok(mut from), Ok(mut to)) = (from.try_clone(), to.try_clone()) else {
        return;
    };
    let _ = (from.set_nodelay(true), to.set_nodelay(true));
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = from.read(&mut buf) {
            if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
    });
    let held = held.clone();
    std::thread::spawn(move || {
        for (read_at, bytes) in rx {
            let due = read_at + delay;
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            held.micros
                .fetch_add(read_at.elapsed().as_micros() as u64, Ordering::Relaxed);
            held.chunks.fetch_add(1, Ordering::Relaxed);
            if to.write_all(&bytes).is_err() {
                break;
            }
        }
        let _ = to.shutdown(Shutdown::Write);
    });
}
