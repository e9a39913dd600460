//! A user record in DIGIT's shape. The password is a bcrypt hash and never leaves this type
//! except to be verified: the public form (`PublicUser`) has no password field at all.

use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// The kind of user, as DIGIT names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum UserType {
    Citizen,
    Employee,
    System,
    Business,
}

impl UserType {
    /// The type `s` names, in any letter case; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "CITIZEN" => Some(UserType::Citizen),
            "EMPLOYEE" => Some(UserType::Employee),
            "SYSTEM" => Some(UserType::System),
            "BUSINESS" => Some(UserType::Business),
            _ => None,
        }
    }
}

/// A role the user holds in a tenant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Role {
    pub name: String,
    pub code: String,
    #[serde(rename = "tenantId")]
    pub tenant_id: String,
}

/// A bcrypt hash (`$2a$`, `$2b$` or `$2y$`). Its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct PasswordHash(String);

impl PasswordHash {
    /// `s` if it is a well-formed bcrypt hash of cost 4 to 31; else what a hash must be.
    pub fn parse(s: String) -> Result<Self, String> {
        let well_formed = s.len() == 60
            && ["$2a$", "$2b$", "$2y$"].iter().any(|p| s.starts_with(p))
            && s.as_bytes()[6] == b'$'
            && s[4..6].parse::<u32>().is_ok_and(|c| (4..=31).contains(&c));
        if well_formed {
            Ok(PasswordHash(s))
        } else {
            Err("password must be a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters)".into())
        }
    }

    /// The hash's text, 60 characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The hash's bcrypt cost (work factor).
    pub fn cost(&self) -> u32 {
        self.0[4..6].parse().unwrap_or(10)
    }
}

impl TryFrom<String> for PasswordHash {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        PasswordHash::parse(s)
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

/// The user fields every response shows (`UserRequest` in DIGIT), in DIGIT's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PublicUser {
    pub id: i64,
    pub uuid: String,
    #[serde(rename = "userName")]
    pub user_name: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "mobileNumber", default)]
    pub mobile_number: Option<String>,
    #[serde(rename = "emailId", default)]
    pub email_id: Option<String>,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(rename = "type")]
    pub user_type: UserType,
    #[serde(default)]
    pub roles: Vec<Role>,
    pub active: bool,
    #[serde(rename = "tenantId")]
    pub tenant_id: String,
}

/// A user as stored: the public fields and the password hash.
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    #[serde(flatten)]
    pub public: PublicUser,
    pub password: PasswordHash,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bcrypt_hashes_are_accepted_as_passwords() {
        let good = "$2a$04$abcdefghijklmnopqrstuuvwxyz0123456789ABCDEFGHIJKLMNOP".to_string();
        assert_eq!(good.len(), 60);
        assert_eq!(PasswordHash::parse(good.clone()).unwrap().cost(), 4);
        for bad in [
            "secret".to_string(),
            good.replace("$2a$", "$1$x"),
            good[..59].to_string(),
            good.replace("$04$", "$99$"),
        ] {
            assert!(PasswordHash::parse(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_type_is_matched_case_insensitively() {
        assert_eq!(UserType::parse("employee"), Some(UserType::Employee));
        assert_eq!(UserType::parse("Citizen"), Some(UserType::Citizen));
        assert_eq!(UserType::parse("admin"), None);
    }
}
