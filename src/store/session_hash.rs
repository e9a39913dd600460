//! The session hash (`P:{T}:s:<id>`), field by field: the one list of its names. The Lua
//! scripts write and read these fields (a test checks they use no other), and the Rust code
//! that reads the hash takes the names from here.

/// The current refresh token's digest.
pub const REFRESH_DIGEST: &str = "rh";
/// The session's end, epoch ms: the refresh token's expiry. A session is live until then.
pub const ENDS: &str = "rx";
/// How long the key, its index entry and the index are kept, epoch ms (a step past `rx`).
pub const HORIZON: &str = "kx";
/// The absolute end of the session, epoch ms (0 = none).
pub const MAX_END: &str = "mx";
/// The user's uuid.
pub const USER: &str = "uid";
/// The client the session was issued to.
pub const CLIENT: &str = "cid";
/// The granted scope.
pub const SCOPE: &str = "sc";
/// Created, epoch ms.
pub const CREATED: &str = "c";
/// Last refreshed, epoch ms.
pub const REFRESHED: &str = "r";
/// Refreshes so far.
pub const REFRESHES: &str = "g";
/// The address the session was started from.
pub const IP: &str = "ip";
/// The user agent the session was started with.
pub const USER_AGENT: &str = "ua";
/// The previous refresh token's digest (the retry window).
pub const PREVIOUS_DIGEST: &str = "ph";
/// When the previous refresh token was redeemed, epoch ms.
pub const PREVIOUS_AT: &str = "pt";
/// Older refresh tokens' digest prefixes, 8 hex characters each (reuse detection).
pub const ANCESTORS: &str = "anc";

/// Every field, as the scripts name them.
pub const ALL: [&str; 15] = [
    REFRESH_DIGEST,
    ENDS,
    HORIZON,
    MAX_END,
    USER,
    CLIENT,
    SCOPE,
    CREATED,
    REFRESHED,
    REFRESHES,
    IP,
    USER_AGENT,
    PREVIOUS_DIGEST,
    PREVIOUS_AT,
    ANCESTORS,
];

#[cfg(test)]
mod tests {
    use super::ALL;

    /// The field names the session scripts pass to `HSET`, `HGET` and `HMGET` or put in the
    /// table of fields refresh.lua writes: every quoted word in such a statement.
    fn named_in(source: &str) -> Vec<String> {
        let mut names = vec![];
        let mut statement = String::new();
        for line in source.lines().map(str::trim) {
            if line.starts_with("--") {
                continue;
            }
            statement.push_str(line);
            statement.push(' ');
            let open =
                |o: char, c: char| statement.matches(o).count() > statement.matches(c).count();
            if open('(', ')') || open('{', '}') {
                continue;
            }
            let hash_call = ["'HSET'", "'HGET'", "'HMGET'", "fields = {", "insert(fields"]
                .iter()
                .any(|c| statement.contains(c));
            if hash_call {
                names.extend(
                    statement
                        .split('\'')
                        .skip(1)
                        .step_by(2)
                        .filter(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase()))
                        .map(str::to_string),
                );
            }
            statement.clear();
        }
        names
    }

    #[test]
    fn the_scripts_use_only_the_listed_fields_and_every_one_of_them() {
        let scripts = [
            include_str!("lua/issue.lua"),
            include_str!("lua/refresh.lua"),
            include_str!("lua/end.lua"),
            include_str!("lua/introspect.lua"),
            include_str!("lua/sessions.lua"),
        ];
        let used: Vec<String> = scripts.iter().flat_map(|s| named_in(s)).collect();
        for name in &used {
            assert!(ALL.contains(&name.as_str()), "{name} is not in the list");
        }
        for name in ALL {
            assert!(
                used.iter().any(|u| u == name),
                "{name} is used by no script"
            );
        }
    }
}
