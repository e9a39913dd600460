mod logging;

use std::process::ExitCode;
use token_server::config::Settings;
use token_server::startup::{Application, StartupError};

#[actix_web::main]
async fn main() -> ExitCode {
    // .env first, so RUST_LOG and LOG_FORMAT set there apply to the logger too.
    let _ = dotenvy::dotenv();
    if let Err(e) = logging::init() {
        eprintln!("token-server: {e}");
        return ExitCode::from(2);
    }
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
