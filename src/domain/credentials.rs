//! Values a login request carries, checked at the edge so handlers only see sane ones.

use std::fmt;

const MAX_NAME_LEN: usize = 256;
const MAX_PASSWORD_LEN: usize = 1024;

/// Why a request value was refused; the message names the parameter.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejected(pub String);

fn check_text(param: &str, value: &str, max: usize) -> Result<(), Rejected> {
    if value.chars().count() > max {
        return Err(Rejected(format!("{param} is longer than {max} characters")));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(Rejected(format!("{param} contains control characters")));
    }
    Ok(())
}

/// A user name as given: at most 256 characters, none of them control characters; may be empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// The name if at most 256 characters, none a control; else an error naming `username`.
    pub fn parse(value: &str) -> Result<Self, Rejected> {
        check_text("username", value, MAX_NAME_LEN)?;
        Ok(Username(value.to_string()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A tenant id such as `pb` or `pb.amritsar`. It holds no `:`, which ends the tenant in the
/// keys of user records, so no two (tenant, user name) pairs can share a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TenantId(String);

impl TenantId {
    /// The id if at most 256 characters, none a control or `:`; else an error naming `tenantId`.
    pub fn parse(value: &str) -> Result<Self, Rejected> {
        check_text("tenantId", value, MAX_NAME_LEN)?;
        if value.contains(':') {
            return Err(Rejected("tenantId must not contain ':'".into()));
        }
        Ok(TenantId(value.to_string()))
    }

    /// The tenant id as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed. Never printed: its `Debug` is redacted.
pub struct Password(String);

impl Password {
    /// The password if it is at most 1024 bytes without NUL; the error names `password`.
    pub fn parse(value: &str) -> Result<Self, Rejected> {
        if value.len() > MAX_PASSWORD_LEN {
            return Err(Rejected(format!(
                "password is longer than {MAX_PASSWORD_LEN} bytes"
            )));
        }
        if value.contains('\0') {
            return Err(Rejected("password contains a NUL character".into()));
        }
        Ok(Password(value.to_string()))
    }

    /// The password itself, for hashing or checking only; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

/// A set of OAuth scopes, kept sorted and without repeats.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope(Vec<String>);

impl Scope {
    /// Parses a space-separated scope parameter (RFC 6749 §3.3).
    pub fn parse(value: &str) -> Result<Self, Rejected> {
        let valid = |t: &str| {
            t.chars()
                .all(|c| c == '!' || ('#'..='[').contains(&c) || (']'..='~').contains(&c))
        };
        let mut items: Vec<String> = value
            .split(' ')
            .filter(|t| !t.is_empty())
            .map(str::to_string)
            .collect();
        if items.is_empty() || items.iter().any(|t| !valid(t)) || value.len() > 1024 {
            return Err(Rejected("scope is not a list of scope tokens".into()));
        }
        items.sort();
        items.dedup();
        Ok(Scope(items))
    }

    /// A scope of `items` as given, unchecked: for scopes the server itself defines.
    pub fn from_list(items: &[&str]) -> Self {
        let mut items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        items.sort();
        items.dedup();
        Scope(items)
    }

    /// Whether every scope in `self` is also in `allowed`.
    pub fn is_within(&self, allowed: &Scope) -> bool {
        self.0.iter().all(|s| allowed.0.contains(s))
    }

    /// The scopes space-separated in sorted order, as the `scope` parameter spells them.
    pub fn to_param(&self) -> String {
        self.0.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absurd_usernames_are_refused_with_the_parameter_named() {
        let long = "a".repeat(100_000);
        assert!(Username::parse(&long).unwrap_err().0.contains("username"));
        assert!(Username::parse("ab\0c").is_err());
        assert!(Username::parse("EMP-0001").is_ok());
    }

    #[test]
    fn tenants_cannot_hold_the_key_delimiter() {
        assert!(TenantId::parse("a:b").unwrap_err().0.contains("':'"));
        assert!(TenantId::parse("pb.amritsar").is_ok());
    }

    #[test]
    fn scope_subsets_are_recognised() {
        let read = Scope::parse("read").unwrap();
        let both = Scope::parse("write  read read").unwrap();
        assert_eq!(both.to_param(), "read write");
        assert!(read.is_within(&both));
        assert!(!both.is_within(&read));
        assert!(Scope::parse("").is_err());
        assert!(Scope::parse("a\"b").is_err());
    }

    #[test]
    fn passwords_do_not_show_in_debug_output() {
        let p = Password::parse("hunter2").unwrap();
        assert!(!format!("{p:?}").contains("hunter2"));
    }
}
