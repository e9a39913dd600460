//! The JSON seed file of users: an array of DIGIT user records with bcrypt password hashes.

use crate::domain::credentials::TenantId;
use crate::domain::user::User;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// The seed file's users by name and by mobile number, fixed once loaded; clones share them.
#[derive(Clone, Debug, Default)]
pub struct SeedUsers {
    by_name: Arc<HashMap<String, Vec<User>>>,
    by_mobile: Arc<HashMap<String, Vec<User>>>,
}

impl SeedUsers {
    /// The users of the file at `path`; the error names `USERS_FILE`, the path and what is wrong.
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read USERS_FILE {}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("USERS_FILE {}: {e}", path.display()))
    }

    /// The users of a JSON array of user records; fails on a malformed record, a bad tenant, a user
    /// twice in one tenant or a uuid shared by two users.
    pub fn parse(json: &str) -> Result<Self, String> {
        let users: Vec<User> = serde_json::from_str(json).map_err(|e| {
            format!(
                "not a JSON array of user records (line {}, column {}): {}",
                e.line(),
                e.column(),
                e.classify_message()
            )
        })?;
        let mut seen = HashSet::new();
        let mut uuids = HashSet::new();
        let mut by_name: HashMap<String, Vec<User>> = HashMap::new();
        let mut by_mobile: HashMap<String, Vec<User>> = HashMap::new();
        for user in users {
            let p = &user.public;
            if p.tenant_id.is_empty() {
                return Err(format!("user {:?} has an empty tenantId", p.user_name));
            }
            TenantId::parse(&p.tenant_id)
                .map_err(|e| format!("user {:?}: {}", p.user_name, e.0))?;
            let key = (p.tenant_id.clone(), p.user_name.clone());
            if !seen.insert(key) {
                return Err(format!(
                    "user {:?} appears twice in tenant {:?}",
                    p.user_name, p.tenant_id
                ));
            }
            // Sessions find their user by uuid: two users with one uuid would share them.
            if !uuids.insert(p.uuid.clone()) {
                return Err(format!("uuid {:?} belongs to more than one user", p.uuid));
            }
            if let Some(mobile) = p.mobile_number.as_ref().filter(|m| !m.is_empty()) {
                by_mobile
                    .entry(mobile.clone())
                    .or_default()
                    .push(user.clone());
            }
            by_name
                .entry(user.public.user_name.clone())
                .or_default()
                .push(user);
        }
        Ok(SeedUsers {
            by_name: Arc::new(by_name),
            by_mobile: Arc::new(by_mobile),
        })
    }

    /// Every user, in no particular order.
    pub fn all(&self) -> impl Iterator<Item = &User> {
        self.by_name.values().flatten()
    }

    /// How many users there are.
    pub fn len(&self) -> usize {
        self.by_name.values().map(Vec::len).sum()
    }

    /// True if there are no users.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// The highest bcrypt cost of the users' hashes.
    pub fn max_cost(&self) -> Option<u32> {
        self.all().map(|u| u.password.cost()).max()
    }

    /// Every user of that name (in `tenant` only, if given), one per tenant.
    pub fn named(&self, user_name: &str, tenant: Option<&TenantId>) -> Vec<User> {
        self.by_name
            .get(user_name)
            .into_iter()
            .flatten()
            .filter(|u| tenant.is_none_or(|t| u.public.tenant_id == t.as_str()))
            .cloned()
            .collect()
    }

    /// Every user in `tenant` whose mobile number is `mobile`.
    pub fn with_mobile(&self, mobile: &str, tenant: &TenantId) -> Vec<User> {
        self.by_mobile
            .get(mobile)
            .into_iter()
            .flatten()
            .filter(|u| u.public.tenant_id == tenant.as_str())
            .cloned()
            .collect()
    }
}

trait ClassifyMessage {
    fn classify_message(&self) -> String;
}

impl ClassifyMessage for serde_json::Error {
    /// The error text without serde's position suffix, which is reported separately.
    fn classify_message(&self) -> String {
        let text = self.to_string();
        match text.find(" at line ") {
            Some(i) => text[..i].to_string(),
            None => text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2a$04$abcdefghijklmnopqrstuuvwxyz0123456789ABCDEFGHIJKLMNOP";

    fn user(name: &str, tenant: &str) -> String {
        format!(
            r#"{{"id":1,"uuid":"u-{name}-{tenant}","userName":"{name}","type":"EMPLOYEE","active":true,"tenantId":"{tenant}","password":"{HASH}"}}"#
        )
    }

    #[test]
    fn users_are_found_by_name_and_tenant() {
        let seed = SeedUsers::parse(&format!("[{},{}]", user("a", "pb"), user("a", "mz"))).unwrap();
        assert_eq!(seed.len(), 2);
        assert_eq!(seed.named("a", None).len(), 2);
        let pb = TenantId::parse("pb").unwrap();
        assert_eq!(seed.named("a", Some(&pb))[0].public.tenant_id, "pb");
        assert!(seed.named("b", None).is_empty());
    }

    #[test]
    fn a_plaintext_password_or_duplicate_is_refused() {
        let plain = user("a", "pb").replace(HASH, "secret");
        assert!(
            SeedUsers::parse(&format!("[{plain}]"))
                .unwrap_err()
                .contains("bcrypt")
        );
        let dup = format!("[{},{}]", user("a", "pb"), user("a", "pb"));
        assert!(SeedUsers::parse(&dup).unwrap_err().contains("twice"));
    }

    #[test]
    fn two_users_with_one_uuid_are_refused_by_uuid() {
        let shared = user("b", "pb").replace("u-b-pb", "u-a-pb");
        let err = SeedUsers::parse(&format!("[{},{shared}]", user("a", "pb"))).unwrap_err();
        assert!(err.contains("\"u-a-pb\""), "{err}");
        let colon = user("a", "p:b");
        assert!(
            SeedUsers::parse(&format!("[{colon}]"))
                .unwrap_err()
                .contains("':'")
        );
    }
}
