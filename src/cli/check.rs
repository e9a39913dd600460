//! `token-server check`: what start-up would refuse, found before a deploy.

use super::{CliError, CliResult};
use crate::clients::Clients;
use crate::config::Settings;
use crate::startup::redis_connection;
use crate::store::redis::RedisStore;
use crate::users::seed::SeedUsers;

/// Checks the settings, the users and clients files and that the store answers, printing each
/// result; every failure is a `Usage` error.
pub async fn check() -> CliResult {
    let settings = Settings::from_env().map_err(|e| CliError::Usage(e.to_string()))?;
    println!("settings: ok");
    if let Some(path) = &settings.accounts.users_file {
        let seed = SeedUsers::load(path).map_err(CliError::Usage)?;
        println!("USERS_FILE: {} user(s)", seed.len());
    }
    Clients::load(
        settings.accounts.clients_file.as_deref(),
        settings.accounts.default_client_enabled,
    )
    .map_err(CliError::Usage)?;
    if settings.accounts.clients_file.is_some() {
        println!("CLIENTS_FILE: ok");
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    match redis_connection(&settings)? {
        None => println!("store: embedded (in-process; nothing to reach)"),
        Some(conn) => {
            let store = RedisStore::new(conn, &settings.redis.key_prefix);
            store.ping().await.map_err(|e| {
                CliError::Usage(format!(
                    "store: {} unreachable: {}",
                    store.kind(),
                    crate::error::cause_chain(&e)
                ))
            })?;
            println!(
                "store: {} reachable, key prefix {:?}",
                store.kind(),
                settings.redis.key_prefix
            );
        }
    }
    Ok(())
}
