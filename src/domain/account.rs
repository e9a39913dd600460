//! Accounts whose password checks are budgeted.

/// Whose password budget an attempt spends. A user account is its user name as typed, whatever
/// tenant or user type the login names and whether or not such a user exists: every spelling
/// of one account counts together, and the answers never depend on the user existing.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Account {
    User(String),
    /// A confidential OAuth client's secret as presented from one address (its throttle key):
    /// a machine secret, budgeted per (client, address), so that wrong secrets sent from one
    /// address never make the right one fail from another.
    Client {
        id: String,
        address: String,
    },
}

impl std::fmt::Display for Account {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Account::User(name) => write!(f, "account {name:?}"),
            Account::Client { id, address } => write!(f, "client {id:?} at {address}"),
        }
    }
}
