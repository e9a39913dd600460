//! The session store on Redis (one node, a cluster or the master Sentinel names). Every
//! operation is one round trip: a Lua script where several keys change together, one `MGET` for
//! validation. All keys a step touches share the user's hash tag, so each step runs on one
//! cluster slot.

mod cache;
pub mod codes;
mod refresh;
mod sessions;
mod tracking;

use super::lua::{EndArgs, IntrospectArgs, IssueArgs, RefreshArgs};
use super::{StoreError, ms};
use crate::domain::session::{
    Generation, Introspection, Issued, NewSession, Refresh, SessionPolicy, Started, TokenPair,
};
use crate::domain::token::{Token, TokenKind, UserTag};
use crate::redis_io::{Keys, Lua, RedisConn};
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tracking::{Tracker, TrackingConfig};

/// The session store on Redis, every key under one prefix. Clones share the connection.
#[derive(Clone)]
pub struct RedisStore {
    conn: RedisConn,
    keys: Keys,
    scripts: std::sync::Arc<Scripts>,
    /// The validation cache, when it is on: one per replica, shared by its worker threads.
    tracker: Option<Arc<Tracker>>,
    /// The read lease this replica runs (0 = none), and the largest one seen stored in Redis:
    /// revoking writes wait out the larger (see `tracking/lease.rs`).
    lease: Duration,
    lease_seen: Arc<AtomicU64>,
}

struct Scripts {
    issue: Lua,
    refresh: Lua,
    end: Lua,
    own_sessions: Lua,
    sessions: Lua,
    introspect: Lua,
}

/// How the scripts name a token's kind.
fn script_kind(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Access => "a",
        TokenKind::Refresh => "r",
    }
}

/// Milliseconds left, as the whole seconds a token response shows.
fn secs(ms: i64) -> u64 {
    (ms.max(0) / 1000) as u64
}

impl RedisStore {
    /// The store on `conn`, every key under `prefix`.
    pub fn new(conn: RedisConn, prefix: &str) -> Self {
        RedisStore {
            conn,
            keys: Keys::new(prefix),
            scripts: std::sync::Arc::new(Scripts {
                issue: Lua::new(include_str!("../lua/issue.lua")),
                refresh: Lua::new(include_str!("../lua/refresh.lua")),
                end: Lua::new(include_str!("../lua/end.lua")),
                own_sessions: Lua::new(concat!(
                    include_str!("../lua/caller.lua"),
                    include_str!("../lua/sessions.lua")
                )),
                sessions: Lua::new(include_str!("../lua/sessions.lua")),
                introspect: Lua::new(include_str!("../lua/introspect.lua")),
            }),
            tracker: None,
            lease: Duration::ZERO,
            lease_seen: Arc::default(),
        }
    }

    /// Runs read leases of `lease` (see `tracking/lease.rs`): the cache's hits answer at once
    /// while a heartbeat is confirmed, and every revoking write waits the lease out. Not on a
    /// cluster, which has no cache; set before [`Self::with_validation_cache`].
    pub fn with_lease(mut self, lease: Duration) -> Self {
        if !matches!(self.conn, RedisConn::Cluster { .. }) {
            self.lease = lease;
        }
        self
    }

    /// What a revoking write waits after Redis acknowledged it: the larger of this replica's
    /// lease and any other seen stored, plus the margin; zero without leases.
    pub fn commit_wait_for(&self) -> Duration {
        let seen = Duration::from_millis(self.lease_seen.load(Ordering::Relaxed));
        tracking::commit_wait(self.lease.max(seen))
    }

    /// Waits until no replica can serve from a lease confirmed before `acked`, when Redis
    /// acknowledged a write that ended or changed something replicas may hold. Every answer
    /// of such a request waits, "nothing to end" included: a retry must not answer early.
    pub async fn commit_wait(&self, acked: Instant) {
        let wait = self.commit_wait_for();
        if !wait.is_zero() {
            tokio::time::sleep_until((acked + wait).into()).await;
        }
    }

    /// The lease stored in Redis for this prefix, if any: a replica refuses to start against
    /// another value than its own.
    pub async fn stored_lease(&self) -> Result<Option<u64>, StoreError> {
        let mut conn = self.conn.get().await?;
        let stored: Option<u64> = redis::cmd("GET")
            .arg(self.keys.lease())
            .query_async(&mut conn)
            .await?;
        if let Some(v) = stored {
            self.lease_seen.fetch_max(v, Ordering::Relaxed);
        }
        Ok(stored)
    }

