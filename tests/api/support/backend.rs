//! A backend for gateway tests: a plain HTTP server on a free port that answers 200 to
//! anything and records every request it gets (line, headers, body).

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};

/// The headers of one request, names in lower case.
pub type Headers = Vec<(String, String)>;

/// One request as the backend received it.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request line, e.g. `GET /api/things?x=1 HTTP/1.0`.
    pub line: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

impl Received {
    /// Every value of the header `name` (lower case).
    pub fn header(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

/// A backend that answers 200 to anything and records every request: its line, headers and
/// body (of `Content-Length`).
pub struct Backend {
    pub port: u16,
    seen: Arc<Mutex<Vec<Received>>>,
}

impl Backend {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(vec![]));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).to_string();
                let line = text.lines().next().unwrap_or_default().to_string();
                let headers: Headers = text
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(": "))
                    .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
                    .collect();
                let length = headers
                    .iter()
                    .find(|(k, _)| k == "content-length")
                    .and_then(|(_, v)| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                if stream.read_exact(&mut body).is_err() {
                    body.clear();
                }
                record.lock().unwrap().push(Received {
                    line,
                    headers,
                    body,
                });
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nbackend",
                );
            }
        });
        Backend { port, seen }
    }

    pub fn requests(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }
}
