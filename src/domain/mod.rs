//! Types that cannot hold invalid values: tokens, credentials, users and sessions.

pub mod address;
pub mod credentials;
pub mod session;
pub mod token;
pub mod user;
