//! Redis plumbing that the session store and the user records share: the connection (one
//! node, a cluster or Sentinel), every key name and scan pattern, and the way scripts run.

pub mod conn;
pub mod keys;
mod scan;
pub mod script;

pub use conn::{RedisConn, TrackingSource};
pub use keys::Keys;
pub use script::Lua;
