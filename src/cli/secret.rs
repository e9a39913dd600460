//! Reading a new password (a prompt without echo, or standard input) and hashing it.

use super::{CliError, CliResult, PasswordArgs};
use crate::config::Settings;
use crate::domain::user::PasswordHash;
use std::io::{BufRead, IsTerminal};

/// Below this a hash is cheap enough to brute-force; tests pass --insecure-cost.
const MIN_COST: u32 = 10;
/// bcrypt uses only this many bytes of a password.
const MAX_PASSWORD_BYTES: usize = 72;

/// Reads a password as `args` say and prints its bcrypt hash; fails on a bad cost or an unreadable,
/// empty or over-long password.
pub fn hash_password(args: &PasswordArgs) -> CliResult {
    let hash = new_password_hash(args, "Password")?;
    println!("{}", hash.as_str());
    Ok(())
}

/// Reads a password as `args` say and returns its bcrypt hash.
pub fn new_password_hash(args: &PasswordArgs, prompt: &str) -> Result<PasswordHash, CliError> {
    let cost = checked_cost(args)?;
    let password = read_password(args.password_stdin, prompt)?;
    let hash = bcrypt::hash(&password, cost)
        .map_err(|e| CliError::Failed(format!("cannot hash the password: {e}")))?;
    PasswordHash::parse(hash).map_err(CliError::Failed)
}

fn checked_cost(args: &PasswordArgs) -> Result<u32, CliError> {
    let (cost, origin) = match args.cost {
        Some(cost) => (cost, "--cost"),
        None => (
            Settings::bcrypt_cost_from_env().map_err(|e| CliError::Usage(e.to_string()))?,
            "BCRYPT_COST",
        ),
    };
    if !(4..=31).contains(&cost) {
        return Err(CliError::Usage(format!(
            "invalid {origin} {cost}: 4 to 31 (at least {MIN_COST} without --insecure-cost)"
        )));
    }
    if cost < MIN_COST && !args.insecure_cost {
        return Err(CliError::Usage(format!(
            "{origin} {cost} is below {MIN_COST}; pass --insecure-cost if this is for tests"
        )));
    }
    Ok(cost)
}

fn read_password(from_stdin: bool, prompt: &str) -> Result<String, CliError> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::Usage(format!("cannot read the password from stdin: {e}")))?;
        line.strip_suffix('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .unwrap_or(&line)
            .to_string()
    } else {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::Usage(
                "standard input is not a terminal to prompt on: pass --password-stdin".into(),
            ));
        }
        let first = prompt_hidden(&format!("{prompt}: "))?;
        let again = prompt_hidden("Again: ")?;
        if first != again {
            return Err(CliError::Usage("the two passwords differ".into()));
        }
        first
    };
    if password.is_empty() {
        return Err(CliError::Usage("the password is empty".into()));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(CliError::Usage(format!(
            "the password is longer than {MAX_PASSWORD_BYTES} bytes, and bcrypt would ignore the rest"
        )));
    }
    Ok(password)
}

fn prompt_hidden(prompt: &str) -> Result<String, CliError> {
    rpassword::prompt_password(prompt)
        .map_err(|e| CliError::Usage(format!("cannot read the password: {e}")))
}
