//! Types that cannot hold invalid values: tokens, credentials, users and sessions.

pub mod account;
pub mod address;
pub mod code;
pub mod credentials;
pub mod session;
pub mod token;
pub mod user;
