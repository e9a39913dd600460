//! A user's own sessions: `GET /user/sessions`, `DELETE /user/sessions/{id}` and
//! `POST /user/_logout_all`, authorised by the caller's live access token.

use super::AppState;
use super::extract;
use super::session::logout_body;
use crate::domain::session::{SessionsOp, SessionsOutcome};
use crate::domain::token::{SessionId, Token, TokenKind};
use crate::error::ApiError;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

async fn caller(req: &HttpRequest, payload: web::Payload) -> Result<Token, ApiError> {
    let body = extract::read_body(req, payload).await?;
    extract::access_token(req, &body)?
        .and_then(|t| Token::parse(&t))
        .filter(|t| t.kind() == TokenKind::Access)
        .ok_or(ApiError::InvalidAccessToken)
}

async fn run(
    state: &AppState,
    caller: &Token,
    op: SessionsOp,
) -> Result<SessionsOutcome, ApiError> {
    state
        .store
        .user_sessions(caller, op)
        .await?
        .ok_or(ApiError::InvalidAccessToken)
}

pub async fn list(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&req, payload).await?;
    let SessionsOutcome::Listed(mut sessions) = run(&state, &caller, SessionsOp::List).await?
    else {
        return Err(ApiError::Internal(
            "session listing answered something else".into(),
        ));
    };
    sessions.sort_by_key(|s| std::cmp::Reverse(s.created));
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(json!({ "sessions": sessions })))
}

pub async fn end_one(
    req: HttpRequest,
    payload: web::Payload,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&req, payload).await?;
    // A malformed id is as unknown as another user's session.
    let target = SessionId::parse(&path.into_inner()).ok_or(ApiError::NoSuchSession)?;
    match run(&state, &caller, SessionsOp::End(target)).await? {
        SessionsOutcome::Ended(1) => {
            crate::metrics::logout("session");
            Ok(HttpResponse::NoContent().finish())
        }
        _ => Err(ApiError::NoSuchSession),
    }
}

pub async fn end_all(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let caller = caller(&req, payload).await?;
    let SessionsOutcome::Ended(n) = run(&state, &caller, SessionsOp::EndAll).await? else {
        return Err(ApiError::Internal(
            "logout-all answered something else".into(),
        ));
    };
    metrics::counter!(crate::metrics::LOGOUTS, "kind" => "logout_all").increment(u64::from(n));
    log::info!(
        target: "audit",
        "logout of all sessions: {n} session(s) ended, requested by session {}",
        caller.session().id.uuid()
    );
    let mut body = logout_body();
    body["sessionsEnded"] = n.into();
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}
