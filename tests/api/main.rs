//! One test binary for the whole API: real server, real redis-server processes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod account;
mod bad_input;
mod behaviour;
mod cli;
mod cluster;
mod gateway;
mod guards;
mod leases;
mod metrics;
mod nginx;
mod oauth;
mod oauth2_client;
mod openapi;
mod otp;
mod process;
mod redis_store;
mod replicas;
mod rotation;
mod sentinel;
mod sessions;
mod support;
mod trust;
mod validation_cache;
