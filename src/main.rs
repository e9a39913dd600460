//! The `token-server` binary: reads `.env`, sets up logging, then serves or runs an admin
//! command. Exits 0 on success, 2 on bad configuration or usage, 1 on any other failure.

mod logging;

use clap::Parser;
use std::process::ExitCode;
use token_server::cli::{Cli, Command};
use token_server::config::Settings;
use token_server::startup::{Application, StartupError};

#[actix_web::main]
async fn main() -> ExitCode {
    // .env first, so RUST_LOG and LOG_FORMAT set there apply to the logger too, and settings
    // that are also options (BCRYPT_COST) to the command line.
    let _ = dotenvy::dotenv();
    let cli = Cli::parse();
    let serving = matches!(cli.command, None | Some(Command::Serve));
    // Admin commands print their own results; their log shows only warnings by default.
    if let Err(e) = logging::init(if serving { "info" } else { "warn" }) {
        eprintln!("token-server: {e}");
        return ExitCode::from(2);
    }
    match cli.command {
        Some(command) if !serving => token_server::cli::run(command).await,
        _ => serve().await,
    }
}

async fn serve() -> ExitCode {
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("token-server: {e}");
            return ExitCode::from(2);
        }
    };
    let app = match Application::build(settings).await {
        Ok(app) => app,
        Err(e @ StartupError::Config(_)) => {
            eprintln!("token-server: {e}");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("token-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run_until_signalled().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("token-server: {e}");
            ExitCode::FAILURE
        }
    }
}
