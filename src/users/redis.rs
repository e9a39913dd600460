//! Users stored as Redis hashes, one per user at `P:user:<tenantId>:<userName>`, with the DIGIT
//! field names (`roles` as a JSON array, `active` as `true`/`false`, `password` a bcrypt hash).
//! `P:user-tenants:<userName>` lists the tenants that have a user of that name, for logins that
//! name no tenant; `P:user-mobile:<mobileNumber>` lists the records written with that mobile
//! number, for one-time code sends (a reader checks each record, so a stale entry is skipped).
//! A malformed record is skipped with a warning that names only its key.

use crate::domain::credentials::TenantId;
use crate::domain::user::{PasswordHash, PublicUser, User, UserType};
use crate::redis_io::{Keys, Lua, RedisConn};
use crate::store::StoreError;
use std::collections::HashMap;

/// User records kept as Redis hashes: written by the admin commands, read at each login.
#[derive(Clone)]
pub struct RedisUsers {
    conn: RedisConn,
    keys: Keys,
    put: std::sync::Arc<Lua>,
}

/// How [`RedisUsers::write`] treats an existing record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// Only if there is no record yet.
    Create,
    /// Whatever is there, replaced as a whole.
    Replace,
}

impl RedisUsers {
    /// The records on `conn`, under the prefix of `keys`.
    pub fn new(conn: RedisConn, keys: Keys) -> Self {
        RedisUsers {
            conn,
            keys,
            put: std::sync::Arc::new(Lua::new(include_str!("lua/put.lua"))),
        }
    }

    /// The fields of each of the hashes at `keys` (empty where there is none), read
    /// concurrently: the records may sit on different cluster nodes.
    async fn read(&self, keys: &[String]) -> Result<Vec<HashMap<String, String>>, StoreError> {
        let reads = keys.iter().map(|key| {
            let conn = self.conn.clone();
            async move {
                let mut conn = conn.get().await?;
                let fields: HashMap<String, String> = redis::cmd("HGETALL")
                    .arg(key)
                    .query_async(&mut conn)
                    .await?;
                Ok::<_, StoreError>(fields)
            }
        });
        futures_util::future::try_join_all(reads).await
    }

    /// Writes `user`; false if `Create` found a record already.
    pub async fn write(&self, user: &User, mode: WriteMode) -> Result<bool, StoreError> {
        let p = &user.public;
        let mut conn = self.conn.get().await?;
        // The tenant first: a name listed without a record is skipped by readers, while a
        // record its name does not list would be missed by logins that name no tenant.
        let () = redis::cmd("SADD")
            .arg(self.keys.user_tenants(&p.user_name))
            .arg(&p.tenant_id)
            .query_async(&mut conn)
            .await?;
        if let Some(mobile) = p.mobile_number.as_ref().filter(|m| !m.is_empty()) {
            let () = redis::cmd("SADD")
                .arg(self.keys.user_mobile(mobile))
                .arg(format!("{}:{}", p.tenant_id, p.user_name))
                .query_async(&mut conn)
                .await?;
        }
        let mode = match mode {
            WriteMode::Create => "create",
            WriteMode::Replace => "replace",
        };
        self.run_put(&p.tenant_id, &p.user_name, mode, &to_fields(user))
            .await
    }

