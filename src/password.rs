//! bcrypt verification on a fixed pool of low-priority threads, off the async workers. The
//! threads run at niceness 10, so while the CPU is contended token validation keeps most of
//! it and a login flood cannot slow gateways down, yet bcrypt has every idle cycle. At most
//! `max_concurrent` verifications run and `max_waiting` wait; past that a login fails at once
//! (503) instead of queueing without bound. A login for an unknown user is checked against a
//! dummy hash of the same cost, so it takes as long and answers the same as a wrong password.

use crate::domain::credentials::Password;
use crate::domain::user::PasswordHash;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Priority of the bcrypt threads on the crate's 0..=99 scale; 22 maps to niceness 10 on Linux,
/// weight 110 against the workers' 1024 when both want the CPU.
const PRIORITY: u8 = 22;

struct Job {
    password: Password,
    hash: String,
    reply: oneshot::Sender<bool>,
}

/// Why a verification did not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("too many password verifications running or waiting")]
    Busy,
    #[error("the bcrypt threads have stopped")]
    Stopped,
}

#[derive(Clone)]
pub struct PasswordVerifier {
    jobs: mpsc::Sender<Job>,
    /// Verifications running or waiting, and how many may be at once.
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
    dummy: PasswordHash,
}

/// Releases a verification's place however its wait ends.
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        let left = self.0.fetch_sub(1, Ordering::AcqRel) - 1;
        crate::metrics::bcrypt_queue(left);
    }
}

fn worker(jobs: Arc<Mutex<mpsc::Receiver<Job>>>) {
    use thread_priority::{ThreadPriority, ThreadPriorityValue, set_current_thread_priority};
    let lowered = ThreadPriorityValue::try_from(PRIORITY)
        .map_err(|e| e.to_string())
        .and_then(|p| {
            set_current_thread_priority(ThreadPriority::Crossplatform(p))
                .map_err(|e| format!("{e:?}"))
        });
    if let Err(e) = lowered {
        log::warn!("bcrypt thread keeps normal priority: {e}");
    }
    loop {
        let job = match jobs.lock() {
            Ok(rx) => rx.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        let matched = bcrypt::verify(job.password.expose(), &job.hash).unwrap_or(false);
        let _ = job.reply.send(matched);
    }
}

impl PasswordVerifier {
    /// `cost` is the bcrypt cost real users' hashes have.
    pub fn new(max_concurrent: usize, max_waiting: usize, cost: u32) -> Result<Self, String> {
        let dummy = bcrypt::hash("token-server dummy password", cost.clamp(4, 31))
            .map_err(|e| format!("cannot make the dummy bcrypt hash: {e}"))?;
        let (tx, rx) = mpsc::channel();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..max_concurrent {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("bcrypt-{i}"))
                .spawn(move || worker(rx))
                .map_err(|e| format!("cannot start bcrypt threads: {e}"))?;
        }
        Ok(PasswordVerifier {
            jobs: tx,
            in_flight: Arc::default(),
            max_in_flight: max_concurrent + max_waiting,
            dummy: PasswordHash::parse(dummy)?,
        })
    }

    /// True if `password` matches `hash`; with no hash, runs against the dummy and is false.
    pub async fn verify(
        &self,
        password: Password,
        hash: Option<&PasswordHash>,
    ) -> Result<bool, VerifyError> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(VerifyError::Busy);
        }
        let _place = Place(&self.in_flight);
        crate::metrics::bcrypt_queue(self.in_flight.load(Ordering::Acquire));
        let real = hash.is_some();
        let (reply, answer) = oneshot::channel();
        let job = Job {
            password,
            hash: hash.unwrap_or(&self.dummy).as_str().to_string(),
            reply,
        };
        self.jobs.send(job).map_err(|_| VerifyError::Stopped)?;
        let matched = answer.await.map_err(|_| VerifyError::Stopped)?;
        Ok(real && matched)
    }
}
