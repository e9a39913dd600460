//! Logging: env_logger text by default; `LOG_FORMAT=json` (or `log.format=json`) writes one JSON
//! object per line for log shippers. `RUST_LOG` filters as usual (default `info` for the server).

use std::io::Write;

/// `default_level` applies when `RUST_LOG` is not set.
pub fn init(default_level: &str) -> Result<(), String> {
    let format = ["LOG_FORMAT", "log.format", "log_format"]
        .iter()
        .find_map(|k| std::env::var(k).ok())
        .unwrap_or_else(|| "text".into());
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_level));
    match format.trim().to_ascii_lowercase().as_str() {
        "text" | "" => {}
        "json" => {
            builder.format(|buf, record| {
                let line = serde_json::json!({
                    "ts": buf.timestamp_millis().to_string(),
                    "level": record.level().as_str(),
                    "target": record.target(),
                    "message": record.args().to_string(),
                });
                writeln!(buf, "{line}")
            });
        }
        other => {
            return Err(format!(
                "invalid setting LOG_FORMAT={other:?}: text or json"
            ));
        }
    }
    builder.init();
    Ok(())
}