    /// Sets fields of an existing record; false if there is none.
    pub async fn update(
        &self,
        tenant: &str,
        user_name: &str,
        fields: &[(&'static str, String)],
    ) -> Result<bool, StoreError> {
        self.run_put(tenant, user_name, "update", fields).await
    }

    async fn run_put(
        &self,
        tenant: &str,
        user_name: &str,
        mode: &str,
        fields: &[(&'static str, String)],
    ) -> Result<bool, StoreError> {
        let mut cmd = self.put.cmd(1);
        cmd.arg(self.keys.user(tenant, user_name)).arg(mode);
        for (name, value) in fields {
            cmd.arg(*name).arg(value);
        }
        let written: i64 = self.put.run(&cmd, &mut self.conn.get().await?).await?;
        Ok(written == 1)
    }

    /// Every user record, sorted by tenant and name; malformed ones are named in the second
    /// list by key (admin use only: it scans the keyspace).
    pub async fn all(&self) -> Result<(Vec<User>, Vec<String>), StoreError> {
        let keys = self.conn.scan(&self.keys.users_pattern()).await?;
        let mut users = Vec::with_capacity(keys.len());
        let mut malformed = Vec::new();
        for chunk in keys.chunks(256) {
            for (key, fields) in chunk.iter().zip(self.read(chunk).await?) {
                if fields.is_empty() {
                    continue; // deleted since the scan
                }
                match from_fields(fields) {
                    Ok(user) => users.push(user),
                    Err(_) => malformed.push(key.clone()),
                }
            }
        }
        users.sort_by(|a, b| {
            (&a.public.tenant_id, &a.public.user_name)
                .cmp(&(&b.public.tenant_id, &b.public.user_name))
        });
        Ok((users, malformed))
    }

    /// The users of that name (in `tenant` only, if given), one per tenant. A record whose
    /// own tenant and name are not the ones its key was built from is skipped: it cannot
    /// answer for another user.
    pub async fn named(
        &self,
        user_name: &str,
        tenant: Option<&TenantId>,
    ) -> Result<Vec<User>, StoreError> {
        let mut conn = self.conn.get().await?;
        let mut tenants: Vec<String> = match tenant {
            Some(t) => vec![t.as_str().to_string()],
            None => {
                redis::cmd("SMEMBERS")
                    .arg(self.keys.user_tenants(user_name))
                    .query_async(&mut conn)
                    .await?
            }
        };
        // Nobody of that name still costs a record read, as a user does: the time taken must
        // not tell which names exist. No tenant is empty, so this key holds no record.
        let nobody = tenants.is_empty();
        if nobody {
            tenants.push(String::new());
        }
        let keys: Vec<String> = tenants
            .iter()
            .map(|t| self.keys.user(t, user_name))
            .collect();
        let records = self.read(&keys).await?;
        if nobody {
            return Ok(vec![]);
        }
        Ok(tenants
            .iter()
            .zip(keys)
            .zip(records)
            .filter(|(_, fields)| !fields.is_empty())
            .filter_map(|((t, key), fields)| match from_fields(fields) {
                Ok(user) if user.public.tenant_id == *t && user.public.user_name == user_name => {
                    Some(user)
                }
                Ok(_) => {
                    log::warn!("skipping user record {key:?}: its tenantId or userName differs from its key");
                    None
                }
                Err(field) => {
                    log::warn!("skipping user record {key:?}: field {field} is missing or malformed");
                    None
                }
            })
            .collect())
    }

    /// The (tenant, user name) of at most [`MAX_PER_MOBILE`] records written with `mobile`:
    /// one `SSCAN` step, so a number shared by very many users costs no more.
    pub async fn with_mobile(&self, mobile: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut conn = self.conn.get().await?;
        let (_, members): (u64, Vec<String>) = redis::cmd("SSCAN")
            .arg(self.keys.user_mobile(mobile))
            .arg(0)
            .arg("COUNT")
            .arg(MAX_PER_MOBILE)
            .query_async(&mut conn)
            .await?;
        Ok(members
            .into_iter()
            .filter_map(|m| {
                let (tenant, name) = m.split_once(':')?;
                Some((tenant.to_string(), name.to_string()))
            })
            .take(MAX_PER_MOBILE)
            .collect())
    }

    /// The records of these (tenant, user name) pairs, `None` where there is none; a record
    /// whose own tenant and name differ from its key's is skipped.
    pub async fn records(
        &self,
        pairs: &[(String, String)],
    ) -> Result<Vec<Option<User>>, StoreError> {
        let keys: Vec<String> = pairs.iter().map(|(t, n)| self.keys.user(t, n)).collect();
        let records = self.read(&keys).await?;
        Ok(pairs
            .iter()
            .zip(keys)
            .zip(records)
            .map(|(((t, n), key), fields)| {
                if fields.is_empty() {
                    return None;
                }
                match from_fields(fields) {
                    Ok(user) if user.public.tenant_id == *t && user.public.user_name == *n => {
                        Some(user)
                    }
                    _ => {
                        log::warn!("skipping user record {key:?}: malformed, or its tenantId or userName differs from its key");
                        None
                    }
                }
            })
            .collect())
    }
}

/// The most records a lookup by mobile number reads.
pub const MAX_PER_MOBILE: usize = 32;

/// Builds a user from hash fields; the error names the first bad field.
pub fn from_fields(mut f: HashMap<String, String>) -> Result<User, &'static str> {
    let mut take = |name: &'static str| f.remove(name).filter(|v| !v.is_empty());
    let public = PublicUser {
        id: take("id").and_then(|v| v.parse().ok()).ok_or("id")?,
        uuid: take("uuid").ok_or("uuid")?,
        user_name: take("userName").ok_or("userName")?,
        name: take("name"),
        mobile_number: take("mobileNumber"),
        email_id: take("emailId"),
        locale: take("locale"),
        user_type: take("type")
            .and_then(|v| UserType::parse(&v))
            .ok_or("type")?,
        roles: match take("roles") {
            None => vec![],
            Some(v) => serde_json::from_str(&v).map_err(|_| "roles")?,
        },
        active: match take("active").as_deref() {
            Some("true") => true,
            Some("false") => false,
            _ => return Err("active"),
        },
        tenant_id: take("tenantId").ok_or("tenantId")?,
    };
    let password = take("password")
        .and_then(|v| PasswordHash::parse(v).ok())
        .ok_or("password")?;
    Ok(User { public, password })
}

/// The hash fields of a user record, the inverse of [`from_fields`].
pub fn to_fields(user: &User) -> Vec<(&'static str, String)> {
    let p = &user.public;
    let mut fields = vec![
        ("id", p.id.to_string()),
        ("uuid", p.uuid.clone()),
        ("userName", p.user_name.clone()),
        (
            "type",
            serde_json::to_value(p.user_type)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        ),
        (
            "roles",
            serde_json::to_string(&p.roles).unwrap_or_else(|_| "[]".into()),
        ),
        ("active", p.active.to_string()),
        ("tenantId", p.tenant_id.clone()),
        ("password", user.password.as_str().to_string()),
    ];
    for (name, value) in [
        ("name", &p.name),
        ("mobileNumber", &p.mobile_number),
        ("emailId", &p.email_id),
        ("locale", &p.locale),
    ] {
        if let Some(v) = value {
            fields.push((name, v.clone()));
        }
    }
    fields
}
