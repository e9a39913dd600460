//! `token-server sessions …`: any user's sessions, for operators.

use super::users::end_all;
use super::{Admin, CliError, CliResult, SessionsCommand, table, utc};
use crate::domain::session::SessionInfo;
use crate::domain::token::{SessionId, UserTag};

/// Runs a `sessions` command; fails if the user or session is not found or Redis fails.
pub async fn run(admin: &Admin, command: SessionsCommand) -> CliResult {
    match command {
        SessionsCommand::List { user, tenant, json } => {
            let user = admin.resolve(&user, tenant.as_deref()).await?;
            let tag = UserTag::for_user(&user.public.uuid);
            let sessions = admin.store.admin_list_sessions(&tag).await?;
            print!("{}", listing(&sessions, json));
            Ok(())
        }
        SessionsCommand::End { id: Some(id), .. } => end_one(admin, &id).await,
        SessionsCommand::End {
            user: Some(user),
            tenant,
            id: None,
        } => {
            let user = admin.resolve(&user, tenant.as_deref()).await?;
            let ended = end_all(admin, &user.public).await?;
            println!(
                "{ended} session(s) of {:?} in tenant {:?} ended",
                user.public.user_name, user.public.tenant_id
            );
            Ok(())
        }
        SessionsCommand::End {
            user: None,
            id: None,
            ..
        } => Err(CliError::Usage("pass --user or --id".into())),
    }
}

/// The sessions as a table, or one JSON array.
fn listing(sessions: &[SessionInfo], json: bool) -> String {
    if json {
        let list: Vec<_> = sessions
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id,
                    "clientId": s.client_id,
                    "created": s.created,
                    "lastRefreshed": s.last_refreshed,
                    "expires": s.expires,
                    "ip": s.ip,
                    "userAgent": s.user_agent,
                })
            })
            .collect();
        return format!("{}\n", serde_json::Value::Array(list));
    }
    let rows: Vec<Vec<String>> = sessions
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.client_id.clone(),
                utc(s.created),
                utc(s.last_refreshed),
                s.ip.clone(),
                s.user_agent.clone(),
            ]
        })
        .collect();
    let header = [
        "ID",
        "CLIENT",
        "CREATED",
        "REFRESHED",
        "ADDRESS",
        "USER AGENT",
    ];
    table(&header, &rows)
}

async fn end_one(admin: &Admin, id: &str) -> CliResult {
    let id = SessionId::parse(id)
        .ok_or_else(|| CliError::Usage(format!("invalid session id {id:?}: a uuid")))?;
    let Some(at) = admin.store.find_session(id).await? else {
        return Err(CliError::Failed(format!("no live session {}", id.uuid())));
    };
    if !admin.store.admin_end_session(&at.tag, id).await? {
        return Err(CliError::Failed(format!("no live session {}", id.uuid())));
    }
    println!("session {} ended", id.uuid());
    Ok(())
}
