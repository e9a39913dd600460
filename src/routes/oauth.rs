//! Standard endpoints beside DIGIT's: `POST /oauth/revoke` (RFC 7009) and
//! `POST /oauth/introspect` (RFC 7662). Both take a form body and client authentication.

use super::AppState;
use super::extract::{self, Form};
use crate::clients::Client;
use crate::domain::token::{Token, TokenKind};
use crate::error::ApiError;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

async fn client_form<'a>(
    req: &HttpRequest,
    payload: web::Payload,
    state: &'a AppState,
) -> Result<(Form, &'a Client), ApiError> {
    if !extract::is_form(req) {
        return Err(ApiError::InvalidRequest(
            "Content-Type must be application/x-www-form-urlencoded".into(),
        ));
    }
    let body = extract::read_body(req, payload).await?;
    let form = Form::parse(&body)?;
    let client = state
        .clients
        .authenticate(
            req,
            form.get("client_id"),
            form.get("client_secret"),
            &state.verifier,
        )
        .await?;
    Ok((form, client))
}

fn hinted(form: &Form) -> Result<Option<Token>, ApiError> {
    let token = form.require("token")?;
    match form.get("token_type_hint") {
        None | Some("access_token") | Some("refresh_token") => {}
        Some(_) => {
            return Err(ApiError::InvalidRequest(
                "token_type_hint must be access_token or refresh_token".into(),
            ));
        }
    }
    // The token names its own kind, so the hint is not needed to find it.
    Ok(Token::parse(token))
}

/// Ends the session of either token of the calling client. 200 also for unknown, ended or
/// foreign tokens (RFC 7009 §2.2), so the answer reveals nothing.
pub async fn revoke(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (form, client) = client_form(&req, payload, &state).await?;
    if let Some(token) = hinted(&form)?
        && state.store.end_session(&token, Some(&client.id)).await?
    {
        crate::metrics::logout("revoke");
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// RFC 7662 introspection, for confidential clients only.
pub async fn introspect(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (form, client) = client_form(&req, payload, &state).await?;
    if !client.is_confidential() {
        return Err(ApiError::InvalidClient);
    }
    let answer = match hinted(&form)? {
        None => None,
        Some(token) => state.store.introspect(&token).await?.map(|i| (token, i)),
    };
    let body = match answer {
        None => json!({ "active": false }),
        Some((token, i)) => {
            let user: Value = serde_json::from_str(&i.user_json)
                .map_err(|_| ApiError::Internal("stored user record is not JSON".into()))?;
            let issued_ms = match token.kind() {
                TokenKind::Refresh if !state.store.policy().rotation => i.created_ms,
                _ => i.refreshed_ms,
            };
            json!({
                "active": true,
                "token_type": match token.kind() {
                    TokenKind::Access => "access_token",
                    TokenKind::Refresh => "refresh_token",
                },
                "scope": i.scope,
                "client_id": i.client_id,
                "username": user["userName"],
                "sub": user["uuid"],
                "exp": i.expires_ms / 1000,
                "iat": issued_ms / 1000,
                "tenantId": user["tenantId"],
                "roles": user["roles"],
            })
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(body))
}
