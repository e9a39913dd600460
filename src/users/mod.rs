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

    /// The users in `tenant` whose mobile number is `mobile` (one-time code sends): seed users
    /// by an index, Redis records by the number's list and by a user name equal to the
    /// number (DIGIT's citizens), each record checked. A Redis record wins over a seed record
    /// of the same tenant and name. Bounded: at most `MAX_PER_MOBILE` Redis records are read.
    pub async fn with_mobile(
        &self,
        mobile: &str,
        tenant: &TenantId,
    ) -> Result<Vec<User>, StoreError> {
        let seed = self.seed.with_mobile(mobile, tenant);
        let Some(redis) = &self.redis else {
            return Ok(seed);
        };
        let start = std::time::Instant::now();
        let found = async {
            let mut pairs: Vec<(String, String)> = redis
                .with_mobile(mobile)
                .await?
                .into_iter()
                .filter(|(t, _)| t == tenant.as_str())
                .collect();
            let named = (tenant.as_str().to_string(), mobile.to_string());
            for pair in seed
                .iter()
                .map(|u| (u.public.tenant_id.clone(), u.public.user_name.clone()))
                .chain([named])
            {
                if !pairs.contains(&pair) {
                    pairs.push(pair);
                }
            }
            let records = redis.records(&pairs).await?;
            Ok::<_, StoreError>((pairs, records))
        }
        .await;
        crate::metrics::store(
            crate::metrics::StoreOp::Users,
            start.elapsed(),
            found.is_ok(),
        );
        let (pairs, records) = found?;
        Ok(pairs
            .iter()
            .zip(records)
            .filter_map(|((t, n), record)| match record {
                Some(user) => Some(user),
                None => seed
                    .iter()
                    .find(|u| u.public.tenant_id == *t && u.public.user_name == *n)
                    .cloned(),
            })
            .filter(|u| u.public.mobile_number.as_deref() == Some(mobile))
            .collect())
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
            crate::metrics::store(
                crate::metrics::StoreOp::Users,
                start.elapsed(),
                found.is_ok(),
            );
            for user in found? {
                candidates.retain(|c| c.public.tenant_id != user.public.tenant_id);
                candidates.push(user);
            }
        }
        Ok(candidates)
    }
}