    /// Turns the validation cache on: the replica caches at most `entries` access keys, kept
    /// current by Redis's invalidation pushes (see `tracking/`). One cache and one tracking
    /// connection serve all worker threads: a hit under the lease waits for nothing, so
    /// sharing costs no wake-up, and each token is held once. Stays off on a cluster (see
    /// `tracking_source`), which reads through.
    pub fn with_validation_cache(mut self, entries: usize, timeout: Duration) -> Self {
        if entries == 0 {
            return self;
        }
        if let Some(source) = self.conn.tracking_source() {
            self.tracker = Some(Tracker::new(Arc::new(TrackingConfig {
                source,
                capacity: entries,
                timeout,
                probe_prefix: self.keys.tracking_probe_prefix(),
                lease: self.lease,
                lease_key: self.keys.lease(),
                lease_seen: self.lease_seen.clone(),
            })));
        }
        self
    }

    /// The replica's tracker, if the validation cache is on.
    fn tracker(&self) -> Option<&Arc<Tracker>> {
        self.tracker.as_ref()
    }

    /// The login guards' side of this store.
    pub fn guard(&self) -> super::guard::RedisGuard<'_> {
        super::guard::RedisGuard {
            conn: self.conn.clone(),
            keys: &self.keys,
        }
    }

    /// `redis`, `redis-cluster` or `redis-sentinel`: how this store reaches Redis.
    pub fn kind(&self) -> &'static str {
        match self.conn {
            RedisConn::Single(_) => "redis",
            RedisConn::Cluster { .. } => "redis-cluster",
            RedisConn::Sentinel(_) => "redis-sentinel",
        }
    }

    /// Succeeds if Redis answers `PING`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.get().await?;
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Starts a session with `pair` unless the user's generation has changed (see
    /// `lua/issue.lua`).
    pub async fn issue_session(
        &self,
        s: &NewSession,
        pair: TokenPair,
        policy: &SessionPolicy,
    ) -> Result<Started, StoreError> {
        let session = pair.session();
        let tag = &session.tag;
        let cmd = IssueArgs {
            session: self.keys.session(&session),
            access: self.keys.access(&session),
            index: self.keys.user_sessions(tag),
            snapshot: self.keys.user_snapshot(tag),
            generation: self.keys.user_generation(tag),
            access_digest: pair.access.digest().as_str(),
            access_ttl_ms: ms(policy.access),
            refresh_digest: pair.refresh.digest().as_str(),
            refresh_ttl_ms: ms(policy.refresh),
            session_id: session.id.key_part(),
            user_uuid: &s.user_uuid,
            user_json: &s.user_json,
            client_id: &s.client_id,
            scope: &s.scope,
            ip: &s.ip,
            user_agent: &s.user_agent,
            max_lifetime_ms: policy.max_lifetime.map_or(0, ms),
            max_sessions: policy.max_sessions_per_user,
            key_base: self.keys.tag_base(tag),
            read_generation: &s.generation.0,
        }
        .call(&self.scripts.issue);
        let reply: Option<(i64, i64, u32, i64)> = self
            .scripts
            .issue
            .run(&cmd, &mut self.conn.get().await?)
            .await?;
        let Some((attl, rttl, ended, rewritten)) = reply else {
            return Ok(Started::UserChanged);
        };
        // Sessions ended by the cap, or a snapshot replicas may hold, changed.
        if ended > 0 || rewritten == 1 {
            self.commit_wait(Instant::now()).await;
        }
        let issued = Issued {
            pair,
            access_expires_in: secs(attl),
            refresh_expires_in: secs(rttl),
        };
        Ok(Started::Issued(issued, ended))
    }

    /// The user's generation now.
    pub async fn user_generation(&self, tag: &UserTag) -> Result<Generation, StoreError> {
        let mut conn = self.conn.get().await?;
        let current: Option<String> = redis::cmd("GET")
            .arg(self.keys.user_generation(tag))
            .query_async(&mut conn)
            .await?;
        Ok(Generation(current.unwrap_or_default()))
    }

    /// Redeems `presented` for `pair` (see `lua/refresh.lua`).
    pub async fn rotate_refresh(
        &self,
        presented: &Token,
        pair: TokenPair,
        scope: Option<&str>,
        client_id: &str,
        policy: &SessionPolicy,
    ) -> Result<Refresh, StoreError> {
        let session = presented.session();
        let mut conn = self.conn.get().await?;
        let cmd = RefreshArgs {
            session: self.keys.session(&session),
            access: self.keys.access(&session),
            index: self.keys.user_sessions(&session.tag),
            snapshot: self.keys.user_snapshot(&session.tag),
            presented: presented.digest().as_str(),
            access_digest: pair.access.digest().as_str(),
            access_ttl_ms: ms(policy.access),
            refresh_digest: pair.refresh.digest().as_str(),
            refresh_ttl_ms: ms(policy.refresh),
            session_id: session.id.key_part(),
            requested_scope: scope.unwrap_or(""),
            client_id,
            rotation: if policy.rotation { "1" } else { "0" },
            retry_window_ms: policy.reuse_grace.as_millis() as u64,
        }
        .call(&self.scripts.refresh);
        let reply: refresh::Reply = self.scripts.refresh.run(&cmd, &mut conn).await?;
        // The previous access token ended (or, for reuse, the whole session).
        self.commit_wait(Instant::now()).await;
        Ok(reply.into_refresh(pair))
    }

    /// The session's user JSON if `token` is its live access token.
    pub async fn validate_access(&self, token: &Token) -> Result<Option<Bytes>, StoreError> {
        let session = token.session();
        let access = self.keys.access(&session);
        let user = self.keys.user_snapshot(&session.tag);
        if let Some(tracker) = self.tracker() {
            let found = tracker
                .validate(&access, &user, token.digest().as_str())
                .await;
            if tracker.take_connected() {
                // This worker's ordinary connection learns now, not on the next write, that
                // Redis went away: a write on a dead connection answers 503.
                let _ = Box::pin(self.ping()).await;
            }
            if let Ok(found) = found {
                return Ok(found);
            }
        }
        // Boxed, as the tracker's waiting paths are: a cache hit's future stays small.
        Box::pin(self.read_access(token, &access, &user)).await
    }

    /// The session's user JSON if `token` is its live access token, read from Redis.
    async fn read_access(
        &self,
        token: &Token,
        access: &str,
        user: &str,
    ) -> Result<Option<Bytes>, StoreError> {
        // One command: both keys share the user's hash slot.
        let mut mget = redis::cmd("MGET");
        mget.arg(access).arg(user);
        let mut conn = self.conn.get().await?;
        let reply = match mget.query_async(&mut conn).await {
            // A connection that died while idle (Redis restarted) fails its next command and
            // reconnects; a read can safely be sent again, so gateways see no 503 for it.
            Err(e) if e.is_connection_dropped() || e.is_io_error() => {
                let mut conn = self.conn.get().await?;
                mget.query_async(&mut conn).await
            }
            reply => reply,
        };
        let (digest, user): (Option<String>, Option<String>) = reply?;
        Ok(match (digest, user) {
            (Some(d), Some(u)) if d == token.digest().as_str() => Some(Bytes::from(u)),
            _ => None,
        })
    }

    /// Ends the session `token` belongs to if the token is live (and, with `client`, was
    /// issued to that client); false otherwise.
    pub async fn end_session(
        &self,
        token: &Token,
        client: Option<&str>,
    ) -> Result<bool, StoreError> {
        let session = token.session();
        let kind = script_kind(token.kind());
        let cmd = EndArgs {
            session: self.keys.session(&session),
            access: self.keys.access(&session),
            index: self.keys.user_sessions(&session.tag),
            snapshot: self.keys.user_snapshot(&session.tag),
            kind,
            digest: token.digest().as_str(),
            session_id: session.id.key_part(),
            client_id: client.unwrap_or(""),
        }
        .call(&self.scripts.end);
        let ended: i64 = self
            .scripts
            .end
            .run(&cmd, &mut self.conn.get().await?)
            .await?;
        self.commit_wait(Instant::now()).await;
        Ok(ended == 1)
    }

    /// What a live token stands for; `None` if it is not live.
    pub async fn introspect(&self, token: &Token) -> Result<Option<Introspection>, StoreError> {
        let at = token.session();
        let (session, access, user) = (
            self.keys.session(&at),
            self.keys.access(&at),
            self.keys.user_snapshot(&at.tag),
        );
        if let (TokenKind::Access, Some(tracker)) = (token.kind(), self.tracker()) {
            let found = tracker
                .introspect([&access, &user, &session], token.digest().as_str())
                .await;
            if let Ok(found) = found {
                return Ok(found);
            }
        }
        let kind = script_kind(token.kind());
        let cmd = IntrospectArgs {
            session,
            access,
            snapshot: user,
            kind,
            digest: token.digest().as_str(),
        }
        .call(&self.scripts.introspect);
        let reply: Option<(String, String, String, u64, u64, u64)> = self
            .scripts
            .introspect
            .run(&cmd, &mut self.conn.get().await?)
            .await?;
        Ok(reply.map(
            |(user_json, client_id, scope, created_ms, refreshed_ms, expires_ms)| Introspection {
                user_json,
                client_id,
                scope,
                created_ms,
                refreshed_ms,
                expires_ms,
            },
        ))
    }
}
