//! Refresh on the embedded store: the rule of `lua/refresh.lua`, in the script's sections
//! (retry, reuse, rotate), so one can be held against the other.

use super::{ANCESTORS, MemoryStore, Session, epoch_ms, left};
use crate::domain::session::{Issued, Refresh, SessionPolicy, TokenPair};
use crate::domain::token::{Token, TokenDigest};
use crate::store::StoreError;
use std::time::Instant;

/// The answer of a rotation (or a retry of one) of `s` to `pair`.
fn rotated(s: &Session, pair: TokenPair, access: u64, refresh: u64, retried: bool) -> Refresh {
    Refresh::Rotated {
        issued: Box::new(Issued {
            pair,
            access_expires_in: access,
            refresh_expires_in: refresh,
        }),
        user_json: s.user_json.clone(),
        client_id: s.client_id.clone(),
        scope: s.scope.clone(),
        retried,
    }
}

/// A presented token that is not the session's current one. Retry: the immediate
/// predecessor inside the window gets the same successor. Reuse: the predecessor after the
/// window, or an older ancestor (by its 32-bit prefix, as the script keeps them), ends the
/// session (the caller removes it). Anything else is invalid.
fn not_current(
    s: &Session,
    digest: &TokenDigest,
    pair: TokenPair,
    client_id: &str,
    policy: &SessionPolicy,
    now: Instant,
) -> Refresh {
    let is_previous = policy.rotation && s.previous.as_ref().is_some_and(|(d, _)| d == digest);
    if is_previous {
        let in_window = !policy.reuse_grace.is_zero()
            && s.previous
                .as_ref()
                .is_some_and(|(_, when)| now.duration_since(*when) <= policy.reuse_grace);
        if in_window && s.refresh == pair.refresh.digest() {
            if s.client_id != client_id {
                return Refresh::InvalidToken;
            }
            let access_left = s.access.as_ref().map_or(0, |(_, exp)| left(*exp, now));
            return rotated(s, pair, access_left, left(s.refresh_expires, now), true);
        }
    }
    if is_previous || s.ancestors.iter().any(|a| a == digest.prefix()) {
        return Refresh::ReuseDetected {
            user_uuid: s.user_uuid.clone(),
        };
    }
    Refresh::InvalidToken
}

impl MemoryStore {
    /// Redeems `presented` for `pair`: the rule of `lua/refresh.lua`, in its sections.
    pub fn rotate_refresh(
        &self,
        presented: &Token,
        pair: TokenPair,
        scope: Option<&str>,
        client_id: &str,
        policy: &SessionPolicy,
    ) -> Result<Refresh, StoreError> {
        let at = presented.session();
        let now = Instant::now();
        let mut state = self.lock();
        let Some(s) = state.live(&at.tag, &at.id, now) else {
            return Ok(Refresh::InvalidToken);
        };
        let digest = presented.digest();
        if s.refresh != digest {
            let outcome = not_current(s, &digest, pair, client_id, policy, now);
            if let Refresh::ReuseDetected { .. } = outcome {
                state.remove(&at.id);
            }
            return Ok(outcome);
        }
        if s.client_id != client_id {
            return Ok(Refresh::InvalidToken);
        }
        if let Some(requested) = scope {
            let have: Vec<&str> = s.scope.split(' ').collect();
            if !requested.split(' ').all(|r| have.contains(&r)) {
                return Ok(Refresh::ScopeTooWide);
            }
            s.scope = requested.to_string();
        }
        // Rotate: the predecessor joins the ancestors, the presented token becomes it.
        if policy.rotation {
            let mut expires = now + policy.refresh;
            if let Some(max) = s.max_expires {
                expires = expires.min(max);
            }
            if let Some((old, _)) = s.previous.take() {
                s.ancestors.push_back(old.prefix().to_string());
                if s.ancestors.len() > ANCESTORS {
                    s.ancestors.pop_front();
                }
            }
            s.previous = Some((digest, now));
            s.refresh = pair.refresh.digest();
            s.refresh_expires = expires;
        }
        let access = policy
            .access
            .min(s.refresh_expires.saturating_duration_since(now));
        s.access = Some((pair.access.digest(), now + access));
        s.refreshed_ms = epoch_ms();
        let refresh_left = left(s.refresh_expires, now);
        Ok(rotated(s, pair, access.as_secs(), refresh_left, false))
    }
}
