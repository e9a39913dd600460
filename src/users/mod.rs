//! Where users come from: the seed file, loaded at start-up, and Redis hashes written by
//! operators, read at each login so a change applies on every replica at once. A Redis record
//! takes precedence over a seed record for the same tenant and user name.

pub mod redis;
pub mod seed;

use crate::domain::credentials::{TenantId, Username};
use crate::domain::user::{User, UserType};
use crate::store::StoreError;
use redis::RedisUsers;
use seed::SeedUsers;

/// Where logins find users: the seed file and, if configured, Redis records, which win over seed
/// records of the same tenant and name.
#[derive(Clone, Default)]
pub struct UserDirectory {
    seed: SeedUsers,
    redis: Option<RedisUsers>,
}

impl UserDirectory {
    /// A directory of `seed`, and of the Redis records too if `redis` is given.
    pub fn new(seed: SeedUsers, redis: Option<RedisUsers>) -> Self {
        UserDirectory { seed, redis }
    }

    /// The one user a login names: `userName` within `tenantId` when given, the user type
    /// (case-insensitive) when given; without a tenant the name must be unique.
    pub async fn find(
        &self,
        user_name: &Username,
        tenant: Option<&TenantId>,
        user_type: Option<UserType>,
    ) -> Result<Option<User>, StoreError> {
        let mut candidates = self.named(user_name.as_str(), tenant).await?;
        candidates.retain(|u| user_type.is_none_or(|t| u.public.user_type == t));
        Ok(match candidates.len() {
            1 => candidates.pop(),
            _ => None,
        })
    }

    /// The seed file's users, in no particular order.
    pub fn seed_users(&self) -> impl Iterator<Item = &User> {
        self.seed.all()
    }

    /// Every user of that name (in `tenant` only, if given), one per tenant.
    pub async fn named(
        &self,
        user_name: &str,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<User>, StoreError> {
        let mut candidates = self.seed.named(user_name, tenant);
        if let Some(redis) = &self.redis {
            let start = std::time::Instant::now();
            let found = redis.named(user_name, tenant).await;
            crate::metrics::store("users", start.elapsed(), found.is_ok());
            for user in found? {
                candidates.retain(|c| c.public.tenant_id != user.public.tenant_id);
                candidates.push(user);
            }
        }
        Ok(candidates)
    }
}
