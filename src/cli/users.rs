//! `token-server users …`: user records kept in Redis.

use super::secret::new_password_hash;
use super::{AddArgs, Admin, CliError, CliResult, UserRef, UsersCommand, parse_tenant, table};
use crate::domain::credentials::Username;
use crate::domain::token::UserTag;
use crate::domain::user::{PublicUser, Role, User};
use crate::users::redis::WriteMode;
use crate::users::seed::SeedUsers;
use indicatif::{ProgressBar, ProgressStyle};
use rand::Rng;

/// Runs a `users` command; fails on bad input, an unknown user or a Redis error.
pub async fn run(admin: &Admin, command: UsersCommand) -> CliResult {
    match command {
        UsersCommand::Add(args) => add(admin, args).await,
        UsersCommand::Import { file, replace } => import(admin, &file, replace).await,
        UsersCommand::List { tenant, json } => list(admin, tenant.as_deref(), json).await,
        UsersCommand::Disable(user) => set_active(admin, &user, false).await,
        UsersCommand::Enable(user) => set_active(admin, &user, true).await,
        UsersCommand::SetPassword { user, password } => {
            let stored = stored_user(admin, &user).await?;
            let hash = new_password_hash(&password, "New password")?;
            let p = &stored.public;
            let fields = [("password", hash.as_str().to_string())];
            if !admin
                .users
                .update(&p.tenant_id, &p.user_name, &fields)
                .await?
            {
                return Err(gone(p));
            }
            let ended = end_all(admin, p).await?;
            println!(
                "password of {:?} in tenant {:?} set; {ended} session(s) ended",
                p.user_name, p.tenant_id
            );
            Ok(())
        }
    }
}

