//! What the API tests start and offer, one file per kind of thing: the application in process
//! (`app`) and the API client it shares with a server process (`client`), a private
//! redis-server (`redis_server`), a Redis Cluster (`cluster`), Sentinel (`sentinel`), the
//! `token-server` binary (`process`), nginx (`nginx`), a recording backend (`backend`), TCP
//! proxies in front of Redis (`proxy`), the one-time code stubs (`otp`), seeded users and
//! clients (`seeds`), TLS certificates (`tls`), and waits for a state (`observe`).
//!
//! The general helpers are re-exported here; the harnesses of one kind (cluster, sentinel,
//! nginx, process, proxy, otp, backend) are used by their module path.

pub mod app;
pub mod backend;
pub mod client;
pub mod cluster;
pub mod nginx;
pub mod observe;
pub mod otp;
pub mod process;
pub mod proxy;
pub mod redis_server;
pub mod seeds;
pub mod sentinel;
pub mod tls;

pub use app::*;
pub use client::*;
pub use observe::*;
pub use redis_server::*;
pub use seeds::*;
pub use tls::tls_material;
pub use token_server::domain::account::Account;
pub use token_server::redis_io::keys::Keys;

use std::net::TcpListener;
use token_server::domain::token::{SessionRef, Token};

/// The session `token` names (its user's tag and its id), as the server reads it: what
/// [`Keys`] names a session's keys by.
pub fn session_of(token: &str) -> SessionRef {
    Token::parse(token)
        .expect("a token of this server")
        .session()
}

/// How many times a harness starts a server on new ports before it gives up.
pub const START_ATTEMPTS: usize = 5;

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
