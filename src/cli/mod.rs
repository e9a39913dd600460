//! The command line: `serve` (the default) and the admin commands, which work on the Redis the
//! server uses, configured by the same settings (environment and `.env`).

mod check;
mod secret;
mod sessions;
mod users;

use crate::config::Settings;
use crate::domain::credentials::TenantId;
use crate::domain::user::User;
use crate::error::cause_chain;
use crate::redis_io::Keys;
use crate::startup::{StartupError, redis_connection};
use crate::store::StoreError;
use crate::store::redis::RedisStore;
use crate::users::UserDirectory;
use crate::users::redis::RedisUsers;
use crate::users::seed::SeedUsers;
use clap::{Args, Parser, Subcommand};
use std::process::ExitCode;

/// Redis-backed session and token server.
///
/// Every command reads the server's settings from the environment (and `.env`); the admin
/// commands work on the Redis those settings name.
#[derive(Debug, Parser)]
#[command(name = "token-server", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The subcommands; none means `serve`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (what `token-server` alone does).
    Serve,
    /// Add, import, list, disable users kept in Redis, or set their passwords.
    #[command(subcommand)]
    Users(UsersCommand),
    /// List or end users' sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Print the bcrypt hash of a password, for seed files (USERS_FILE).
    HashPassword(PasswordArgs),
    /// Validate the configuration and reach the store; exit 0 if both are fine, else 2.
    Check,
}

/// The `users` subcommands, on users kept in Redis.
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user; fails if the tenant has a user of that name already.
    Add(AddArgs),
    /// Copy the users of a seed file (USERS_FILE format) into Redis. Users already in Redis are
    /// kept as they are unless --replace, so running it again is safe.
    Import {
        /// A JSON array of user records with bcrypt password hashes.
        file: std::path::PathBuf,
        /// Overwrite users that exist already with the file's record.
        #[arg(long)]
        replace: bool,
    },
    /// List the users kept in Redis.
    List {
        /// Only this tenant's users.
        #[arg(long)]
        tenant: Option<String>,
        /// One JSON array (public fields only) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Refuse the user's logins from now on and end all of the user's sessions.
    Disable(UserRef),
    /// Allow a disabled user to log in again.
    Enable(UserRef),
    /// Set a new password and end all of the user's sessions.
    SetPassword {
        #[command(flatten)]
        user: UserRef,
        #[command(flatten)]
        password: PasswordArgs,
    },
}

/// The `sessions` subcommands, on any user's sessions.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List a user's live sessions.
    List {
        /// The user's userName.
        #[arg(long = "user", value_name = "USER_NAME")]
        user: String,
        /// The user's tenantId; needed when several tenants have a user of that name.
        #[arg(long)]
        tenant: Option<String>,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End all sessions of a user (--user), or one session (--id).
    End {
        /// The user's userName.
        #[arg(
            long = "user",
            value_name = "USER_NAME",
            required_unless_present = "id",
            conflicts_with = "id"
        )]
        user: Option<String>,
        /// The user's tenantId; needed when several tenants have a user of that name.
        #[arg(long, requires = "user")]
        tenant: Option<String>,
        /// A session id as `sessions list` or GET /user/sessions shows it.
        #[arg(long)]
        id: Option<String>,
    },
}

/// A user named as an argument, within `--tenant` if the name is not unique.
#[derive(Debug, Args)]
pub struct UserRef {
    /// The user's userName.
    pub user_name: String,
    /// The user's tenantId; needed when several tenants have a user of that name.
    #[arg(long)]
    pub tenant: Option<String>,
}

/// How a command reads a new password and the bcrypt cost it hashes it with.
#[derive(Debug, Args)]
pub struct PasswordArgs {
    /// Read the password from the first line of standard input instead of prompting.
    #[arg(long)]
    pub password_stdin: bool,
    /// bcrypt cost (work factor), at least 10; default: the BCRYPT_COST setting, else 10.
    #[arg(long)]
    pub cost: Option<u32>,
    /// Allow a cost below 10: fast hashes, for tests only.
    #[arg(long)]
    pub insecure_cost: bool,
}

/// The record `users add` writes, and the password it reads.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// The user's userName (what the user logs in with).
    pub user_name: String,
    /// The user's tenantId, e.g. `pb` or `pb.amritsar`.
    #[arg(long)]
    pub tenant: String,
    /// CITIZEN, EMPLOYEE, SYSTEM or BUSINESS.
    #[arg(long = "type", default_value = "EMPLOYEE", value_parser = parse_user_type)]
    pub user_type: crate::domain::user::UserType,
    /// A role as CODE or CODE:Name, in the user's tenant; repeat for several.
    #[arg(long = "role", value_name = "CODE[:NAME]")]
    pub roles: Vec<String>,
    /// Display name.
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub mobile: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub locale: Option<String>,
    /// DIGIT's numeric id; random if not given.
    #[arg(long)]
    pub id: Option<i64>,
    /// The user's uuid; a new one if not given.
    #[arg(long)]
    pub uuid: Option<uuid::Uuid>,
    /// Add the user disabled.
    #[arg(long)]
    pub inactive: bool,
    #[command(flatten)]
    pub password: PasswordArgs,
}