async fn add(admin: &Admin, args: AddArgs) -> CliResult {
    let user_name = checked_name(&args.user_name)?;
    let tenant = parse_tenant(&args.tenant)?;
    let roles = args
        .roles
        .iter()
        .map(|r| {
            let (code, name) = r.split_once(':').unwrap_or((r, r));
            if code.is_empty() || name.is_empty() {
                return Err(CliError::Usage(format!(
                    "invalid --role {r:?}: CODE or CODE:Name"
                )));
            }
            Ok(Role {
                name: name.to_string(),
                code: code.to_string(),
                tenant_id: tenant.as_str().to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let public = PublicUser {
        // Within JavaScript's exact integers, which DIGIT's clients parse ids as.
        id: args
            .id
            .unwrap_or_else(|| rand::rng().random_range(1..(1i64 << 53))),
        uuid: args.uuid.unwrap_or_else(uuid::Uuid::new_v4).to_string(),
        user_name,
        name: args.name,
        mobile_number: args.mobile,
        email_id: args.email,
        locale: args.locale,
        user_type: args.user_type,
        roles,
        active: !args.inactive,
        tenant_id: tenant.as_str().to_string(),
    };
    // Fail on an existing user before asking for a password.
    let existing = admin.users.named(&public.user_name, Some(&tenant)).await?;
    if !existing.is_empty() {
        return Err(exists(&public));
    }
    if args.uuid.is_some() {
        refuse_taken_uuids(admin, std::slice::from_ref(&public)).await?;
    }
    let password = new_password_hash(&args.password, "Password")?;
    let user = User { public, password };
    if !admin.users.write(&user, WriteMode::Create).await? {
        return Err(exists(&user.public));
    }
    println!(
        "added {:?} in tenant {:?} (uuid {})",
        user.public.user_name, user.public.tenant_id, user.public.uuid
    );
    Ok(())
}

/// Refuses users whose uuid another user (in Redis or the seed file) has already: sessions
/// find their user by uuid, so two users with one uuid would share them.
async fn refuse_taken_uuids(admin: &Admin, users: &[PublicUser]) -> CliResult {
    let (stored, _) = admin.users.all().await?;
    let owners: std::collections::HashMap<&str, &PublicUser> = admin
        .directory
        .seed_users()
        .chain(stored.iter())
        .map(|u| (u.public.uuid.as_str(), &u.public))
        .collect();
    for user in users {
        if let Some(owner) = owners.get(user.uuid.as_str())
            && (owner.tenant_id != user.tenant_id || owner.user_name != user.user_name)
        {
            return Err(CliError::Usage(format!(
                "uuid {:?} of {:?} in tenant {:?} belongs to {:?} in tenant {:?} already",
                user.uuid, user.user_name, user.tenant_id, owner.user_name, owner.tenant_id
            )));
        }
    }
    Ok(())
}

fn exists(p: &PublicUser) -> CliError {
    CliError::Failed(format!(
        "tenant {:?} has a user {:?} already",
        p.tenant_id, p.user_name
    ))
}

fn gone(p: &PublicUser) -> CliError {
    CliError::Failed(format!(
        "user {:?} in tenant {:?} was deleted meanwhile",
        p.user_name, p.tenant_id
    ))
}

fn checked_name(name: &str) -> Result<String, CliError> {
    if name.is_empty() {
        return Err(CliError::Usage("the user name is empty".into()));
    }
    Username::parse(name)
        .map(|n| n.as_str().to_string())
        .map_err(|e| CliError::Usage(e.0))
}

async fn import(admin: &Admin, file: &std::path::Path, replace: bool) -> CliResult {
    // The whole file is checked before anything is written.
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let seed =
        SeedUsers::parse(&text).map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let mut users: Vec<&User> = seed.all().collect();
    users.sort_by(|a, b| {
        (&a.public.tenant_id, &a.public.user_name).cmp(&(&b.public.tenant_id, &b.public.user_name))
    });
    let public: Vec<PublicUser> = users.iter().map(|u| u.public.clone()).collect();
    refuse_taken_uuids(admin, &public).await?;
    let bar = ProgressBar::new(users.len() as u64);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} users {elapsed}") {
        bar.set_style(style);
    }
    let mode = if replace {
        WriteMode::Replace
    } else {
        WriteMode::Create
    };
    let mut written = 0;
    for chunk in users.chunks(64) {
        let writes = chunk.iter().map(|u| write_user(admin, u, mode));
        let results = futures_util::future::try_join_all(writes).await;
        let results = match results {
            Ok(r) => r,
            Err(e) => {
                bar.abandon();
                return Err(CliError::Failed(format!(
                    "{written} user(s) written before the error; running the import again is safe. {}",
                    e.message()
                )));
            }
        };
        written += results.iter().filter(|w| **w).count();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let kept = users.len() - written;
    if replace {
        println!("{written} user(s) written from {}", file.display());
    } else {
        println!(
            "{written} user(s) added, {kept} already in Redis and kept (--replace overwrites them)"
        );
    }
    Ok(())
}

/// Writes one user of an import. A replaced record whose password, `active` flag or uuid
/// changed ends the sessions of the user it was, as `set-password` and `disable` do.
async fn write_user(admin: &Admin, user: &User, mode: WriteMode) -> Result<bool, CliError> {
    let p = &user.public;
    let before = match mode {
        WriteMode::Create => None,
        WriteMode::Replace => {
            let tenant = parse_tenant(&p.tenant_id)?;
            admin.users.named(&p.user_name, Some(&tenant)).await?.pop()
        }
    };
    let written = admin.users.write(user, mode).await?;
    if let Some(old) = before
        && written
        && (old.password != user.password
            || old.public.active != p.active
            || old.public.uuid != p.uuid)
    {
        end_all(admin, &old.public).await?;
    }
    Ok(written)
}

async fn list(admin: &Admin, tenant: Option<&str>, json: bool) -> CliResult {
    let (mut users, malformed) = admin.users.all().await?;
    if let Some(t) = tenant {
        users.retain(|u| u.public.tenant_id == t);
    }
    if json {
        let public: Vec<&PublicUser> = users.iter().map(|u| &u.public).collect();
        let text =
            serde_json::to_string_pretty(&public).map_err(|e| CliError::Failed(e.to_string()))?;
        println!("{text}");
    } else {
        let rows: Vec<Vec<String>> = users
            .iter()
            .map(|u| {
                let p = &u.public;
                vec![
                    p.tenant_id.clone(),
                    p.user_name.clone(),
                    format!("{:?}", p.user_type).to_ascii_uppercase(),
                    if p.active { "yes" } else { "no" }.into(),
                    p.roles
                        .iter()
                        .map(|r| r.code.as_str())
                        .collect::<Vec<_>>()
                        .join(","),
                    p.uuid.clone(),
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &["TENANT", "USER", "TYPE", "ACTIVE", "ROLES", "UUID"],
                &rows
            )
        );
    }
    for key in malformed {
        eprintln!("token-server: skipped malformed record {key}");
    }
    Ok(())
}

async fn set_active(admin: &Admin, user: &UserRef, active: bool) -> CliResult {
    let stored = stored_user(admin, user).await?;
    let p = &stored.public;
    let fields = [("active", active.to_string())];
    if !admin
        .users
        .update(&p.tenant_id, &p.user_name, &fields)
        .await?
    {
        return Err(gone(p));
    }
    if active {
        println!("{:?} in tenant {:?} enabled", p.user_name, p.tenant_id);
    } else {
        let ended = end_all(admin, p).await?;
        println!(
            "{:?} in tenant {:?} disabled; {ended} session(s) ended",
            p.user_name, p.tenant_id
        );
    }
    Ok(())
}

/// The user's record in Redis; a seed-file user is changed in its file instead.
async fn stored_user(admin: &Admin, user: &UserRef) -> Result<User, CliError> {
    let found = admin
        .resolve(&user.user_name, user.tenant.as_deref())
        .await?;
    let tenant = parse_tenant(&found.public.tenant_id)?;
    let mut stored = admin.users.named(&user.user_name, Some(&tenant)).await?;
    stored.pop().ok_or_else(|| {
        CliError::Usage(format!(
            "{:?} in tenant {:?} comes from USERS_FILE: change it there, or import that file into Redis first",
            found.public.user_name, found.public.tenant_id
        ))
    })
}

/// Ends every live session of `user`; returns how many ended.
pub async fn end_all(admin: &Admin, user: &PublicUser) -> Result<u32, CliError> {
    let tag = UserTag::for_user(&user.uuid);
    Ok(admin.store.admin_end_sessions(&tag).await?)
}
