//! The `token-server` binary as operators run it: a server process whose log (stderr) is kept
//! in a file and that speaks the API as an [`ApiClient`], or an admin command run to its exit.

use super::{ApiClient, TOKEN_SECRET, TestApp, eventually, write_seed_file};
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BINARY: &str = env!("CARGO_BIN_EXE_token-server");

/// A server process whose stderr (the log) is collected in a file, killed on drop. It derefs
/// to the [`ApiClient`] of its address.
pub struct ServerProcess {
    pub child: Child,
    log: std::path::PathBuf,
    dir: tempfile::TempDir,
    api: ApiClient,
}

impl std::ops::Deref for ServerProcess {
    type Target = ApiClient;

    fn deref(&self) -> &ApiClient {
        &self.api
    }
}

impl ServerProcess {
    /// Starts the binary with the test users' seed file and `envs`.
    pub fn start(envs: &[(&str, &str)]) -> Self {
        Self::try_start(envs).unwrap_or_else(|log| panic!("server did not start; log:\n{log}"))
    }

    /// Starts the binary with nothing but `envs` (and a loopback address).
    pub fn start_bare(envs: &[(&str, &str)]) -> Self {
        Self::launch(tempfile::tempdir().unwrap(), envs)
            .unwrap_or_else(|log| panic!("server did not start; log:\n{log}"))
    }

    /// Starts the binary with the test users' seed file and `envs`; its log if it exits before
    /// it listens (a port it was given is taken, say).
    pub fn try_start(envs: &[(&str, &str)]) -> Result<Self, String> {
        let dir = tempfile::tempdir().unwrap();
        let users = write_seed_file(dir.path()).display().to_string();
        let mut all = vec![("USERS_FILE", users.as_str())];
        all.extend_from_slice(envs);
        Self::launch(dir, &all)
    }

    fn launch(dir: tempfile::TempDir, envs: &[(&str, &str)]) -> Result<Self, String> {
        let log = dir.path().join("server.log");
        let mut cmd = Command::new(BINARY);
        cmd.env_clear()
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let port = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(line) = text.lines().find(|l| l.contains("listening on ")) {
                // "listening on 127.0.0.1:PORT", in a text or a JSON line.
                let after = &line[line.find("listening on ").unwrap() + 13..];
                let address: String = after
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '"')
                    .collect();
                break address.rsplit(':').next().unwrap().parse::<u16>().unwrap();
            }
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(format!("exited with {status}:\n{text}"));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("not listening after 20 s:\n{text}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let address = format!("http://127.0.0.1:{port}");
        Ok(ServerProcess {
            child,
            log,
            dir,
            api: ApiClient::new(&address, reqwest::Client::new()),
        })
    }

    /// The port its API listens on.
    pub fn port(&self) -> u16 {
        self.address.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Its working folder, which holds the seed file `users.json`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Waits until the log has a line containing `text`; the log then.
    pub async fn log_line(&self, text: &str, limit: Duration) -> String {
        let found = eventually(limit, || async { self.log().contains(text) }).await;
        let log = self.log();
        assert!(found, "no {text:?} in the log after {limit:?}:\n{log}");
        log
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How an admin command ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `token-server ARGS` with only `env`, feeding `stdin`.
pub fn run(env: &[(&str, String)], args: &[&str], stdin: &str) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BINARY)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(dir.path())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command that fails before it reads its input has closed the pipe already.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    let out = child.wait_with_output().unwrap();
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "token-server {args:?} panicked:\n{}",
        run.stderr
    );
    run
}

/// The settings the app on `redis` runs with, as the admin commands need them.
pub fn env_of(app: &TestApp) -> Vec<(&'static str, String)> {
    vec![
        ("REDIS_URL", app.redis().url()),
        ("REDIS_KEY_PREFIX", app.prefix.clone()),
        ("TOKEN_SECRET", TOKEN_SECRET.into()),
    ]
}

/// Arguments that make a password-setting command read stdin and hash at cost 4.
pub const FAST: [&str; 4] = ["--password-stdin", "--cost", "4", "--insecure-cost"];

/// `head` followed by [`FAST`].
pub fn args<'a>(head: &[&'a str]) -> Vec<&'a str> {
    head.iter().copied().chain(FAST).collect()
}