fn parse_user_type(text: &str) -> Result<crate::domain::user::UserType, String> {
    crate::domain::user::UserType::parse(text)
        .ok_or_else(|| "expected CITIZEN, EMPLOYEE, SYSTEM or BUSINESS".to_string())
}

/// Why a command failed: `Usage` (bad input or configuration) exits 2, `Failed` exits 1.
#[derive(Debug)]
pub enum CliError {
    Usage(String),
    Failed(String),
}

impl CliError {
    /// The text to print for the error, whichever kind it is.
    pub fn message(&self) -> &str {
        match self {
            CliError::Usage(m) | CliError::Failed(m) => m,
        }
    }
}

impl From<StoreError> for CliError {
    fn from(e: StoreError) -> Self {
        CliError::Failed(format!("redis: {}", cause_chain(&e)))
    }
}

impl From<StartupError> for CliError {
    fn from(e: StartupError) -> Self {
        CliError::Usage(e.to_string())
    }
}

/// What a command returns: success (its output printed already) or why it failed.
pub type CliResult = Result<(), CliError>;

/// Runs an admin command (anything but `serve`).
pub async fn run(command: Command) -> ExitCode {
    let result = match command {
        Command::Serve => Err(CliError::Usage("serve is run by main".into())),
        Command::HashPassword(args) => secret::hash_password(&args),
        Command::Check => check::check().await,
        Command::Users(command) => match Admin::connect().await {
            Ok(admin) => admin.settled(users::run(&admin, command).await).await,
            Err(e) => Err(e),
        },
        Command::Sessions(command) => match Admin::connect().await {
            Ok(admin) => admin.settled(sessions::run(&admin, command).await).await,
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("token-server: {}", e.message());
            match e {
                CliError::Usage(_) => ExitCode::from(2),
                CliError::Failed(_) => ExitCode::FAILURE,
            }
        }
    }
}

/// What the admin commands work on: the server's Redis, and its seed users for lookups.
pub struct Admin {
    pub users: RedisUsers,
    pub store: RedisStore,
    pub directory: UserDirectory,
}

impl Admin {
    async fn connect() -> Result<Self, CliError> {
        let settings = Settings::from_env().map_err(|e| CliError::Usage(e.to_string()))?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let Some(conn) = redis_connection(&settings)? else {
            return Err(CliError::Usage(
                "no Redis is configured: set REDIS_URL (or REDIS_CLUSTER_NODES or REDIS_SENTINELS) as the server has it; the embedded store lives inside one server process and cannot be administered".into(),
            ));
        };
        let seed = match &settings.accounts.users_file {
            Some(path) => SeedUsers::load(path).map_err(CliError::Usage)?,
            None => SeedUsers::default(),
        };
        conn.reach_every_master()
            .await
            .map_err(|e| CliError::Failed(format!("redis: {}", cause_chain(&e))))?;
        let keys = Keys::new(&settings.redis.key_prefix);
        let users = RedisUsers::new(conn.clone(), keys);
        Ok(Admin {
            store: RedisStore::new(conn, &settings.redis.key_prefix)
                .with_lease(settings.redis.validation_lease),
            directory: UserDirectory::new(seed, Some(users.clone())),
            users,
        })
    }

    /// `result`, once no replica can still answer from a read lease confirmed before the
    /// command's writes: a command that ended or changed anything exits only then.
    async fn settled(&self, result: CliResult) -> CliResult {
        let _ = self.store.stored_lease().await;
        self.store.commit_wait(std::time::Instant::now()).await;
        result
    }

    /// The one user `name` (in `tenant`, if given) names, from Redis or the seed file.
    pub async fn resolve(&self, name: &str, tenant: Option<&str>) -> Result<User, CliError> {
        let tenant = tenant.map(parse_tenant).transpose()?;
        let mut found = self.directory.named(name, tenant.as_ref()).await?;
        match found.len() {
            0 => Err(CliError::Failed(match &tenant {
                Some(t) => format!("no user {name:?} in tenant {:?}", t.as_str()),
                None => format!("no user {name:?}"),
            })),
            1 => Ok(found.remove(0)),
            _ => {
                let mut tenants: Vec<_> =
                    found.iter().map(|u| u.public.tenant_id.clone()).collect();
                tenants.sort();
                Err(CliError::Usage(format!(
                    "tenants {} each have a user {name:?}: pass --tenant",
                    tenants.join(", ")
                )))
            }
        }
    }
}

fn parse_tenant(text: &str) -> Result<TenantId, CliError> {
    if text.is_empty() {
        return Err(CliError::Usage("--tenant is empty".into()));
    }
    TenantId::parse(text).map_err(|e| CliError::Usage(e.0))
}

/// Epoch milliseconds as an RFC 3339 UTC time, to the second.
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Rows under a header, each column as wide as its widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                text.push_str(cell);
            } else {
                text.push_str(&format!("{cell:<w$}  "));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    let mut out = line(header.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_utc() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_795_780_799_999), "2026-11-27T11:59:59Z");
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
