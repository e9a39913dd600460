//! token-server: a Redis-backed session and token server, a drop-in for the session API of
//! eGov DIGIT's egov-user and an OAuth 2.0 token server.

pub mod budget;
pub mod cli;
pub mod clients;
pub mod config;
pub mod domain;
pub mod error;
pub mod login;
pub mod metrics;
pub mod otp;
pub mod password;
pub mod redis_io;
pub mod routes;
pub mod startup;
pub mod store;
pub mod users;
