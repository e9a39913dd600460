//! bcrypt verification off the async workers, with a bound on how many run at once. A login for
//! an unknown user is checked against a dummy hash of the same cost, so it takes as long and
//! answers the same as a wrong password.

use crate::domain::credentials::Password;
use crate::domain::user::PasswordHash;
use crate::error::ApiError;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Semaphore;

#[derive(Clone)]
pub struct PasswordVerifier {
    permits: Arc<Semaphore>,
    /// Verifications waiting for a permit, and how many may wait.
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    dummy: PasswordHash,
}

/// Decrements the waiting count however the wait ends.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl PasswordVerifier {
    /// `cost` is the bcrypt cost real users' hashes have; at most `max_concurrent` run at
    /// once and `max_waiting` wait, past which a verification fails at once with 503.
    pub fn new(max_concurrent: usize, max_waiting: usize, cost: u32) -> Result<Self, String> {
        let dummy = bcrypt::hash("token-server dummy password", cost.clamp(4, 31))
            .map_err(|e| format!("cannot make the dummy bcrypt hash: {e}"))?;
        Ok(PasswordVerifier {
            permits: Arc::new(Semaphore::new(max_concurrent)),
            waiting: Arc::default(),
            max_waiting,
            dummy: PasswordHash::parse(dummy)?,
        })
    }

    /// True if `password` matches `hash`; with no hash, runs against the dummy and is false.
    pub async fn verify(
        &self,
        password: Password,
        hash: Option<&PasswordHash>,
    ) -> Result<bool, ApiError> {
        let real = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy).as_str().to_string();
        let _permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(ApiError::Busy);
                }
                let _waiting = Waiting(&self.waiting);
                self.permits
                    .acquire()
                    .await
                    .map_err(|_| ApiError::Internal("bcrypt limiter closed".into()))?
            }
        };
        let matched = actix_web::web::block(move || bcrypt::verify(password.expose(), &hash))
            .await
            .map_err(|_| ApiError::Internal("bcrypt worker failed".into()))?
            .unwrap_or(false);
        Ok(real && matched)
    }

    /// Verifications waiting for a permit right now.
    pub fn queue_depth(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}
