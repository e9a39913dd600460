//! bcrypt verification on a fixed pool of low-priority threads, off the async workers. The
//! threads run at niceness 10, so while the CPU is contended token validation keeps most of
//! it and a login flood cannot slow gateways down, yet bcrypt has every idle cycle. At most
//! `max_concurrent` verifications run and `max_waiting` wait; past that a login fails at once
//! (503) instead of queueing without bound.
//!
//! Every check costs the same bcrypt work, so the time taken tells nothing: a check against a
//! hash cheaper than the pool's cost is padded with bcrypt rounds up to it, and a login for a
//! user that does not exist runs bcrypt at that cost too. The cost is the configured one
//! (`BCRYPT_COST`, or the seed file's highest), raised to any higher cost a real hash shows
//! (up to [`MAX_RAISED_COST`]).

use crate::domain::credentials::Password;
use crate::domain::user::PasswordHash;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

/// Priority of the bcrypt threads on the crate's 0..=99 scale; 22 maps to niceness 10 on Linux,
/// weight 110 against the workers' 1024 when both want the CPU.
const PRIORITY: u8 = 22;

/// The highest cost a real hash may raise every check to: past it, one user's outlandish hash
/// would make every login slow.
pub const MAX_RAISED_COST: u32 = 16;

/// The salt of padding rounds: their result is thrown away, only their work counts.
const PAD_SALT: [u8; 16] = *b"token-server-pad";

struct Job {
    password: Password,
    /// `None` for a user that does not exist.
    hash: Option<String>,
    /// The cost the check must amount to.
    cost: u32,
    reply: oneshot::Sender<Checked>,
}

/// The result of one check and the bcrypt work it did, in units of one cost-0 round (2^cost
/// per run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    pub matched: bool,
    pub work: u64,
}

/// Runs the check of `job` and pads it to the job's cost.
fn check(job: &Job) -> Checked {
    let password = job.password.expose();
    let (matched, mut cost, mut work) = match &job.hash {
        Some(hash) => {
            let cost = hash
                .get(4..6)
                .and_then(|c| c.parse::<u32>().ok())
                .unwrap_or(job.cost);
            let matched = bcrypt::verify(password, hash).unwrap_or(false);
            (matched, cost, 1u64 << cost.min(63))
        }
        None => (false, job.cost, 0),
    };
    if job.hash.is_none() {
        let _ = bcrypt::hash_with_salt(password, cost, PAD_SALT);
        work = 1u64 << cost;
    }
    // 2^c + 2^c + 2^(c+1) + … + 2^(t-1) = 2^t: the cheaper hash costs what the pool's cost does.
    while cost < job.cost {
        let _ = bcrypt::hash_with_salt(password, cost, PAD_SALT);
        work += 1u64 << cost;
        cost += 1;
    }
    Checked { matched, work }
}

/// Why a verification did not run.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("too many password verifications running or waiting")]
    Busy,
    #[error("the bcrypt threads have stopped")]
    Stopped,
}

/// The bcrypt pool: password checks of equal cost off the async workers, `Busy` past its bounds.
/// Clones share it.
#[derive(Clone)]
pub struct PasswordVerifier {
    jobs: mpsc::Sender<Job>,
    /// Verifications running or waiting, and how many may be at once.
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
    /// The bcrypt cost every check amounts to.
    cost: Arc<AtomicU32>,
}

/// Releases a verification's place however its wait ends.
struct Place<'a>(&'a AtomicUsize);

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        crate::metrics::bcrypt_queue(-1);
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
        let checked = check(&job);
        let _ = job.reply.send(checked);
    }
}

impl PasswordVerifier {
    /// `cost` is the bcrypt cost every check amounts to, at least.
    pub fn new(max_concurrent: usize, max_waiting: usize, cost: u32) -> Result<Self, String> {
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
            cost: Arc::new(AtomicU32::new(cost.clamp(4, 31))),
        })
    }

    /// True if `password` matches `hash`; with no hash (no such user), false after the same
    /// work.
    pub async fn verify(
        &self,
        password: Password,
        hash: Option<&PasswordHash>,
    ) -> Result<bool, VerifyError> {
        Ok(self.check(password, hash).await?.matched)
    }

    /// [`verify`](Self::verify), with the work it did.
    pub async fn check(
        &self,
        password: Password,
        hash: Option<&PasswordHash>,
    ) -> Result<Checked, VerifyError> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Err(VerifyError::Busy);
        }
        let _place = Place(&self.in_flight);
        crate::metrics::bcrypt_queue(1);
        if let Some(h) = hash
            && h.cost() <= MAX_RAISED_COST
        {
            self.cost.fetch_max(h.cost(), Ordering::AcqRel);
        }
        let (reply, answer) = oneshot::channel();
        let job = Job {
            password,
            hash: hash.map(|h| h.as_str().to_string()),
            cost: self.cost.load(Ordering::Acquire),
            reply,
        };
        self.jobs.send(job).map_err(|_| VerifyError::Stopped)?;
        let checked = answer.await.map_err(|_| VerifyError::Stopped)?;
        crate::metrics::bcrypt_work(checked.work);
        Ok(checked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(password: &str, cost: u32) -> PasswordHash {
        PasswordHash::parse(bcrypt::hash(password, cost).unwrap()).unwrap()
    }

    fn password(p: &str) -> Password {
        Password::parse(p).unwrap()
    }

    #[tokio::test]
    async fn an_unknown_user_costs_what_a_wrong_password_costs() {
        let verifier = PasswordVerifier::new(1, 4, 6).unwrap();
        let cheap = hash("right", 4);
        let wrong = verifier
            .check(password("wrong"), Some(&cheap))
            .await
            .unwrap();
        let right = verifier
            .check(password("right"), Some(&cheap))
            .await
            .unwrap();
        let nobody = verifier.check(password("right"), None).await.unwrap();
        assert!(!wrong.matched && right.matched && !nobody.matched);
        assert_eq!(wrong.work, 1 << 6);
        assert_eq!(right.work, wrong.work);
        assert_eq!(nobody.work, wrong.work);
    }

    #[tokio::test]
    async fn a_costlier_real_hash_raises_every_later_check() {
        let verifier = PasswordVerifier::new(1, 4, 4).unwrap();
        assert_eq!(
            verifier.check(password("x"), None).await.unwrap().work,
            1 << 4
        );
        let dear = hash("right", 7);
        let first = verifier
            .check(password("wrong"), Some(&dear))
            .await
            .unwrap();
        assert_eq!(first.work, 1 << 7);
        assert_eq!(
            verifier.check(password("x"), None).await.unwrap().work,
            1 << 7
        );
        let cheap = hash("right", 5);
        assert_eq!(
            verifier
                .check(password("wrong"), Some(&cheap))
                .await
                .unwrap()
                .work,
            1 << 7
        );
    }
}
